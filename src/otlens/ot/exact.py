"""Exact (unregularised) optimal transport: POT's network simplex, in float64, for small clouds.

The reference the entropic and scalable solvers are checked against (:func:`exact_ot`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from .._validation import check_int
from ..exceptions import ConvergenceWarning
from ._inputs import prepare, sq_euclidean_cost, unbatch
from .result import OTResult

__all__ = ["exact_ot"]


def exact_ot(x: Any = None, y: Any = None, *, cost: Any = None, a: Any = None, b: Any = None,
             max_iter: int = 1_000_000, return_plan: bool = False, warn: bool = True) -> OTResult:
    r"""Exact (unregularised) OT cost with POT's network simplex (``ot.emd``), in float64.

    Meant for small clouds (a few thousand points): the plan is dense ``n × m``.

    Parameters
    ----------
    x : array-like, [n, d] or [B, n, d], optional
        Source points (squared Euclidean cost); omit when ``cost`` is given.
    y : array-like, [m, d] or [B, m, d], optional
        Target points.
    cost : array-like, [n, m] or [B, n, m], optional
        A cost matrix (or a stack of them) instead of ``x`` and ``y``.
    a, b : array-like, [n] / [m] or [B, n] / [B, m], optional
        Point weights summing to one; uniform when omitted.
    max_iter : int
        Maximum network-simplex iterations.
    return_plan : bool
        Also return the coupling ``[.., n, m]``.
    warn : bool
        Emit a :class:`~otlens.exceptions.ConvergenceWarning` when the simplex stopped at
        ``max_iter`` before optimality (POT's own warning is not passed on).

    Returns
    -------
    OTResult
        ``cost`` = ``objective`` :math:`\langle P, C\rangle` (``[B]`` or 0-d, float64),
        ``converged`` False when ``max_iter`` stopped the simplex, ``marginal_error`` the sum
        of both marginals' L1 errors, and ``plan`` with ``return_plan=True``.

    See Also
    --------
    otlens.ot.sinkhorn : Entropic OT, batched, on any device.
    otlens.ot.sinkhorn_divergence : The debiased entropic divergence.
    otlens.ot.hiref : A bijection between equal-size clouds in linear memory (Hierarchical Refinement).
    otlens.ot.frlc : A low-rank coupling for large clouds (FRLC).
    otlens.ot.solve : One entry point (``method="exact"`` runs this function).
    """
    import ot  # POT: imported on use, to keep `import otlens` light

    max_iter = check_int(max_iter, "max_iter", minimum=1)
    xs, ys, C, a_, b_, batched = prepare(x, y, a, b, torch.float64, "cpu", cost)
    C = (sq_euclidean_cost(xs, ys) if C is None else C).detach()
    a_, b_ = a_.detach(), b_.detach()
    costs, plans, errs, ok = [], [], [], True
    for k in range(C.shape[0]):
        M, ak, bk = C[k].numpy(), a_[k].numpy(), b_[k].numpy()
        with warnings.catch_warnings():  # POT's "numItermax reached" is reported below, our way
            warnings.simplefilter("ignore", UserWarning)
            P, log = ot.emd(ak, bk, M, numItermax=max_iter, log=True)
        ok = ok and log.get("warning") is None
        costs.append(float((P * M).sum()))
        errs.append(float(np.abs(P.sum(1) - ak).sum() + np.abs(P.sum(0) - bk).sum()))
        plans.append(torch.from_numpy(P))
    if warn and not ok:
        warnings.warn("exact OT stopped before optimality; increase `max_iter`.", ConvergenceWarning, stacklevel=2)
    cost_t = torch.tensor(costs, dtype=torch.float64)
    out = unbatch(batched)
    return OTResult(
        cost=out(cost_t),
        objective=out(cost_t),
        n_iter=0,
        converged=ok,
        marginal_error=out(torch.tensor(errs, dtype=torch.float64)),
        method="exact",
        plan=out(torch.stack(plans)) if return_plan else None,
    )
