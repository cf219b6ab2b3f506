"""FRLC low-rank OT: marginals, bounds by exact OT, recovery of clustered transport, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from otlens.ot.lowrank import FRLCResult, cost_factors, frlc
from otlens.ot import OTResult, exact_ot, sq_euclidean_cost

pytestmark = pytest.mark.usefixtures("one_thread")


def _clusters(rng, n, k=4, shift=0.5):
    centres = rng.normal(size=(k, 3)) * 10
    x = centres[np.arange(n) % k] + 0.3 * rng.normal(size=(n, 3))
    y = centres[np.arange(n + 7) % k] + 0.3 * rng.normal(size=(n + 7, 3)) + shift
    return x, y


def test_cost_factors_reproduce_the_cost(rng):
    x, y = torch.as_tensor(rng.normal(size=(30, 5))), torch.as_tensor(rng.normal(size=(20, 5)) + 3)
    A, B = cost_factors(x, y)
    assert A.shape == (30, 7) and B.shape == (20, 7)
    torch.testing.assert_close(A @ B.T, sq_euclidean_cost(x[None], y[None])[0])


@pytest.mark.parametrize("rank", [1, 3, 4])
def test_marginals_and_factor_shapes(rng, rank):
    x, y = _clusters(rng, 120)
    r = frlc(x, y, rank=rank, warn=False)
    assert isinstance(r, FRLCResult) and isinstance(r, OTResult)
    assert r.Q.shape == (120, rank) and r.R.shape == (127, rank) and r.T.shape == (rank, rank)
    P = r.plan_matrix()
    assert bool((P >= 0).all())
    torch.testing.assert_close(P.sum(1), torch.full((120,), 1 / 120, dtype=P.dtype), atol=1e-8, rtol=0)
    torch.testing.assert_close(P.sum(0), torch.full((127,), 1 / 127, dtype=P.dtype), atol=1e-8, rtol=0)
    assert float(r.marginal_error) < 1e-7
    # the reported cost is <C, P> of its own coupling, and no coupling beats exact OT
    C = sq_euclidean_cost(torch.as_tensor(x)[None], torch.as_tensor(y)[None])[0]
    assert float(r.cost) == pytest.approx(float((P * C).sum()), rel=1e-8)
    assert float(r.cost) >= float(exact_ot(x, y).cost) * (1 - 1e-9)


def test_rank_one_is_the_independent_coupling(rng):
    x, y = rng.normal(size=(50, 2)), rng.normal(size=(40, 2))
    r = frlc(x, y, rank=1, warn=False)
    C = sq_euclidean_cost(torch.as_tensor(x)[None], torch.as_tensor(y)[None])[0]
    assert float(r.cost) == pytest.approx(float(C.mean()), rel=1e-10)


def test_rank_k_recovers_k_matched_clusters(rng):
    # k tight, far-apart clusters moved by a small shift: the best rank-k coupling pairs the
    # clusters, and its cost is the within-cluster independent cost (2 var d + |shift|^2 d)
    x, y = _clusters(rng, 400, k=4, shift=0.5)
    r = frlc(x, y, rank=4, warn=False)
    within = 2 * 0.3**2 * 3 + 0.5**2 * 3
    # mirror descent can settle in a local optimum (measured: 1.6x `within`, one latent cluster
    # nearly emptied), still far below the independent coupling
    assert within * 0.9 <= float(r.cost) <= 2.0 * within
    assert float(r.cost) < 0.05 * float(frlc(x, y, rank=1, warn=False).cost)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"rank": 9}, "rank"),
        ({"rank": 0}, "rank"),
        ({"rank": 2, "cost": "euclidean"}, "cost"),
        ({"rank": 2, "a": np.full(8, 0.5)}, "sum to 1"),
        ({"rank": 2, "gamma": 0.0}, "gamma"),
    ],
)
def test_bad_settings_raise(rng, kw, match):
    with pytest.raises(ValueError, match=match):
        frlc(rng.normal(size=(8, 2)), rng.normal(size=(8, 2)), **kw)


def test_bad_inputs_raise(rng):
    with pytest.raises(ValueError, match="NaN"):
        frlc(np.full((5, 2), np.nan), np.zeros((5, 2)), rank=2)
    with pytest.raises(ValueError, match="same dimension"):
        frlc(np.zeros((5, 2)), np.zeros((5, 3)), rank=2)
