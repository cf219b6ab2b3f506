"""Benchmark: the book's chapters run one after another against in parallel on a local Dask cluster.

``otlens book`` submits the chapters as Dask tasks to a local cluster of single-threaded
workers, one per core (:func:`otlens.runner.run_chapters`; the reproduction chapter starts after
the others); ``otlens book --serial`` runs them one after another in one process, each kernel
with torch's default threads. This benchmark times both, back to back on the same machine,
after one unmeasured parallel run that fills the caches (model conversions, activations, the
tiny GPT's training), so both timed runs find the same warm caches. The jupyter-book build that
follows is the same either way and is not timed.

Profiles: ``quick`` and ``full`` (those of ``benchmarks/run.py``) run chapters 1-6 on the
smoke-test parameters of ``tests/test_notebook*.py`` (minutes); ``book`` (this script only) runs
them on ``params/quick.yml``, i.e. what ``make book`` executes (about an hour serially on 2
cores). The chapters run in a copy of the project (``book/executed`` and
``results`` of the repository are left alone); the cluster's start is inside the parallel time.

    python benchmarks/bench_book.py --profile quick
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

PROFILES = ("quick", "full")  # benchmarks/run.py's profiles that include this benchmark
CHOICES = (*PROFILES, "book")
ROOT = Path(__file__).resolve().parents[1]

#: The smoke-test parameters of the chapters (tests/test_notebooks.py, tests/test_notebook_0*.py).
TINY = {
    "01_ot_across_depth": dict(models=["minilm-l6"], n_texts=12, max_length=24, seeds=[0, 1], n_samples=96,
                               sample_sizes=[48, 96], heatmap_samples=48, accuracy_samples=48),
    "02_hierarchical_alignment": dict(systems=["minilm-l6", "minilm-l6~untrained"],
                                      pairs=["minilm-l6>minilm-l6", "minilm-l6>minilm-l6~untrained"],
                                      rotation_pairs=["minilm-l6>minilm-l6"], n_texts=30, max_length=16, n_splits=2,
                                      scatter_pair="minilm-l6>minilm-l6~untrained", scatter_layer=1),
    "03_attention_as_ot": dict(sort_lengths=[2, 5], depths=[1, 4, 64], sort_seeds=[0], n_verses=2, n_pairs=2,
                               mt_pairs=60, mt_heldout=4, mt_steps=5, mt_batch=8, mt_layers=2, mt_width=16),
    "04_ot_at_scale": dict(scaling_sizes=[128, 256], scaling_dim=8, moons_n=256, n_texts=16, max_length=24,
                           token_sizes=[64, 128], exact_max=128, sinkhorn_max=128, seeds=[0]),
    "05_training_dynamics": dict(n_layers=3, depths=[2, 3], d_model=16, n_heads=2, context=24, batch_size=4,
                                 steps=12, n_checkpoints=5, n_texts=8, seeds=[0], n_samples=48, k_context=1,
                                 n_clusters=4, n_tokens=120, probe=True),
}


def _project_copy(folder: Path, profile: str) -> tuple[list[Path], Path]:
    """The chapters and a profile in a copy of the project under ``folder``."""
    from otlens.runner import notebooks_in_toc

    for name in ("_toc.yml", "_config.yml"):
        shutil.copy(ROOT / name, folder / name)
    shutil.copytree(ROOT / "notebooks", folder / "notebooks")
    shutil.copytree(ROOT / "params", folder / "params")
    shutil.copytree(ROOT / "benchmarks", folder / "benchmarks", ignore=shutil.ignore_patterns("__pycache__"))
    if profile != "book":
        config = yaml.safe_load((ROOT / "params" / "quick.yml").read_text())
        config.update(TINY)
        (folder / "params" / "tiny.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        return notebooks_in_toc(folder / "_toc.yml"), folder / "params" / "tiny.yml"
    return notebooks_in_toc(folder / "_toc.yml"), folder / "params" / "quick.yml"


def _parallel(chapters, profile_path, workers: int) -> float:
    from otlens.cluster import dask_client
    from otlens.runner import run_chapters

    t0 = time.perf_counter()
    with dask_client(n_workers=workers, dashboard=False) as client:
        run_chapters(chapters, profile=profile_path, client=client, progress=False)
    return time.perf_counter() - t0


def _serial(chapters, profile_path) -> float:
    from otlens.runner import run_chapters

    t0 = time.perf_counter()
    run_chapters(chapters, profile=profile_path, progress=False)
    return time.perf_counter() - t0


def run(profile: str = "quick", workers: int | None = None) -> pd.DataFrame:
    """Serial and parallel wall times of the book's chapters, back to back (one row each)."""
    if profile not in CHOICES:
        raise ValueError(f"`profile` must be one of {CHOICES}; got {profile!r}")
    workers = int(workers or os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="otlens-bench-book-") as tmp:
        folder = Path(tmp)
        chapters, profile_path = _project_copy(folder, profile)
        saved = os.environ.get("OTLENS_RESULTS")
        os.environ["OTLENS_RESULTS"] = str(folder / "results")  # the workers inherit it
        try:
            warm = _parallel(chapters, profile_path, workers)  # fills the caches; not compared
            t_serial = _serial(chapters, profile_path)
            t_parallel = _parallel(chapters, profile_path, workers)
        finally:
            if saved is None:
                os.environ.pop("OTLENS_RESULTS", None)
            else:
                os.environ["OTLENS_RESULTS"] = saved
    name = (f"book chapters {', '.join(c.stem[:2] for c in chapters)} ("
            f"{'params/quick.yml' if profile == 'book' else 'smoke-test parameters'}), {os.cpu_count()} cores")
    common = dict(workload=name, n_iter=np.nan, marginal_error=np.nan, cost_error=np.nan, converged=True,
                  n_chapters=len(chapters), warmup_s=warm)
    return pd.DataFrame([
        dict(solver=f"otlens book: Dask LocalCluster, {workers} single-threaded workers", time_s=t_parallel,
             ratio_vs_otlens=1.0, **common),
        dict(solver="otlens book --serial: one chapter after another", time_s=t_serial,
             ratio_vs_otlens=t_serial / t_parallel, **common),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=CHOICES, default="quick")
    parser.add_argument("--workers", type=int, default=None, help="local workers (default: one per core)")
    args = parser.parse_args()
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(run(args.profile, workers=args.workers).to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
