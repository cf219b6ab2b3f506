"""The solver never lies: whatever ``sinkhorn`` returns, its numbers describe what it returns.

Invariant (checked by hypothesis over sizes, dimensions, weights, reg, dtypes, annealing,
Anderson, warm starts, modes, chunking and ``max_iter``):

- ``marginal_error`` is the larger L1 marginal error of the plan that the returned potentials
  define (recomputed here in float64), and ``cost`` is that plan's :math:`\\langle P, C\\rangle`;
- ``converged=True`` implies that error is at most ``tol``, the cost is finite, and the cost
  agrees with a float64 reference (POT's log-domain Sinkhorn, or exact OT plus the entropic
  bound when ``reg`` is tiny).

Then one regression test per reproduction of issue #15, scenarios ported (in our own words)
from POT's ``test/test_bregman.py`` and OTT-JAX's Sinkhorn tests, the gradients, and the
POT-compatible module ``otlens.ot.pot``.
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import ot
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import otlens
import otlens.ot.pot as otp
from otlens.exceptions import ConvergenceWarning
from otlens.ot import exact_ot, sinkhorn, sinkhorn_divergence, sq_euclidean_cost

pytestmark = pytest.mark.usefixtures("one_thread")

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def implied(x, y, a, b, r):
    """``(error, cost, C)`` of the plan the returned potentials define, in float64, from scratch.

    The costs are the solver's own: in float32 they are computed in float32 (their rounding,
    divided by a small reg, moves the plan by more than the tolerance).
    """
    if np.asarray(x).dtype == np.float32:
        C = sq_euclidean_cost(torch.tensor(x)[None], torch.tensor(y)[None])[0].double().numpy()
    else:
        C = ot.dist(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    f, g = (t.double().numpy() for t in r.potentials)
    eps = float(r.reg)
    with np.errstate(divide="ignore"):
        logP = np.log(a)[:, None] + np.log(b)[None, :] + (f[:, None] + g[None, :] - C) / eps
    P = np.exp(logP)
    err = max(np.abs(P.sum(1) - a).sum(), np.abs(P.sum(0) - b).sum())
    return err, float((P * C).sum()), C


@st.composite
def problems(draw):
    n = draw(st.integers(1, 300))
    m = draw(st.integers(1, 300).filter(lambda k: k != n))
    d = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = rng.normal(size=(m, d)) * draw(st.sampled_from([0.5, 1.0, 3.0])) + draw(st.sampled_from([0.0, 1.0]))

    def weights(k):
        kind = draw(st.sampled_from(["uniform", "random", "uneven", "zeros"]))
        if kind == "uniform" or k == 1:
            return np.full(k, 1.0 / k)
        w = rng.uniform(0.1, 1.0, k)
        if kind == "uneven":
            w = w ** 8  # weights spanning several orders of magnitude
        if kind == "zeros":
            w[rng.uniform(size=k) < 0.3] = 0.0
            w[0] = max(w[0], 0.1)  # at least one positive weight
        return w / w.sum()

    a, b = weights(n), weights(m)
    rel = draw(st.sampled_from([1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0]))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.float16]))
    opts = dict(
        eps_scaling=draw(st.sampled_from([0.5, None])),
        anderson=draw(st.sampled_from([0, 8])),
        mode=draw(st.sampled_from(["auto", "log"])),
        max_iter=draw(st.sampled_from([1, 3, 20, 300, 3000])),
        chunk_size=draw(st.sampled_from([None, None, 64])),
    )
    warm = draw(st.booleans())
    return x, y, a, b, rel, dtype, opts, warm


@SETTINGS
@given(problems())
def test_sinkhorn_never_lies(problem):
    x, y, a, b, rel, dtype, opts, warm = problem
    scale = float(ot.dist(x, y).mean())
    reg = rel * scale
    xs, ys = x.astype(dtype), y.astype(dtype)
    if dtype is np.float16:  # half precision saturates at 65,504: keep the clouds representable
        assume(np.isfinite(xs).all() and np.isfinite(ys).all())
        x, y = xs.astype(np.float64), ys.astype(np.float64)
    init = (np.zeros(len(x)), np.zeros(len(y))) if warm else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        r = sinkhorn(xs, ys, reg=reg, a=a, b=b, init=init, **opts)
    tol = 1e-6 if dtype is np.float64 else 1e-5
    # the reported numbers are those of the returned potentials' plan
    err, cost, C = implied(x.astype(np.float32) if dtype is not np.float64 else x,
                           y.astype(np.float32) if dtype is not np.float64 else y, a, b, r)
    if np.isfinite(err) and err < 1.0:
        assert float(r.marginal_error) == pytest.approx(err, rel=1e-2, abs=tol / 10)
        assert float(r.cost) == pytest.approx(cost, rel=1e-4 if dtype is np.float64 else 1e-3, abs=1e-6 * C.max())
    if not r.converged:
        return
    assert float(r.marginal_error) <= tol and err <= 1.5 * tol
    assert math.isfinite(float(r.cost)) and math.isfinite(float(r.objective))
    n, m = len(x), len(y)
    if rel <= 1e-3:  # tiny reg: exact OT plus the entropic bound eps * log(min(n, m))
        W = ot.emd2(a, b, C)
        slack = C.max() * 2 * tol + 1e-9 * C.max()
        assert W - slack <= float(r.cost) <= W + reg * math.log(min(n, m)) + slack
    else:
        ref = ot.sinkhorn2(a, b, C, reg, method="sinkhorn_log", stopThr=1e-13, numItermax=200_000)
        rtol = 1e-5 if dtype is np.float64 else 2e-3
        assert float(r.cost) == pytest.approx(float(ref), rel=rtol, abs=20 * C.max() * tol)


@SETTINGS
@given(problems())
def test_divergence_never_lies(problem):
    x, y, a, b, rel, _, opts, _ = problem  # in float64, at reg >= 1e-3 x the mean cost
    reg = max(rel, 1e-3) * float(ot.dist(x, y).mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        r = sinkhorn_divergence(x, y, reg=reg, a=a, b=b, **opts)
    if r.converged:
        assert float(r.marginal_error) <= 1e-6
        assert float(r.cost) >= -1e-6 * float(ot.dist(x, y).max())  # S_eps >= 0 up to the tolerance


# --- the reproductions of issue #15, one regression test each -------------------------------------
def _issue_clouds():
    rng = np.random.default_rng(0)
    return rng.normal(size=(10, 3)), rng.normal(size=(12, 3)) + 1


@pytest.mark.parametrize("kw", [dict(), dict(init=(np.zeros(10), np.zeros(12)))])
def test_tiny_reg_never_reports_a_massless_plan(kw):
    """#1: reg=1e-4 without annealing returned cost 0, converged=True, a plan of mass 0."""
    X, Y = _issue_clouds()
    with pytest.warns(ConvergenceWarning):
        r = sinkhorn(X, Y, reg=1e-4, eps_scaling=None, return_plan=True, **kw)
    P = r.plan.numpy()
    assert float(r.marginal_error) == pytest.approx(max(np.abs(P.sum(1) - 0.1).sum(), np.abs(P.sum(0) - 1 / 12).sum()),
                                                    rel=1e-6, abs=1e-12)
    assert r.converged is False or float(r.marginal_error) <= 1e-6
    assert float(r.cost) == pytest.approx(float((P * ot.dist(X, Y)).sum()), rel=1e-9)
    # a plan of mass 1 whose cost lies within what its error allows of exact OT (6.80)
    assert float(r.plan.sum()) == pytest.approx(1.0, abs=float(r.marginal_error) + 1e-9)
    W, Cmax = ot.emd2([], [], ot.dist(X, Y)), ot.dist(X, Y).max()
    assert W - Cmax * float(r.marginal_error) <= float(r.cost) <= W + 1e-4 * math.log(10) + Cmax * float(r.marginal_error)


def test_tiny_reg_divergence_and_float32_unit_clouds_are_honest():
    X, Y = _issue_clouds()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        r = sinkhorn_divergence(X, Y, reg=1e-4, eps_scaling=None)
    assert r.converged is False or float(r.marginal_error) <= 1e-6
    x = torch.tensor(X, dtype=torch.float32)
    y = torch.tensor(Y, dtype=torch.float32)
    x, y = x / x.norm(dim=1, keepdim=True), y / y.norm(dim=1, keepdim=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        r = sinkhorn(x, y, reg=1e-3, relative_reg=True, return_plan=True)
    err, cost, _ = implied(x.numpy(), y.numpy(), np.full(10, 0.1), np.full(12, 1 / 12), r)
    assert float(r.marginal_error) == pytest.approx(err, rel=1e-2)
    assert r.converged == (err <= 1e-5 * 1.01)


def test_returned_potentials_are_balanced_in_their_gauge():
    """The plan depends on f + g only; the returned pair splits the magnitude evenly, so neither
    potential is rounded on a coarser float32 grid than it needs (the plan is unchanged)."""
    from otlens.ot.entropic import _balance_gauge

    rng = np.random.default_rng(3)
    f = torch.tensor(rng.uniform(-0.35, 0.44, size=(2, 50)))
    g = torch.tensor(rng.uniform(0.29, 1.44, size=(2, 40)))
    g[1, 3] = -math.inf  # a zero-weight entry: ignored, kept
    f2, g2 = _balance_gauge(f, g)
    assert torch.allclose(f2[:, :, None] + g2[:, None, :], f[:, :, None] + g[:, None, :], atol=1e-12)
    assert g2[1, 3] == -math.inf
    fin = lambda t: float(t[torch.isfinite(t)].abs().max())
    for k in range(2):
        before = max(fin(f[k]), fin(g[k]))
        after = max(fin(f2[k]), fin(g2[k]))
        assert after <= before and after < 1.0  # the spans (0.79 and 1.15) fit within +-0.98
        # no shift does better: the optimum of a convex function, checked on a grid of shifts
        grid = torch.linspace(-2, 2, 4001, dtype=f.dtype)
        best = min(max(fin(f[k] + c), fin(g[k] - c)) for c in grid)
        assert after <= best + 1e-3
    # what sinkhorn returns is already balanced: balancing it again gains nothing
    f, g = sinkhorn(*_issue_clouds(), reg=0.05, b=np.r_[np.ones(11), 5.0] / 16).potentials
    f3, g3 = _balance_gauge(f[None].double(), g[None].double())
    assert max(fin(f3), fin(g3)) == pytest.approx(max(fin(f), fin(g)), rel=1e-9)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(dtype):
    """#2: float16 gave cost 219.6 (or 3.27 with a plan of mass 0.5) against 6.81."""
    X, Y = _issue_clouds()
    r = sinkhorn(torch.tensor(X, dtype=dtype), torch.tensor(Y, dtype=dtype), reg=0.1, return_plan=True)
    assert r.cost.dtype == torch.float32 and r.converged
    ref = ot.sinkhorn2([], [], ot.dist(torch.tensor(X, dtype=dtype).double().numpy(),
                                       torch.tensor(Y, dtype=dtype).double().numpy()), 0.1, method="sinkhorn_log",
                       stopThr=1e-12)
    assert float(r.cost) == pytest.approx(ref, rel=1e-4)
    assert float(r.plan.sum()) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="`dtype` must be torch.float32 or torch.float64"):
        sinkhorn(X, Y, reg=0.1, dtype=torch.float16)


def test_overflowing_costs_raise_about_the_scale():
    X, Y = _issue_clouds()
    with pytest.raises(ValueError, match="costs are not finite in torch.float32"):
        sinkhorn(1e20 * X.astype(np.float32), Y.astype(np.float32), reg=0.1)
    with pytest.raises(ValueError, match="`reg` is too small for the cost scale"):
        sinkhorn(X, Y, reg=1e-320)


def _repro3():
    rng = np.random.RandomState(5)
    x, y = rng.randn(60, 3), rng.randn(50, 3) + 0.5
    a, b = rng.rand(60) + 0.1, rng.rand(50) + 0.1
    return x, y, a / a.sum(), b / b.sum(), 1e-3 * ot.dist(x, y).mean()


@pytest.mark.parametrize("kw", [dict(), dict(mode="log", eps_scaling=None), dict(max_iter=137)])
def test_unconverged_error_and_cost_belong_to_the_returned_plan(kw):
    """#3: the error was the previous iterate's (reported 9.7e-4, true 0.066; cost 1.2768)."""
    x, y, a, b, reg = _repro3()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        r = sinkhorn(x, y, reg=reg, a=a, b=b, return_plan=True, **kw)
    P = r.plan.numpy()
    true = max(np.abs(P.sum(1) - a).sum(), np.abs(P.sum(0) - b).sum())
    assert float(r.marginal_error) == pytest.approx(true, rel=1e-6, abs=1e-13)
    assert float(r.cost) == pytest.approx(float((P * ot.dist(x, y)).sum()), rel=1e-9)
    ref = ot.sinkhorn2(a, b, ot.dist(x, y), reg, method="sinkhorn_log", stopThr=1e-12, numItermax=200_000)
    # an honest cost: within what its marginal error allows of the converged 1.2636
    assert abs(float(r.cost) - ref) <= 20 * ot.dist(x, y).max() * max(true, 1e-6)


@pytest.mark.slow
def test_anderson_does_not_stall_for_ever():
    """#4: Anderson stayed at 5.175e-4 for 50,000 iterations where plain Sinkhorn converges in 30,060."""
    x, y, a, b, reg = _repro3()
    r = sinkhorn(x, y, reg=reg, a=a, b=b, max_iter=50_000)
    plain = sinkhorn(x, y, reg=reg, a=a, b=b, max_iter=50_000, anderson=0)
    assert r.converged and plain.converged and r.n_iter <= plain.n_iter
    assert float(r.cost) == pytest.approx(float(plain.cost), rel=1e-5)


def test_zero_weight_cloud_converges_faster_than_plain():
    """#4: a cloud with zero weights at reg 1e-3 x mean: plain 8,758, Anderson unconverged at 10,000."""
    x, y, a, b, reg = _repro3()
    a = a.copy()
    a[:10] = 0.0
    a /= a.sum()
    fast = sinkhorn(x, y, reg=reg, a=a, b=b, max_iter=10_000)
    plain = sinkhorn(x, y, reg=reg, a=a, b=b, max_iter=10_000, anderson=0)
    assert fast.converged and plain.converged and fast.n_iter <= plain.n_iter


_JUNK = """
import sys, warnings, torch
torch.set_num_threads(2)
v = float(sys.argv[1])
if v == v and v != 0:  # fill memory that is then freed with large values
    junk = torch.full((24, 128, 256), v); junk2 = torch.full((2 * junk.numel(),), v); del junk, junk2
import otlens
g = torch.Generator().manual_seed(0)
Z = torch.randn(64, 12, generator=g)
def units(L, d):
    u = torch.einsum("sk,lkd->lds", Z, torch.randn(L, 12, d, generator=g)) + 0.5 * torch.randn(L, d, 64, generator=g)
    u = u - u.mean(2, keepdim=True)
    return (u / u.norm(dim=2, keepdim=True)).contiguous()
src, tgt = units(4, 128), units(6, 256)
x, y = src.repeat_interleave(6, 0), tgt.repeat(4, 1, 1)
r = otlens.sinkhorn(x, y, reg=0.01, relative_reg=True, tol=1e-5, warn=False)
print(r.n_iter, r.converged, repr(r.cost.double().sum().item()))
"""


@pytest.mark.slow
def test_result_does_not_depend_on_freed_memory():
    """#5: on the HOT grid, freed memory filled with large values changed the answer (95.8 -> 3,213)."""
    outs = {subprocess.run([sys.executable, "-c", _JUNK, v], capture_output=True, text=True, check=True).stdout
            for v in ("0", "1e30", "3e38", "-1e30", "1e30")}
    assert len(outs) == 1, outs
    n_iter, converged, _ = outs.pop().split()
    assert converged == "True"


def test_exact_ot_keeps_pots_warning_to_itself():
    """#6: exact_ot(..., max_iter=1, warn=False) let POT's 'numItermax reached' through."""
    X, Y = _issue_clouds()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        r = exact_ot(X, Y, max_iter=1, warn=False)
    assert not seen and r.converged is False
    with pytest.warns(ConvergenceWarning, match="exact OT stopped before optimality"):
        exact_ot(X, Y, max_iter=1)


def test_inputs_that_require_grad_are_accepted():
    """#7: requires_grad=True crashed inside torch."""
    X, Y = _issue_clouds()
    x = torch.tensor(X, requires_grad=True)
    r = sinkhorn(x, torch.tensor(Y), reg=0.5)
    r.objective.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


# --- gradients ------------------------------------------------------------------------------------
TIGHT = dict(tol=1e-13, max_iter=20_000)


@pytest.mark.parametrize("relative_reg", [False, True])
@pytest.mark.parametrize("what", ["objective", "cost", "divergence"])
def test_gradcheck_clouds(what, relative_reg):
    torch.manual_seed(0)
    x = torch.randn(7, 2, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    if what == "divergence":
        fn = lambda x, y: sinkhorn_divergence(x, y, reg=0.5, relative_reg=relative_reg, **TIGHT).cost  # noqa: E731
    else:
        fn = lambda x, y: getattr(sinkhorn(x, y, reg=0.5, relative_reg=relative_reg, **TIGHT), what)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, y), atol=1e-6)


@pytest.mark.parametrize("what", ["objective", "cost"])
def test_gradcheck_cost_matrix(what):
    C = torch.rand(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    assert torch.autograd.gradcheck(lambda C: getattr(sinkhorn(cost=C, reg=0.2, **TIGHT), what), (C,), atol=1e-6)


@pytest.mark.parametrize("what", ["objective", "cost"])
def test_weight_gradients_match_finite_differences_of_pot(what):
    rng = np.random.default_rng(0)
    M = rng.uniform(size=(6, 4))
    a0, b = rng.dirichlet(np.ones(6)), np.full(4, 0.25)
    a = torch.tensor(a0, requires_grad=True)
    r = sinkhorn(cost=torch.tensor(M), a=a, b=torch.tensor(b), reg=0.2, **TIGHT)
    (grad,) = torch.autograd.grad(getattr(r, what), a)

    def pot_value(w):
        P = ot.sinkhorn(w, b, M, 0.2, method="sinkhorn_log", stopThr=1e-14, numItermax=100_000)
        kl = (P * np.log(P / np.outer(w, b))).sum()
        return (P * M).sum() + (0.2 * kl if what == "objective" else 0.0)

    for i, j in ((0, 3), (1, 5), (2, 4)):  # directions inside the simplex
        d = np.zeros(6)
        d[i], d[j] = 1.0, -1.0
        h = 1e-6
        fd = (pot_value(a0 + h * d) - pot_value(a0 - h * d)) / (2 * h)
        assert float(grad @ torch.tensor(d)) == pytest.approx(fd, rel=1e-5, abs=1e-8)


def test_gradients_need_the_dense_plan():
    x = torch.randn(30, 2, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match="not available in chunked mode"):
        sinkhorn(x, torch.randn(20, 2, dtype=torch.float64), reg=0.1, chunk_size=8)


# --- scenarios from POT's test_bregman.py and OTT-JAX's sinkhorn tests, in our words ---------------
def test_pot_scenario_marginals_of_the_plan():
    rng = np.random.RandomState(0)
    x = rng.randn(50, 2)
    M = ot.dist(x, x)
    P = otp.sinkhorn([], [], M, 1.0, stopThr=1e-10)
    assert_allclose(P.sum(0), np.full(50, 1 / 50), atol=1e-9)
    assert_allclose(P.sum(1), np.full(50, 1 / 50), atol=1e-9)


@pytest.mark.parametrize("method", ["sinkhorn", "sinkhorn_log", "sinkhorn_stabilized"])
def test_pot_scenario_methods_agree_with_pot(method):
    rng = np.random.RandomState(42)
    a, b = rng.rand(40) + 0.1, rng.rand(30) + 0.1
    a, b = a / a.sum(), b / b.sum()
    M = ot.dist(rng.randn(40, 3), rng.randn(30, 3))
    M /= M.max()
    ours, log = otp.sinkhorn2(a, b, M, 0.05, method=method, stopThr=1e-10, log=True)
    theirs = ot.sinkhorn2(a, b, M, 0.05, method="sinkhorn_log", stopThr=1e-12, numItermax=100_000)
    assert ours == pytest.approx(float(theirs), rel=1e-8)
    assert log["converged"] and log["err"][0] <= 1e-10
    assert_allclose(otp.sinkhorn(a, b, M, 0.05, method=method, stopThr=1e-10),
                    ot.sinkhorn(a, b, M, 0.05, method="sinkhorn_log", stopThr=1e-12, numItermax=100_000), atol=1e-9)


def test_pot_scenario_torch_backend_and_gradients():
    rng = np.random.RandomState(1)
    M = torch.tensor(ot.dist(rng.randn(20, 2), rng.randn(15, 2)), requires_grad=True)
    W = otp.sinkhorn2(torch.tensor([]), torch.tensor([]), M, 0.1, stopThr=1e-12)
    assert isinstance(W, torch.Tensor)
    W.backward()
    assert M.grad.shape == M.shape and torch.isfinite(M.grad).all()
    E = otp.emd2([], [], M.detach().requires_grad_())
    assert float(E) == pytest.approx(ot.emd2([], [], M.detach().numpy()), rel=1e-12)


def test_pot_scenario_warmstart_and_emd():
    rng = np.random.RandomState(3)
    a, b = np.full(25, 1 / 25), np.full(20, 1 / 20)
    M = ot.dist(rng.randn(25, 2), rng.randn(20, 2))
    _, log = otp.sinkhorn(a, b, M, 0.1, stopThr=1e-10, log=True)
    _, again = otp.sinkhorn(a, b, M, 0.1, stopThr=1e-10, log=True, warmstart=(log["log_u"], log["log_v"]))
    assert again["niter"] <= 2
    P, info = otp.emd(a, b, M, log=True)
    assert_allclose(P, ot.emd(a, b, M), atol=1e-12)
    assert info["warning"] is None and otp.emd2(a, b, M) == pytest.approx(info["cost"])


def test_pot_module_rejects_what_it_does_not_support():
    M = np.ones((3, 4))
    with pytest.raises(ValueError, match="unknown argument"):
        otp.sinkhorn2([], [], M, 0.1, tau=1e3)
    with pytest.raises(ValueError, match="`method` must be one of"):
        otp.sinkhorn2([], [], M, 0.1, method="greenkhorn")
    with pytest.raises(ValueError, match="one histogram"):
        otp.sinkhorn2([], np.ones((4, 2)) / 4, M, 0.1)
    with pytest.raises(ValueError, match="`reg` must be > 0"):
        otp.sinkhorn2([], [], M, -1)


def test_ott_scenario_euclidean_point_clouds_converge_at_many_scales():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(17, 3)), rng.normal(size=(12, 3)) + 0.1
    for reg in (1e-2, 1e-1, 1.0, 10.0):
        r = sinkhorn(x, y, reg=reg, relative_reg=True)
        ref = ot.sinkhorn2([], [], ot.dist(x, y), float(r.reg), method="sinkhorn_log", stopThr=1e-13,
                           numItermax=200_000)
        assert r.converged and float(r.cost) == pytest.approx(ref, rel=1e-5)


def test_ott_scenario_identical_clouds_transport_the_identity():
    x = np.random.default_rng(1).normal(size=(30, 4))
    r = sinkhorn(x, x, reg=1e-3, relative_reg=True, return_plan=True)
    assert r.converged
    assert (r.plan.argmax(1).numpy() == np.arange(30)).all()


def test_ott_scenario_batched_cost_matrices_equal_single():
    rng = np.random.default_rng(2)
    Cs = rng.uniform(size=(4, 9, 7))
    batch = sinkhorn(cost=Cs, reg=0.05)
    single = [float(sinkhorn(cost=C, reg=0.05).cost) for C in Cs]
    assert_allclose(batch.cost.numpy(), single, rtol=1e-12)


def test_ott_scenario_negative_and_shifted_costs():
    """Sinkhorn's plan is invariant to adding a constant to the cost; negative costs are fine."""
    C = np.random.default_rng(3).uniform(-1, 1, size=(8, 6))
    r1, r2 = (sinkhorn(cost=c, reg=0.05, return_plan=True, tol=1e-12) for c in (C, C + 5.0))
    assert r1.converged and r2.converged
    assert_allclose(r1.plan.numpy(), r2.plan.numpy(), atol=1e-8)
    with pytest.raises(ValueError, match="positive mean cost"):
        sinkhorn(cost=C - 2.0, reg=0.05, relative_reg=True)


def test_cost_matrix_equals_clouds_and_top_level_export():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(11, 3)), rng.normal(size=(13, 3))
    assert float(otlens.sinkhorn(cost=ot.dist(x, y), reg=0.1)) == pytest.approx(float(sinkhorn(x, y, reg=0.1)),
                                                                               rel=1e-9)
    assert float(exact_ot(cost=ot.dist(x, y))) == pytest.approx(float(exact_ot(x, y)), rel=1e-12)
    with pytest.raises(ValueError, match="not both"):
        sinkhorn(x, y, cost=ot.dist(x, y), reg=0.1)
    with pytest.raises(ValueError, match="`cost`"):
        sinkhorn(cost=np.full((3, 3), np.nan), reg=0.1)
    assert sq_euclidean_cost(torch.tensor(x)[None], torch.tensor(y)[None]).shape == (1, 11, 13)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_results_are_honest_and_match_cpu(dtype):
    """The reproductions of #15 on a GPU: the same invariant, the same answers as on the CPU."""
    x, y, a, b, reg = _repro3()
    X, Y = _issue_clouds()
    cases = [dict(x=x, y=y, a=a, b=b, reg=reg), dict(x=x, y=y, a=a, b=b, reg=reg, mode="log", eps_scaling=None),
             dict(x=X, y=Y, reg=1e-4, eps_scaling=None), dict(x=X, y=Y, reg=0.1), dict(x=X, y=Y, reg=1e-4)]
    for kw in cases:
        kw = dict(kw)
        xs, ys = (torch.tensor(kw.pop(k), dtype=dtype) for k in ("x", "y"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gpu = sinkhorn(xs, ys, device="cuda", return_plan=True, **kw)
            cpu = sinkhorn(xs, ys, return_plan=True, **kw)
        P = gpu.plan.double().cpu().numpy()
        wa = np.full(len(xs), 1 / len(xs)) if "a" not in kw else kw["a"]
        wb = np.full(len(ys), 1 / len(ys)) if "b" not in kw else kw["b"]
        true = max(np.abs(P.sum(1) - wa).sum(), np.abs(P.sum(0) - wb).sum())
        assert float(gpu.marginal_error) == pytest.approx(true, rel=1e-2, abs=1e-7)
        assert gpu.converged == (true <= (1e-5 if dtype == torch.float32 else 1e-6) * 1.01)
        if gpu.converged and cpu.converged:  # (Anderson's path depends on rounding: one may converge first)
            assert float(gpu.cost) == pytest.approx(float(cpu.cost), rel=1e-4)
