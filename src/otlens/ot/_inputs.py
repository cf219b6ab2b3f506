"""The inputs every OT solver of :mod:`otlens.ot` takes: clouds or a cost matrix, and weights.

Shared by :mod:`otlens.ot.entropic` and :mod:`otlens.ot.exact`, so both check their inputs
the same way and give the same errors before any compute.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._validation import as_stack, check_probability

__all__ = ["sq_euclidean_cost", "prepare", "weights", "unbatch", "compute_dtype"]

_HALF = (torch.float16, torch.bfloat16)


def compute_dtype(t: Any, dtype) -> torch.dtype | None:
    """The dtype to compute in: ``dtype`` if given (float32 or float64), else the input's; half
    precision is computed in float32 (its range cannot hold the potentials or ``C / reg``)."""
    if dtype is not None:
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"`dtype` must be torch.float32 or torch.float64; got {dtype} (half-precision inputs "
                             "are accepted and computed in float32)")
        return dtype
    d = getattr(t, "dtype", None)
    return torch.float32 if d in _HALF or d == np.float16 else None


def prepare(x: Any, y: Any, a: Any, b: Any, dtype, device, cost: Any = None) -> tuple:
    """Validate and convert inputs; return ``(x, y, C, a, b, batched)``.

    Either two clouds ``x``, ``y`` (``C`` is None) or a cost matrix ``cost`` (``x``, ``y`` are None).
    Tensors keep their autograd history (the solvers detach them and attach gradients after).
    """
    if cost is not None:
        if x is not None or y is not None:
            raise ValueError("pass either the clouds `x` and `y` or a cost matrix `cost`, not both")
        batched = getattr(cost, "ndim", np.ndim(cost)) == 3
        C = as_stack(cost, "cost", dtype=compute_dtype(cost, dtype), device=device)
        B, n, m = C.shape
        return None, None, C, weights(a, "a", B, n, C), weights(b, "b", B, m, C), batched
    if x is None or y is None:
        raise ValueError("pass the clouds `x` and `y` (or a cost matrix `cost=`)")
    batched = getattr(x, "ndim", np.ndim(x)) == 3
    x = as_stack(x, "x", dtype=compute_dtype(x, dtype), device=device)
    y = as_stack(y, "y", dtype=x.dtype, device=x.device)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"`x` and `y` must hold the same number of problems; got {x.shape[0]} and {y.shape[0]}")
    if x.shape[2] != y.shape[2]:
        raise ValueError(
            f"`y` must have the same dimension as `x` (d={x.shape[2]}); got d={y.shape[2]} "
            f"(shapes {tuple(x.shape)} and {tuple(y.shape)})"
        )
    B, n, m = x.shape[0], x.shape[1], y.shape[1]
    a = weights(a, "a", B, n, x)
    b = weights(b, "b", B, m, x)
    return x, y, None, a, b, batched


def weights(w: Any, name: str, B: int, n: int, like: torch.Tensor) -> torch.Tensor:
    if w is None or (w.numel() if isinstance(w, torch.Tensor) else np.size(w)) == 0:  # POT's convention: [] is uniform
        return torch.full((B, n), 1.0 / n, dtype=like.dtype, device=like.device)
    w = w if isinstance(w, torch.Tensor) else torch.as_tensor(np.asarray(w))
    # check the sum at the precision the weights were given in, then convert
    tol = 1e-5 if w.dtype in (torch.float32, torch.float16, torch.bfloat16) or like.dtype == torch.float32 else 1e-8
    w = w.to(like)
    if w.ndim == 1:
        w = w.expand(B, -1)
    if w.ndim != 2 or w.shape[0] != B:
        raise ValueError(f"`{name}` must have shape ({n},) or ({B}, {n}); got {tuple(w.shape)}")
    return check_probability(w, name, n, tol=tol)



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


def unbatch(batched: bool):
    """Return a function that drops the batch axis when the caller passed single clouds."""
    return (lambda t: t) if batched else (lambda t: t[0])
