"""The chapters' smoke parameters and their recorded reference tables, in one place.

The smoke tests (``tests/test_notebooks.py``, ``tests/test_notebook_0[2-5].py``) and
``tools/record_smoke.py`` both take each chapter's tiny parameters from here, so the reference
tables in ``tests/data/smoke/<stem>.csv`` are recorded by exactly the runs the tests make.

A reference holds only the deterministic part of a chapter's table (:func:`deterministic`):
rows whose metric is a wall time or a memory reading are left out, and so are such columns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: Where the recorded reference tables live.
REFERENCE_DIR = Path(__file__).resolve().parent / "data" / "smoke"

TINY_01 = dict(
    models=["minilm-l6"], n_texts=12, max_length=24, seeds=[0, 1], n_samples=96,
    sample_sizes=[48, 96], heatmap_samples=48, accuracy_samples=48, entropy_resamples=20,
)

TINY_02 = dict(
    systems=["minilm-l6", "minilm-l6~untrained"],
    pairs=["minilm-l6>minilm-l6", "minilm-l6>minilm-l6~untrained"],
    rotation_pairs=["minilm-l6>minilm-l6"],
    n_texts=30, max_length=16, n_splits=2,
    scatter_pair="minilm-l6>minilm-l6~untrained", scatter_layer=1,
)

TINY_03 = dict(sort_lengths=[2, 5], depths=[1, 4, 64], sort_seeds=[0], n_verses=2, n_pairs=2,
               mt_pairs=60, mt_heldout=4, mt_steps=5, mt_batch=8, mt_layers=2, mt_width=16)

TINY_04 = dict(scaling_sizes=[128, 256], scaling_dim=8, repeats=2, frlc_rank=4, moons_n=256, n_texts=16, max_length=24,
               token_sizes=[64, 128], exact_max=128, sinkhorn_max=128, seeds=[0], paper_sizes=[64])

TINY_05 = dict(
    n_layers=3, depths=[2, 3], d_model=16, n_heads=2, context=24, batch_size=4, steps=12, n_checkpoints=5,
    n_texts=8, seeds=[0], n_samples=48, k_context=1, n_clusters=4, n_tokens=120, probe=True,
)

#: The tiny parameters of each chapter's smoke test.
SMOKE = {
    "01_ot_across_depth": TINY_01,
    "02_hierarchical_alignment": TINY_02,
    "03_attention_as_ot": TINY_03,
    "04_ot_at_scale": TINY_04,
    "05_training_dynamics": TINY_05,
}

#: Metrics (rows) and extra columns that measure the machine, not the method: wall times and
#: memory readings. They differ between two runs of the same code, so no reference holds them.
NONDETERMINISTIC = ("time_s", "wall_s", "peak_mem_mb", "solver_mem_mb")

#: Closeness of a table's numbers to its reference, relative and absolute.
TOLERANCE = 1e-10


def write_brain(folder: Path, rng: np.random.Generator) -> Path:
    """Write a brain folder in the NSD layout (random numbers) for chapter 2's brain section."""
    for name, seen in (("subj01", range(40)), ("subj02", range(5, 40))):
        d = Path(folder) / name
        d.mkdir(parents=True)
        np.save(d / "stimulus_ids.npy", np.array(list(seen)))
        for roi, width in (("V1", 6), ("V4", 5)):
            np.save(d / f"{roi}.npy", rng.standard_normal((len(seen), width)))
    return Path(folder)


def chapter_setup(stem: str, workdir: Path) -> tuple[dict, dict]:
    """The parameters and environment variables of ``stem``'s smoke run in ``workdir``.

    Chapter 2 reads a brain folder written here (from ``np.random.default_rng(0)``, the tests'
    ``rng`` fixture); chapter 5 trains its own tiny runs in a fresh ``OTLENS_CACHE``.
    """
    params = dict(SMOKE[stem])
    env: dict[str, str] = {}
    if stem == "02_hierarchical_alignment":
        params["brain_dir"] = str(write_brain(Path(workdir) / "brain", np.random.default_rng(0)))
    if stem == "05_training_dynamics":
        env["OTLENS_CACHE"] = str(Path(workdir) / "cache")
    return params, env


def deterministic(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` without its wall-time and memory rows and columns (:data:`NONDETERMINISTIC`)."""
    keep = ~table["metric"].isin(NONDETERMINISTIC)
    cols = [c for c in table.columns if c not in NONDETERMINISTIC]
    return table.loc[keep, cols].reset_index(drop=True)


def compare(table: pd.DataFrame, reference: pd.DataFrame, *, tol: float = TOLERANCE) -> list[str]:
    """The differences between a chapter's table and its reference (empty when they match).

    Both are reduced by :func:`deterministic`; they must have the same columns and rows, in the
    same order; numeric columns agree to ``tol`` (relative or absolute, NaN equal to NaN), other
    columns exactly.
    """
    a, b = deterministic(table), deterministic(reference)
    if list(a.columns) != list(b.columns):
        return [f"columns differ: {list(a.columns)} vs reference {list(b.columns)}"]
    if len(a) != len(b):
        return [f"{len(a)} rows vs {len(b)} in the reference"]
    problems = []
    for col in a.columns:
        x, y = a[col], b[col]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            xv, yv = x.to_numpy(float), y.to_numpy(float)
            bad = ~np.isclose(xv, yv, rtol=tol, atol=tol, equal_nan=True)
        else:
            bad = ~((x.astype(str) == y.astype(str)) | (x.isna() & y.isna())).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            row = a.iloc[i]
            where = ", ".join(f"{k}={row[k]}" for k in ("experiment", "model", "method", "layer", "metric")
                              if k in a.columns)
            problems.append(f"{col}: {int(bad.sum())} row(s) differ, first row {i} ({where}): "
                            f"{x.iloc[i]!r} vs reference {y.iloc[i]!r}")
    return problems


def save_reference(stem: str, table: pd.DataFrame, folder: Path = REFERENCE_DIR) -> Path:
    """Write the deterministic part of ``table`` as ``stem``'s reference (full float precision)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.csv"
    deterministic(table).to_csv(path, index=False, float_format="%.17g")
    return path


def load_reference(stem: str, folder: Path = REFERENCE_DIR) -> pd.DataFrame:
    """Read ``stem``'s recorded reference table."""
    return pd.read_csv(Path(folder) / f"{stem}.csv")
