"""Moved to :mod:`otlens.ot` (issue #16); ``otlens.transport`` re-exports its names for one release."""

from ._moved import warn_moved
from .ot import (CHUNK_BYTES, DENSE_BYTES, METHODS, OTResult, exact_ot, sinkhorn,  # noqa: F401
                 sinkhorn_divergence, solve, sq_euclidean_cost)

__all__ = ["OTResult", "sq_euclidean_cost", "sinkhorn", "sinkhorn_divergence", "exact_ot", "solve", "METHODS",
           "DENSE_BYTES", "CHUNK_BYTES"]

warn_moved("otlens.transport", "otlens.ot")
