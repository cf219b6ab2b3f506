"""Where otlens keeps its caches and results.

``OTLENS_CACHE`` (default ``~/.cache/otlens``) holds reassembled/converted model weights and
activation caches; ``OTLENS_RESULTS`` (default ``results/`` under the current directory) holds the
tidy results tables the chapters write.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "results_dir", "project_root"]

_ROOT_MARKERS = ("_toc.yml", "params")  # a folder holding either of these is the project root


def cache_dir(*parts: str) -> Path:
    """Return (and create) a folder under the otlens cache root.

    The root is ``$OTLENS_CACHE``, else ``~/.cache/otlens``.

    Parameters
    ----------
    *parts : str
        Path components of the folder under the root.

    Returns
    -------
    pathlib.Path
        The folder (created if missing).
    """
    root = Path(os.environ.get("OTLENS_CACHE", Path.home() / ".cache" / "otlens")).expanduser()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir() -> Path:
    """Return (and create) the folder the chapters write their results tables to.

    Returns
    -------
    pathlib.Path
        ``$OTLENS_RESULTS``, else ``results/`` (created if missing).
    """
    path = Path(os.environ.get("OTLENS_RESULTS", "results")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def project_root(start: str | os.PathLike | None = None) -> Path:
    """Return the first folder at or above ``start`` (default: cwd) holding ``_toc.yml`` or ``params/``.

    Falls back to ``start`` itself when no such folder exists.

    Parameters
    ----------
    start : str or os.PathLike, optional
        Where the search starts (default: the current folder).

    Returns
    -------
    pathlib.Path
        The project root.
    """
    start = Path(start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in _ROOT_MARKERS):
            return folder
    return start
