"""Input validation in one place.

Every public function calls these first, before any compute, so that bad input fails
fast with a message that names the argument, what was expected and what was received.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np
import torch

__all__ = [
    "as_points",
    "as_stack",
    "check_positive",
    "check_int",
    "check_choice",
    "check_probability",
]


def _describe(x: Any) -> str:
    shape = getattr(x, "shape", None)
    return f"{type(x).__name__} of shape {tuple(shape)}" if shape is not None else repr(x)


def _as_tensor(x: Any, name: str, dtype: torch.dtype | None, device: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"`{name}` must be array-like of numbers; got {_describe(x)}") from exc
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.int16, torch.uint8)):
        raise ValueError(f"`{name}` must hold real numbers; got dtype {t.dtype}")
    if dtype is None:
        dtype = t.dtype if t.is_floating_point() else torch.float32
    return t.to(device=device, dtype=dtype)


def _check_finite(t: torch.Tensor, name: str) -> None:
    if t.numel() and not bool(torch.isfinite(t).all()):
        n_bad = int((~torch.isfinite(t)).sum())
        raise ValueError(f"`{name}` contains {n_bad} NaN or infinite value(s) (shape {tuple(t.shape)})")


def as_points(
    x: Any, name: str, *, dtype: torch.dtype | None = None, device: Any = None, min_points: int = 1
) -> torch.Tensor:
    """Return ``x`` as a finite 2-D float tensor ``[n_points, dim]``, or raise ``ValueError``."""
    t = _as_tensor(x, name, dtype, device)
    if t.ndim != 2:
        raise ValueError(f"`{name}` must be 2-D [n_points, dim]; got shape {tuple(t.shape)}")
    if t.shape[0] < min_points or t.shape[1] < 1:
        raise ValueError(
            f"`{name}` must have at least {min_points} point(s) and 1 dimension; got shape {tuple(t.shape)}"
        )
    _check_finite(t, name)
    return t


def as_stack(
    x: Any, name: str, *, dtype: torch.dtype | None = None, device: Any = None, min_points: int = 1
) -> torch.Tensor:
    """Return ``x`` as a finite 3-D float tensor ``[batch, n_points, dim]`` (2-D input gets batch 1)."""
    t = _as_tensor(x, name, dtype, device)
    if t.ndim == 2:
        t = t.unsqueeze(0)
    if t.ndim != 3:
        raise ValueError(f"`{name}` must be [n_points, dim] or [batch, n_points, dim]; got shape {tuple(t.shape)}")
    if t.shape[0] < 1 or t.shape[1] < min_points or t.shape[2] < 1:
        raise ValueError(
            f"`{name}` must be non-empty with at least {min_points} point(s); got shape {tuple(t.shape)}"
        )
    _check_finite(t, name)
    return t


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float if it is a finite number > 0 (or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"`{name}` must be a finite number; got {value!r}")
    value = float(value)
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"`{name}` must be {'>= 0' if allow_zero else '> 0'}; got {value:g}")
    return value


def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an int within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{name}` must be an integer; got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be <= {maximum}; got {value}")
    return value


def check_choice(value: Any, name: str, choices) -> Any:
    """Return ``value`` if it is one of ``choices``; the error lists the valid ones."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {sorted(map(str, choices))}; got {value!r}")
    return value


def check_probability(w: torch.Tensor, name: str, n: int, *, tol: float = 1e-6) -> torch.Tensor:
    """Check a weight vector (or batch of them) of length ``n``: non-negative, finite, sums to 1."""
    if w.shape[-1] != n:
        raise ValueError(f"`{name}` must have length {n} (one weight per point); got shape {tuple(w.shape)}")
    _check_finite(w, name)
    if bool((w < 0).any()):
        raise ValueError(f"`{name}` must be non-negative; got min {float(w.min()):g}")
    s = w.sum(-1)
    if bool(((s - 1).abs() > tol * max(1, n) ** 0.5).any()):
        raise ValueError(f"`{name}` must sum to 1 (tol={tol:g}); got {float(s.flatten()[(s - 1).abs().flatten().argmax()]):.10g} for shape {tuple(w.shape)}")
    return w
