"""Tidy results tables: one CSV per chapter under ``results/``.

Every chapter saves its table with :func:`save_results`; the book's prose, the reproduction
table and the tests read the same numbers back with :func:`load_results`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ._io import atomic_write
from .config import results_dir

__all__ = ["RESULT_COLUMNS", "save_results", "load_results"]

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
