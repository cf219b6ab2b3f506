"""Moved to :mod:`otlens.ot.lowrank` (issue #16); ``otlens.lowrank`` re-exports its names for one release."""

from ._moved import warn_moved
from .ot.lowrank import COSTS, FRLCResult, __all__, cost_factors, frlc  # noqa: F401

warn_moved("otlens.lowrank", "otlens.ot.lowrank")
