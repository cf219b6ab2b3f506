"""Figures: one function per figure kind, drawn with seaborn from tidy results tables.

Every function takes a tidy :class:`pandas.DataFrame` (columns at least ``experiment``,
``model``, ``trained``, ``method``, ``layer``, ``seed``, ``metric``, ``value``; see
:mod:`otlens.results`) or, for heatmaps, a matrix, and returns the
:class:`matplotlib.figure.Figure` it drew. Nothing is computed here beyond filtering rows,
relabelling and the mean / confidence interval seaborn draws over seeds (bootstrapped with a
fixed seed, so figures are reproducible).

The look is set by :func:`plot_style` (seaborn ``whitegrid`` / ``notebook``, colourblind
palette) inside a context manager, so importing this module changes no global matplotlib
state. ``trained`` is shown as ``"trained"`` / ``"untrained"`` (always in that order and
colour), column names through :data:`COLUMN_LABELS` and metric names (y-axis labels, with
units) through :data:`METRIC_LABELS`; both dicts can be extended by callers.

This module needs matplotlib and seaborn; it is not imported by ``otlens/__init__``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ._validation import check_choice, check_int

__all__ = [
    "COLUMN_LABELS",
    "METRIC_LABELS",
    "TRAINED_LABELS",
    "plot_style",
    "plot_profile",
    "plot_entropy",
    "plot_layer_heatmap",
    "plot_layer_heatmaps",
    "plot_metric_bars",
]

#: How the boolean ``trained`` column is shown (legend entries), in this order.
TRAINED_LABELS = {True: "trained", False: "untrained"}

#: Display names of results columns (axis labels, legend titles).
COLUMN_LABELS = {
    "trained": "weights",
    "model": "model",
    "method": "method",
    "seed": "seed",
    "layer": "layer",
    "experiment": "experiment",
    "metric": "metric",
    "value": "value",
    "n_samples": "samples",
}

#: y-axis labels (with units) of known metrics; others show the metric name.
METRIC_LABELS = {
    "sinkhorn": "Sinkhorn OT cost (activation units²)",
    "sinkhorn_cost": "Sinkhorn OT cost (activation units²)",
    "sinkhorn_divergence": "Sinkhorn divergence (activation units²)",
    "exact": "exact OT cost (activation units²)",
    "ot_cost": "OT cost ⟨P, C⟩",
    "ot_divergence": "debiased Sinkhorn divergence",
    "w2_squared": "exact OT cost W₂²",
    "w2": "W₂ distance (activation units)",
    "norm_entropy": "norm entropy (normalised, 0–1)",
    "norm_entropy_normalized": "normalised norm entropy (0–1)",
    "renyi_entropy": "Rényi entropy (normalised, 0–1)",
    "prompt_entropy": "prompt entropy (normalised, 0–1)",
    "dataset_entropy": "dataset entropy (normalised, 0–1)",
}

_BOOT_SEED = 0  # seaborn bootstraps confidence intervals; a fixed seed makes figures reproducible
_PROFILE_XLABEL = "layer transition ℓ→ℓ+1"
_LAYER_XLABEL = "layer ℓ"


@contextlib.contextmanager
def plot_style() -> Iterator[None]:
    """Apply otlens's figure style for the duration of a ``with`` block.

    ``sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")`` inside
    :func:`matplotlib.rc_context`, so the previous rcParams come back on exit.

    Examples
    --------
    >>> with plot_style():
    ...     fig, ax = plt.subplots()
    >>> plt.close(fig)
    """
    with mpl.rc_context():
        sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")
        yield


def _detach(fig: Figure) -> Figure:
    """Remove a figure this module created from pyplot's figure manager and return it.

    The caller gets the figure (a notebook displays the returned object once); pyplot keeps no
    reference, so nothing is shown twice by an inline backend and no figure is leaked.
    """
    plt.close(fig)
    return fig


def _metric_label(metric: str | None, ylabel: str | None) -> str:
    if ylabel is not None:
        return ylabel
    if metric is None:
        return COLUMN_LABELS["value"]
    return METRIC_LABELS.get(metric, str(metric).replace("_", " "))


def _show(name: str | None) -> str | None:
    return None if name is None else COLUMN_LABELS.get(name, name)


def _trained_label(v: Any) -> Any:
    if isinstance(v, str):
        low = v.strip().lower()
        return {"true": "trained", "false": "untrained", "1": "trained", "0": "untrained"}.get(low, v)
    if isinstance(v, (bool, np.bool_, int, np.integer)):
        return TRAINED_LABELS[bool(v)]
    return v


def _prepare(df: Any, *, metric: str | None, columns: Sequence[str | None]) -> pd.DataFrame:
    """Validate, filter to ``metric``, relabel ``trained`` and rename columns for display."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"`df` must be a pandas DataFrame; got {type(df).__name__}")
    needed = [c for c in dict.fromkeys(columns) if c is not None]
    if metric is not None:
        needed.append("metric")
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"`df` lacks column(s) {missing}; has {list(df.columns)}")
    if metric is not None:
        present = sorted(map(str, pd.unique(df["metric"])))
        df = df[df["metric"] == metric]
        if df.empty:
            raise ValueError(f"`metric` {metric!r} has no rows in `df`; metrics present: {present}")
    if df.empty:
        raise ValueError("`df` has no rows to plot")
    data = df.copy()
    if "trained" in data.columns:
        data["trained"] = data["trained"].map(_trained_label)
    return data.rename(columns=COLUMN_LABELS)


def _order(data: pd.DataFrame, column: str | None) -> list | None:
    """Legend order: trained before untrained, else sorted (None when no such column)."""
    if column is None:
        return None
    values = list(pd.unique(data[column]))
    if column == COLUMN_LABELS["trained"]:
        known = [v for v in TRAINED_LABELS.values() if v in values]
        return known + sorted((v for v in values if v not in known), key=str)
    return sorted(values, key=str)


def _line_grid(
    df: Any,
    *,
    metric: str | None,
    xlabel: str,
    col: str | None,
    row: str | None,
    hue: str | None,
    style: str | None,
    errorbar: Any,
    n_boot: int,
    sharey: bool,
    title: str | None,
    ylabel: str | None,
    col_wrap: int | None,
    height: float,
    aspect: float,
) -> Figure:
    """One line panel per ``col`` value: mean over seeds with an error band, x = layer."""
    if metric is not None and not isinstance(metric, str):
        raise ValueError(f"`metric` must be a metric name (str) or None; got {metric!r}")
    check_int(n_boot, "n_boot", minimum=1)
    data = _prepare(df, metric=metric, columns=["layer", "value", col, row, hue, style])
    if metric is None and "metric" in data.columns and "metric" not in (col, row, hue, style):
        present = sorted(map(str, pd.unique(data["metric"])))
        if len(present) > 1:
            raise ValueError(
                f"`metric` is None but `df` holds several metrics {present}: pick one, or facet by it (row='metric')"
            )
    if row == "metric":
        data["metric"] = data["metric"].map(lambda m: METRIC_LABELS.get(m, str(m).replace("_", " ")))
    col_, row_, hue_, style_ = _show(col), _show(row), _show(hue), _show(style)
    marks = {"markers": True, "dashes": True} if style is not None else {"marker": "o"}
    with plot_style():
        grid = sns.relplot(
            data=data, kind="line", x="layer", y="value", col=col_, row=row_, hue=hue_, style=style_,
            hue_order=_order(data, hue_), style_order=_order(data, style_), col_order=_order(data, col_),
            row_order=_order(data, row_),
            col_wrap=col_wrap, errorbar=errorbar, n_boot=n_boot, seed=_BOOT_SEED, height=height, aspect=aspect,
            facet_kws={"sharey": sharey, "sharex": False}, **marks,
        )  # fmt: skip
        grid.set_axis_labels(xlabel, _metric_label(metric, ylabel))
        if row is None:
            grid.set_titles(col_template="{col_name}" if col is not None else "")
        else:
            grid.set_titles(template="{row_name} · {col_name}" if col is not None else "{row_name}")
        for ax in grid.axes.flat:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.tick_params(axis="y", labelleft=True)
        if title is not None:
            grid.figure.suptitle(title, y=1.03)
    return _detach(grid.figure)


def plot_profile(
    df: pd.DataFrame,
    *,
    metric: str | None,
    col: str | None = "model",
    row: str | None = None,
    hue: str | None = "trained",
    style: str | None = None,
    errorbar: Any = ("ci", 95),
    n_boot: int = 1000,
    sharey: bool = False,
    title: str | None = None,
    ylabel: str | None = None,
    col_wrap: int | None = None,
    height: float = 3.2,
    aspect: float = 1.3,
) -> Figure:
    """Layer-transition profile of a metric (e.g. adjacent-layer OT cost), one panel per model.

    Row ``layer = ℓ`` is the transition ℓ→ℓ+1. Lines are means over the rows sharing
    (panel, hue, style, layer), usually seeds, with a band given by ``errorbar``.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy results with columns ``metric``, ``layer`` (int), ``value`` and those named below.
    metric : str or None
        Which ``metric`` rows to plot (``None``: all rows, e.g. with ``row="metric"``); its y
        label comes from :data:`METRIC_LABELS`.
    col : str or None, default "model"
        Column giving one panel per value (``None``: one panel).
    row : str or None, default None
        Column giving one row of panels per value (e.g. ``"metric"`` with ``metric=None``).
    hue : str or None, default "trained"
        Column giving the line colour (``trained`` is shown as trained / untrained).
    style : str or None, default None
        Column giving the line style and marker (e.g. ``"method"``).
    errorbar : seaborn errorbar spec, default ("ci", 95)
        Band over repeated rows: ``("ci", 95)``, ``"sd"``, ``("pi", 50)``, or ``None``.
    n_boot : int, default 1000
        Bootstrap resamples for a ``"ci"`` band (seeded, so the band is reproducible).
    sharey : bool, default False
        Share the y axis across panels.
    title : str, optional
        Figure title above the panels.
    ylabel : str, optional
        Override the y label.
    col_wrap : int, optional
        Wrap panels after this many columns.
    height, aspect : float
        Size of each panel in inches (height) and its width / height ratio.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (of a seaborn ``FacetGrid``), one axes per panel.

    Raises
    ------
    ValueError
        If ``df`` is not a DataFrame, lacks a needed column, or has no row for ``metric``.
    """
    return _line_grid(
        df, metric=metric, xlabel=_PROFILE_XLABEL, col=col, row=row, hue=hue, style=style, errorbar=errorbar,
        n_boot=n_boot, sharey=sharey, title=title, ylabel=ylabel, col_wrap=col_wrap, height=height, aspect=aspect,
    )  # fmt: skip


def plot_entropy(
    df: pd.DataFrame,
    *,
    metric: str | None,
    col: str | None = "model",
    row: str | None = None,
    hue: str | None = "trained",
    style: str | None = None,
    errorbar: Any = ("ci", 95),
    n_boot: int = 1000,
    sharey: bool = False,
    title: str | None = None,
    ylabel: str | None = None,
    col_wrap: int | None = None,
    height: float = 3.2,
    aspect: float = 1.3,
) -> Figure:
    """Entropy per layer (row ``layer = ℓ`` is layer ℓ, 0 = embeddings), one panel per model.

    The same figure as :func:`plot_profile` with the x axis labelled "layer ℓ"; see there for
    the parameters. ``metric`` names the entropy rows (e.g. ``"norm_entropy"``,
    ``"prompt_entropy"``, ``"dataset_entropy"``).

    Returns
    -------
    matplotlib.figure.Figure
        The figure (of a seaborn ``FacetGrid``), one axes per panel.

    Raises
    ------
    ValueError
        If ``df`` is not a DataFrame, lacks a needed column, or has no row for ``metric``.
    """
    return _line_grid(
        df, metric=metric, xlabel=_LAYER_XLABEL, col=col, row=row, hue=hue, style=style, errorbar=errorbar,
        n_boot=n_boot, sharey=sharey, title=title, ylabel=ylabel, col_wrap=col_wrap, height=height, aspect=aspect,
    )  # fmt: skip


def _as_matrix(matrix: Any) -> tuple[np.ndarray, list | None, list | None]:
    """A finite-or-NaN 2-D float array (NaN cells are left blank), plus DataFrame labels."""
    rows = cols = None
    if isinstance(matrix, pd.DataFrame):
        rows, cols = list(matrix.index), list(matrix.columns)
        matrix = matrix.to_numpy()
    if hasattr(matrix, "detach"):  # torch.Tensor
        matrix = matrix.detach().cpu().numpy()
    try:
        m = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`matrix` must be a 2-D array of numbers; got {type(matrix).__name__}") from exc
    if m.ndim != 2 or 0 in m.shape:
        raise ValueError(f"`matrix` must be a non-empty 2-D array [n_layers, n_layers]; got shape {m.shape}")
    if np.isinf(m).any():
        raise ValueError(f"`matrix` contains {int(np.isinf(m).sum())} infinite value(s); use NaN for blank cells")
    return m, rows, cols


def _tick_labels(labels: Any, shape: tuple[int, int], rows: list | None, cols: list | None) -> tuple[list, list]:
    n_rows, n_cols = shape
    if labels is None:
        return rows or list(range(n_rows)), cols or list(range(n_cols))
    pair = (
        isinstance(labels, tuple) and len(labels) == 2
        and all(isinstance(x, Sequence) and not isinstance(x, str) for x in labels)
    )  # fmt: skip
    row_labels, col_labels = (list(labels[0]), list(labels[1])) if pair else (list(labels), list(labels))
    if len(row_labels) != n_rows or len(col_labels) != n_cols:
        raise ValueError(
            f"`labels` must give {n_rows} row and {n_cols} column label(s) (a sequence for a square matrix, "
            f"or a (row_labels, col_labels) pair); got {len(row_labels)} and {len(col_labels)}"
        )
    return row_labels, col_labels


def plot_layer_heatmap(
    matrix: Any,
    *,
    labels: Any = None,
    title: str | None = None,
    ax: plt.Axes | None = None,
    cmap: str = "viridis",
    annotate: bool = False,
    cbar_label: str = "OT cost (activation units²)",
    xlabel: str = "layer",
    ylabel: str = "layer",
    fmt: str = ".2g",
    vmin: float | None = None,
    vmax: float | None = None,
) -> Figure:
    """Heatmap of a layer-by-layer matrix (e.g. the OT cost between all pairs of layers).

    Row ``i``, column ``j`` is drawn at row ``i`` from the top (origin upper left), with square
    cells and a labelled colour bar; NaN cells are left blank.

    Parameters
    ----------
    matrix : array-like, torch.Tensor or pandas.DataFrame, shape (n_rows, n_cols)
        The values (usually square, ``[n_layers, n_layers]``). A DataFrame's index and
        columns are used as tick labels unless ``labels`` is given.
    labels : sequence or (row_labels, col_labels), optional
        Tick labels: one sequence for both axes of a square matrix, or a pair. Default: the
        row / column indices.
    title : str, optional
        Axes title.
    ax : matplotlib.axes.Axes, optional
        Draw into this axes (its figure is returned); by default a new figure is made.
    cmap : str, default "viridis"
        Colour map.
    annotate : bool, default False
        Write each value in its cell (formatted with ``fmt``).
    cbar_label : str, default "OT cost (activation units²)"
        Colour-bar label: what the values are, with units.
    xlabel, ylabel : str, default "layer"
        Axis labels.
    fmt : str, default ".2g"
        Number format of the annotations.
    vmin, vmax : float, optional
        Colour scale limits (default: the data range).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the heatmap axes and its colour-bar axes.

    Raises
    ------
    ValueError
        If ``matrix`` is not a non-empty 2-D numeric array, holds ±inf, or ``labels`` does not
        match its shape.
    """
    m, rows, cols = _as_matrix(matrix)
    row_labels, col_labels = _tick_labels(labels, m.shape, rows, cols)
    own = ax is None
    with plot_style():
        if ax is None:
            side = float(np.clip(0.45 * max(m.shape) + 2.0, 4.0, 11.0))
            _, ax = plt.subplots(figsize=(side + 1.0, side))
        sns.heatmap(
            m, ax=ax, cmap=cmap, square=True, annot=annotate, fmt=fmt, mask=np.isnan(m), vmin=vmin, vmax=vmax,
            xticklabels=col_labels, yticklabels=row_labels, cbar_kws={"label": cbar_label},
        )  # fmt: skip
        ax.grid(False)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.tick_params(axis="x", labelrotation=0)
        ax.tick_params(axis="y", labelrotation=0)
        if title is not None:
            ax.set_title(title)
    return _detach(ax.figure) if own else ax.figure


def plot_layer_heatmaps(
    matrices: dict[str, Any],
    *,
    title: str | None = None,
    cmap: str = "viridis",
    cbar_label: str = "debiased OT divergence",
) -> Figure:
    """Several layer-by-layer matrices side by side on one colour scale (e.g. trained vs untrained).

    ``matrices`` maps a panel title to a matrix accepted by :func:`plot_layer_heatmap`.
    """
    if not isinstance(matrices, dict) or not matrices:
        raise ValueError(f"`matrices` must be a non-empty dict of title -> matrix; got {type(matrices).__name__}")
    arrays = {k: _as_matrix(v)[0] for k, v in matrices.items()}
    vmin = float(min(np.nanmin(a) for a in arrays.values()))
    vmax = float(max(np.nanmax(a) for a in arrays.values()))
    side = float(np.clip(0.3 * max(max(a.shape) for a in arrays.values()) + 2.5, 3.5, 7.0))
    with plot_style():
        fig, axes = plt.subplots(1, len(arrays), figsize=(len(arrays) * (side + 1.0), side), squeeze=False)
        for ax, (name, m) in zip(axes[0], arrays.items()):
            plot_layer_heatmap(m, ax=ax, title=name, cmap=cmap, cbar_label=cbar_label, vmin=vmin, vmax=vmax)
        if title is not None:
            fig.suptitle(title)
        fig.tight_layout()
    return _detach(fig)


def plot_metric_bars(
    df: pd.DataFrame,
    *,
    x: str,
    y: str = "value",
    hue: str | None = None,
    metric: str | None = None,
    kind: str = "bar",
    errorbar: Any = ("ci", 95),
    n_boot: int = 1000,
    order: Sequence | None = None,
    hue_order: Sequence | None = None,
    ax: plt.Axes | None = None,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
) -> Figure:
    """Bar (or point) plot of a score per category with error bars, e.g. a table of scores.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy results; rows sharing (``x``, ``hue``) are averaged with an error bar.
    x : str
        Category column on the x axis (e.g. ``"method"`` or ``"model"``).
    y : str, default "value"
        Numeric column on the y axis.
    hue : str, optional
        Column splitting each category into coloured bars (``trained`` is shown as
        trained / untrained).
    metric : str, optional
        Keep only the rows of this metric (and label the y axis with it).
    kind : {"bar", "point"}, default "bar"
        Bars from zero, or points with error bars (better for scores far from zero).
    errorbar : seaborn errorbar spec, default ("ci", 95)
        Error bar over repeated rows (``None`` for none).
    n_boot : int, default 1000
        Bootstrap resamples for a ``"ci"`` error bar (seeded).
    order, hue_order : sequence, optional
        Category orders (in the displayed values, e.g. ``["trained", "untrained"]``).
    ax : matplotlib.axes.Axes, optional
        Draw into this axes; by default a new figure is made.
    title, xlabel, ylabel : str, optional
        Title and axis-label overrides.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes.

    Raises
    ------
    ValueError
        If ``df`` is not a DataFrame, lacks a named column, has no row for ``metric``, or
        ``kind`` is unknown.
    """
    check_choice(kind, "kind", ("bar", "point"))
    check_int(n_boot, "n_boot", minimum=1)
    data = _prepare(df, metric=metric, columns=[x, y, hue])
    own = ax is None
    x_, y_, hue_ = _show(x), _show(y), _show(hue)
    common = dict(
        data=data, x=x_, y=y_, hue=hue_, order=order if order is not None else _order(data, x_),
        hue_order=hue_order if hue_order is not None else _order(data, hue_), errorbar=errorbar,
        n_boot=n_boot, seed=_BOOT_SEED, capsize=0.15,
    )  # fmt: skip
    with plot_style():
        if ax is None:
            n = data[x_].nunique()
            _, ax = plt.subplots(figsize=(float(np.clip(1.0 + 0.9 * n, 4.0, 12.0)), 3.6))
        if kind == "bar":
            sns.barplot(ax=ax, **common)
        else:
            sns.pointplot(ax=ax, dodge=0.3 if hue is not None else False, linestyles="none", **common)
        ax.set_xlabel(xlabel if xlabel is not None else x_)
        ax.set_ylabel(_metric_label(metric, ylabel) if y == "value" else (ylabel or y_))
        if hue is not None and ax.get_legend() is not None:  # beside the axes, never over a bar
            sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0), title=hue_, frameon=False)
        if title is not None:
            ax.set_title(title)
    return _detach(ax.figure) if own else ax.figure
