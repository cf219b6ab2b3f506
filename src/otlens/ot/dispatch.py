"""One entry point to every OT solver of :mod:`otlens.ot`: :func:`solve` (``method=`` picks it).

The studies call :func:`solve`, never a solver module; every solver returns an
:class:`~otlens.ot.OTResult` (HiRef and FRLC a subclass with their extra fields).
"""

from __future__ import annotations

import inspect
from typing import Any

from .._validation import check_choice
from .entropic import sinkhorn, sinkhorn_divergence
from .exact import exact_ot
from .refinement import hiref
from .lowrank import frlc
from .result import OTResult

__all__ = ["solve", "METHODS"]

METHODS = ("sinkhorn", "exact", "divergence", "frlc", "hiref")


def _solvers() -> dict:
    """``method`` name -> solver function."""
    return {"sinkhorn": sinkhorn, "divergence": sinkhorn_divergence, "exact": exact_ot, "frlc": frlc, "hiref": hiref}


def solve(x: Any = None, y: Any = None, *, method: str = "sinkhorn", **kwargs) -> OTResult:
    """Solve OT between point clouds with the solver named by ``method``; one result type.

    ============== ========================================================================
    ``method``     solver
    ============== ========================================================================
    ``sinkhorn``   :func:`sinkhorn`: batched entropic OT (``reg`` required; or ``cost=``)
    ``divergence`` :func:`sinkhorn_divergence`: debiased :math:`S_\\varepsilon`
    ``exact``      :func:`exact_ot`: POT's network simplex (takes no ``reg``; or ``cost=``)
    ``frlc``       :func:`otlens.ot.frlc`: low-rank OT (``rank`` required)
    ``hiref``      :func:`otlens.ot.hiref`: hierarchical refinement (a bijection between
                   equal-size clouds with uniform weights)
    ============== ========================================================================

    Parameters
    ----------
    x : array-like, [n, d] or [B, n, d], optional
        Source points (omit with ``cost=`` for ``"sinkhorn"`` and ``"exact"``).
    y : array-like, [m, d] or [B, m, d], optional
        Target points.
    method : {"sinkhorn", "divergence", "exact", "frlc", "hiref"}
        The solver (table above).
    **kwargs
        The solver's own arguments (``reg``, ``rank``, ``cost``, ``a``, ``b``, ...).

    Returns
    -------
    OTResult
        The solver's result (:class:`HiRefResult` for ``"hiref"``, :class:`FRLCResult` for
        ``"frlc"``).

    Raises
    ------
    ValueError
        If ``method`` is not one of :data:`METHODS`, or a keyword is not an argument of that
        solver (the message lists the ones it takes), before anything is computed.

    See Also
    --------
    otlens.ot.sinkhorn : Batched entropic OT.
    otlens.ot.sinkhorn_divergence : The debiased Sinkhorn divergence.
    otlens.ot.exact_ot : Exact OT (network simplex).
    otlens.ot.hiref : Hierarchical Refinement, a bijection in linear memory.
    otlens.ot.frlc : Low-rank OT (FRLC).
    """
    check_choice(method, "method", METHODS)
    fn = _solvers()[method]
    params = inspect.signature(fn).parameters
    accepted = [p for p in params if p not in ("x", "y")]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    unknown = [] if takes_any else sorted(set(kwargs) - set(accepted))
    if unknown:
        hint = " (a bijection with uniform weights)" if method == "hiref" and {"a", "b"} & set(unknown) else ""
        raise ValueError(f"method={method!r}{hint} takes no {', '.join(f'`{k}`' for k in unknown)}; "
                         f"it takes {', '.join(accepted)}")
    return fn(x, y, **kwargs)
