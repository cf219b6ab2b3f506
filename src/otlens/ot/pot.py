r"""POT's entry points on otlens's solvers: switch by changing one import.

    import ot                      # before
    import otlens.ot.pot as ot        # after: ot.sinkhorn2(a, b, M, reg), ot.emd2(a, b, M) ...

The functions take POT's arguments, in POT's order and with POT's names, and return what POT
returns (numpy in, numpy out; torch in, torch out, differentiable in ``a``, ``b`` and ``M``).
They run :func:`otlens.ot.sinkhorn` (batched, annealed, Anderson-accelerated, on any
device) and :func:`otlens.ot.exact_ot`.

Stopping rule. POT stops when the L2 norm of one marginal's error is below ``stopThr``;
otlens stops when the L1 norm of *both* marginals' errors of the returned plan is at most
``tol``. Since :math:`\lVert e\rVert_2 \le \lVert e\rVert_1`, ``tol = stopThr`` (what these
functions pass) is at least as strict as POT. In float32, errors below about 1e-6 are not
reachable by either library: pass ``stopThr=1e-5`` there, or float64 inputs.

Not supported (a ``ValueError`` says so rather than ignoring it): several target histograms
at once (``b`` of ``[m, k]``; pass a stack of problems to :func:`otlens.sinkhorn`
instead), methods other than the Sinkhorn variants, and keyword arguments this module does not
know.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._validation import check_choice, check_int, check_positive
from .entropic import sinkhorn as _sinkhorn
from .exact import exact_ot

__all__ = ["sinkhorn", "sinkhorn2", "emd", "emd2"]

#: POT's Sinkhorn variants; all solve the same problem here (otlens chooses the domain itself,
#: ``sinkhorn_log`` forces the log domain).
SINKHORN_METHODS = ("sinkhorn", "sinkhorn_knopp", "sinkhorn_log", "sinkhorn_stabilized")


def _check_1d(w: Any, name: str) -> None:
    if np.ndim(w) > 1:
        raise ValueError(f"`{name}` must be one histogram (1-D); got shape {np.shape(w)}. Several target "
                         "histograms at once are not supported: solve a stack with otlens.sinkhorn instead")


def _as_output(value: torch.Tensor, like: Any) -> Any:
    """numpy inputs give numpy (a float for a scalar), torch inputs keep the tensor."""
    if isinstance(like, torch.Tensor):
        return value
    out = value.detach().cpu().numpy()
    return float(out) if out.ndim == 0 else out


def _solve(a, b, M, reg, method, numItermax, stopThr, verbose, warn, warmstart, kwargs, plan):
    if kwargs:
        raise ValueError(f"unknown argument(s) {sorted(kwargs)} for otlens.ot.pot; see otlens.sinkhorn for the full set")
    check_choice(method, "method", SINKHORN_METHODS)
    _check_1d(a, "a"), _check_1d(b, "b")
    reg = check_positive(reg, "reg")
    numItermax = check_int(numItermax, "numItermax", minimum=1)
    stopThr = check_positive(stopThr, "stopThr")
    init = None
    if warmstart is not None:  # POT's warm start: the logs of the scalings u = a e^{f/reg}, v = b e^{g/reg}
        lu, lv = (torch.as_tensor(t) for t in warmstart)
        wa = torch.as_tensor(a) if np.size(a) else torch.full((np.shape(M)[0],), 1.0 / np.shape(M)[0])
        wb = torch.as_tensor(b) if np.size(b) else torch.full((np.shape(M)[1],), 1.0 / np.shape(M)[1])
        init = (reg * (lu - wa.to(lu).log()), reg * (lv - wb.to(lv).log()))
    res = _sinkhorn(cost=M, reg=reg, a=a, b=b, max_iter=numItermax, tol=stopThr, init=init, warn=warn,
                    mode="log" if method == "sinkhorn_log" else "auto", return_plan=plan)
    if verbose:
        print(f"otlens sinkhorn: {res.n_iter} iterations, L1 marginal error {float(res.marginal_error):.3e}, "
              f"converged={res.converged}")
    return res


def _log(res) -> dict:
    f, g = res.potentials
    return dict(niter=res.n_iter, err=[float(res.marginal_error)], converged=res.converged,
                log_u=f / res.reg, log_v=g / res.reg, u=torch.exp(f / res.reg), v=torch.exp(g / res.reg))


def sinkhorn(a: Any, b: Any, M: Any, reg: float, method: str = "sinkhorn", numItermax: int = 1000,
             stopThr: float = 1e-9, verbose: bool = False, log: bool = False, warn: bool = True,
             warmstart: Any = None, **kwargs) -> Any:
    """The entropic OT plan, as POT's ``ot.sinkhorn``.

    Parameters
    ----------
    a : array-like, [n]
        Source weights summing to one; ``[]`` for uniform.
    b : array-like, [m]
        Target weights summing to one; ``[]`` for uniform.
    M : array-like, [n, m]
        Cost matrix.
    reg : float
        Entropic regularisation (absolute, in the units of ``M``).
    method : {"sinkhorn", "sinkhorn_knopp", "sinkhorn_log", "sinkhorn_stabilized"}
        All solve the same problem; ``"sinkhorn_log"`` forces the log domain.
    numItermax : int
        Maximum iterations (``max_iter``).
    stopThr : float
        Stopping threshold, passed as otlens's ``tol`` (L1 error of both marginals, at least as
        strict as POT's L2 error of one).
    verbose : bool
        Print the iteration count and final error.
    log : bool
        Also return a dict (``niter``, ``err``, ``converged``, ``log_u``, ``log_v``, ``u``, ``v``).
    warn : bool
        Warn when ``stopThr`` was not reached.
    warmstart : tuple of array-like, optional
        Logs of the scalings ``(log u, log v)``, as POT takes them.
    **kwargs
        Accepted for POT's signature; any keyword here is an error (:func:`otlens.ot.sinkhorn`
        takes every option).

    Returns
    -------
    gamma : array-like, [n, m]
        The plan (numpy for numpy inputs, torch for torch inputs); with ``log``, ``(gamma, log)``.

    See Also
    --------
    sinkhorn2 : the transport cost of the same plan.
    otlens.ot.sinkhorn : every option (batches, point clouds, devices, chunking).
    """
    res = _solve(a, b, M, reg, method, numItermax, stopThr, verbose, warn, warmstart, kwargs, plan=True)
    P = _as_output(res.plan, M)
    return (P, _log(res)) if log else P


def sinkhorn2(a: Any, b: Any, M: Any, reg: float, method: str = "sinkhorn", numItermax: int = 1000,
              stopThr: float = 1e-9, verbose: bool = False, log: bool = False, warn: bool = True,
              warmstart: Any = None, **kwargs) -> Any:
    """The entropic transport cost :math:`\\langle P, M\\rangle`, as POT's ``ot.sinkhorn2``.

    For torch inputs the value is differentiable in ``M``, ``a`` and ``b`` (exact implicit
    gradients of the optimum, see :func:`otlens.ot.sinkhorn`).

    Parameters
    ----------
    a : array-like, [n]
        Source weights summing to one; ``[]`` for uniform.
    b : array-like, [m]
        Target weights summing to one; ``[]`` for uniform.
    M : array-like, [n, m]
        Cost matrix.
    reg : float
        Entropic regularisation (absolute, in the units of ``M``).
    method : {"sinkhorn", "sinkhorn_knopp", "sinkhorn_log", "sinkhorn_stabilized"}
        All solve the same problem; ``"sinkhorn_log"`` forces the log domain.
    numItermax : int
        Maximum iterations (``max_iter``).
    stopThr : float
        Stopping threshold, passed as otlens's ``tol`` (L1 error of both marginals, at least as
        strict as POT's L2 error of one).
    verbose : bool
        Print the iteration count and final error.
    log : bool
        Also return a dict (``niter``, ``err``, ``converged``, ``log_u``, ``log_v``, ``u``, ``v``).
    warn : bool
        Warn when ``stopThr`` was not reached.
    warmstart : tuple of array-like, optional
        Logs of the scalings ``(log u, log v)``, as POT takes them.
    **kwargs
        Accepted for POT's signature; any keyword here is an error (:func:`otlens.ot.sinkhorn`
        takes every option).

    Returns
    -------
    W : float or torch.Tensor
        :math:`\\langle P, M\\rangle` without the entropy term (what POT returns); with ``log``,
        ``(W, log)``.

    See Also
    --------
    sinkhorn : the plan itself.
    emd2 : the unregularised cost.
    """
    res = _solve(a, b, M, reg, method, numItermax, stopThr, verbose, warn, warmstart, kwargs, plan=False)
    W = _as_output(res.cost, M)
    return (W, _log(res)) if log else W


def _exact(a, b, M, numItermax, kwargs):
    if kwargs:
        raise ValueError(f"unknown argument(s) {sorted(kwargs)} for otlens.ot.pot.emd; see otlens.exact_ot")
    _check_1d(a, "a"), _check_1d(b, "b")
    res = exact_ot(cost=M, a=a, b=b, max_iter=check_int(numItermax, "numItermax", minimum=1), return_plan=True)
    info = dict(cost=float(res.cost), warning=None if res.converged else "numItermax reached before optimality",
                converged=res.converged)
    return res, info


def emd(a: Any, b: Any, M: Any, numItermax: int = 100000, log: bool = False, **kwargs) -> Any:
    """The exact OT plan (network simplex), as POT's ``ot.emd``.

    Parameters
    ----------
    a, b : array-like, [n], [m]
        Weights summing to one; ``[]`` for uniform.
    M : array-like, [n, m]
        Cost matrix.
    numItermax : int
        Maximum simplex iterations.
    log : bool
        Also return a dict (``cost``, ``warning``, ``converged``).
    **kwargs
        Accepted for POT's signature; any keyword here is an error (see :func:`otlens.ot.exact_ot`).

    Returns
    -------
    gamma : array-like, [n, m]
        The plan, in float64 (numpy for numpy inputs, torch for torch inputs).

    See Also
    --------
    emd2 : the cost of the plan.
    """
    res, info = _exact(a, b, M, numItermax, kwargs)
    P = _as_output(res.plan, M)
    return (P, info) if log else P


def emd2(a: Any, b: Any, M: Any, numItermax: int = 100000, log: bool = False, **kwargs) -> Any:
    """The exact OT cost :math:`\\langle P, M\\rangle`, as POT's ``ot.emd2``.

    A torch ``M`` that requires grad gets the plan as its gradient (the envelope theorem: a
    subgradient where the optimal plan is not unique).

    Parameters
    ----------
    a, b : array-like, [n], [m]
        Weights summing to one; ``[]`` for uniform.
    M : array-like, [n, m]
        Cost matrix.
    numItermax : int
        Maximum simplex iterations.
    log : bool
        Also return a dict (``cost``, ``warning``, ``converged``).
    **kwargs
        Accepted for POT's signature; any keyword here is an error (see :func:`otlens.ot.exact_ot`).

    Returns
    -------
    W : float or torch.Tensor
        The cost; with ``log``, ``(W, log)``.

    See Also
    --------
    emd : the plan.
    sinkhorn2 : the entropic cost.
    """
    res, info = _exact(a, b, M, numItermax, kwargs)
    W = res.cost
    if isinstance(M, torch.Tensor) and M.requires_grad and torch.is_grad_enabled():
        P = res.plan.to(M)
        W = W.to(M) + (P * (M - M.detach())).sum()
    W = _as_output(W, M)
    return (W, info) if log else W
