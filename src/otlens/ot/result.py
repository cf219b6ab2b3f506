"""The one result type of every OT solver (:mod:`otlens.ot`, :mod:`otlens.ot.refinement`, :mod:`otlens.ot.lowrank`).

It lives below the solvers so that :func:`otlens.ot.solve` can import the scalable ones
without an import cycle; ``otlens.ot.OTResult`` and ``otlens.OTResult`` re-export it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["OTResult"]


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
