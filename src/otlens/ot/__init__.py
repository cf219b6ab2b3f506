"""The OT solvers: the floor below every study. It imports nothing of otlens but the base floor.

================  ============================================================================
module            what it holds
================  ============================================================================
``entropic``      :func:`sinkhorn` (batched entropic OT) and :func:`sinkhorn_divergence`
``exact``         :func:`exact_ot` (POT's network simplex, the small-case reference)
``refinement``    :func:`hiref`: Hierarchical Refinement, a bijection in linear memory
``lowrank``       :func:`frlc`: low-rank OT (FRLC)
``hot``           hierarchical OT between models' layers (:func:`hot_align`, HOT+R, reconstruction)
``pot``           POT's names and returns (``import otlens.ot.pot as ot``)
``dispatch``      :func:`solve`: one entry point, ``method=`` picks the solver
``result``        :class:`OTResult`, the one result family (:class:`HiRefResult`, :class:`FRLCResult`)
================  ============================================================================
"""

from .entropic import CHUNK_BYTES, DENSE_BYTES, sinkhorn, sinkhorn_divergence
from ._inputs import sq_euclidean_cost
from .exact import exact_ot
from .refinement import HiRefResult, hiref, hiref_schedule
from .lowrank import FRLCResult, cost_factors, frlc
from .result import OTResult
from .dispatch import METHODS, solve

__all__ = [
    "OTResult", "HiRefResult", "FRLCResult", "solve", "METHODS",
    "sinkhorn", "sinkhorn_divergence", "exact_ot", "hiref", "hiref_schedule", "frlc", "cost_factors",
    "sq_euclidean_cost", "DENSE_BYTES", "CHUNK_BYTES",
]
