"""Tests for the benchmark driver's bookkeeping (benchmarks/run.py, benchmarks/common.py).

The benchmarks themselves are timed runs (``make bench``); these tests check only what they
write: the merged table and the projected ratios of references stopped early.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import common  # noqa: E402
import run  # noqa: E402


def _row(solver, time_s, converged, **kw):
    return dict(workload="w", solver=solver, time_s=time_s, n_iter=kw.pop("n_iter", 10), marginal_error=1e-6,
                cost_error=0.0, converged=converged, ratio_vs_otlens=1.0, **kw)


def test_finish_ratios_and_projection_only_for_references_stopped_early():
    rows = [_row("ours", 2.0, True, per_iter_s=0.01, total_iter=200),
            _row("boxed", 5.0, False, per_iter_s=0.5),
            _row("done", 4.0, True, per_iter_s=0.02),
            _row("exact", 1.0, False)]
    out = {r["solver"]: r for r in common.finish(rows, "ours")}
    assert out["ours"]["ratio_vs_otlens"] == 1.0 and out["boxed"]["ratio_vs_otlens"] == 2.5
    assert out["boxed"]["projected_s"] == pytest.approx(0.5 * 200)
    assert out["boxed"]["projected_ratio"] == pytest.approx(50.0)
    assert "projected_s" not in out["done"] and "projected_s" not in out["exact"] and "projected_s" not in out["ours"]


def test_min_ratio_is_the_time_spent_without_reaching_tol():
    rows = [_row("ours", 2.0, True, total_iter=200),
            _row("boxed", 12.0, False, spent_s=9.0),  # scaled to all problems: 12 s; really ran 9 s
            _row("done", 4.0, True, spent_s=4.0)]
    out = {r["solver"]: r for r in common.finish(rows, "ours")}
    assert out["boxed"]["min_ratio"] == pytest.approx(4.5)
    assert "min_ratio" not in out["done"] and "min_ratio" not in out["ours"]
    # no lower bound when otlens itself did not reach tol
    rows = [_row("ours", 2.0, False, total_iter=200), _row("boxed", 12.0, False, spent_s=9.0)]
    assert "min_ratio" not in {r["solver"]: r for r in common.finish(rows, "ours")}["boxed"]


def test_write_is_atomic_and_only_refreshes_the_benchmarks_run(tmp_path):
    out = tmp_path / "benchmarks.csv"
    a = pd.DataFrame([_row("x", 1.0, True)]).assign(benchmark="sinkhorn", profile="target")
    b = pd.DataFrame([_row("y", 2.0, True)]).assign(benchmark="scale", profile="target")
    run.write(out, [a, b])
    assert list(pd.read_csv(out).columns[: len(common.COLUMNS)]) == common.COLUMNS
    kept = run.kept_rows(out, ["scale"])  # rerunning "scale" keeps the sinkhorn rows
    assert [list(k.benchmark) for k in kept] == [["sinkhorn"]]
    new_b = b.assign(time_s=3.0)
    run.write(out, kept + [new_b])
    table = pd.read_csv(out).set_index("benchmark")
    assert table.loc["sinkhorn", "time_s"] == 1.0 and table.loc["scale", "time_s"] == 3.0
    assert not list(tmp_path.glob("*.tmp"))
    assert run.kept_rows(tmp_path / "missing.csv", ["scale"]) == []
    with pytest.raises(SystemExit, match="lack the columns"):
        run.write(out, [a.drop(columns="cost_error")])
    assert math.isclose(pd.read_csv(out).time_s.sum(), 4.0)  # a failed write leaves the table as it was
