"""Chapter 4's study: measured memory, time against n, log-log slopes, the 2-D benchmark, sample sizes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from otlens import scale
from otlens.results import RESULT_COLUMNS


needs_rss = pytest.mark.skipif(not scale._reset_peak_rss(), reason="peak resident memory can only be reset on Linux")
MIB = 2**20


# ----------------------------------------------------------------------------- measure_peak
@needs_rss
@pytest.mark.parametrize("make", [lambda n: np.ones((n, n)), lambda n: torch.ones(n, n, dtype=torch.float64)],
                         ids=["numpy", "torch"])
def test_a_dense_float64_matrix_measures_8_n_squared_bytes(make):
    make(8)  # the first torch op of a process sets up its thread pool (~1.5 MB): scaling_table warms up too
    for n in (1000, 2000):
        out, host, gpu = scale.measure_peak(lambda: make(n))
        assert out.shape == (n, n) and gpu is None
        assert host == pytest.approx(8 * n * n, rel=0.05)  # measured: within 1% (torch's allocator included)


@needs_rss
def test_memory_allocated_before_the_call_or_freed_inside_it_is_not_lost():
    kept = np.ones((1500, 1500))  # 18 MB held by the caller: not the function's
    _, host, _ = scale.measure_peak(lambda: float(kept.sum()))
    assert host < 2 * MIB
    # a temporary freed before returning still raised the peak
    _, host, _ = scale.measure_peak(lambda: float(np.ones((1500, 1500)).sum()))
    # (at least the array; other allocations of the process during the call may add a little:
    # 19.5 MB was seen inside the full suite, against 18.0 MB alone)
    assert 8 * 1500**2 * 0.99 <= host < 8 * 1500**2 + 4 * MIB
    del kept


def test_measure_peak_rejects_what_is_not_callable():
    with pytest.raises(TypeError, match="`fn` must be callable"):
        scale.measure_peak(3)


# ----------------------------------------------------------------------------- slopes
def test_loglog_slope_recovers_a_known_power_with_an_interval(rng):
    n = np.array([256, 512, 1024, 2048, 4096], dtype=float)
    exact = scale.loglog_slope(n, 3e-9 * n**2)
    assert exact[0] == pytest.approx(2.0) and exact[2] - exact[1] < 1e-9
    noisy = 3e-9 * n**2 * np.exp(rng.normal(0, 0.1, n.size))
    b, lo, hi = scale.loglog_slope(n, noisy)
    assert lo < 2.0 < hi and abs(b - 2) < 0.3 and 0 < hi - lo < 1.5
    # several values per size are fitted together; two sizes give a slope but no interval
    b2 = scale.loglog_slope(np.repeat(n, 3), np.repeat(n, 3) ** 1.5)
    assert b2[0] == pytest.approx(1.5) and b2[2] - b2[1] < 1e-9
    b, lo, hi = scale.loglog_slope([100, 200], [1.0, 4.0])
    assert b == pytest.approx(2.0) and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(v) for v in scale.loglog_slope([100, 100], [1.0, 2.0]))


@pytest.mark.parametrize("n, values, match", [
    ([1, 2, 3], [1.0, 2.0], "same length"),
    ([1, 2, 3], [1.0, 0.0, 2.0], "positive and finite"),
    ([1, 2, 3], [1.0, float("nan"), 2.0], "positive and finite"),
])
def test_loglog_slope_rejects_bad_input(n, values, match):
    with pytest.raises(ValueError, match=match):
        scale.loglog_slope(n, values)


def test_growth_slopes_place_n_log_n_between_n_and_n_squared():
    ref = scale.growth_slopes([256, 512, 1024, 2048, 4096])
    assert ref["1"] == 0 and ref["n"] == 1 and ref["n^2"] == 2
    # d log(n log n) / d log n = 1 + 1 / ln n: about 1.13 to 1.18 over these sizes
    assert 1 + 1 / math.log(4096) < ref["n log n"] < 1 + 1 / math.log(256)
    with pytest.raises(ValueError, match="two distinct sizes"):
        scale.growth_slopes([512])


def _synthetic_table(rng, sizes=(256, 512, 1024, 2048, 4096)):
    n = np.array(sizes, dtype=float)
    noise = lambda: np.exp(rng.normal(0, 0.05, n.size))  # noqa: E731
    rows = {"quadratic": (2e-9 * n**2 * noise(), 8 * n**2 / MIB * noise()),
            "loglinear": (1e-6 * n * np.log(n) * noise(), 1e-2 * n * noise())}
    return pd.concat([pd.DataFrame(dict(solver=s, n=n.astype(int), time_s=t, solver_mem_mb=m))
                      for s, (t, m) in rows.items()], ignore_index=True)


def test_scaling_slopes_names_the_growth_each_solver_follows(rng):
    slopes = scale.scaling_slopes(_synthetic_table(rng)).set_index(["solver", "metric"])
    quad, loglin = slopes.loc["quadratic", "time_s"], slopes.loc["loglinear", "time_s"]
    assert quad.lo < 2 < quad.hi and quad.consistent_with == "n^2"
    assert loglin.lo < loglin.nlogn_slope < loglin.hi and "n log n" in loglin.consistent_with
    assert "n^2" not in loglin.consistent_with
    assert slopes.loc["quadratic", "solver_mem_mb"].consistent_with == "n^2"
    assert abs(slopes.loc["loglinear", "solver_mem_mb"].slope - 1) < 0.1
    assert slopes.loc["loglinear", "solver_mem_mb"].consistent_with.split(", ")[0] == "n"
    assert quad.text == f"{quad.slope:.2f} [{quad.lo:.2f}, {quad.hi:.2f}]"
    two = scale.scaling_slopes(_synthetic_table(rng, sizes=(256, 512)))
    assert (two.consistent_with == "undetermined").all() and two.lo.isna().all()
    with pytest.raises(ValueError, match="lacks column"):
        scale.scaling_slopes(_synthetic_table(rng).drop(columns="solver_mem_mb"))


# ----------------------------------------------------------------------------- scaling_table
@needs_rss
def test_scaling_table_measures_a_dense_solvers_quadratic_memory():
    def dense(x, y):
        return float(torch.cdist(x.double(), y.double()).square().sum())  # one n x n float64 matrix (and its square)

    def linear(x, y):
        return float(x.double().sum() + y.double().sum())

    sizes = [512, 1024, 1448, 2048]
    table = scale.scaling_table(sizes, d=4, solvers={"dense": dense, "linear": linear}, repeats=2)
    assert list(table.solver.unique()) == ["dense", "linear"] and sorted(table.n.unique()) == sizes
    assert (table.time_s <= table.time_median_s).all() and (table.repeats == 2).all()
    d = table[table.solver == "dense"].set_index("n")
    # cdist's n x n result and its square: two dense matrices at the peak
    assert (d.solver_mem_mb / d.dense_mb).between(1.8, 2.3).all()
    assert (table[table.solver == "linear"].solver_mem_mb < 1).all()
    slopes = scale.scaling_slopes(table).set_index(["solver", "metric"])
    mem = slopes.loc["dense", "solver_mem_mb"]
    assert abs(mem.slope - 2) < 0.1 and mem.consistent_with == "n^2"  # measured: 1.99 [1.98, 1.99]
    assert table.gap_to_exact.isna().all()  # no exact OT in this table


@needs_rss
def test_scaling_table_runs_the_four_solvers_through_solve(one_thread):
    table = scale.scaling_table([64, 128], d=4, repeats=2, options={"frlc": {"rank": 4, "max_iter": 20}})
    assert set(table.solver) == set(scale.SCALING_SOLVERS) and len(table) == 8
    assert torch.get_num_threads() == 1  # restored (the fixture set it)
    ex = table[table.solver == "exact"]
    assert (ex.gap_to_exact.abs() < 1e-12).all() and (ex.n_iter == 0).all()
    # nothing beats exact OT: a bijection and a low-rank coupling cost at least as much
    assert (table[table.solver.isin(["hiref", "frlc"])].gap_to_exact >= -1e-6).all()
    assert np.isfinite(table.solver_mem_mb).all() and (table.solver_mem_mb >= 0).all()
    limited = scale.scaling_table([64, 128], d=4, repeats=1, solvers=["exact", "hiref"], limits={"exact": 64})
    assert set(limited[limited.n == 128].solver) == {"hiref"}
    rows = scale.scaling_results(table, seed=3)
    assert list(rows.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert set(rows.metric) == {"time_s", "solver_mem_mb", "gap_to_exact"} and (rows.seed == 3).all()
    assert len(rows) == 3 * len(table)


@pytest.mark.parametrize("kwargs, match", [
    (dict(sizes=[]), "non-empty list"),
    (dict(sizes=512), "non-empty list"),
    (dict(sizes=[1]), "sizes"),
    (dict(sizes=[64], solvers=["emd"]), "solvers"),
    (dict(sizes=[64], solvers="hiref"), "the string"),
    (dict(sizes=[64], solvers={"f": 3}), "callable"),
    (dict(sizes=[64], repeats=0), "repeats"),
    (dict(sizes=[64], solvers=["exact"], options={"frlc": {"rank": 2}}), "not in `solvers`"),
])
def test_scaling_table_rejects_bad_input_before_running(kwargs, match):
    sizes = kwargs.pop("sizes")
    with pytest.raises(ValueError, match=match):
        scale.scaling_table(sizes, **kwargs)


def test_claims_read_the_measured_memory_slope(rng):
    from otlens.claims import frlc_space

    table = _synthetic_table(rng).replace({"solver": {"loglinear": "frlc", "quadratic": "exact"}})
    table = table.assign(d=2, repeats=1, gap_to_exact=0.0)
    v = frlc_space(scale.scaling_results(table))
    b, lo, hi = scale.loglog_slope(table[table.solver == "frlc"].n, table[table.solver == "frlc"].solver_mem_mb.clip(1))
    assert v.effect == pytest.approx(b) and v.ci == pytest.approx((lo, hi))
    ex = table[table.solver == "exact"]
    dense = scale.loglog_slope(ex.n, ex.solver_mem_mb.clip(1))[0]  # below 2: the smallest sizes sit at the floor
    assert f"exact {dense:.2f}" in v.null and v.verdict == "reproduced"  # the dense solver, measured in the same run


# ----------------------------------------------------------------------------- benchmark and profile
def test_bijection_benchmark_is_a_permutation_at_least_as_costly_as_exact():
    bench = scale.bijection_benchmark(301, seed=0, clusters=16)
    perm = bench.result.permutation
    assert bench.n == 301 and sorted(perm.tolist()) == list(range(301))
    own = float(torch.linalg.vector_norm(bench.x.double() - bench.y.double()[perm], dim=1).mean())
    assert own == pytest.approx(float(bench.result.cost), rel=1e-5)  # the Euclidean cost of the bijection
    assert bench.gap >= -1e-9 and bench.gap_lowrank >= -1e-9 and bench.time_s > 0
    assert bench.levels == len(bench.result.schedule) - 1 and bench.leaf == bench.result.schedule[-1]
    row = bench.to_frame(seed=0)
    assert list(row.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS) and row.value.iloc[0] == bench.gap


def test_sample_size_table_reads_shape_and_level():
    layers = np.array([3.0, 1.0, 2.0, 5.0])
    rows = [dict(method="hiref", n_samples=n, layer=i, seed=0, value=v * f, gap_to_exact=0.01 * f)
            for n, f in ((100, 1.2), (400, 1.0)) for i, v in enumerate(layers)]
    rows += [dict(method="exact", n_samples=100, layer=0, seed=0, value=9.0, gap_to_exact=0.0)]
    table = scale.sample_size_table(pd.DataFrame(rows))
    assert list(table.index) == [100, 400]
    assert table.shape_corr.tolist() == pytest.approx([1.0, 1.0])  # same shape, scaled
    assert table.level_ratio.tolist() == pytest.approx([1.2, 1.0])
    assert table.mean_w2.loc[400] == pytest.approx(layers.mean())
    with pytest.raises(ValueError, match="no rows of method"):
        scale.sample_size_table(pd.DataFrame(rows), method="sinkhorn")
    with pytest.raises(ValueError, match="lacks column"):
        scale.sample_size_table(pd.DataFrame(rows).drop(columns="layer"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_measure_peak_on_cuda_counts_a_dense_gpu_matrix():
    n = 2048
    _, _, gpu = scale.measure_peak(lambda: torch.ones(n, n, device="cuda"), device="cuda")
    assert gpu == pytest.approx(4 * n * n, rel=0.01)



def test_depth_profile_on_one_thread_gives_the_same_profile_and_restores_the_threads():
    states = torch.randn(3, 200, 16, generator=torch.Generator().manual_seed(1))
    kw = dict(sizes=[128], seeds=[0], exact_max=128, sinkhorn_max=128, progress=False)
    before = torch.get_num_threads()
    one = scale.hiref_depth_profile(states, n_threads=1, **kw)
    assert torch.get_num_threads() == before
    default = scale.hiref_depth_profile(states, **kw)
    assert one.value.to_numpy() == pytest.approx(default.value.to_numpy(), rel=1e-5)
    with pytest.raises(ValueError, match="asks for 400 tokens"):
        scale.hiref_depth_profile(states, sizes=[400], progress=False)
