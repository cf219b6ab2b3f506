"""Moved to :mod:`otlens.ot.result` (issue #16); ``otlens.ot_result`` re-exports its names for one release."""

from ._moved import warn_moved
from .ot.result import OTResult, __all__  # noqa: F401

warn_moved("otlens.ot_result", "otlens.ot.result")
