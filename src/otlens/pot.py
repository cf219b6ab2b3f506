"""Moved to :mod:`otlens.ot.pot` (issue #16); ``otlens.pot`` re-exports its names for one release."""

from ._moved import warn_moved
from .ot.pot import __all__, emd, emd2, sinkhorn, sinkhorn2  # noqa: F401

warn_moved("otlens.pot", "otlens.ot.pot")
