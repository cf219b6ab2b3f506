"""Hierarchical Refinement: a bijection for any n, exact where the optimum is known, close to POT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from otlens.hiref import HiRefResult, hiref, hiref_schedule
from otlens.transport import OTResult, exact_ot

pytestmark = pytest.mark.usefixtures("one_thread")


def _is_permutation(p: torch.Tensor, n: int) -> bool:
    return p.shape == (n,) and torch.equal(torch.sort(p).values, torch.arange(n))


@pytest.mark.parametrize("n", [1, 2, 97, 128, 255, 257, 1000])  # odd, prime, power of two, composite
@pytest.mark.parametrize("leaf_size", [1, 8])
def test_output_is_a_permutation_for_any_n(rng, n, leaf_size):
    x, y = rng.normal(size=(n, 3)), rng.normal(size=(n, 3)) + 1.0
    r = hiref(x, y, leaf_size=leaf_size, progress=False, warn=False)
    assert isinstance(r, HiRefResult) and isinstance(r, OTResult)
    assert _is_permutation(r.permutation, n)
    assert float(r.marginal_error) == 0.0
    # the reported cost is the cost of the returned permutation
    own = ((torch.as_tensor(x) - torch.as_tensor(y)[r.permutation]) ** 2).sum(1).mean()
    assert float(r.cost) == pytest.approx(float(own), rel=1e-6)


@pytest.mark.parametrize("cost", ["sqeuclidean", "euclidean"])
def test_one_dimensional_problem_is_solved_exactly(rng, cost):
    # in 1-D the monotone (sorted) matching is optimal for convex costs, Euclidean included
    n = 301
    x, y = rng.normal(size=(n, 1)), rng.exponential(size=(n, 1))
    r = hiref(x, y, cost=cost, leaf_size=4, progress=False, warn=False)
    xs, ys = np.sort(x[:, 0]), np.sort(y[:, 0])
    best = np.mean((xs - ys) ** 2) if cost == "sqeuclidean" else np.mean(np.abs(xs - ys))
    assert float(r.cost) == pytest.approx(best, rel=1e-6)


def test_identical_clouds_give_identity_and_zero_cost(rng):
    x = rng.normal(size=(200, 4))
    r = hiref(x, x, leaf_size=1, polish=0, progress=False, warn=False)
    assert float(r.cost) == pytest.approx(0.0, abs=1e-12)
    assert torch.equal(r.permutation, torch.arange(200))


@pytest.mark.parametrize("d", [2, 16])
def test_close_to_exact_ot_on_random_clouds(rng, d):
    n = 512
    x, y = rng.normal(size=(n, d)), rng.uniform(-2, 2, size=(n, d)) + 0.5
    exact = float(exact_ot(x, y).cost)
    r = hiref(x, y, progress=False, warn=False)  # automatic leaf size (128 here)
    assert exact <= float(r.cost) * (1 + 1e-9)
    assert float(r.cost) <= 1.05 * exact  # measured: 0.2% (d=2), 2.7% (d=16) above exact


def test_leaves_as_large_as_n_are_exact(rng):
    x, y = rng.normal(size=(60, 2)), rng.normal(size=(60, 2))
    r = hiref(x, y, leaf_size=64, polish=0, progress=False)
    assert r.schedule == (60,) and r.n_iter == 0
    assert float(r.cost) == pytest.approx(float(exact_ot(x, y).cost), rel=1e-9)


def test_polishing_never_raises_the_cost(rng):
    x, y = rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) * 2
    costs = [float(hiref(x, y, leaf_size=8, polish=p, progress=False, warn=False).cost) for p in (0, 1, 2)]
    assert costs[0] >= costs[1] - 1e-12 >= costs[2] - 2e-12


def test_deterministic_by_seed(rng):
    x, y = rng.normal(size=(300, 3)), rng.normal(size=(300, 3))
    a = hiref(x, y, seed=3, leaf_size=4, progress=False, warn=False)
    b = hiref(x, y, seed=3, leaf_size=4, progress=False, warn=False)
    assert torch.equal(a.permutation, b.permutation)


def test_schedule_halves_down_to_the_leaf():
    assert hiref_schedule(1000, leaf_size=64) == (1000, 500, 250, 125, 63)
    assert hiref_schedule(13, leaf_size=1) == (13, 7, 4, 2, 1)
    assert hiref_schedule(2**20, d=384)[-1] >= 8  # automatic leaf size


@pytest.mark.parametrize(
    "x, y, match",
    [
        (np.zeros((5, 2)), np.zeros((6, 2)), "same number of points"),
        (np.zeros((5, 2)), np.zeros((5, 3)), "same dimension"),
        (np.full((5, 2), np.nan), np.zeros((5, 2)), "NaN"),
        (np.zeros(5), np.zeros(5), "2-D"),
    ],
)
def test_bad_inputs_raise_before_compute(x, y, match):
    with pytest.raises(ValueError, match=match):
        hiref(x, y, progress=False)


@pytest.mark.parametrize("kw, match", [({"leaf_size": 0}, "leaf_size"), ({"cost": "l1"}, "cost"),
                                       ({"max_iter": 0}, "max_iter"), ({"step": -1.0}, "step")])
def test_bad_settings_raise(rng, kw, match):
    with pytest.raises(ValueError, match=match):
        hiref(rng.normal(size=(8, 2)), rng.normal(size=(8, 2)), progress=False, **kw)


@pytest.mark.gpu
def test_cuda_matches_cpu(rng):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    x, y = rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8))
    cpu = hiref(x, y, dtype=torch.float64, progress=False, warn=False)
    gpu = hiref(x, y, dtype=torch.float64, device="cuda", progress=False, warn=False)
    assert _is_permutation(gpu.permutation.cpu(), 2000)
    assert float(gpu.cost) == pytest.approx(float(cpu.cost), rel=0.02)
