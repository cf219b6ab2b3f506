r"""Optimal transport between point clouds: entropic (Sinkhorn), exact, and debiased.

Every solver here takes two point clouds (or a stack of ``B`` pairs of clouds) and returns
one :class:`OTResult`. The cost between points is the squared Euclidean distance,

.. math::

    C_{ij} = \lVert x_i - y_j \rVert^2 ,

and the entropic problem solved by :func:`sinkhorn` is

.. math::

    \mathrm{OT}_\varepsilon(a, b) = \min_{P \in U(a, b)} \langle P, C \rangle
        + \varepsilon \, \mathrm{KL}(P \,\|\, a \otimes b),
    \qquad U(a, b) = \{P \ge 0 : P\mathbf 1 = a,\ P^\top \mathbf 1 = b\},

where:

- :math:`a \in \Delta_n`, :math:`b \in \Delta_m` are the weights of the points (uniform by default),
- :math:`\varepsilon` is ``reg``, in the units of the cost.

Its minimiser is the same plan as with the entropy :math:`-\varepsilon H(P)` of
:cite:`cuturi:13` (the two regularisers differ by a constant on :math:`U(a, b)`), so
``result.cost`` — the transport cost :math:`\langle P, C\rangle` without the entropy term — is
what POT's ``ot.sinkhorn2`` returns. The iterations run in the log domain on the dual potentials
:math:`(f, g)`, so they stay finite for any ``reg > 0``, and ``eps_scaling`` anneals
:math:`\varepsilon` from the cost's scale down to ``reg``, warm-starting each stage
:cite:`peyre:19`. They stop on the L1 error of the row marginal (the column marginal is exact
after each half-step).

:func:`sinkhorn_divergence` is the debiased divergence of :cite:`genevay:18` and :cite:`feydy:19`,

.. math::

    S_\varepsilon(a, b) = \mathrm{OT}_\varepsilon(a, b) - \tfrac12 \mathrm{OT}_\varepsilon(a, a)
        - \tfrac12 \mathrm{OT}_\varepsilon(b, b),

which is zero for identical clouds and, for a cloud and its translate by :math:`t`, equals
:math:`\lVert t \rVert^2` for every :math:`\varepsilon`. :func:`exact_ot` calls POT's network
simplex :cite:`flamary:21` for small clouds.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._validation import as_stack, check_choice, check_int, check_positive, check_probability
from .exceptions import ConvergenceWarning

__all__ = [
    "OTResult",
    "sq_euclidean_cost",
    "sinkhorn",
    "sinkhorn_divergence",
    "exact_ot",
    "solve",
    "METHODS",
]

METHODS = ("sinkhorn", "exact", "divergence")


@dataclass(frozen=True)
class OTResult:
    """What every OT solver returns.

    Tensors have shape ``[B]`` when the inputs were stacks ``[B, n, d]`` and are 0-d when the
    inputs were single clouds ``[n, d]``.

    Attributes
    ----------
    cost : torch.Tensor
        Transport cost :math:`\\langle P, C \\rangle` (no entropy term). For
        ``method="divergence"`` the debiased divergence :math:`S_\\varepsilon`.
    objective : torch.Tensor
        The regularised objective :math:`\\mathrm{OT}_\\varepsilon` (dual value
        :math:`\\langle a, f\\rangle + \\langle b, g\\rangle`); equals ``cost`` for exact OT.
    n_iter : int
        Iterations run (the largest over the batch; 0 for exact OT).
    converged : bool
        Whether every problem in the batch reached ``tol``.
    marginal_error : torch.Tensor
        L1 error of the plan's marginals at exit.
    method : str
    reg : torch.Tensor or None
        The absolute :math:`\\varepsilon` used for each problem.
    potentials : tuple of torch.Tensor or None
        Dual potentials ``(f [.., n], g [.., m])`` for Sinkhorn.
    plan : torch.Tensor or None
        The coupling ``[.., n, m]`` when ``return_plan=True``.
    """

    cost: torch.Tensor
    objective: torch.Tensor
    n_iter: int
    converged: bool
    marginal_error: torch.Tensor
    method: str
    reg: torch.Tensor | None = None
    potentials: tuple[torch.Tensor, torch.Tensor] | None = None
    plan: torch.Tensor | None = None

    def __float__(self) -> float:
        if self.cost.numel() != 1:
            raise TypeError(f"float() needs a single problem; this result holds {self.cost.numel()}")
        return float(self.cost)


# --------------------------------------------------------------------------- validation
def _prepare(x: Any, y: Any, a: Any, b: Any, dtype, device) -> tuple:
    """Validate and convert inputs; return stacks, weights and whether the input was batched."""
    batched = getattr(x, "ndim", np.ndim(x)) == 3
    x = as_stack(x, "x", dtype=dtype, device=device)
    y = as_stack(y, "y", dtype=x.dtype, device=x.device)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"`x` and `y` must hold the same number of problems; got {x.shape[0]} and {y.shape[0]}")
    if x.shape[2] != y.shape[2]:
        raise ValueError(
            f"`y` must have the same dimension as `x` (d={x.shape[2]}); got d={y.shape[2]} "
            f"(shapes {tuple(x.shape)} and {tuple(y.shape)})"
        )
    B, n, m = x.shape[0], x.shape[1], y.shape[1]
    a = _weights(a, "a", B, n, x)
    b = _weights(b, "b", B, m, x)
    return x, y, a, b, batched


def _weights(w: Any, name: str, B: int, n: int, like: torch.Tensor) -> torch.Tensor:
    if w is None:
        return torch.full((B, n), 1.0 / n, dtype=like.dtype, device=like.device)
    w = torch.as_tensor(np.asarray(w) if not isinstance(w, torch.Tensor) else w)
    # check the sum at the precision the weights were given in, then convert
    tol = 1e-5 if w.dtype in (torch.float32, torch.float16, torch.bfloat16) or like.dtype == torch.float32 else 1e-8
    w = w.to(like)
    if w.ndim == 1:
        w = w.expand(B, -1)
    if w.ndim != 2 or w.shape[0] != B:
        raise ValueError(f"`{name}` must have shape ({n},) or ({B}, {n}); got {tuple(w.shape)}")
    return check_probability(w, name, n, tol=tol)


def _default_tol(dtype: torch.dtype) -> float:
    return 1e-5 if dtype in (torch.float32, torch.float16, torch.bfloat16) else 1e-6


# --------------------------------------------------------------------------- cost
def sq_euclidean_cost(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean cost ``[B, n, m]`` between stacks ``[B, n, d]`` and ``[B, m, d]``.

    One batched GEMM; both clouds are first centred on their joint mean (the cost is
    translation invariant), which limits cancellation in float32.
    """
    centre = torch.cat([x, y], dim=1).mean(dim=1, keepdim=True)  # [B, 1, d]
    x, y = x - centre, y - centre
    x2 = (x * x).sum(-1, keepdim=True)  # [B, n, 1]
    y2 = (y * y).sum(-1).unsqueeze(1)  # [B, 1, m]
    return torch.baddbmm(x2 + y2, x, y.transpose(1, 2), alpha=-2.0).clamp_min_(0.0)


# --------------------------------------------------------------------------- sinkhorn
def _eps_schedule(cmax: torch.Tensor, reg: torch.Tensor, ratio: float | None) -> list[torch.Tensor]:
    """Geometric schedule from the cost's scale down to ``reg`` (per problem), ending at ``reg``."""
    if ratio is None:
        return [reg]
    start = torch.maximum(cmax, reg)
    n_stages = int(torch.ceil(torch.log(start / reg).max() / -math.log(ratio)).item())
    steps = [torch.maximum(start * ratio**k, reg) for k in range(n_stages)]
    return steps + [reg]


def _stage_log(C, log_a, log_b, f, g, eps, n_steps, tol, check, symmetric):
    """Log-domain iterations at one ``eps``; always finite. Returns ``(f, g, err, steps, ok)``.

    With ``check``, a problem whose marginal error is below ``tol`` is frozen (its potentials
    stop changing), so a batch gives each problem the result it would get alone.
    """
    e = eps[:, None, None]
    C_e = C / e  # [B, n, m]
    a = log_a.exp()
    err = torch.full_like(eps, float("inf"))
    done = torch.zeros_like(eps, dtype=torch.bool)
    steps = 0
    for steps in range(1, n_steps + 1):
        if not symmetric:
            g_new = -eps[:, None] * torch.logsumexp(log_a[:, :, None] + f[:, :, None] / e - C_e, dim=1)
            g = torch.where(done[:, None], g, g_new)
        lse = torch.logsumexp(log_b[:, None, :] + g[:, None, :] / e - C_e, dim=2)  # [B, n]
        if check:
            # row sums of the plan (f, g) are a * exp(f/eps + lse): the error check is free
            err = torch.where(done, err, (a * (f / eps[:, None] + lse).exp().sub(1.0).abs()).sum(1))
            done = err < tol
            if bool(done.all()):
                break
        f_new = -eps[:, None] * lse if not symmetric else 0.5 * (f - eps[:, None] * lse)
        f = torch.where(done[:, None], f, f_new)
        if symmetric:
            g = f
    return f, g, err, steps, True


_ABSORB = 15.0  # re-absorb the kernel scalings into the potentials once |log u| or |log v| exceeds this


def _stage_kernel(C, log_a, log_b, f, g, eps, n_steps, tol, check, symmetric):
    """Stabilised kernel iterations at one ``eps`` (matrix-vector products, no exp per step).

    The potentials are absorbed in the kernel ``K = exp((f + g - C) / eps)`` and the scalings
    ``u, v`` start at 1; they are re-absorbed when they drift, so ``K`` never overflows. The
    iterates equal the log-domain ones in exact arithmetic. Returns ``ok=False`` (and the
    entry potentials) if anything becomes non-finite, so the caller can redo the stage in the
    log domain.
    """
    e = eps[:, None, None]
    a, b = log_a.exp(), log_b.exp()
    f0, g0 = f, g
    K = torch.exp((f[:, :, None] + g[:, None, :] - C) / e)  # [B, n, m]
    u, v = torch.ones_like(f), torch.ones_like(g)
    err = torch.full_like(eps, float("inf"))
    done = torch.zeros_like(eps, dtype=torch.bool)  # frozen once below tol (see _stage_log)
    steps = 0
    for steps in range(1, n_steps + 1):
        if symmetric:
            Ku = torch.bmm(K, (a * u).unsqueeze(-1)).squeeze(-1)  # [B, n]
            if check:
                err = torch.where(done, err, (a * (u * Ku - 1.0).abs()).sum(1))
                done = err < tol
                if bool(done.all()):
                    break
            u = torch.where(done[:, None], u, torch.sqrt(u / Ku))
            v = u
        else:
            v_new = 1.0 / torch.bmm((a * u).unsqueeze(1), K).squeeze(1)  # [B, m]: columns exact
            v = torch.where(done[:, None], v, v_new)
            Kv = torch.bmm(K, (b * v).unsqueeze(-1)).squeeze(-1)  # [B, n]
            if check:
                err = torch.where(done, err, (a * (u * Kv - 1.0).abs()).sum(1))
                done = err < tol
                if bool(done.all()):
                    break
            u = torch.where(done[:, None], u, 1.0 / Kv)
        if not (bool(torch.isfinite(u).all()) and bool(torch.isfinite(v).all())):
            return f0, g0, err, 0, False
        if max(float(u.log().abs().max()), float(v.log().abs().max())) > _ABSORB:
            f, g = f + eps[:, None] * u.log(), g + eps[:, None] * v.log()
            K = torch.exp((f[:, :, None] + g[:, None, :] - C) / e)
            u, v = torch.ones_like(u), torch.ones_like(v)
    f, g = f + eps[:, None] * u.log(), g + eps[:, None] * v.log()
    ok = bool(torch.isfinite(f).all() and torch.isfinite(g).all())
    return (f, g, err, steps, True) if ok else (f0, g0, err, 0, False)


def _log_sinkhorn(C, log_a, log_b, reg, *, tol, max_iter, eps_scaling, stage_iter, symmetric=False, mode="auto"):
    """Sinkhorn on ``C [B,n,m]``, ``log_a [B,n]``, ``log_b [B,m]``, ``reg [B]``, with eps-scaling.

    Returns ``(f, g, err, n_iter)``. Each iteration updates ``g`` (column marginal exact) and
    then ``f``, and measures the L1 error of the row marginal of the plan ``(f, g)`` on the way.
    With ``symmetric=True`` (``x`` against itself, ``a == b``) the averaged update
    ``f <- (f + T(f)) / 2`` of :cite:`feydy:19` is used and ``g = f``. ``mode="auto"`` runs
    each stage with stabilised kernel iterations and redoes it in the log domain if they fail;
    ``mode="log"`` uses the log domain throughout.
    """
    B, n, m = C.shape
    f = torch.zeros(B, n, dtype=C.dtype, device=C.device)
    g = torch.zeros(B, m, dtype=C.dtype, device=C.device)
    schedule = _eps_schedule(C.amax(dim=(1, 2)), reg, eps_scaling)
    n_iter, err = 0, torch.full((B,), float("inf"), dtype=C.dtype, device=C.device)
    for k, eps in enumerate(schedule):
        final = k == len(schedule) - 1
        # the final stage (eps = reg) always gets at least one iteration: a plan built from
        # potentials of a larger eps but evaluated at reg would not be a coupling at all
        budget = max_iter - n_iter if final else min(stage_iter, max_iter - n_iter - 1)
        if budget <= 0:
            continue
        ok = False
        if mode == "auto":
            f, g, err, steps, ok = _stage_kernel(C, log_a, log_b, f, g, eps, budget, tol, final, symmetric)
        if not ok:
            f, g, err, steps, ok = _stage_log(C, log_a, log_b, f, g, eps, budget, tol, final, symmetric)
        n_iter += steps
    return f, g, err, n_iter


def sinkhorn(
    x: Any,
    y: Any,
    *,
    reg: float,
    a: Any = None,
    b: Any = None,
    relative_reg: bool = False,
    max_iter: int = 2000,
    tol: float | None = None,
    eps_scaling: float | None = 0.5,
    stage_iter: int = 4,
    mode: str = "auto",
    return_plan: bool = False,
    dtype: torch.dtype | None = None,
    device: Any = None,
    warn: bool = True,
) -> OTResult:
    r"""Entropic OT between point clouds, batched, in the log domain.

    Parameters
    ----------
    x : array-like, shape (n, d) or (B, n, d)
        Source points (a stack solves ``B`` independent problems in one call).
    y : array-like, shape (m, d) or (B, m, d)
        Target points.
    reg : float
        Entropic regularisation :math:`\varepsilon > 0`, in units of the cost (or of its mean
        over the problem with ``relative_reg=True``).
    a, b : array-like, shape (n,) / (m,) or (B, n) / (B, m), optional
        Point weights summing to one; uniform when omitted.
    relative_reg : bool
        Multiply ``reg`` by the mean cost of each problem (a scale-free setting).
    max_iter : int
        Maximum number of Sinkhorn iterations, all stages included.
    tol : float, optional
        Stop when the L1 marginal error is below ``tol`` for every problem. Default ``1e-6``
        in float64, ``1e-5`` in float32.
    eps_scaling : float or None
        Ratio of the geometric annealing of :math:`\varepsilon` from the cost's scale down to
        ``reg``, with ``stage_iter`` iterations per intermediate stage; ``None`` disables it.
    mode : {"auto", "log"}
        ``"auto"`` iterates with matrix-vector products on a stabilised kernel (the potentials
        absorbed into it, re-absorbed when the scalings drift) and falls back to log-sum-exp
        iterations for any stage where that becomes non-finite; ``"log"`` always uses the
        log domain. Both give the same iterates in exact arithmetic.
    return_plan : bool
        Also return the coupling (``[.., n, m]``).
    dtype, device :
        Computation dtype (default: the input's float dtype, float32 for integers) and device
        (default: the input's; ``"cuda"`` runs on a GPU).
    warn : bool
        Emit a :class:`~otlens.exceptions.ConvergenceWarning` when ``tol`` is not reached.

    Returns
    -------
    OTResult
        ``cost`` :math:`=\langle P, C\rangle`, ``objective`` :math:`=\mathrm{OT}_\varepsilon`,
        ``converged``, ``n_iter``, ``marginal_error``, ``potentials`` and optionally ``plan``.

    Raises
    ------
    ValueError
        On empty, NaN/inf, mismatched or wrongly shaped inputs, or non-positive ``reg``.

    Warns
    -----
    ConvergenceWarning
        If ``tol`` was not reached within ``max_iter`` iterations.

    Examples
    --------
    >>> import torch
    >>> from otlens.transport import sinkhorn
    >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    >>> r = sinkhorn(x, x + torch.tensor([0.0, 1.0], dtype=torch.float64), reg=0.01)
    >>> round(float(r.cost), 4), r.converged
    (1.0, True)
    """
    reg = check_positive(reg, "reg")
    opts = _solver_options(max_iter, tol, eps_scaling, stage_iter, mode)
    x, y, a, b, batched = _prepare(x, y, a, b, dtype, device)
    r = _entropic(x, y, a, b, reg, relative_reg=relative_reg, return_plan=return_plan, **opts)
    converged = _check_converged(r, opts["tol"], warn, "Sinkhorn")
    out = _unbatch(batched)
    return OTResult(
        cost=out(r["cost"]),
        objective=out(r["objective"]),
        n_iter=r["n_iter"],
        converged=converged,
        marginal_error=out(r["err"]),
        method="sinkhorn",
        reg=out(r["eps"]),
        potentials=(out(r["f"]), out(r["g"])),
        plan=out(r["plan"]) if return_plan else None,
    )


def _solver_options(max_iter, tol, eps_scaling, stage_iter, mode="auto") -> dict:
    if eps_scaling is not None and not 0.0 < float(eps_scaling) < 1.0:
        raise ValueError(f"`eps_scaling` must be in (0, 1) or None; got {eps_scaling!r}")
    return dict(
        max_iter=check_int(max_iter, "max_iter", minimum=1),
        tol=None if tol is None else check_positive(tol, "tol"),
        eps_scaling=eps_scaling,
        stage_iter=check_int(stage_iter, "stage_iter", minimum=0),
        mode=check_choice(mode, "mode", ("auto", "log")),
    )


def _unbatch(batched: bool):
    """Return a function that drops the batch axis when the caller passed single clouds."""
    return (lambda t: t) if batched else (lambda t: t[0])


def _entropic(x, y, a, b, reg, *, relative_reg=False, return_plan=False, symmetric=False, tol=None, **loop) -> dict:
    """Solve validated stacks; return batched tensors (cost, objective, f, g, err, eps, plan) and n_iter."""
    tol = _default_tol(x.dtype) if tol is None else tol
    C = sq_euclidean_cost(x, y)  # [B, n, m]
    # reg: one float for all problems, or a tensor [B] with one eps per problem
    eps = torch.as_tensor(reg, dtype=C.dtype, device=C.device).expand(C.shape[0]).clone()
    if relative_reg:
        eps = eps * C.mean(dim=(1, 2)).clamp_min(torch.finfo(C.dtype).tiny)
    log_a, log_b = a.log(), b.log()
    f, g, err, n_iter = _log_sinkhorn(C, log_a, log_b, eps, tol=tol, symmetric=symmetric, **loop)
    e = eps[:, None, None]
    P = torch.exp(log_a[:, :, None] + log_b[:, None, :] + (f[:, :, None] + g[:, None, :] - C) / e)
    return dict(
        cost=(P * C).sum(dim=(1, 2)),
        objective=(a * f).sum(1) + (b * g).sum(1),
        f=f, g=g, err=err, eps=eps, n_iter=n_iter, tol=tol,
        plan=P if return_plan else None,
    )


def _check_converged(r: dict, tol, warn: bool, what: str) -> bool:
    """Whether a solve met ``tol`` with finite potentials; warn (once) if not."""
    tol = r["tol"] if tol is None else tol
    finite = bool(torch.isfinite(r["f"]).all() and torch.isfinite(r["g"]).all())
    converged = finite and bool((r["err"] < tol).all())
    if warn and not converged:
        warnings.warn(
            f"{what} did not converge: marginal error {float(r['err'].max()):.3g} > tol={tol:g} after "
            f"{r['n_iter']} iterations (reg={float(r['eps'].min()):.3g}). Increase `max_iter`, `reg` or `tol`.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return converged


def sinkhorn_divergence(
    x: Any,
    y: Any,
    *,
    reg: float,
    a: Any = None,
    b: Any = None,
    relative_reg: bool = False,
    max_iter: int = 2000,
    tol: float | None = None,
    eps_scaling: float | None = 0.5,
    stage_iter: int = 4,
    mode: str = "auto",
    dtype: torch.dtype | None = None,
    device: Any = None,
    warn: bool = True,
) -> OTResult:
    r"""Debiased Sinkhorn divergence :math:`S_\varepsilon` between point clouds.

    :math:`S_\varepsilon(a,b) = \mathrm{OT}_\varepsilon(a,b) - \tfrac12\mathrm{OT}_\varepsilon(a,a)
    - \tfrac12\mathrm{OT}_\varepsilon(b,b)` :cite:`feydy:19`, with :math:`\mathrm{OT}_\varepsilon`
    the dual value of :func:`sinkhorn`. It is non-negative, zero for identical clouds, and
    removes the entropic bias that makes :math:`\mathrm{OT}_\varepsilon(a, a) > 0`. The two
    self-transport terms use the symmetric (averaged) Sinkhorn update.

    Parameters are those of :func:`sinkhorn`; with ``relative_reg=True`` the mean cost of the
    cross problem sets :math:`\varepsilon` for all three terms. Returns an :class:`OTResult`
    whose ``cost`` and ``objective`` hold :math:`S_\varepsilon`.
    """
    reg = check_positive(reg, "reg")
    opts = _solver_options(max_iter, tol, eps_scaling, stage_iter, mode)
    xs, ys, a_, b_, batched = _prepare(x, y, a, b, dtype, device)
    xy = _entropic(xs, ys, a_, b_, reg, relative_reg=relative_reg, **opts)
    terms = [xy]
    for pts, w in ((xs, a_), (ys, b_)):
        # the self terms use the cross term's absolute eps, one per problem
        terms.append(_entropic(pts, pts, w, w, xy["eps"], symmetric=True, **opts))
    s = xy["objective"] - 0.5 * (terms[1]["objective"] + terms[2]["objective"])
    merged = dict(
        f=torch.cat([t["f"] for t in terms], 1), g=torch.cat([t["g"] for t in terms], 1),
        err=torch.stack([t["err"] for t in terms]).amax(0), eps=xy["eps"],
        n_iter=max(t["n_iter"] for t in terms), tol=xy["tol"],
    )
    converged = _check_converged(merged, opts["tol"], warn, "Sinkhorn divergence")
    out = _unbatch(batched)
    return OTResult(
        cost=out(s), objective=out(s), n_iter=merged["n_iter"], converged=converged,
        marginal_error=out(merged["err"]), method="divergence", reg=out(xy["eps"]),
    )


def exact_ot(x: Any, y: Any, *, a: Any = None, b: Any = None, max_iter: int = 1_000_000, return_plan: bool = False,
             warn: bool = True) -> OTResult:
    """Exact (unregularised) OT cost with POT's network simplex (``ot.emd``), in float64.

    Meant for small clouds (a few thousand points): the plan is dense ``n × m``.
    """
    import ot  # POT; imported here to keep `import otlens` light

    max_iter = check_int(max_iter, "max_iter", minimum=1)
    xs, ys, a_, b_, batched = _prepare(x, y, a, b, torch.float64, "cpu")
    C = sq_euclidean_cost(xs, ys)
    costs, plans, errs, ok = [], [], [], True
    for k in range(C.shape[0]):
        M, ak, bk = C[k].numpy(), a_[k].numpy(), b_[k].numpy()
        P, log = ot.emd(ak, bk, M, numItermax=max_iter, log=True)
        ok = ok and log.get("warning") is None
        costs.append(float((P * M).sum()))
        errs.append(float(np.abs(P.sum(1) - ak).sum() + np.abs(P.sum(0) - bk).sum()))
        plans.append(torch.from_numpy(P))
    if warn and not ok:
        warnings.warn("exact OT stopped before optimality; increase `max_iter`.", ConvergenceWarning, stacklevel=2)
    cost = torch.tensor(costs, dtype=torch.float64)
    out = _unbatch(batched)
    return OTResult(
        cost=out(cost),
        objective=out(cost),
        n_iter=0,
        converged=ok,
        marginal_error=out(torch.tensor(errs, dtype=torch.float64)),
        method="exact",
        plan=out(torch.stack(plans)) if return_plan else None,
    )


def solve(x: Any, y: Any, *, method: str = "sinkhorn", **kwargs) -> OTResult:
    """Dispatch to :func:`sinkhorn`, :func:`exact_ot` or :func:`sinkhorn_divergence` by ``method``."""
    check_choice(method, "method", METHODS)
    if method == "exact":
        kwargs.pop("reg", None)
        return exact_ot(x, y, **kwargs)
    if method == "divergence":
        return sinkhorn_divergence(x, y, **kwargs)
    return sinkhorn(x, y, **kwargs)
