"""Tidy results tables: one CSV per chapter under ``results/``.

Every chapter saves its table with :func:`save_results`; the book's prose, the reproduction
table and the tests read the same numbers back with :func:`load_results`. A study returns a
:class:`StudyResult`: its tables, the tidy table the chapter saves (``to_frame()``) and the
verdict on that table (``describe()``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import ClassVar

import pandas as pd

from ._io import atomic_write
from .config import results_dir

__all__ = ["RESULT_COLUMNS", "save_results", "load_results", "StudyResult"]

#: Columns every results table has (more are allowed).
RESULT_COLUMNS = ("experiment", "model", "trained", "method", "layer", "seed", "metric", "value")


def save_results(df: pd.DataFrame, name: str, *, folder: str | Path | None = None) -> None:
    """Validate a tidy results table and write it atomically to ``<folder>/<name>.csv``.

    ``folder`` defaults to :func:`otlens.config.results_dir` (``$OTLENS_RESULTS`` or
    ``results/``). Returns nothing, so a notebook cell that ends with this call shows no output
    (a returned path was displayed as ``PosixPath('…/results/<name>.csv')`` on the book's pages).
    """
    missing = [c for c in RESULT_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"results table `df` lacks column(s) {missing}; has {list(df.columns)}")
    if df.empty:
        raise ValueError(f"results table `df` for {name!r} is empty")
    folder = Path(folder) if folder is not None else results_dir()
    cols = list(RESULT_COLUMNS) + [c for c in df.columns if c not in RESULT_COLUMNS]
    atomic_write(folder / f"{name}.csv", lambda tmp: df[cols].to_csv(tmp, index=False))


def load_results(name: str, *, folder: str | Path | None = None) -> pd.DataFrame:
    """Read a results table written by :func:`save_results`."""
    folder = Path(folder) if folder is not None else results_dir()
    path = folder / f"{name}.csv"
    if not path.exists():
        raise FileNotFoundError(f"no results table {path}; run the chapter first (`otlens run notebooks/{name}.md`)")
    return pd.read_csv(path)


class StudyResult:
    """What a study returns: its tables, frozen (subclasses are ``@dataclass(frozen=True, eq=False)``).

    A subclass sets :attr:`chapter` and implements :meth:`to_frame`; :meth:`describe` is then the
    chapter's verdict (:func:`otlens.claims.describe_chapter`, the rules the chapter and the
    reproduction page use) on that table. A claim whose rows the study does not hold reads
    "missing".
    """

    #: The chapter whose verdict rules read :meth:`to_frame` (a notebook stem).
    chapter: ClassVar[str] = ""

    def to_frame(self) -> pd.DataFrame:
        """The study's tidy table (:data:`RESULT_COLUMNS` first), as the chapter saves it."""
        raise NotImplementedError

    def describe(self) -> str:
        """Markdown verdict of :meth:`to_frame` by the chapter's rules (:func:`otlens.claims.describe_chapter`).

        The verdict rules are on the report floor, above the studies: they are looked up by
        module name when asked, so no study imports them.
        """
        claims = importlib.import_module("otlens.claims")
        return claims.describe_chapter(self.chapter, self.to_frame())
