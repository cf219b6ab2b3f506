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

    Yields
    ------
    None
        Control returns to the ``with`` block with the style applied.

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
    if isinstance(df, pd.DataFrame) and df.empty:  # a selection this run did not compute (e.g. a method left out)
        return _not_computed(xlabel=xlabel, ylabel=_metric_label(metric, ylabel), title=title,
                             height=height, aspect=aspect)
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


NOT_COMPUTED = "not computed in this run"  #: the text of a line figure whose data frame has no rows


def _not_computed(*, xlabel: str, ylabel: str, title: str | None, height: float, aspect: float) -> Figure:
    """One empty panel saying :data:`NOT_COMPUTED` (a chapter run with a subset of its variants)."""
    with plot_style():
        fig, ax = plt.subplots(figsize=(height * aspect, height))
        ax.text(0.5, 0.5, NOT_COMPUTED, ha="center", va="center", transform=ax.transAxes, color="0.4")
        ax.set(xlabel=xlabel, ylabel=ylabel, xticks=[], yticks=[])
        if title is not None:
            ax.set_title(title)
    return _detach(fig)


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
        The figure (of a seaborn ``FacetGrid``), one axes per panel. A ``df`` without rows
        (a selection the run did not compute, such as a method left out of a chapter's
        ``methods``) gives one empty panel that says so, not an error.

    Raises
    ------
    ValueError
        If ``df`` is not a DataFrame, lacks a needed column, or has rows but none for ``metric``.
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

    The same figure as :func:`plot_profile` with the x axis labelled "layer ℓ".

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy entropy rows (:func:`otlens.depth.entropy_profile`).
    metric : str or None
        The entropy rows to draw (e.g. ``"norm_entropy"``, ``"prompt_entropy"``,
        ``"dataset_entropy"``).
    col, row, hue, style, errorbar, n_boot, sharey, title, ylabel, col_wrap, height, aspect : optional
        As for :func:`plot_profile`.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (of a seaborn ``FacetGrid``), one axes per panel. A ``df`` without rows
        (a selection the run did not compute, such as a method left out of a chapter's
        ``methods``) gives one empty panel that says so, not an error.

    Raises
    ------
    ValueError
        If ``df`` is not a DataFrame, lacks a needed column, or has rows but none for ``metric``.
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
    matrix : array-like, torch.Tensor or pandas.DataFrame, [n_rows, n_cols]
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

    Parameters
    ----------
    matrices : dict of str to array-like
        Panel title -> a matrix accepted by :func:`plot_layer_heatmap` (``[n_rows, n_cols]``).
    title : str, optional
        Figure title.
    cmap : str
        Colour map.
    cbar_label : str
        Label of the shared colour bar.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
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


# --------------------------------------------------------------------------------------------
# Chapter 3: attention as optimal transport


def plot_depth_error(df: pd.DataFrame, *, metric: str = "plan_error", title: str | None = None) -> Figure:
    """Error against depth (log-log), one panel per list length ``n``, one line per method.

    Bands are 95% intervals over seeds.

    Parameters
    ----------
    df : pandas.DataFrame
        :func:`otlens.attention_ot.sorting_study`'s table.
    metric : str
        The error metric drawn.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    data = _prepare(df, metric=metric, columns=["layer", "method", "n"])
    data = data[data["layer"] > 0]
    lengths = sorted(data["n"].unique())
    with plot_style():
        fig, axes = plt.subplots(1, len(lengths), figsize=(3.2 * len(lengths) + 1.5, 3.2), sharey=True, squeeze=False)
        for ax, n in zip(axes[0], lengths):
            sns.lineplot(data=data[data["n"] == n], x="layer", y="value", hue="method", ax=ax, marker="o",
                         errorbar=("ci", 95), legend=ax is axes[0][-1])
            ax.set_xscale("log", base=2)
            if metric != "sort_accuracy" and metric != "sorted":
                ax.set_yscale("log")
            ax.set_title(f"n = {n}")
            ax.set_xlabel("depth (layers) / Sinkhorn iterations")
        axes[0][0].set_ylabel(_metric_label(metric, None))
        if axes[0][-1].get_legend() is not None:
            sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        if title:
            fig.suptitle(title)
    return _detach(fig)


def plot_sorted_lists(examples: Sequence[tuple[Any, Any]], *, title: str | None = None) -> Figure:
    """Input lists and the transformer's output order, one panel per list.

    Each panel plots the values at their input index (grey) and at their output position
    (colour): a correct sort is an increasing curve.

    Parameters
    ----------
    examples : sequence of (array-like, array-like)
        ``(values, rank)`` pairs: ``rank[i]`` is the position the transformer gives ``values[i]``
        (:func:`otlens.attention_ot.sort_examples`).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    if not examples:
        raise ValueError("`examples` must hold at least one (values, rank) pair")
    with plot_style():
        fig, axes = plt.subplots(1, len(examples), figsize=(3.0 * len(examples) + 0.5, 3.0), squeeze=False)
        for ax, (values, rank) in zip(axes[0], examples):
            v, r = np.asarray(values, dtype=float), np.asarray(rank)
            ax.plot(np.arange(len(v)), v, "o", color="0.7", ms=3, label="input")
            ax.plot(r, v, ".-", color="C0", ms=4, label="transformer output")
            ok = np.array_equal(v[np.argsort(r, kind="stable")], np.sort(v)) and len(set(r.tolist())) == len(v)
            ax.set_title(f"n = {len(v)}: {'sorted' if ok else 'not sorted'}")
            ax.set_xlabel("position")
        axes[0][0].set_ylabel("value")
        axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        if title:
            fig.suptitle(title)
    return _detach(fig)


def plot_alignment_maps(maps: dict, source_words: Sequence[str], target_words: Sequence[str], *,
                        gold: Any = None, title: str | None = None) -> Figure:
    """Soft alignments (target words as rows, source words as columns), side by side.

    Each map is shown column-normalised (each target word's distribution over source words).

    Parameters
    ----------
    maps : dict of str to array-like
        Panel title -> a ``[n_source, n_target]`` matrix.
    source_words : sequence of str
        The source words (columns).
    target_words : sequence of str
        The target words (rows).
    gold : set of (i, j), optional
        Gold links, marked with red dots.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    if not maps:
        raise ValueError("`maps` must hold at least one matrix")
    ns, nt = len(source_words), len(target_words)
    with plot_style():
        fig, axes = plt.subplots(1, len(maps), figsize=(0.22 * ns * len(maps) + 2.5, 0.22 * nt + 2.0), squeeze=False)
        for ax, (name, M) in zip(axes[0], maps.items()):
            M = np.asarray(M.detach().cpu() if hasattr(M, "detach") else M, dtype=float)
            if M.shape != (ns, nt):
                raise ValueError(f"map {name!r} must have shape ({ns}, {nt}); got {M.shape}")
            M = (M / np.clip(M.sum(0, keepdims=True), 1e-300, None)).T
            ax.imshow(M, cmap="Blues", vmin=0, vmax=1, aspect="auto")
            if gold:
                gi = np.array(sorted(gold))
                ax.plot(gi[:, 0], gi[:, 1], "o", color="red", ms=2.5)
            ax.set_xticks(range(ns), list(source_words), rotation=90, fontsize=6)
            ax.set_yticks(range(nt), list(target_words) if ax is axes[0][0] else [""] * nt, fontsize=6)
            ax.set_title(name, fontsize=9)
        if title:
            fig.suptitle(title)
    return _detach(fig)


def plot_alignment_by_layer(df: pd.DataFrame, *, metric: str = "accuracy", hue: str = "method",
                            ylabel: str | None = None, title: str | None = None) -> Figure:
    """A per-layer alignment score (or agreement), one line per ``hue`` value.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy rows with ``layer``, ``metric``, ``value`` and the ``hue`` column.
    metric : str
        The metric drawn.
    hue : str
        The column whose values get one line each.
    ylabel : str, optional
        Label of the y axis (default: from the metric).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    data = _prepare(df, metric=metric, columns=["layer", hue])
    with plot_style():
        fig, ax = plt.subplots(figsize=(6.5, 3.4))
        sns.lineplot(data=data, x="layer", y="value", hue=hue, marker="o", ax=ax, errorbar=None)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("block")
        ax.set_ylabel(_metric_label(metric, ylabel))
        if ax.get_legend() is not None:
            sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        if title:
            ax.set_title(title)
    return _detach(fig)


__all__ += ["plot_depth_error", "plot_sorted_lists", "plot_alignment_maps", "plot_alignment_by_layer"]


# --------------------------------------------------------------------------------------------
# Hierarchical OT (chapter 2)


def plot_couplings(couplings: dict[str, Any], *, title: str | None = None,
                   xlabel: str = "target layer", ylabel: str = "source layer",
                   cbar_label: str = "share of the source layer's mass") -> Figure:
    """HOT layer couplings side by side, one panel per model pair (shapes may differ).

    Each row is shown as the share of that source layer's mass (``L · P``, rows sum to 1), on
    one 0–1 colour scale.

    Parameters
    ----------
    couplings : dict of str to array-like
        Panel title -> an ``[L, M]`` coupling ``P``.
    title : str, optional
        Figure title.
    xlabel, ylabel : str
        Axis labels.
    cbar_label : str
        Label of the colour bar.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    if not isinstance(couplings, dict) or not couplings:
        raise ValueError(f"`couplings` must be a non-empty dict of title -> [L, M] matrix; got {type(couplings).__name__}")
    mats = {}
    for name, P in couplings.items():
        m = _as_matrix(P)[0]
        mats[name] = m / np.where(m.sum(1, keepdims=True) > 0, m.sum(1, keepdims=True), 1.0)
    widths = [max(2.2, 0.32 * m.shape[1] + 1.4) for m in mats.values()]
    height = float(np.clip(0.32 * max(m.shape[0] for m in mats.values()) + 1.6, 2.8, 7.0))
    with plot_style():
        fig, axes = plt.subplots(1, len(mats), figsize=(sum(widths) + 1.0, height), squeeze=False,
                                 gridspec_kw={"width_ratios": widths})
        for k, (ax, (name, m)) in enumerate(zip(axes[0], mats.items())):
            last = k == len(mats) - 1
            sns.heatmap(m, ax=ax, cmap="mako_r", vmin=0, vmax=1, square=True, cbar=last,
                        cbar_kws={"label": cbar_label} if last else None, linewidths=0.3, linecolor="white")
            ax.set_title(name, fontsize=10)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel if k == 0 else "")
            ax.tick_params(axis="both", labelrotation=0, labelsize=7)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
    return _detach(fig)


def plot_reconstruction(actual: Any, predicted: Any, *, n_units: int = 6, seed: int = 0,
                        title: str | None = None) -> Figure:
    """Held-out responses of a few units against their reconstruction, one colour per unit.

    ``n_units`` units are drawn at random (seeded) and the legend gives each one's Pearson
    correlation.

    Parameters
    ----------
    actual : array-like, [n_stimuli, n_units]
        One layer's held-out responses.
    predicted : array-like, [n_stimuli, n_units]
        Their reconstruction.
    n_units : int
        Units drawn.
    seed : int
        Seed of the draw.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    a, p = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    if a.ndim != 2 or a.shape != p.shape:
        raise ValueError(f"`actual` and `predicted` must be 2-D of one shape; got {a.shape} and {p.shape}")
    n_units = check_int(n_units, "n_units", minimum=1)
    units = np.sort(np.random.default_rng(seed).choice(a.shape[1], size=min(n_units, a.shape[1]), replace=False))
    rows = []
    for u in units:
        r = np.corrcoef(a[:, u], p[:, u])[0, 1]
        rows += [(f"unit {u} (r = {r:.2f})", x, y) for x, y in zip(a[:, u], p[:, u])]
    data = pd.DataFrame(rows, columns=["unit", "actual", "predicted"])
    with plot_style():
        fig, ax = plt.subplots(figsize=(6.2, 4.2))
        sns.scatterplot(data=data, x="actual", y="predicted", hue="unit", s=14, alpha=0.7, ax=ax, linewidth=0)
        ax.set_xlabel("held-out response (standardised)")
        ax.set_ylabel("reconstruction from the target")
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, title=None)
        if title:
            ax.set_title(title)
    return _detach(fig)


__all__ += ["plot_couplings", "plot_reconstruction"]


# ------------------------------------------------------------------------------------------
# Training dynamics (issue 6): loss, per-checkpoint profiles, the information plane


def _steps_palette(steps: Sequence[int]) -> dict:
    """Checkpoint step -> colour, light (early) to dark (late), evenly spaced in log(step + 1)."""
    steps = sorted(set(int(s) for s in steps))
    colours = sns.color_palette("viridis_r", len(steps))
    return dict(zip(steps, colours))


def plot_loss_curve(log: pd.DataFrame, *, title: str | None = None, smooth: int = 20) -> Figure:
    """Training and validation loss against the step (symlog x axis: step 0 is shown).

    Parameters
    ----------
    log : pandas.DataFrame
        Columns ``step, metric, value`` with ``metric`` in ``train_loss`` / ``val_loss``
        (:attr:`otlens.training.TrainingRun.log`); an optional ``model`` column draws one curve
        per model.
    smooth : int, default 20
        Rolling-mean window of the training loss (in steps).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    if not isinstance(log, pd.DataFrame) or not {"step", "metric", "value"} <= set(log.columns):
        raise ValueError("`log` must be a DataFrame with columns step, metric, value")
    check_int(smooth, "smooth", minimum=1)
    data = log.copy()
    if "model" not in data.columns:
        data["model"] = ""
    with plot_style():
        fig, ax = plt.subplots(figsize=(7.0, 3.8))
        for (model, g), colour in zip(data.groupby("model", sort=True), sns.color_palette("colorblind")):
            tr = g[g.metric == "train_loss"].sort_values("step")
            va = g[g.metric == "val_loss"].sort_values("step")
            label = f"{model} " if model else ""
            if not tr.empty:
                ax.plot(tr.step, tr.value.rolling(smooth, min_periods=1).mean(), color=colour, alpha=0.6,
                        label=f"{label}train (rolling mean)")
            if not va.empty:
                ax.plot(va.step, va.value, "o--", color=colour, label=f"{label}validation (checkpoints)")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("training step")
        ax.set_ylabel("cross-entropy (nats / character)")
        ax.legend(frameon=False, fontsize="small")
        if title is not None:
            ax.set_title(title)
    return _detach(fig)


def plot_checkpoint_heatmap(df: pd.DataFrame, *, metric: str, title: str | None = None,
                            label: str | None = None) -> Figure:
    """Heatmap of a per-layer metric, checkpoint (rows, with validation loss) × layer (columns).

    Values are averaged over seeds.

    Parameters
    ----------
    df : pandas.DataFrame
        Rows of one model with columns ``step, layer, metric, value`` (and ``val_loss``).
    metric : str
        The metric drawn.
    title : str, optional
        Figure title.
    label : str, optional
        Label of the colour bar (default: from the metric).

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    data = _prepare(df, metric=metric, columns=["step", "layer", "value"])
    mat = data.groupby(["step", "layer"])["value"].mean().unstack("layer").sort_index()
    rows = [f"{s}" + (f"  (loss {data[data.step == s].val_loss.iloc[0]:.2f})" if "val_loss" in data else "")
            for s in mat.index]
    with plot_style():
        fig, ax = plt.subplots(figsize=(1.2 + 0.7 * mat.shape[1] + 1.8, 0.9 + 0.38 * mat.shape[0]))
        sns.heatmap(mat.to_numpy(), ax=ax, cmap="mako_r", annot=mat.shape[1] <= 12, fmt=".2g",
                    xticklabels=list(mat.columns), yticklabels=rows,
                    cbar_kws={"label": label or _metric_label(metric, None)})
        ax.set_xlabel(_PROFILE_XLABEL if metric in ("ot_divergence", "ot_cost", "w2_squared") else _LAYER_XLABEL)
        ax.set_ylabel("checkpoint step")
        ax.tick_params(axis="y", rotation=0)
        if title is not None:
            ax.set_title(title)
    return _detach(fig)


def plot_over_training(df: pd.DataFrame, *, metrics: Sequence[str], title: str | None = None,
                       sharey: bool = False) -> Figure:
    """One panel per metric: the per-layer curve of every checkpoint, coloured by step (light = early).

    Parameters
    ----------
    df : pandas.DataFrame
        Rows of one model with columns ``step, layer, metric, value`` (seeds averaged).
    metrics : sequence of str
        The metrics, one panel each.
    title : str, optional
        Figure title.
    sharey : bool
        Share the y axis between panels.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    if isinstance(metrics, str) or not metrics:
        raise ValueError(f"`metrics` must be a non-empty list of metric names; got {metrics!r}")
    parts = [_prepare(df, metric=m, columns=["step", "layer", "value"]) for m in metrics]
    palette = _steps_palette(pd.concat(parts).step)
    with plot_style():
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), sharey=sharey, squeeze=False)
        for ax, metric, data in zip(axes[0], metrics, parts):
            curves = data.groupby(["step", "layer"])["value"].mean().unstack("layer").sort_index()
            for step, curve in curves.iterrows():
                ax.plot(curve.index, curve.to_numpy(), "o-", ms=3, color=palette[int(step)], label=str(step))
            ax.set_xlabel(_PROFILE_XLABEL if metric.startswith(("ot_", "w2")) else _LAYER_XLABEL)
            ax.set_ylabel(_metric_label(metric, None))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[0, -1].legend(title="step", frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
        if title is not None:
            fig.suptitle(title, y=1.02)
        fig.tight_layout()
    return _detach(fig)


def plot_information_plane(df: pd.DataFrame, *, x: str = "mi_xz", y: str = "mi_yz", title: str | None = None) -> Figure:
    """Information-plane trajectories: ``(I(X;Z), I(Y;Z))`` of each layer across checkpoints.

    One line per layer (colour), through the checkpoints in step order; marker size grows with
    the step and the final checkpoint is ringed.

    Parameters
    ----------
    df : pandas.DataFrame
        Rows of one model with columns ``step, layer, metric, value``.
    x, y : str
        The metrics on each axis.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    dx = _prepare(df, metric=x, columns=["step", "layer", "value"])
    dy = _prepare(df, metric=y, columns=["step", "layer", "value"])
    both = (dx.groupby(["layer", "step"]).value.mean().rename("x").to_frame()
            .join(dy.groupby(["layer", "step"]).value.mean().rename("y"), how="inner").reset_index())
    layers = sorted(both.layer.unique())
    colours = dict(zip(layers, sns.color_palette("rocket", len(layers))))
    with plot_style():
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        for layer, g in both.groupby("layer"):
            g = g.sort_values("step")
            size = 12 + 50 * np.arange(len(g)) / max(1, len(g) - 1)
            ax.plot(g.x, g.y, "-", color=colours[layer], alpha=0.7)
            ax.scatter(g.x, g.y, s=size, color=colours[layer], label=f"layer {layer}", zorder=3)
            ax.scatter(g.x.iloc[-1:], g.y.iloc[-1:], s=140, facecolors="none", edgecolors=colours[layer], zorder=4)
        ax.set_xlabel("I(X; Z) (nats) — input context kept")
        ax.set_ylabel("I(Y; Z) (nats) — next token predicted")
        ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
        if title is not None:
            ax.set_title(title)
    return _detach(fig)


def plot_metric_vs_loss(df: pd.DataFrame, *, metric: str, title: str | None = None) -> Figure:
    """A per-layer metric against the checkpoint's validation loss.

    One line per layer; the x axis is reversed, so training runs left to right.

    Parameters
    ----------
    df : pandas.DataFrame
        Rows of one model with columns ``step, layer, metric, value`` and ``val_loss``.
    metric : str
        The metric drawn.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    data = _prepare(df, metric=metric, columns=["val_loss", "layer", "value"])
    agg = data.groupby(["layer", "val_loss"]).value.mean().reset_index()
    with plot_style():
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        sns.lineplot(data=agg, x="val_loss", y="value", hue="layer", marker="o", palette="rocket", ax=ax)
        ax.invert_xaxis()
        ax.set_xlabel("validation loss (nats / character; training runs left → right)")
        ax.set_ylabel(_metric_label(metric, None))
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0), title="layer", frameon=False)
        if title is not None:
            ax.set_title(title)
    return _detach(fig)


METRIC_LABELS.update({
    "mi_xz": "I(X; Z) (nats)",
    "mi_yz": "I(Y; Z) (nats)",
    "mi_yz_probe": "I(Y; Z), probe bound (nats)",
    "compression_ratio": "I(Y; Z) / I(X; Z)",
})

__all__ += ["plot_loss_curve", "plot_checkpoint_heatmap", "plot_over_training", "plot_information_plane",
            "plot_metric_vs_loss"]


# --------------------------------------------------------------------------- OT at scale (chapter 4)
def plot_scaling(df: pd.DataFrame, *, memory: str | None = None, title: str | None = None) -> Figure:
    """Time and memory against the number of points, one line per solver, log-log.

    Values below 1 MiB are drawn at 1 MiB (a log axis has no 0).

    Parameters
    ----------
    df : pandas.DataFrame
        Columns ``solver``, ``n``, ``time_s`` and the ``memory`` column (one row per solver and
        size, e.g. from ``benchmarks/bench_scale.py``).
    memory : str, optional
        The memory column; default ``solver_mem_mb`` (the solver's own rise of the process's
        peak memory) when ``df`` has it, else ``peak_mem_mb`` (the whole process: interpreter,
        libraries and inputs included).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        One figure with two panels (time, memory).
    """
    if memory is None:
        memory = "solver_mem_mb" if "solver_mem_mb" in getattr(df, "columns", ()) else "peak_mem_mb"
    check_choice(memory, "memory", ("solver_mem_mb", "peak_mem_mb"))
    data = _prepare(df, metric=None, columns=["solver", "n", "time_s", memory])
    data = data.rename(columns={COLUMN_LABELS.get("solver", "solver"): "solver"})
    data[memory] = data[memory].clip(lower=1.0)
    mem_label = "solver's own peak memory (MiB)" if memory == "solver_mem_mb" else "process peak memory (MiB)"
    with plot_style():
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, col, label in [(axes[0], "time_s", "time (s)"), (axes[1], memory, mem_label)]:
            sns.lineplot(data=data, x="n", y=col, hue="solver", style="solver", markers=True, dashes=False,
                         hue_order=sorted(data.solver.unique()), ax=ax, errorbar=None)
            ax.set(xscale="log", yscale="log", xlabel="points per cloud n", ylabel=label)
        axes[0].get_legend().remove()
        sns.move_legend(axes[1], "upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        if title is not None:
            fig.suptitle(title)
        fig.tight_layout()
    return _detach(fig)


def plot_bijection(x: Any, y: Any, permutation: Any, *, n_lines: int = 400, seed: int = 0,
                   title: str | None = None) -> Figure:
    """Two 2-D clouds and segments ``x_i -> y_{permutation_i}`` for a random subset of points.

    Parameters
    ----------
    x, y : array-like, [n, 2]
        The two clouds.
    permutation : array-like of int, [n]
        The bijection (e.g. :attr:`otlens.ot.HiRefResult.permutation`).
    n_lines : int
        Segments drawn.
    seed : int
        Seed of the subset.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    x, y = (np.asarray(v.detach().cpu() if hasattr(v, "detach") else v, dtype=float) for v in (x, y))
    perm = np.asarray(permutation.detach().cpu() if hasattr(permutation, "detach") else permutation)
    if x.ndim != 2 or x.shape[1] != 2 or y.shape != x.shape or perm.shape != (x.shape[0],):
        raise ValueError(f"`x`, `y` must be [n, 2] and `permutation` [n]; got {x.shape}, {y.shape}, {perm.shape}")
    check_int(n_lines, "n_lines", minimum=0)
    pick = np.random.default_rng(seed).permutation(x.shape[0])[:n_lines]
    with plot_style():
        fig, ax = plt.subplots(figsize=(6, 5))
        segs = np.stack([x[pick], y[perm[pick]]], 1)
        ax.add_collection(mpl.collections.LineCollection(segs, colors="0.6", linewidths=0.5, alpha=0.6))
        ax.scatter(x[:, 0], x[:, 1], s=3, label="source (moons)")
        ax.scatter(y[:, 0], y[:, 1], s=3, label="target (S-curve)")
        ax.set_aspect("equal")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, markerscale=4)
        if title is not None:
            ax.set_title(title)
    return _detach(fig)


__all__ += ["plot_scaling", "plot_bijection"]


_VERDICT_COLORS = {"reproduced": "#009E73", "reproduced with the published method only": "#E69F00",
                   "not reproduced": "#D55E00", "inconclusive (underpowered)": "#56B4E9",
                   "data not available here": "#999999", "open question": "#CC79A7"}


def plot_verdicts(table: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Verdicts of the reproduction table (:func:`otlens.reproduction.reproduction_table`) per study.

    One horizontal stacked bar per study (``study`` column), one colour per verdict.

    Parameters
    ----------
    table : pandas.DataFrame
        The reproduction table.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    if not isinstance(table, pd.DataFrame) or not {"study", "verdict"} <= set(table.columns):
        raise ValueError("`table` must be a DataFrame with columns 'study' and 'verdict'")
    counts = table.groupby(["study", "verdict"]).size().unstack(fill_value=0)
    order = [v for v in _VERDICT_COLORS if v in counts.columns] + [v for v in counts.columns if v not in _VERDICT_COLORS]
    counts = counts[order].loc[list(dict.fromkeys(table.study))]
    with plot_style():
        fig, ax = plt.subplots(figsize=(8, 0.5 + 0.55 * len(counts)))
        left = np.zeros(len(counts))
        for verdict in order:
            ax.barh(counts.index, counts[verdict], left=left, label=verdict,
                    color=_VERDICT_COLORS.get(verdict, sns.color_palette("colorblind")[7]))
            left += counts[verdict].to_numpy()
        ax.invert_yaxis()
        ax.set(xlabel="claims", ylabel="study")
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        if title is not None:
            ax.set_title(title)
        fig.tight_layout()
    return _detach(fig)


__all__ += ["plot_verdicts"]
