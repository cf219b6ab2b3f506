r"""Low-rank OT by Factor Relaxation with Latent Coupling (FRLC), in linear space.

A rank-:math:`r` coupling is written through the latent-coupling factorisation of
:cite:t:`halmos:24` (after :cite:t:`lin:21` and :cite:t:`forrow:19`),

.. math::

    P = Q\, \mathrm{diag}(1/g_Q)\, T\, \mathrm{diag}(1/g_R)\, R^\top,
    \qquad Q \in \Pi(a, g_Q),\; R \in \Pi(b, g_R),\; T \in \Pi(g_Q, g_R),

where :math:`Q \in \mathbb R_+^{n\times r}` and :math:`R \in \mathbb R_+^{m\times r}` cluster the
points of each cloud, :math:`g_Q = Q^\top \mathbf 1`, :math:`g_R = R^\top \mathbf 1` are the
inner marginals and the latent coupling :math:`T \in \mathbb R_+^{r\times r}` transports the
clusters of :math:`x` to those of :math:`y`. :math:`P` has the marginals :math:`a` and
:math:`b` whatever the factors. FRLC minimises :math:`\langle C, P\rangle` by *coordinate*
mirror descent: a KL-proximal step on :math:`(Q, R)` with step
:math:`\gamma / \lVert\nabla\rVert_\infty`,

.. math::

    Q \leftarrow \arg\min_{Q \mathbf 1 = a}\ \langle \nabla_Q, Q\rangle + \tfrac1\gamma \mathrm{KL}(Q \| Q_k)
        + \tau\, \mathrm{KL}(Q^\top\mathbf 1 \| g_Q^k),

a semi-relaxed OT problem (the outer marginal exact, the inner one penalised with weight
:math:`\tau`), solved by Sinkhorn-like scalings on the :math:`n\times r` matrix; then a step on
:math:`T` projected on :math:`\Pi(g_Q, g_R)` (an :math:`r\times r` balanced OT problem). With
:math:`M = C R\, \mathrm{diag}(1/g_R) T^\top`, the gradient in :math:`Q` (counting the
dependence of :math:`g_Q` on :math:`Q`) is

.. math::

    \nabla_Q = M \mathrm{diag}(1/g_Q) - \mathbf 1_n\, \big(\mathrm{diag}(Q^\top M) / g_Q^2\big)^\top,
    \qquad \nabla_T = \mathrm{diag}(1/g_Q)\, Q^\top C R\, \mathrm{diag}(1/g_R),

and symmetrically for :math:`R`. The cost matrix is never formed: it enters through factors
:math:`C = A B^\top`. For the squared Euclidean cost they are exact,
:math:`A = [\lVert x\rVert^2, \mathbf 1, -2x]`, :math:`B = [\mathbf 1, \lVert y\rVert^2, y]`
(rank :math:`k = d + 2`), so every iteration costs :math:`O((n + m)\, r\, k)` time and memory.
(A skeleton approximation of the Euclidean cost was tried and dropped: on 2-D clouds its
rank-128 factors gave negative costs.)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._validation import as_points, check_choice, check_int, check_positive, check_probability
from ..exceptions import ConvergenceWarning
from .result import OTResult

__all__ = ["FRLCResult", "frlc", "cost_factors", "COSTS"]

#: Ground costs :func:`frlc` accepts.
COSTS = ("sqeuclidean",)


@dataclass(frozen=True)
class FRLCResult(OTResult):
    """:class:`~otlens.ot.OTResult` of :func:`frlc`, plus the factors.

    The coupling is ``Q @ diag(1 / g_Q) @ T @ diag(1 / g_R) @ R.T`` (see :meth:`plan_matrix`).

    Attributes
    ----------
    Q : torch.Tensor, [n, r]
        Source factor: row sums are the source weights, column sums the inner marginal :math:`g_Q`.
    R : torch.Tensor, [m, r]
        Target factor: row sums are the target weights, column sums :math:`g_R`.
    T : torch.Tensor, [r, r]
        Latent coupling between the two inner marginals.
    """

    Q: torch.Tensor | None = None
    R: torch.Tensor | None = None
    T: torch.Tensor | None = None

    def plan_matrix(self) -> torch.Tensor:
        r"""The dense ``n × m`` coupling (for small problems and tests only).

        Returns
        -------
        torch.Tensor, [n, m]
            :math:`P = Q \operatorname{diag}(1/g_Q)\, T \operatorname{diag}(1/g_R) R^\top`.
        """
        gq, gr = self.Q.sum(0), self.R.sum(0)
        return (self.Q / gq) @ self.T @ (self.R / gr).T


def cost_factors(x: torch.Tensor, y: torch.Tensor, cost: str = "sqeuclidean") -> tuple[torch.Tensor, torch.Tensor]:
    r"""Factors ``A [n, k]``, ``B [m, k]`` with :math:`C \approx A B^\top`, never forming ``C``.

    ``"sqeuclidean"``: exact, :math:`k = d + 2`, after centring both clouds on their joint mean.

    Parameters
    ----------
    x : torch.Tensor, [n, d]
        Source points.
    y : torch.Tensor, [m, d]
        Target points.
    cost : {"sqeuclidean"}
        Ground cost.

    Returns
    -------
    A : torch.Tensor, [n, k]
        Source factor.
    B : torch.Tensor, [m, k]
        Target factor.
    """
    check_choice(cost, "cost", COSTS)
    centre = torch.cat([x, y]).mean(0, keepdim=True)
    x, y = x - centre, y - centre
    if cost == "sqeuclidean":
        one_x = torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
        one_y = torch.ones(y.shape[0], 1, dtype=y.dtype, device=y.device)
        A = torch.cat([(x * x).sum(1, keepdim=True), one_x, -2 * x], 1)
        B = torch.cat([one_y, (y * y).sum(1, keepdim=True), y], 1)
        return A, B
    raise AssertionError(cost)  # unreachable: check_choice above


def _semi_relaxed(logK: torch.Tensor, log_a: torch.Tensor, log_g: torch.Tensor, lam: float, iters: int):
    """Scale ``exp(logK) [n, r]`` so rows sum to ``a`` exactly and columns approach ``g``.

    Column scalings are damped by ``lam = tau / (tau + 1/gamma)`` (``1``: balanced). Returns
    ``log Q``, ending with an exact row projection.
    """
    v = torch.zeros_like(log_g)
    for _ in range(iters):
        u = log_a - torch.logsumexp(logK + v[None, :], 1)
        v = lam * (log_g - torch.logsumexp(logK + u[:, None], 0))
    logQ = logK + v[None, :]
    return logQ + (log_a - torch.logsumexp(logQ, 1))[:, None]


def _balanced(logK: torch.Tensor, log_a: torch.Tensor, log_b: torch.Tensor, *, tol: float,
              max_iter: int = 2000) -> torch.Tensor:
    """Sinkhorn projection of ``exp(logK) [r, r]`` on :math:`\\Pi(a, b)`, to an L1 column error ``tol``."""
    u = torch.zeros_like(log_a)
    v = torch.zeros_like(log_b)
    b = log_b.exp()
    for k in range(max_iter):
        u = log_a - torch.logsumexp(logK + v[None, :], 1)  # rows exact
        col = torch.logsumexp(logK + u[:, None], 0)
        if k % 10 == 0 and float(((col + v).exp() - b).abs().sum()) < tol:
            break
        v = log_b - col
    return _round_to_coupling((logK + u[:, None] + v[None, :]).exp(), log_a.exp(), b).clamp_min(1e-300).log()


def _round_to_coupling(T: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Nearest-feasible rounding of :cite:t:`altschuler:17` (Algorithm 2): ``T`` in :math:`\\Pi(a, b)` exactly.

    Rows, then columns, are scaled down to at most their targets; the missing mass is added as
    the rank-one ``err_a err_b^T / |err_a|_1``. The change is of the order of the marginal error.
    """
    T = T * (a / T.sum(1).clamp_min(1e-300)).clamp_max(1.0)[:, None]
    T = T * (b / T.sum(0).clamp_min(1e-300)).clamp_max(1.0)[None, :]
    ea, eb = a - T.sum(1), b - T.sum(0)
    mass = ea.sum()
    return T + torch.outer(ea, eb) / mass if float(mass) > 0 else T


_LOG_FLOOR = -300.0


def frlc(
    x: Any,
    y: Any,
    *,
    rank: int,
    a: Any = None,
    b: Any = None,
    cost: str = "sqeuclidean",
    max_iter: int = 300,
    tol: float = 1e-6,
    gamma: float = 30.0,
    tau: float = 100.0,
    inner_iter: int = 30,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    device: Any = None,
    warn: bool = True,
) -> FRLCResult:
    r"""Rank-``rank`` OT coupling between two clouds by FRLC, never forming an ``n × m`` matrix.

    Parameters
    ----------
    x : array-like, [n, d]
        Source points.
    y : array-like, [m, d]
        Target points.
    rank : int
        Rank :math:`r` of the coupling, ``1 <= r <= min(n, m)``.
    a, b : array-like, [n] / [m], optional
        Point weights summing to one (uniform when omitted).
    cost : {"sqeuclidean"}
        Ground cost, through its exact low-rank factors (:func:`cost_factors`). The Euclidean
        cost has no exact factorisation of low rank; it is not offered (see the module notes).
    max_iter : int
        Maximum outer (coordinate mirror-descent) iterations.
    tol : float
        Stop when the relative change of the cost over an iteration is below ``tol``.
    gamma : float
        Mirror-descent step, in units of :math:`1/\lVert\nabla\rVert_\infty`.
    tau : float
        Weight of the KL penalty on the inner marginals :math:`g_Q, g_R` (large: nearly fixed).
    inner_iter : int
        Scaling iterations of each projection.
    seed : int
        Seed of the random initial factors.
    dtype, device : torch.dtype, str or torch.device, optional
        Computation dtype (default: the input's float dtype) and device.
    warn : bool
        Emit a :class:`~otlens.exceptions.ConvergenceWarning` if ``tol`` is not reached.

    Returns
    -------
    FRLCResult
        ``cost`` :math:`\langle C, P\rangle` of the low-rank coupling (with the factored cost),
        ``Q``, ``R``, ``T``, ``marginal_error`` the L1 error of both marginals of :math:`P`.

    Raises
    ------
    ValueError
        On NaN / inf, mismatched dimensions, ``rank`` outside ``[1, min(n, m)]``, or bad weights.

    See Also
    --------
    otlens.ot.sinkhorn : Entropic OT with a full-rank (dense or chunked) plan.
    otlens.ot.sinkhorn_divergence : The debiased entropic divergence.
    otlens.ot.exact_ot : Exact OT (network simplex), the small-case reference.
    otlens.ot.hiref : A bijection between equal-size clouds in linear memory (Hierarchical Refinement).
    otlens.ot.solve : One entry point (``method="frlc"`` runs this function).

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(200, 2, generator=g, dtype=torch.float64)
    >>> r = frlc(x, x + 1.0, rank=4)
    >>> r.Q.shape, r.T.shape, bool(r.marginal_error < 1e-6)
    (torch.Size([200, 4]), torch.Size([4, 4]), True)
    """
    check_choice(cost, "cost", COSTS)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    tol = check_positive(tol, "tol")
    gamma = check_positive(gamma, "gamma")
    tau = check_positive(tau, "tau")
    inner_iter = check_int(inner_iter, "inner_iter", minimum=1)
    seed = check_int(seed, "seed")
    x = as_points(x, "x", dtype=dtype, device=device)
    y = as_points(y, "y", dtype=x.dtype, device=x.device)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"`y` must have the same dimension as `x` (d={x.shape[1]}); got d={y.shape[1]}")
    n, m = x.shape[0], y.shape[0]
    if isinstance(rank, (int, np.integer)) and not isinstance(rank, bool) and rank > min(n, m):
        raise ValueError(f"`rank` must be <= min(n, m) = {min(n, m)} (the number of points); got {rank}")
    r = check_int(rank, "rank", minimum=1)
    a = _weights(a, "a", n, x)
    b = _weights(b, "b", m, x)

    A, B = cost_factors(x, y, cost)
    gen = torch.Generator().manual_seed(seed)
    log_a, log_b = a.clamp_min(1e-300).log(), b.clamp_min(1e-300).log()
    log_g = torch.full((r,), -float(np.log(r)), dtype=x.dtype, device=x.device)
    lam = tau / (tau + 1.0 / gamma)
    noise = lambda k: torch.rand(k, r, generator=gen, dtype=torch.float64).to(x.device, x.dtype)  # noqa: E731
    logQ = _semi_relaxed(noise(n).log(), log_a, log_g, 1.0, inner_iter)
    logR = _semi_relaxed(noise(m).log(), log_b, log_g, 1.0, inner_iter)
    Q, R = logQ.exp(), logR.exp()
    # the latent coupling starts near the identity: at the independent coupling g_Q g_R^T the
    # gradients in Q and R vanish (P = a b^T whatever the factors), a saddle point
    eye = torch.eye(r, dtype=x.dtype, device=x.device)
    logT = _balanced((eye + 1e-2).log(), Q.sum(0).log(), R.sum(0).log(), tol=1e-10)
    T = logT.exp()

    def objective(Q, R, T):
        gq, gr = Q.sum(0), R.sum(0)
        QA, BR = Q.T @ A, B.T @ R  # [r, k], [k, r]
        return float((((QA @ BR) / gq[:, None] / gr[None, :]) * T).sum())

    prev = objective(Q, R, T)
    converged, it = False, 0
    for it in range(1, max_iter + 1):
        gq, gr = Q.sum(0), R.sum(0)
        CR = A @ (B.T @ R)  # [n, r]
        CtQ = B @ (A.T @ Q)  # [m, r]
        M = CR @ (T / gr[None, :]).T  # C R diag(1/gR) T^T   [n, r]
        N = CtQ @ (T / gq[:, None])  # C^T Q diag(1/gQ) T   [m, r]
        grad_Q = M / gq - ((Q * M).sum(0) / gq**2)[None, :]
        grad_R = N / gr - ((R * N).sum(0) / gr**2)[None, :]
        step = gamma / max(float(grad_Q.abs().max()), float(grad_R.abs().max()), 1e-30)
        # logs are floored at _LOG_FLOOR: no denormals (they make every later op crawl)
        logQ = _semi_relaxed((logQ - step * grad_Q).clamp_min(_LOG_FLOOR), log_a, gq.log(), lam, inner_iter)
        logR = _semi_relaxed((logR - step * grad_R).clamp_min(_LOG_FLOOR), log_b, gr.log(), lam, inner_iter)
        Q, R = logQ.exp(), logR.exp()
        gq, gr = Q.sum(0), R.sum(0)
        grad_T = (Q.T @ (A @ (B.T @ R))) / gq[:, None] / gr[None, :]
        step_T = gamma / max(float(grad_T.abs().max()), 1e-30)
        logT = _balanced((logT - step_T * grad_T).clamp_min(_LOG_FLOOR), gq.log(), gr.log(), tol=1e-9)
        T = logT.exp()
        cur = objective(Q, R, T)
        change = abs(prev - cur) / max(abs(cur), 1e-30)
        prev = cur
        if it > 1 and change <= tol:
            converged = True
            break
    gq, gr = Q.sum(0), R.sum(0)
    row = Q @ (T.sum(1) / gq)  # P 1 = Q diag(1/gQ) T 1
    col = R @ (T.sum(0) / gr)
    err = (row - a).abs().sum() + (col - b).abs().sum()
    if warn and not converged:
        warnings.warn(
            f"FRLC did not converge: relative cost change above tol={tol:g} after {it} iterations. "
            "Increase `max_iter` or `tol`.", ConvergenceWarning, stacklevel=2,
        )  # fmt: skip
    c = torch.tensor(prev, dtype=torch.float64)
    return FRLCResult(
        cost=c, objective=c, n_iter=it, converged=converged, marginal_error=err.to(torch.float64),
        method="frlc", Q=Q, R=R, T=T,
    )  # fmt: skip


def _weights(w: Any, name: str, n: int, like: torch.Tensor) -> torch.Tensor:
    if w is None:
        return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)
    w = torch.as_tensor(np.asarray(w) if not isinstance(w, torch.Tensor) else w).to(like)
    if w.ndim != 1:
        raise ValueError(f"`{name}` must have shape ({n},); got {tuple(w.shape)}")
    tol = 1e-5 if like.dtype == torch.float32 else 1e-8
    return check_probability(w, name, n, tol=tol)
