"""The warning of the module paths that issue #16 moved (kept, as re-exports, for one release)."""

from __future__ import annotations

import warnings

__all__ = ["warn_moved"]


def warn_moved(old: str, new: str) -> None:
    """Warn, once per import, that module ``old`` has moved to ``new``.

    Parameters
    ----------
    old, new : str
        The old and the new module paths.
    """
    warnings.warn(f"`{old}` has moved to `{new}`; the old path re-exports it for one release",
                  DeprecationWarning, stacklevel=3)
