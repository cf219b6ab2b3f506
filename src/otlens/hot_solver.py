"""Moved to :mod:`otlens.ot.hot` (issue #16); ``otlens.hot_solver`` re-exports its names for one release."""

from ._moved import warn_moved
from .ot.hot import *  # noqa: F401,F403
from .ot.hot import __all__  # noqa: F401

warn_moved("otlens.hot_solver", "otlens.ot.hot")
