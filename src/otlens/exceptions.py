"""Warnings and errors users may want to filter or catch."""

__all__ = ["ConvergenceWarning"]


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped before reaching its tolerance.

    The result it returned says so too (``converged=False``); filter this warning with
    ``warnings.simplefilter("ignore", otlens.ConvergenceWarning)`` if that is expected.
    """
