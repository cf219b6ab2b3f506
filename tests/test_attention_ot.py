"""The fixed-weight transformer: one layer is one dual step; it transports and sorts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from otlens.attention_ot import (
    DualOTTransformer,
    depth_to,
    dual_step,
    entropic_plan,
    layer_vs_step,
    sinkhorn_iterates,
    sort_examples,
    sort_prompt,
    sorting_study,
    sorting_summary,
    transformer_sort,
)
from otlens.ot import sinkhorn

pytestmark = pytest.mark.usefixtures("one_thread")


def _problem(rng, n=6, m=4, d=3):
    x = torch.from_numpy(rng.normal(size=(n, d)))
    y = torch.from_numpy(rng.normal(size=(m, d)))
    a = torch.from_numpy(rng.uniform(0.5, 1.5, n))
    b = torch.from_numpy(rng.uniform(0.5, 1.5, m))
    return x, y, a / a.sum(), b / b.sum()


@pytest.mark.parametrize("reg", [0.05, 0.5, 2.0])
def test_one_layer_equals_one_dual_step(rng, reg):
    x, y, a, b = _problem(rng)
    f0, g0 = torch.from_numpy(rng.normal(size=6)) * 0.3, torch.from_numpy(rng.normal(size=4)) * 0.3
    model = DualOTTransformer(3, reg=reg, step=0.7)
    H = model.encode(x, y, a=a, b=b, f=f0, g=g0)
    H1 = model.layer(H)
    f1, g1 = model.read(H1, 6)
    fr, gr = dual_step(f0, g0, x, y, reg=reg, a=a, b=b, step=0.7)
    torch.testing.assert_close(f1, fr, rtol=0, atol=1e-12)
    torch.testing.assert_close(g1, gr, rtol=0, atol=1e-12)
    # only the potential coordinate moves; the sinks' potential stays exactly zero
    d = 3
    changed = (H1 - H).abs().amax(0)
    assert torch.count_nonzero(changed) <= 1 and changed[d + 2] > 0
    assert torch.all(H1[-2:] == H[-2:])


def test_dual_step_is_an_ascent_direction_with_adaptive_step(rng):
    x, y, a, b = _problem(rng)
    f, g = torch.zeros(6, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
    reg = 0.3
    f1, g1 = dual_step(f, g, x, y, reg=reg, a=a, b=b)
    P = entropic_plan(f, g, x, y, a, b, reg)
    grad_f, grad_g = a - P.sum(1), b - P.sum(0)
    # the step is the gradient times a positive per-coordinate step size
    assert torch.all((f1 - f) * grad_f >= 0) and torch.all((g1 - g) * grad_g >= 0)
    step_g = (g1 - g) / grad_g
    torch.testing.assert_close(step_g, reg / (b * (1 + P.sum(0) / b)))


def test_weights_do_not_depend_on_length():
    model = DualOTTransformer(2, reg=0.1)
    shapes = {k: tuple(getattr(model, k).shape) for k in ("W_Q", "W_K", "W_V", "W_O")}
    for n in (2, 7, 50):
        H = model.encode(torch.rand(n, 2), torch.rand(n + 1, 2))
        assert model(H, depth=2).shape == H.shape
    assert shapes == {k: tuple(getattr(model, k).shape) for k in shapes}


@pytest.mark.parametrize("reg", [0.1, 1.0])
def test_deep_transformer_reaches_the_entropic_plan(rng, reg):
    x, y, a, b = _problem(rng, n=8, m=5, d=2)
    model = DualOTTransformer(2, reg=reg)
    res = model.solve(x, y, a=a, b=b, depth=3000)
    ref = sinkhorn(x, y, a=a, b=b, reg=reg, tol=1e-12, max_iter=100_000, return_plan=True, dtype=torch.float64)
    assert res.marginal_error < 1e-8
    torch.testing.assert_close(res.plan, ref.plan, rtol=0, atol=1e-8)


def test_error_decreases_with_depth(rng):
    x, y, a, b = _problem(rng, n=10, m=10, d=1)
    model = DualOTTransformer(1, reg=0.05)
    depths = [50, 200, 1000]  # (the first layers can overshoot the total mass)
    hist = model.solve(x, y, a=a, b=b, depth=1000, record=depths).history
    ref = sinkhorn(x, y, a=a, b=b, reg=0.05, tol=1e-12, max_iter=100_000, return_plan=True, dtype=torch.float64).plan
    errs = [float((hist[k] - ref).abs().sum()) for k in depths]
    assert errs == sorted(errs, reverse=True) and errs[-1] < 1e-3 * errs[0]


@pytest.mark.parametrize("n", [2, 3, 5, 8, 12])
def test_same_weights_sort_lists_of_several_lengths(n):
    model = DualOTTransformer(1, reg=0.01)  # one module for every length
    for seed in range(3):
        rng = np.random.default_rng(100 * n + seed)
        values = (rng.permutation(n) + rng.uniform(-0.25, 0.25, n)) * 7.0 - 3.0  # any scale: the prompt rescales
        rank, plan = transformer_sort(values, model, depth=1500)
        np.testing.assert_array_equal(values[np.argsort(rank)], np.sort(values))
        assert plan.shape == (n, n)


def test_without_the_sink_the_plan_does_not_improve(rng):
    x, y, a, b = _problem(rng, n=6, m=6, d=1)
    model = DualOTTransformer(1, reg=0.1)
    with_sink = model.solve(x, y, a=a, b=b, depth=500)
    without = model.solve(x, y, a=a, b=b, depth=500, prompt="no-sink")
    assert with_sink.marginal_error < 1e-6
    assert without.marginal_error > 1.0


def test_sinkhorn_iterates_converge(rng):
    x, y, a, b = _problem(rng)
    it = sinkhorn_iterates(x, y, a=a, b=b, reg=0.5, n_iter=500, record=[500])
    P = it[500]
    torch.testing.assert_close(P.sum(1), a, rtol=0, atol=1e-9)
    torch.testing.assert_close(P.sum(0), b, rtol=0, atol=1e-9)


def test_sorting_study_is_tidy():
    df = sorting_study([2, 4], [0, 8], seeds=[0, 1], progress=False)
    assert set(df.method) == {"transformer", "transformer-no-sink", "sinkhorn"}
    assert set(df.metric) == {"plan_error", "marginal_error", "sort_accuracy", "sorted"}
    assert len(df) == 2 * 2 * 3 * 2 * 4
    assert df.value.notna().all()


def _table(curves: dict, *, n: int = 4) -> pd.DataFrame:
    """A sorting_study-shaped table: curves[(method, metric)] = {layer: [value per seed]}."""
    rows = []
    for (method, metric), by_layer in curves.items():
        for layer, values in by_layer.items():
            rows += [dict(experiment="sorting", method=method, layer=layer, seed=s, metric=metric, value=v, n=n)
                     for s, v in enumerate(values)]
    return pd.DataFrame(rows)


def test_depth_to_is_the_first_depth_where_the_mean_crosses():
    # seed means: 0.5, 0.05, 0.008 (one seed above, one below), then back above
    t = _table({("transformer", "plan_error"): {0: [0.4, 0.6], 4: [0.04, 0.06], 16: [0.015, 0.001], 64: [0.02, 0.02]}})
    assert depth_to(t, metric="plan_error", method="transformer", n=4, threshold=0.01) == 16
    assert depth_to(t, metric="plan_error", method="transformer", n=4, threshold=0.1) == 4
    assert depth_to(t, metric="plan_error", method="transformer", n=4, threshold=1e-4) is None
    assert depth_to(t, metric="plan_error", method="transformer", n=4, threshold=0.3, below=False) == 0


def _study_like(n_values=(2, 5, 9)) -> pd.DataFrame:
    """Transformer 8x slower than Sinkhorn; lists of 2 and 5 sorted, 9 half sorted; no-sink stuck."""
    parts = []
    for n in n_values:
        big = n == max(n_values)
        parts += [
            _table({("transformer", "plan_error"): {1: [1.0], 8: [0.5], 64: [0.005]},
                    ("sinkhorn", "plan_error"): {1: [0.5], 8: [0.001], 64: [1e-9]},
                    ("transformer-no-sink", "plan_error"): {1: [1.5], 8: [1.4], 64: [1.2 + n / 100]},
                    ("transformer", "sort_accuracy"): {1: [0.2], 8: [0.3], 64: [0.5 if big else 1.0]},
                    ("transformer", "sorted"): {1: [0.0], 8: [0.0], 64: [0.0 if big else 1.0]}}, n=n)]
    return pd.concat(parts, ignore_index=True)


def test_sorting_summary_reads_depths_ratio_and_ablation():
    s = sorting_summary(_study_like(), threshold=0.01)
    assert s.deepest == 64 and s.largest_n == 9
    assert list(s.table.n) == [2, 5, 9]
    assert list(s.table["transformer: depth to plan error < 0.01"]) == [64, 64, 64]
    assert list(s.table["Sinkhorn: iterations to plan error < 0.01"]) == [8, 8, 8]
    assert s.depth_ratio == 8.0
    assert s.no_sink_error == pytest.approx(1.22)  # the smallest over lengths
    assert s.sorted_up_to == 5 and s.acc_largest == 0.5
    assert s.texts() == {"deepest": "64", "plan_threshold": "0.01", "depth_ratio": "8", "no_sink_error": "1.22", "sorted_up_to": "5",
                         "largest_n": "9", "acc_largest": "50%"}


def test_sorting_summary_sorted_up_to_stops_at_the_first_failure():
    t = _study_like((2, 5, 9))
    # the length-2 lists now fail while 5 is sorted: no length is sorted "up to" it
    t.loc[(t.n == 2) & (t.metric == "sorted") & (t.layer == 64), "value"] = 0.0
    s = sorting_summary(t)
    assert s.sorted_up_to is None and s.texts()["sorted_up_to"] == "none"


def test_sorting_summary_without_a_crossing_has_no_ratio():
    s = sorting_summary(_study_like(), threshold=1e-12)
    assert s.table["transformer: depth to plan error < 1e-12"].isna().all()
    assert math.isnan(s.depth_ratio) and s.texts()["depth_ratio"] == "n/a"


def test_sorting_summary_of_a_real_study_agrees_with_the_study():
    df = sorting_study([2, 6], [0, 4, 512], seeds=[0, 1], progress=False)
    s = sorting_summary(df, threshold=0.01)
    assert s.deepest == 512
    # deep enough: the transformer gets below the threshold, and needs more layers than Sinkhorn iterations
    t, k = s.table.iloc[0]["transformer: depth to plan error < 0.01"], s.table.iloc[0]["Sinkhorn: iterations to plan error < 0.01"]
    assert t == 512 and k is not None and k <= 4
    assert s.no_sink_error > 0.1  # the ablation stays far from the optimum
    assert s.sorted_up_to == 6 and s.acc_largest == 1.0


def test_layer_vs_step_is_rounding_error_and_detects_a_broken_weight():
    model = DualOTTransformer(2, reg=0.05, step=0.5)
    assert layer_vs_step(model, seed=3) < 1e-12
    broken = DualOTTransformer(2, reg=0.05, step=0.5)
    broken.W_O.mul_(1.1)  # a step 10% too long
    assert layer_vs_step(broken, seed=3) > 1e-6
    assert layer_vs_step(model, seed=1) == layer_vs_step(model, seed=1)  # seeded


def test_sort_examples_are_seeded_and_sorted():
    model = DualOTTransformer(1, reg=0.01)
    ex = sort_examples([3, 6], model, depth=1500, seed=2)
    assert [len(v) for v, _ in ex] == [3, 6]
    for values, rank in ex:
        np.testing.assert_array_equal(values[np.argsort(rank)], np.sort(values))
    again = sort_examples([3, 6], model, depth=1500, seed=2)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(ex, again))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: DualOTTransformer(1, reg=-1), "`reg` must be > 0"),
        (lambda: DualOTTransformer(0, reg=1), "`dim` must be >= 1"),
        (lambda: DualOTTransformer(2, reg=1).encode(torch.rand(3, 1), torch.rand(3, 2)), "dimension 2"),
        (lambda: DualOTTransformer(1, reg=1).encode([[0.0], [np.nan]], [[0.0]]), "NaN"),
        (lambda: DualOTTransformer(1, reg=1).encode([[0.0], [1.0]], [[0.0]], a=[0.2, 0.2]), "sum to 1"),
        (lambda: DualOTTransformer(1, reg=1).encode([[0.0], [1.0]], [[0.0]], a=[1.0, 0.0]), "strictly positive"),
        (lambda: DualOTTransformer(1, reg=1).encode([[0.0]], [[0.0]], prompt="plain"), "`prompt` must be one of"),
        (lambda: DualOTTransformer(1, reg=1).solve([[0.0]], [[1.0]], depth=-1), "`depth` must be >= 0"),
        (lambda: sort_prompt([1.0]), "at least 2"),
        (lambda: transformer_sort([1.0, 2.0], DualOTTransformer(2, reg=1), depth=3), "dim=1"),
        (lambda: sorting_study([1], [1], progress=False), "`lengths` must be >= 2"),
        (lambda: sorting_summary(pd.DataFrame({"n": [2]})), "lacks the columns"),
        (lambda: sorting_summary([1, 2]), "must be the DataFrame"),
        (lambda: sorting_summary(_study_like().query("method != 'sinkhorn'")), "lacks the methods"),
        (lambda: sorting_summary(_study_like(), threshold=0), "`threshold` must be > 0"),
        (lambda: depth_to(_study_like(), metric="plan_error", method="transformer", n=3, threshold=0.1), "no rows"),
        (lambda: layer_vs_step("model"), "must be a DualOTTransformer"),
        (lambda: sort_examples([1], DualOTTransformer(1, reg=1), depth=1), "`lengths` must be >= 2"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
