"""Tidy results tables: one CSV per chapter under ``results/``.

Every chapter saves its table with :func:`save_results`; the book's prose, the reproduction
table and the tests read the same numbers back with :func:`load_results`. :func:`format_table`
prepares a table for a page: fixed decimals, no ``NaN``, ``None`` or ``-0.000``. A study returns a
:class:`StudyResult`: its tables, the tidy table the chapter saves (``to_frame()``) and the
verdict on that table (``describe()``).
"""

from __future__ import annotations

import importlib
import math
import numbers
from pathlib import Path
from typing import ClassVar

import pandas as pd

from ._io import atomic_write
from .config import results_dir

__all__ = ["RESULT_COLUMNS", "format_table", "save_results", "load_results", "StudyResult"]

#: Columns every results table has (more are allowed).
RESULT_COLUMNS = ("experiment", "model", "trained", "method", "layer", "seed", "metric", "value")


def save_results(df: pd.DataFrame, name: str, *, folder: str | Path | None = None) -> None:
    """Validate a tidy results table and write it atomically to ``<folder>/<name>.csv``.

    Returns nothing, so a notebook cell that ends with this call shows no output (a returned
    path was displayed as ``PosixPath('…/results/<name>.csv')`` on the book's pages).

    Parameters
    ----------
    df : pandas.DataFrame
        The table, with the columns of :data:`RESULT_COLUMNS`.
    name : str
        File name without ``.csv``.
    folder : str or pathlib.Path, optional
        Where to write; default :func:`otlens.config.results_dir` (``$OTLENS_RESULTS`` or
        ``results/``).

    See Also
    --------
    load_results : Read the table back.
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
    """Read a results table written by :func:`save_results`.

    Parameters
    ----------
    name : str
        File name without ``.csv``.
    folder : str or pathlib.Path, optional
        Where to read; default :func:`otlens.config.results_dir`.

    Returns
    -------
    pandas.DataFrame
        The table.
    """
    folder = Path(folder) if folder is not None else results_dir()
    path = folder / f"{name}.csv"
    if not path.exists():
        raise FileNotFoundError(f"no results table {path}; run the chapter first (`otlens run notebooks/{name}.md`)")
    return pd.read_csv(path)


def _is_missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isnan(value)


def _format_number(value: float, digits: int, *, integral: bool) -> str:
    if integral:
        return f"{int(value):,}"
    if value != 0 and abs(value) < 0.5 * 10.0 ** -digits:  # would print as 0.000: keep its size
        return f"{value:.1e}"
    if abs(value) >= 1e6:
        return f"{value:.{max(digits - 1, 1)}e}"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no -0.000


def format_table(df: pd.DataFrame, *, digits: int = 3, missing: str = "–") -> pd.DataFrame:
    """A copy of ``df`` for display: every number a string with ``digits`` decimals.

    ``NaN``, ``None`` and ``NA`` show as ``missing``; a value that rounds to zero shows as
    ``0.000``, never ``-0.000``, unless it is not zero, in which case it keeps its size in
    scientific notation (``3.2e-05``); values of a million and more are written in scientific
    notation too. A column of whole numbers (integers, or floats that are all whole, such as an
    integer column with a missing value) is written as integers with thousands separators;
    booleans and strings are left as they are. The index and the column names are kept.

    Parameters
    ----------
    df : pandas.DataFrame
        The table (a Series is taken as a one-column table).
    digits : int
        Decimals of non-integer numbers.
    missing : str
        What a missing value shows.

    Returns
    -------
    pandas.DataFrame
        Of strings (object columns), same shape, index and columns as ``df``.

    Raises
    ------
    TypeError
        If ``df`` is not a DataFrame or Series.
    ValueError
        If ``digits`` is not an integer between 0 and 12.
    """
    if isinstance(df, pd.Series):
        df = df.to_frame()
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"`df` must be a pandas DataFrame or Series; got {type(df).__name__}")
    if isinstance(digits, bool) or not isinstance(digits, numbers.Integral) or not 0 <= digits <= 12:
        raise ValueError(f"`digits` must be an integer from 0 to 12; got {digits!r}")
    out = df.astype(object).copy()
    for j in range(df.shape[1]):
        column = df.iloc[:, j]
        values = [v for v in column if not _is_missing(v)]
        numeric = [v for v in values if isinstance(v, numbers.Real) and not isinstance(v, bool)]
        integral = bool(numeric) and all(float(v).is_integer() and abs(v) < 1e15 for v in numeric)

        def show(v, integral=integral):
            if _is_missing(v):
                return missing
            if isinstance(v, numbers.Real) and not isinstance(v, bool):
                return _format_number(float(v), int(digits), integral=integral)
            return v

        out.iloc[:, j] = [show(v) for v in column]
    return out


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

        Returns
        -------
        str
            The chapter's claims and their verdicts, as Markdown.
        """
        claims = importlib.import_module("otlens.claims")
        return claims.describe_chapter(self.chapter, self.to_frame())
