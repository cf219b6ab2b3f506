"""Tests for otlens.ot: agreement with POT, marginals, batching, the debiased divergence,
exact OT, validation and convergence reporting.

Clouds are drawn in the unit cube so that costs are O(1) and ``reg = 0.01`` converges in a
few hundred iterations; every problem is small (n <= 512) to keep the file fast on 2 cores.
"""

from __future__ import annotations

import warnings

import numpy as np
import ot
import pytest
import torch
from numpy.testing import assert_allclose

from otlens.exceptions import ConvergenceWarning
from otlens.ot import (
    METHODS,
    OTResult,
    exact_ot,
    sinkhorn,
    sinkhorn_divergence,
    solve,
    sq_euclidean_cost,
)


pytestmark = pytest.mark.usefixtures("one_thread")


def clouds(rng, n, m, d, dtype=np.float64):
    """Two clouds in (roughly) the unit cube, the second shifted and shrunk a little."""
    x = rng.uniform(size=(n, d))
    y = 0.9 * rng.uniform(size=(m, d)) + 0.2
    return x.astype(dtype), y.astype(dtype)


def simplex(rng, n):
    """Non-uniform weights bounded away from 0, summing to 1 in float64."""
    w = rng.uniform(0.2, 1.0, size=n)
    return w / w.sum()


def pot_sinkhorn(x, y, reg, a=None, b=None):
    """POT's log-domain Sinkhorn cost <P, C>, converged tightly, in float64."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    a = np.full(len(x), 1 / len(x)) if a is None else a
    b = np.full(len(y), 1 / len(y)) if b is None else b
    M = ot.dist(x, y)  # squared Euclidean by default
    return float(ot.sinkhorn2(a, b, M, reg, method="sinkhorn_log", numItermax=100_000, stopThr=1e-12))


# --- agreement with POT ---------------------------------------------------------------------------
SHAPES = [(20, 30, 2), (100, 70, 3), (512, 96, 4)]


@pytest.mark.parametrize("reg", [0.1, 0.01])
@pytest.mark.parametrize("n,m,d", SHAPES)
def test_sinkhorn_matches_pot_float64(rng, n, m, d, reg):
    x, y = clouds(rng, n, m, d)
    r = sinkhorn(x, y, reg=reg, tol=1e-10, max_iter=20_000)
    assert r.converged
    assert r.cost.dtype == torch.float64
    assert_allclose(float(r.cost), pot_sinkhorn(x, y, reg), rtol=1e-4)


def test_sinkhorn_matches_pot_nonuniform_weights(rng):
    x, y = clouds(rng, 40, 30, 3)
    a, b = simplex(rng, 40), simplex(rng, 30)
    r = sinkhorn(x, y, reg=0.05, a=a, b=b, tol=1e-10, max_iter=20_000)
    assert_allclose(float(r.cost), pot_sinkhorn(x, y, 0.05, a, b), rtol=1e-4)


@pytest.mark.parametrize("n,m,d", SHAPES)
def test_sinkhorn_float32_matches_pot_float64(rng, n, m, d):
    x, y = clouds(rng, n, m, d, dtype=np.float32)
    r = sinkhorn(x, y, reg=0.1)
    assert r.cost.dtype == torch.float32
    assert r.converged
    assert_allclose(float(r.cost), pot_sinkhorn(x, y, 0.1), rtol=1e-4)


def test_log_and_auto_modes_agree(rng):
    x, y = clouds(rng, 40, 30, 3)
    r_auto = sinkhorn(x, y, reg=0.05, tol=1e-10, max_iter=20_000, mode="auto")
    r_log = sinkhorn(x, y, reg=0.05, tol=1e-10, max_iter=20_000, mode="log")
    assert r_auto.converged and r_log.converged
    assert_allclose(float(r_auto.cost), float(r_log.cost), rtol=1e-8)


def test_objective_is_cost_plus_kl_term(rng):
    """OT_eps = <P, C> + eps KL(P || a⊗b) at convergence (the dual value equals the primal)."""
    x, y = clouds(rng, 30, 20, 2)
    reg = 0.05
    r = sinkhorn(x, y, reg=reg, tol=1e-12, max_iter=20_000, return_plan=True)
    P = r.plan.numpy()
    ab = np.full((30, 20), 1 / 600)
    kl = float(np.sum(P * np.log(P / ab)))
    assert_allclose(float(r.objective), float(r.cost) + reg * kl, rtol=1e-8)
    assert float(r.objective) > float(r.cost)  # KL > 0 for a non-product plan


# --- plan and marginals ---------------------------------------------------------------------------
@pytest.mark.parametrize("uniform", [True, False])
def test_plan_marginals(rng, uniform):
    n, m, tol = 50, 40, 1e-8
    x, y = clouds(rng, n, m, 3)
    a = np.full(n, 1 / n) if uniform else simplex(rng, n)
    b = np.full(m, 1 / m) if uniform else simplex(rng, m)
    r = sinkhorn(x, y, reg=0.05, a=None if uniform else a, b=None if uniform else b, tol=tol, max_iter=20_000,
                 return_plan=True)
    assert r.converged
    P = r.plan.numpy()
    assert P.shape == (n, m)
    assert (P >= 0).all()
    assert_allclose(P.sum(1), a, atol=tol)
    assert_allclose(P.sum(0), b, atol=tol)
    assert float(r.marginal_error) < tol
    # the reported cost is <P, C> of the returned plan
    assert_allclose(float(r.cost), float((P * ot.dist(x, y)).sum()), rtol=1e-10)


# --- batching and shapes --------------------------------------------------------------------------
def test_batched_equals_one_at_a_time(rng):
    B = 4
    X = rng.uniform(size=(B, 40, 3))
    Y = rng.uniform(size=(B, 30, 3)) * np.arange(1, B + 1)[:, None, None] * 0.5  # different scales
    r = sinkhorn(X, Y, reg=0.1, tol=1e-9, max_iter=20_000)
    singles = [float(sinkhorn(X[k], Y[k], reg=0.1, tol=1e-9, max_iter=20_000).cost) for k in range(B)]
    assert_allclose(r.cost.numpy(), singles, rtol=1e-12)  # the same operations per problem
    # the problems are genuinely different, so this is not trivially true
    assert np.ptp(singles) > 0.1


def test_batched_weights_per_problem(rng):
    B, n, m = 3, 20, 15
    X, Y = rng.uniform(size=(B, n, 2)), rng.uniform(size=(B, m, 2))
    A = np.stack([simplex(rng, n) for _ in range(B)])
    r = sinkhorn(X, Y, reg=0.05, a=A, tol=1e-9, max_iter=20_000)
    singles = [float(sinkhorn(X[k], Y[k], reg=0.05, a=A[k], tol=1e-9, max_iter=20_000)) for k in range(B)]
    assert_allclose(r.cost.numpy(), singles, rtol=1e-6)


def test_divergence_batched_relative_reg_equals_singles(rng):
    """With relative_reg each problem gets its own eps (the per-problem self-transport path)."""
    X = rng.uniform(size=(3, 25, 2)) * np.array([1.0, 2.0, 4.0])[:, None, None]
    Y = rng.uniform(size=(3, 20, 2)) + 0.3
    r = sinkhorn_divergence(X, Y, reg=0.1, relative_reg=True, tol=1e-9, max_iter=20_000)
    singles = [float(sinkhorn_divergence(X[k], Y[k], reg=0.1, relative_reg=True, tol=1e-9, max_iter=20_000))
               for k in range(3)]
    assert_allclose(r.cost.numpy(), singles, rtol=1e-6)
    assert len(set(np.round(r.reg.numpy(), 8))) == 3  # eps really differs across the batch


def test_shapes_single_vs_batch(rng):
    x, y = clouds(rng, 12, 9, 2)
    r = sinkhorn(x, y, reg=0.1, return_plan=True)
    assert isinstance(r, OTResult)
    for t in (r.cost, r.objective, r.marginal_error, r.reg):
        assert t.shape == ()
    assert r.potentials[0].shape == (12,) and r.potentials[1].shape == (9,)
    assert r.plan.shape == (12, 9)

    X, Y = np.stack([x, x + 1]), np.stack([y, y])
    rb = sinkhorn(X, Y, reg=0.1, return_plan=True)
    for t in (rb.cost, rb.objective, rb.marginal_error, rb.reg):
        assert t.shape == (2,)
    assert rb.potentials[0].shape == (2, 12) and rb.potentials[1].shape == (2, 9)
    assert rb.plan.shape == (2, 12, 9)
    assert rb.plan is not None and sinkhorn(X, Y, reg=0.1).plan is None

    for res in (sinkhorn_divergence(x, y, reg=0.1), exact_ot(x, y)):
        assert res.cost.shape == ()
    for res in (sinkhorn_divergence(X, Y, reg=0.1), exact_ot(X, Y)):
        assert res.cost.shape == (2,)


def test_float_of_result(rng):
    x, y = clouds(rng, 10, 10, 2)
    r = sinkhorn(x, y, reg=0.1)
    assert float(r) == float(r.cost)
    rb = sinkhorn(np.stack([x, x]), np.stack([y, y]), reg=0.1)
    with pytest.raises(TypeError, match="single problem"):
        float(rb)


def test_dtype_follows_input_and_integers_become_float32():
    xi = np.array([[0, 0], [1, 0], [0, 1]])
    r = sinkhorn(xi, xi + 1, reg=0.5)
    assert r.cost.dtype == torch.float32
    r64 = sinkhorn(xi, xi + 1, reg=0.5, dtype=torch.float64)
    assert r64.cost.dtype == torch.float64
    # a pure translation by (1, 1): the plan is the identity-ish coupling, cost >= ||t||^2 = 2
    assert float(r64.cost) >= 2.0 - 1e-9


# --- cost matrix ----------------------------------------------------------------------------------
def test_sq_euclidean_cost_matches_pot_and_brute_force(rng):
    X, Y = rng.normal(size=(3, 15, 4)), rng.normal(size=(3, 11, 4))
    C = sq_euclidean_cost(torch.from_numpy(X), torch.from_numpy(Y)).numpy()
    assert C.shape == (3, 15, 11)
    for k in range(3):
        assert_allclose(C[k], ot.dist(X[k], Y[k]), rtol=1e-12, atol=1e-12)
        brute = ((X[k][:, None, :] - Y[k][None, :, :]) ** 2).sum(-1)
        assert_allclose(C[k], brute, rtol=1e-12, atol=1e-12)
    assert (C >= 0).all()


def test_sq_euclidean_cost_far_from_origin_float32(rng):
    """Centring keeps float32 accurate: ||x||^2 ~ 4e8 would otherwise cancel to errors of O(10)."""
    x = (rng.normal(size=(20, 4)) + 1e4).astype(np.float32)
    y = (rng.normal(size=(25, 4)) + 1e4).astype(np.float32)
    C = sq_euclidean_cost(torch.from_numpy(x)[None], torch.from_numpy(y)[None])[0].numpy()
    brute = ((x.astype(np.float64)[:, None] - y.astype(np.float64)[None]) ** 2).sum(-1)  # exact on the same data
    assert_allclose(C, brute, rtol=1e-4, atol=1e-4)
    # same point against itself: exactly zero (clamped, never negative)
    Cxx = sq_euclidean_cost(torch.from_numpy(x)[None], torch.from_numpy(x)[None])[0].numpy()
    assert (Cxx >= 0).all()
    assert np.abs(np.diag(Cxx)).max() < 1e-3


# --- debiased divergence --------------------------------------------------------------------------
def test_divergence_identical_clouds_is_zero(rng):
    x, _ = clouds(rng, 40, 1, 3)
    r = sinkhorn_divergence(x, x, reg=0.1)
    assert r.method == "divergence"
    assert abs(float(r)) < 1e-6
    # whereas the biased entropic cost of a cloud with itself is clearly positive
    assert float(sinkhorn(x, x, reg=0.1)) > 1e-3


@pytest.mark.parametrize("reg", [0.1, 1.0])
def test_divergence_of_translate_is_squared_shift(rng, reg):
    x, _ = clouds(rng, 40, 1, 3)
    t = np.array([0.3, -0.2, 0.5])
    r = sinkhorn_divergence(x, x + t, reg=reg)
    assert r.converged
    assert_allclose(float(r), t @ t, atol=1e-4)
    # the plain Sinkhorn cost is biased: it does not equal ||t||^2 at large reg
    if reg == 1.0:
        assert abs(float(sinkhorn(x, x + t, reg=reg)) - t @ t) > 1e-2


def test_divergence_nonnegative_and_symmetric(rng):
    for n, m, d in [(20, 30, 2), (35, 25, 4), (15, 15, 1)]:
        x = rng.normal(size=(n, d))
        y = rng.normal(size=(m, d)) * rng.uniform(0.5, 2) + rng.normal(size=d)
        sxy = float(sinkhorn_divergence(x, y, reg=0.1, tol=1e-9, max_iter=20_000))
        syx = float(sinkhorn_divergence(y, x, reg=0.1, tol=1e-9, max_iter=20_000))
        assert sxy > 0
        assert_allclose(sxy, syx, rtol=1e-6)


def test_divergence_relative_reg_equals_absolute(rng):
    x, y = clouds(rng, 30, 25, 2)
    mean_cost = float(ot.dist(x, y).mean())
    rel = sinkhorn_divergence(x, y, reg=0.2, relative_reg=True, tol=1e-9, max_iter=20_000)
    ab = sinkhorn_divergence(x, y, reg=0.2 * mean_cost, tol=1e-9, max_iter=20_000)
    assert_allclose(float(rel.reg), 0.2 * mean_cost, rtol=1e-10)
    assert_allclose(float(rel), float(ab), rtol=1e-8)


# --- exact OT -------------------------------------------------------------------------------------
def test_exact_matches_emd2(rng):
    for n, m in [(10, 10), (25, 17)]:
        x, y = clouds(rng, n, m, 3)
        a, b = simplex(rng, n), simplex(rng, m)
        assert_allclose(float(exact_ot(x, y)), ot.emd2(np.full(n, 1 / n), np.full(m, 1 / m), ot.dist(x, y)),
                        rtol=1e-10)
        r = exact_ot(x, y, a=a, b=b, return_plan=True)
        assert r.converged and r.n_iter == 0 and r.method == "exact"
        assert_allclose(float(r), ot.emd2(a, b, ot.dist(x, y)), rtol=1e-10)
        assert_allclose(r.plan.numpy().sum(1), a, atol=1e-12)
        assert_allclose(r.plan.numpy().sum(0), b, atol=1e-12)
        assert float(r.objective) == float(r.cost)


def test_exact_1d_is_sorted_matching(rng):
    u, v = rng.normal(size=50), 2 * rng.normal(size=50) + 1
    expected = np.mean((np.sort(u) - np.sort(v)) ** 2)
    assert_allclose(float(exact_ot(u[:, None], v[:, None])), expected, rtol=1e-12)


def test_sinkhorn_tends_to_exact_as_reg_shrinks(rng):
    x, y = clouds(rng, 40, 40, 2)
    exact = float(exact_ot(x, y))
    errs = []
    for reg in (1e-1, 1e-2, 1e-3):
        r = sinkhorn(x, y, reg=reg, relative_reg=True, max_iter=3000, warn=False)
        errs.append(abs(float(r) - exact) / exact)
    assert errs[-1] < 0.02
    assert errs[0] > errs[1] > errs[2]
    # entropic plans are more spread, so their cost is never below the optimum
    assert float(sinkhorn(x, y, reg=0.1)) >= exact


# --- chunked mode ---------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_chunked_equals_dense(rng, chunk):
    """Rebuilding the cost block by block gives the dense solve's cost, potentials and iterations."""
    X = rng.uniform(size=(2, 60, 3))
    Y = rng.uniform(size=(2, 45, 3)) * np.array([1.0, 2.0])[:, None, None]
    A = np.stack([simplex(rng, 60) for _ in range(2)])
    kw = dict(reg=0.05, a=A, tol=1e-9, max_iter=20_000, relative_reg=True)
    dense = sinkhorn(X, Y, mode="log", **kw)
    chunked = sinkhorn(X, Y, chunk_size=chunk, **kw)
    assert dense.converged and chunked.converged
    assert chunked.n_iter == dense.n_iter
    assert_allclose(chunked.cost.numpy(), dense.cost.numpy(), rtol=1e-10)
    assert_allclose(chunked.reg.numpy(), dense.reg.numpy(), rtol=1e-12)  # closed-form mean cost
    for p, q in zip(chunked.potentials, dense.potentials):
        assert_allclose(p.numpy(), q.numpy(), rtol=1e-9, atol=1e-12)
    assert chunked.plan is None


def test_chunked_float32_matches_pot(rng):
    x, y = clouds(rng, 300, 200, 4, dtype=np.float32)
    r = sinkhorn(x, y, reg=0.05, chunk_size=32)
    assert r.converged and r.cost.dtype == torch.float32
    assert float(r.marginal_error) < 1e-5
    assert_allclose(float(r.cost), pot_sinkhorn(x, y, 0.05), rtol=1e-4)


def test_chunked_divergence_equals_dense(rng):
    x, y = clouds(rng, 50, 40, 3)
    kw = dict(reg=0.05, tol=1e-9, max_iter=20_000)
    assert_allclose(float(sinkhorn_divergence(x, y, chunk_size=16, **kw)),
                    float(sinkhorn_divergence(x, y, **kw)), rtol=1e-8)


def test_large_problems_are_chunked_and_stacks_grouped(rng, monkeypatch):
    """Above DENSE_BYTES a problem is chunked (no plan available); stacks are cut into groups."""
    import otlens.ot.entropic as T

    X, Y = rng.uniform(size=(3, 40, 2)), rng.uniform(size=(3, 30, 2))
    kw = dict(reg=0.05, tol=1e-9, max_iter=20_000)
    ref = sinkhorn(X, Y, **kw)
    monkeypatch.setattr(T, "DENSE_BYTES", 40 * 30 * 8)  # one problem fits: groups of one
    assert_allclose(sinkhorn(X, Y, return_plan=True, **kw).cost.numpy(), ref.cost.numpy(), rtol=1e-10)
    monkeypatch.setattr(T, "DENSE_BYTES", 40 * 30 * 8 - 1)  # none fits: chunked
    assert_allclose(sinkhorn(X, Y, **kw).cost.numpy(), ref.cost.numpy(), rtol=1e-8)
    with pytest.raises(ValueError, match="chunked mode"):
        sinkhorn(X, Y, return_plan=True, **kw)


# --- warm starts ----------------------------------------------------------------------------------
def test_warm_start_from_converged_potentials_stops_at_once(rng):
    x, y = clouds(rng, 80, 60, 3)
    cold = sinkhorn(x, y, reg=0.02, tol=1e-9, max_iter=20_000)
    warm = sinkhorn(x, y, reg=0.02, tol=1e-9, max_iter=20_000, init=cold)
    assert warm.converged and warm.n_iter <= 2
    assert_allclose(float(warm.cost), float(cold.cost), rtol=1e-9)


def test_warm_start_from_larger_reg_reaches_the_same_solution(rng):
    X, Y = rng.uniform(size=(2, 50, 2)), rng.uniform(size=(2, 40, 2))
    coarse = sinkhorn(X, Y, reg=0.1, tol=1e-6)
    warm = sinkhorn(X, Y, reg=0.02, tol=1e-10, max_iter=20_000, init=coarse.potentials)
    cold = sinkhorn(X, Y, reg=0.02, tol=1e-10, max_iter=20_000)
    assert warm.converged
    assert_allclose(warm.cost.numpy(), cold.cost.numpy(), rtol=1e-7)
    # a single-cloud pair of potentials broadcasts over the batch
    one = sinkhorn(X, Y, reg=0.02, tol=1e-10, max_iter=20_000, init=(coarse.potentials[0][0], coarse.potentials[1][0]))
    assert_allclose(one.cost.numpy(), cold.cost.numpy(), rtol=1e-7)


def test_bad_warm_start_and_chunk_raise(rng):
    x, y = clouds(rng, 8, 6, 2)
    for init, what in [((np.zeros(8),), "pair"), ("f", "pair"), ((np.zeros(7), np.zeros(6)), r"init\[0\]"),
                       ((np.zeros(8), np.full(6, np.nan)), r"init\[1\].*NaN")]:
        with pytest.raises(ValueError, match=what):
            sinkhorn(x, y, reg=0.1, init=init)
    for chunk in (0, -3, 2.5):
        with pytest.raises(ValueError, match="`chunk_size`"):
            sinkhorn(x, y, reg=0.1, chunk_size=chunk)


# --- float32 and small reg ------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [None, 128])
def test_float32_reg_1e3_of_scale_on_near_permutation(rng, chunk):
    """Adjacent-layer-like clouds (y = x + noise, a near-permutation plan) at reg = 1e-3 x mean cost
    in float32: finite, converged to the float32 tolerance, the plan's marginals right."""
    x = rng.normal(size=(512, 16)).astype(np.float32)
    y = (x + 0.1 * rng.normal(size=x.shape)).astype(np.float32)
    r = sinkhorn(x, y, reg=1e-3, relative_reg=True, chunk_size=chunk, max_iter=5000)
    for t in (r.cost, r.objective, r.marginal_error, *r.potentials):
        assert torch.isfinite(t).all()
    assert r.converged and float(r.marginal_error) < 1e-5
    # at such a small eps the entropic cost is close to the exact one (and never below it)
    w2 = float(exact_ot(x, y))
    assert w2 * (1 - 1e-4) <= float(r.cost) <= w2 * 1.05


@pytest.mark.parametrize("reg", [0.1, 0.01])
def test_float32_matches_pot_float64_at_small_reg(rng, reg):
    x, y = clouds(rng, 256, 192, 3, dtype=np.float32)
    r = sinkhorn(x, y, reg=reg, max_iter=20_000)
    assert r.converged and float(r.marginal_error) < 1e-5
    assert_allclose(float(r.cost), pot_sinkhorn(x, y, reg), rtol=1e-4)


@pytest.mark.parametrize("mode", ["auto", "log"])
@pytest.mark.parametrize("anderson", [0, 3, 8])
def test_anderson_changes_the_path_not_the_solution(rng, mode, anderson):
    """Accelerated or not, the plan is POT's: same cost, both marginals within tol."""
    x, y = clouds(rng, 120, 90, 2)
    r = sinkhorn(x, y, reg=0.01, tol=1e-9, max_iter=20_000, anderson=anderson, mode=mode, return_plan=True)
    assert r.converged
    P = r.plan.numpy()
    err = np.abs(P.sum(1) - 1 / 120).sum() + np.abs(P.sum(0) - 1 / 90).sum()
    assert err < 1e-9
    assert_allclose(float(r.cost), pot_sinkhorn(x, y, 0.01), rtol=1e-6)


def test_anderson_accelerates_near_permutation_plans(rng):
    """Two nearby clouds at a small reg (the adjacent-layer regime), where plain Sinkhorn crawls."""
    x = rng.normal(size=(400, 8))
    y = x + 0.3 * rng.normal(size=x.shape)
    kw = dict(reg=0.01, relative_reg=True, max_iter=3000, warn=False)
    plain = sinkhorn(x.astype(np.float32), y.astype(np.float32), anderson=0, **kw)
    fast = {dt: sinkhorn(x.astype(dt), y.astype(dt), return_plan=True, **kw) for dt in (np.float32, np.float64)}
    assert fast[np.float32].converged and fast[np.float64].converged
    assert not plain.converged or plain.n_iter > 3 * fast[np.float32].n_iter
    P = fast[np.float64].plan.numpy()
    assert np.abs(P.sum(1) - 1 / 400).sum() + np.abs(P.sum(0) - 1 / 400).sum() < 1e-6
    assert_allclose(float(fast[np.float32].cost), float(fast[np.float64].cost), rtol=1e-4)


@pytest.mark.parametrize("mode", ["auto", "log"])
def test_anderson_in_the_debiased_divergence(rng, mode):
    """The symmetric self-terms are accelerated too: the divergence does not change."""
    x, y = clouds(rng, 80, 70, 3)
    kw = dict(reg=0.02, tol=1e-10, max_iter=20_000, mode=mode)
    assert_allclose(float(sinkhorn_divergence(x, y, anderson=8, **kw)),
                    float(sinkhorn_divergence(x, y, anderson=0, **kw)), rtol=1e-8)


# --- solve dispatcher -----------------------------------------------------------------------------
def test_solve_dispatches(rng):
    x, y = clouds(rng, 20, 15, 2)
    assert float(solve(x, y, method="sinkhorn", reg=0.1)) == float(sinkhorn(x, y, reg=0.1))
    assert float(solve(x, y, method="divergence", reg=0.1)) == float(sinkhorn_divergence(x, y, reg=0.1))
    assert float(solve(x, y, method="exact")) == float(exact_ot(x, y))
    with pytest.raises(ValueError, match=r"method='exact' takes no `reg`; it takes cost, a, b, max_iter"):
        solve(x, y, method="exact", reg=0.1)  # nothing is ignored silently
    with pytest.raises(ValueError, match=r"method='hiref' \(a bijection with uniform weights\) takes no `a`"):
        solve(x, x, method="hiref", a=np.full(20, 0.05))
    assert float(solve(cost=ot.dist(x, y), reg=0.1)) == pytest.approx(float(sinkhorn(x, y, reg=0.1)), rel=1e-9)
    assert solve(x, y, reg=0.1).method == "sinkhorn"
    assert set(METHODS) == {"sinkhorn", "exact", "divergence", "frlc", "hiref"}


def test_solve_unknown_method_lists_choices(rng):
    x, y = clouds(rng, 5, 5, 2)
    with pytest.raises(ValueError, match=r"`method` must be one of \['divergence', 'exact', 'frlc', 'hiref', 'sinkhorn'\]"):
        solve(x, y, method="emd", reg=0.1)


@pytest.mark.parametrize("method,module,name,kw", [
    ("frlc", "otlens.ot.dispatch", "frlc", dict(rank=4)),
    ("hiref", "otlens.ot.dispatch", "hiref", dict()),
])
def test_solve_dispatches_to_scalable_solvers(rng, monkeypatch, method, module, name, kw):
    """``solve`` looks #5's solvers up in their modules when called and hands them the clouds and every keyword."""
    mod = pytest.importorskip(module, reason=f"{module} (issue #5) is not in this checkout")
    seen = {}

    def fake(x, y, **kwargs):
        seen.update(kwargs, x=x, y=y)
        return OTResult(cost=torch.tensor(1.5), objective=torch.tensor(1.5), n_iter=0, converged=True,
                        marginal_error=torch.tensor(0.0), method=method)

    monkeypatch.setattr(mod, name, fake)
    x, y = clouds(rng, 16, 16, 2)
    r = solve(x, y, method=method, **kw)
    assert isinstance(r, OTResult) and r.method == method and float(r) == 1.5
    assert seen["x"] is x and seen["y"] is y and all(seen[k] == v for k, v in kw.items())


# --- validation -----------------------------------------------------------------------------------
def _bad(arr, i=0, value=np.nan):
    arr = arr.copy()
    arr.flat[i] = value
    return arr


@pytest.mark.parametrize("fn", [sinkhorn, sinkhorn_divergence, exact_ot])
def test_bad_points_raise_naming_argument(rng, fn):
    x, y = clouds(rng, 6, 5, 2)
    kw = {} if fn is exact_ot else {"reg": 0.1}
    cases = [
        (_bad(x), y, "`x`"),                      # NaN
        (x, _bad(y, 3, np.inf), "`y`"),           # inf
        (np.zeros((0, 2)), y, "`x`"),             # empty
        (x, np.zeros((5, 0)), "`y`"),             # no dimension
        (x[:, 0], y, "`x`"),                      # 1-D
        (x, y[:, :1], "`y`"),                     # mismatched dimension
        (np.stack([x, x]), np.stack([y, y, y]), "`x`"),  # mismatched batch
        (x[None, None], y, "`x`"),                # 4-D
        ([["a", "b"]], y, "`x`"),                 # not numbers
    ]
    for xx, yy, name in cases:
        with pytest.raises(ValueError, match=name):
            fn(xx, yy, **kw)


@pytest.mark.parametrize("fn", [sinkhorn, sinkhorn_divergence])
def test_bad_settings_raise_naming_argument(rng, fn):
    x, y = clouds(rng, 6, 5, 2)
    for kw, name in [
        (dict(reg=0.0), "`reg`"),
        (dict(reg=-1.0), "`reg`"),
        (dict(reg=float("nan")), "`reg`"),
        (dict(reg=0.1, max_iter=0), "`max_iter`"),
        (dict(reg=0.1, max_iter=2.5), "`max_iter`"),
        (dict(reg=0.1, tol=0.0), "`tol`"),
        (dict(reg=0.1, eps_scaling=1.0), "`eps_scaling`"),
        (dict(reg=0.1, mode="fast"), "`mode`"),
        (dict(reg=0.1, anderson=-1), "`anderson`"),
        (dict(reg=0.1, anderson=2.5), "`anderson`"),
        (dict(reg=0.1, chunk_size=0), "`chunk_size`"),
    ]:
        with pytest.raises(ValueError, match=name):
            fn(x, y, **kw)
    with pytest.raises(ValueError, match="`max_iter`"):
        exact_ot(x, y, max_iter=0)


@pytest.mark.parametrize("fn", [sinkhorn, sinkhorn_divergence, exact_ot])
def test_bad_weights_raise_naming_argument(rng, fn):
    x, y = clouds(rng, 6, 5, 2)
    kw = {} if fn is exact_ot else {"reg": 0.1}
    a_ok, b_ok = np.full(6, 1 / 6), np.full(5, 1 / 5)
    for a, b, name, what in [
        (np.full(6, 0.2), b_ok, "`a`", "sum to 1"),
        (a_ok, np.full(5, 0.19), "`b`", "sum to 1"),
        (np.array([0.5, 0.5, 0.5, -0.5, 0.0, 0.0]), b_ok, "`a`", "non-negative"),
        (np.full(5, 0.2), b_ok, "`a`", "length 6"),
        (a_ok, np.full(6, 1 / 6), "`b`", "length 5"),
        (_bad(a_ok), b_ok, "`a`", "NaN"),
        (np.full((3, 6), 1 / 6), b_ok, "`a`", "shape"),  # batch of 3 weight vectors for 1 problem
    ]:
        with pytest.raises(ValueError, match=f"{name}.*{what}"):
            fn(x, y, a=a, b=b, **kw)


def test_float32_weights_accepted_with_float64_points(rng):
    x, y = clouds(rng, 3, 4, 2)
    a = torch.full((3,), 1 / 3)  # torch's default dtype: float32
    r = sinkhorn(x, y, reg=0.1, a=a)
    assert np.isfinite(float(r))


# --- convergence reporting ------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [sinkhorn, sinkhorn_divergence])
def test_max_iter_1_warns_and_flags(rng, fn):
    x, y = clouds(rng, 30, 25, 2)
    with pytest.warns(ConvergenceWarning, match="max_iter") as record:
        r = fn(x, y, reg=0.01, max_iter=1)
    assert r.converged is False
    assert r.n_iter <= 1
    # the warning points at the caller (this file), not at otlens internals
    assert record[0].filename == __file__


@pytest.mark.parametrize("fn", [sinkhorn, sinkhorn_divergence])
def test_warn_false_silences_but_still_flags(rng, fn):
    x, y = clouds(rng, 30, 25, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = fn(x, y, reg=0.01, max_iter=1, warn=False)
    assert r.converged is False


def test_converged_run_does_not_warn(rng):
    x, y = clouds(rng, 30, 25, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = sinkhorn(x, y, reg=0.05)
    assert r.converged is True
    assert 1 <= r.n_iter <= 2000
    assert float(r.marginal_error) < 1e-6


def test_float32_small_relative_reg_stays_finite():
    torch.manual_seed(0)
    x, y = torch.randn(256, 32), torch.randn(256, 32) + 0.1
    r = sinkhorn(x, y, reg=1e-3, relative_reg=True, warn=False)
    assert r.cost.dtype == torch.float32
    mean_cost = float(sq_euclidean_cost(x[None], y[None]).mean())
    assert_allclose(float(r.reg), 1e-3 * mean_cost, rtol=1e-5)
    for t in (r.cost, r.objective, r.marginal_error, *r.potentials):
        assert torch.isfinite(t).all()
    # a transport cost of a plan with unit mass lies between the smallest and largest cost
    C = sq_euclidean_cost(x[None], y[None])
    assert float(C.min()) <= float(r) <= float(C.max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_early_stop_inside_schedule_gives_bounded_cost(rng, dtype):
    x, y = clouds(rng, 30, 25, 2, dtype=dtype)
    C = ot.dist(x.astype(np.float64), y.astype(np.float64))
    r = sinkhorn(x, y, reg=1e-3, max_iter=5, warn=False)
    assert r.converged is False
    # any plan with exact column marginals has unit mass, so <P, C> <= max C
    assert np.isfinite(float(r.marginal_error))
    assert 0.0 <= float(r) <= C.max() * (1 + 1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)")
@pytest.mark.parametrize("fn", [sinkhorn, sinkhorn_divergence])
def test_cuda_matches_cpu(rng, fn):
    x = torch.tensor(rng.normal(size=(3, 300, 16)), dtype=torch.float32)
    y = torch.tensor(rng.normal(size=(3, 300, 16)) + 0.3, dtype=torch.float32)
    cpu = fn(x, y, reg=0.1, relative_reg=True)
    gpu = fn(x, y, reg=0.1, relative_reg=True, device="cuda")
    assert gpu.cost.device.type == "cuda"
    assert gpu.converged == cpu.converged
    np.testing.assert_allclose(gpu.cost.cpu().numpy(), cpu.cost.numpy(), rtol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)")
def test_cuda_chunked_matches_cpu_dense(rng):
    x = torch.tensor(rng.normal(size=(2, 700, 8)), dtype=torch.float32)
    y = torch.tensor(rng.normal(size=(2, 500, 8)) + 0.3, dtype=torch.float32)
    cpu = sinkhorn(x, y, reg=0.05, relative_reg=True)
    gpu = sinkhorn(x, y, reg=0.05, relative_reg=True, chunk_size=128, device="cuda")
    assert gpu.converged and cpu.converged
    np.testing.assert_allclose(gpu.cost.cpu().numpy(), cpu.cost.numpy(), rtol=1e-4)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)")
def test_cuda_large_n_is_chunked_and_never_holds_the_matrix():
    """n = 65,536: the dense float32 cost would take 16 GiB; the automatic chunked mode stays far below."""
    n, d = 65_536, 64
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(n, d, device="cuda", generator=g)
    y = x + 0.1 * torch.randn(n, d, device="cuda", generator=g)
    torch.cuda.reset_peak_memory_stats()
    r = sinkhorn(x, y, reg=0.1, relative_reg=True, max_iter=5, warn=False)
    peak = torch.cuda.max_memory_allocated()
    assert torch.isfinite(r.cost) and r.n_iter == 5
    assert peak < n * n * 4 / 8, f"peak {peak / 2**30:.2f} GiB"
