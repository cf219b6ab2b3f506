"""Figures: one function per figure kind, drawn with seaborn from tidy results tables.

Every function takes a tidy :class:`pandas.DataFrame` (columns at least ``experiment``,
``model``, ``trained``, ``method``, ``layer``, ``seed``, ``metric``, ``value``; see
:mod:`otlens.results`) or, for heatmaps, a matrix, and returns the
:class:`matplotlib.figure.Figure` it drew. Nothing is computed here beyond filtering rows,
relabelling and the mean / confidence interval seaborn draws over seeds (bootstrapped with a
fixed seed, so figures are reproducible).

**The figure system.** Every figure is drawn for the book's text column:

- :data:`COLUMN_WIDTH_IN` wide (6.9 in) at :data:`DISPLAY_DPI` (100), i.e. the 690-px text
  column at one figure inch per 100 page pixels; a figure meant to span the page says so with
  ``full_width=True`` (:data:`FULL_WIDTH_IN`), and its notebook cell should carry the
  ``full-width`` tag. The width a figure was drawn for is its :data:`WIDTH_ATTR` attribute.
- PNGs are drawn at :data:`PIXEL_RATIO` (2×) the displayed resolution: ``savefig.dpi`` is
  200, and inside IPython the inline backend's ``png`` format becomes ``retina`` when this
  module is imported (:func:`use_retina`), so a notebook's figure is a 1,380-px PNG shown 690 px
  wide.
- Text is at least :data:`MIN_FONT_PT` (8 pt) at that width (:data:`FONT_SIZES`); nothing is
  drawn wider than its column, so nothing is shrunk below it.
- Panels come from :func:`facet_grid`: at most :data:`MAX_PANELS_PER_ROW` (3) a row, wrapping
  onto further rows; models are ordered by depth (their number of layers), and legends sit
  outside the axes (below a grid, or beside a single panel), never over the data.
- Heatmaps side by side get one colour scale each unless asked to share one, and sequential
  palettes for layers or checkpoints stop short of the colour map's white end, so every line
  stays visible on a white background.

``tests/test_plots.py`` renders every plotting function and checks these rules.

The look is set by :func:`plot_style` (seaborn ``whitegrid`` / ``paper``, colourblind palette,
the sizes above) inside a context manager, so drawing changes no global matplotlib state.
``trained`` is shown as ``"trained"`` / ``"untrained"`` (always in that order and colour),
column names through :data:`COLUMN_LABELS` and metric names (y-axis labels, with units)
through :data:`METRIC_LABELS`; both dicts can be extended by callers.

This module needs matplotlib and seaborn; it is not imported by ``otlens/__init__``.
"""

from __future__ import annotations

import contextlib
import math
import textwrap
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
    "COLUMN_WIDTH_IN",
    "FULL_WIDTH_IN",
    "DISPLAY_DPI",
    "PIXEL_RATIO",
    "MIN_FONT_PT",
    "MAX_PANELS_PER_ROW",
    "FONT_SIZES",
    "WIDTH_ATTR",
    "plot_style",
    "facet_grid",
    "use_retina",
    "plot_profile",
    "plot_entropy",
    "plot_layer_heatmap",
    "plot_layer_heatmaps",
    "plot_metric_bars",
]

# ------------------------------------------------------------------------------ the figure system

#: Width of the book's text column in inches: 690 page pixels at :data:`DISPLAY_DPI`.
COLUMN_WIDTH_IN = 6.9
#: Width of a figure placed full-width on purpose (``full_width=True``), in inches.
FULL_WIDTH_IN = 10.0
#: Figure dots per inch as displayed: one figure inch is this many page (CSS) pixels.
DISPLAY_DPI = 100
#: PNG pixels per displayed pixel (``savefig.dpi`` and the inline backend's ``retina`` format).
PIXEL_RATIO = 2
#: Smallest text size, in points, at the displayed size.
MIN_FONT_PT = 8.0
#: Most panels in one row of a figure; more wrap onto further rows.
MAX_PANELS_PER_ROW = 3
#: Text sizes in points (figure drawn at its displayed size, so these are the page sizes).
FONT_SIZES = {"tick": 8.0, "legend": 8.0, "legend_title": 8.5, "annotation": 8.0, "label": 9.0,
              "title": 9.0, "suptitle": 10.0}
#: Attribute of every figure made here: ``"column"`` or ``"full"``, the width it was drawn for.
WIDTH_ATTR = "otlens_width"

_MAX_ROW_HEIGHT_IN = 3.4  # a single wide panel is not drawn taller than this
_PAD_IN = 0.1  # the inline backend crops to the drawn content plus this margin a side (savefig.pad_inches)
_RC = {
    "figure.dpi": DISPLAY_DPI,
    "savefig.dpi": DISPLAY_DPI * PIXEL_RATIO,
    "savefig.bbox": "tight",
    "font.size": FONT_SIZES["label"],
    "axes.labelsize": FONT_SIZES["label"],
    "axes.titlesize": FONT_SIZES["title"],
    "xtick.labelsize": FONT_SIZES["tick"],
    "ytick.labelsize": FONT_SIZES["tick"],
    "legend.fontsize": FONT_SIZES["legend"],
    "legend.title_fontsize": FONT_SIZES["legend_title"],
    "figure.titlesize": FONT_SIZES["suptitle"],
    "figure.labelsize": FONT_SIZES["label"],
    "lines.markersize": 4.0,
    "lines.linewidth": 1.4,
    "axes.titlepad": 4.0,
}

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

    ``sns.set_theme(style="whitegrid", context="paper", palette="colorblind")`` with the
    sizes of the figure system (:data:`FONT_SIZES`, :data:`DISPLAY_DPI`, 2× ``savefig.dpi``)
    inside :func:`matplotlib.rc_context`, so the previous rcParams come back on exit.

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
        sns.set_theme(style="whitegrid", context="paper", palette="colorblind", rc=_RC)
        yield


def use_retina() -> bool:
    """Make IPython's inline backend show figures as 2× PNGs (``retina``) instead of ``png``.

    Called when this module is imported. Outside IPython, or when the inline backend's formats
    were set to something other than ``png`` (e.g. ``svg``), it changes nothing. A retina PNG
    carries its displayed width (half its pixels), which the book's pages honour.

    Returns
    -------
    bool
        Whether the inline backend now draws retina PNGs.
    """
    try:
        from IPython import get_ipython
        from matplotlib_inline.config import InlineBackend
    except ImportError:  # pragma: no cover - IPython ships with the notebook tooling
        return False
    shell = get_ipython()
    if shell is None:
        return False
    cfg = InlineBackend.instance(parent=shell)
    formats = set(cfg.figure_formats)
    if "png" in formats:
        cfg.figure_formats = (formats - {"png"}) | {"retina"}  # re-selects the formatters if active
    return "retina" in cfg.figure_formats


def facet_grid(
    n_panels: int,
    *,
    aspect: float = 1.3,
    ncols: int | None = None,
    row_height: float | None = None,
    extra_height: float = 0.0,
    full_width: bool = False,
    sharex: bool = False,
    sharey: bool = False,
) -> tuple[Figure, list]:
    """A figure for the text column holding ``n_panels`` panels, at most 3 a row.

    Parameters
    ----------
    n_panels : int
        Number of panels; they fill rows left to right, top to bottom.
    aspect : float, default 1.3
        Width / height of one panel (the row height is capped at 3.4 in).
    ncols : int, optional
        Panels per row (at most :data:`MAX_PANELS_PER_ROW`; default: as many as allowed).
    row_height : float, optional
        Height of one row in inches (overrides ``aspect``).
    extra_height : float, default 0
        Inches added for a legend or title below / above the grid.
    full_width : bool, default False
        Draw for :data:`FULL_WIDTH_IN` instead of the column.
    sharex, sharey : bool, default False
        Share the axes' x / y limits.

    Returns
    -------
    (matplotlib.figure.Figure, list of matplotlib.axes.Axes)
        A figure with a constrained layout and the ``n_panels`` axes in reading order (unused
        cells of the last row are removed). Must be called inside :func:`plot_style`.
    """
    n = check_int(n_panels, "n_panels", minimum=1)
    limit = MAX_PANELS_PER_ROW if ncols is None else min(check_int(ncols, "ncols", minimum=1), MAX_PANELS_PER_ROW)
    cols = min(n, limit)
    rows = math.ceil(n / cols)
    width = _drawing_width(full_width)
    if row_height is None:
        row_height = min(width / cols / float(aspect), _MAX_ROW_HEIGHT_IN)
    fig = plt.figure(figsize=(width, rows * row_height + extra_height), dpi=DISPLAY_DPI, layout="constrained")
    grid = fig.subplots(rows, cols, squeeze=False, sharex=sharex, sharey=sharey)
    axes = list(grid.flat)
    for ax in axes[n:]:
        fig.delaxes(ax)
    setattr(fig, WIDTH_ATTR, "full" if full_width else "column")
    return fig, axes[:n]


def _drawing_width(full_width: bool) -> float:
    """Inches a figure is drawn across: its column less the margins the inline backend adds."""
    return (FULL_WIDTH_IN if full_width else COLUMN_WIDTH_IN) - 2 * _PAD_IN


def _figure(width: float, height: float, *, full_width: bool = False) -> tuple[Figure, Any]:
    """One panel, ``width`` (capped at the column) by ``height`` inches."""
    limit = _drawing_width(full_width)
    fig = plt.figure(figsize=(min(float(width), limit), float(height)), dpi=DISPLAY_DPI, layout="constrained")
    setattr(fig, WIDTH_ATTR, "full" if full_width else "column")
    return fig, fig.add_subplot()


def _finish(fig: Figure, title: str | None = None) -> Figure:
    """Title the figure and fix every axes' tick-label size (ticks made later inherit it)."""
    for ax in fig.axes:
        ax.tick_params(labelsize=FONT_SIZES["tick"])
    if title:
        fig.suptitle(title, fontsize=FONT_SIZES["suptitle"])
    return _detach(fig)


def _legend_below(fig: Figure, ax: Any, *, ncols: int | None = None, title: str | None = None) -> None:
    """Move ``ax``'s legend (seaborn's or matplotlib's) under the whole figure."""
    legend = ax.get_legend()
    if legend is None:
        handles, labels = ax.get_legend_handles_labels()
        legend_title = title
    else:
        handles, labels = legend.legend_handles, [t.get_text() for t in legend.get_texts()]
        legend_title = title if title is not None else legend.get_title().get_text()
        legend.remove()
    if not handles:
        return
    ncols = ncols or min(len(labels), 4)
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, frameon=False,
               title=legend_title or None)


def _legend_beside(ax: Any, *, title: str | None = None) -> None:
    """Put ``ax``'s legend outside the axes on the right (the layout makes room for it)."""
    if ax.get_legend() is not None:
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                        **({} if title is None else {"title": title or None}))
    elif ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title=title)


def _wrap(text: str, width_in: float, size_pt: float = FONT_SIZES["title"]) -> str:
    """``text`` broken into lines that fit ``width_in`` inches at ``size_pt`` (about 0.6 em a character)."""
    chars = max(8, int((width_in - 0.2) * 72.0 / (0.6 * size_pt)))
    return textwrap.fill(text, chars, break_long_words=False)


def _ylabel(fig: Figure, axes: Sequence, label: str) -> None:
    """One y label: on the panel itself for a single row, else once for the whole grid (a
    rotated label longer than a short row would run into the next one)."""
    rows = {ax.get_subplotspec().rowspan.start for ax in axes}
    if len(rows) == 1:
        for ax in axes:
            ax.set_ylabel(label if ax.get_subplotspec().is_first_col() else "")
    else:
        fig.supylabel(label, fontsize=FONT_SIZES["label"])


def _sequential(n: int, cmap: str = "rocket", lo: float = 0.12, hi: float = 0.78) -> list:
    """``n`` colours from a sequential map, dark to light, stopping short of its white end."""
    colours = mpl.colormaps[cmap](np.linspace(lo, hi, max(int(n), 1)))
    return [tuple(c) for c in colours][: max(int(n), 1)]


def _depth_order(data: pd.DataFrame, column: str) -> list:
    """Values of ``column`` ordered by depth (their largest ``layer``), then by name."""
    if "layer" not in data.columns:
        return sorted(pd.unique(data[column]), key=str)
    depth = data.groupby(column, sort=False)["layer"].max()
    return sorted(depth.index, key=lambda v: (depth[v], str(v)))


def _thin_ticks(ax: Any, axis: str, labels: Sequence, length_in: float, *, spacing_pt: float | None = None) -> None:
    """Label heatmap cells centred at ``i + 0.5``, every k-th one when all would not fit ``length_in``."""
    n = len(labels)
    if n == 0:
        return
    if spacing_pt is None:
        widest = max(len(str(v)) for v in labels)
        spacing_pt = (FONT_SIZES["tick"] * (0.62 * widest + 0.8)) if axis == "x" else FONT_SIZES["tick"] * 1.45
    fit = max(1, int(length_in * 72.0 / spacing_pt))
    step = max(1, math.ceil(n / fit))
    idx = list(range(0, n, step))
    setter = ax.set_xticks if axis == "x" else ax.set_yticks
    setter([i + 0.5 for i in idx], [str(labels[i]) for i in idx])


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
    """Legend / panel order: trained before untrained, models by depth, else sorted (None: no column)."""
    if column is None:
        return None
    values = list(pd.unique(data[column]))
    if column == COLUMN_LABELS["trained"]:
        known = [v for v in TRAINED_LABELS.values() if v in values]
        return known + sorted((v for v in values if v not in known), key=str)
    if column == COLUMN_LABELS["model"]:
        return _depth_order(data, column)
    return sorted(values, key=_sort_key)


def _sort_key(v: Any) -> tuple:
    """Numbers in numeric order (1000 before 4096 before 16384), then everything else by name."""
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
        return (0, float(v), "")
    return (1, 0.0, str(v))


def _compact_number(value: float, _pos: Any = None) -> str:
    """A tick label with 3 significant digits and a short exponent (``1.5e8``): no offset text
    above the axis, where it would run into the panel's title."""
    text = f"{value:.3g}"
    return text.replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def _hue_palette(data: pd.DataFrame, hue: str | None, order: list | None) -> Any:
    """A discrete palette: sequential (dark → light, no white) for a numeric hue, else None."""
    if hue is None or order is None or hue == COLUMN_LABELS["trained"]:
        return None
    if pd.api.types.is_numeric_dtype(data[hue]) and not pd.api.types.is_bool_dtype(data[hue]):
        return dict(zip(order, _sequential(len(order), "mako", 0.15, 0.8)))
    return None


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
    aspect: float,
    full_width: bool,
) -> Figure:
    """One line panel per (``row``, ``col``) value: mean over seeds with an error band, x = layer.

    Panels wrap at :data:`MAX_PANELS_PER_ROW` (``col_wrap`` lowers it); with ``row``, each row
    value starts a new row of panels. The legend goes under the grid.
    """
    if metric is not None and not isinstance(metric, str):
        raise ValueError(f"`metric` must be a metric name (str) or None; got {metric!r}")
    check_int(n_boot, "n_boot", minimum=1)
    if col_wrap is not None:
        check_int(col_wrap, "col_wrap", minimum=1)
    if isinstance(df, pd.DataFrame) and df.empty:  # a selection this run did not compute (e.g. a method left out)
        return _not_computed(xlabel=xlabel, ylabel=_metric_label(metric, ylabel), title=title, aspect=aspect,
                             full_width=full_width)
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
    col_values = _order(data, col_) if col_ is not None else [None]
    row_values = _order(data, row_) if row_ is not None else [None]
    per_row = min(len(col_values), MAX_PANELS_PER_ROW, col_wrap or MAX_PANELS_PER_ROW)
    # each row value fills whole rows of panels; a short row is padded with empty cells
    slots: list[tuple[Any, Any] | None] = []
    for r in row_values:
        cells: list[tuple[Any, Any] | None] = [(r, c) for c in col_values]
        cells += [None] * (-len(cells) % per_row)
        slots += cells
    hue_order, style_order = _order(data, hue_), _order(data, style_)
    palette = _hue_palette(data, hue_, hue_order)
    marks = {"markers": True, "dashes": True} if style is not None else {"marker": "o"}
    has_legend = hue is not None or style is not None
    with plot_style():
        fig, axes = facet_grid(len(slots), aspect=aspect, ncols=per_row, full_width=full_width,
                               extra_height=0.45 if has_legend else 0.0)
        first = None
        for ax, slot in zip(axes, slots):
            if slot is None:
                fig.delaxes(ax)
                continue
            r, c = slot
            sub = data
            if row_ is not None:
                sub = sub[sub[row_] == r]
            if col_ is not None:
                sub = sub[sub[col_] == c]
            sns.lineplot(data=sub, x="layer", y="value", hue=hue_, style=style_, hue_order=hue_order,
                         style_order=style_order, palette=palette, errorbar=errorbar, n_boot=n_boot,
                         seed=_BOOT_SEED, ax=ax, legend="full" if first is None and has_legend else False,
                         **marks)  # fmt: skip
            first = ax if first is None else first
            names = [str(v) for v in (r, c) if v is not None]
            ax.set_title(_wrap(" · ".join(names), _drawing_width(full_width) / per_row))
            ax.set_xlabel(xlabel)
            ax.set_ylabel("")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(_compact_number))
        _ylabel(fig, [ax for ax in fig.axes], _metric_label(metric, ylabel))
        if sharey:
            live = [ax for ax in fig.axes]
            lo = min(ax.get_ylim()[0] for ax in live)
            hi = max(ax.get_ylim()[1] for ax in live)
            for ax in live:
                ax.set_ylim(lo, hi)
        if first is not None and has_legend:
            _legend_below(fig, first)
        return _finish(fig, title)


NOT_COMPUTED = "not computed in this run"  #: the text of a line figure whose data frame has no rows


def _not_computed(*, xlabel: str, ylabel: str, title: str | None, aspect: float = 1.9,
                  full_width: bool = False) -> Figure:
    """One empty panel saying :data:`NOT_COMPUTED` (a chapter run with a subset of its variants)."""
    with plot_style():
        fig, (ax,) = facet_grid(1, aspect=max(aspect, 1.9), full_width=full_width)
        ax.text(0.5, 0.5, NOT_COMPUTED, ha="center", va="center", transform=ax.transAxes, color="0.4")
        ax.set(xlabel=xlabel, ylabel=ylabel, xticks=[], yticks=[])
        if title is not None:
            ax.set_title(title)
        return _finish(fig)


_LINE_PARAMS = """
    Parameters
    ----------
    df : pandas.DataFrame
        Tidy results with columns ``metric``, ``layer`` (int), ``value`` and those named below.
    metric : str or None
        Which ``metric`` rows to plot (``None``: all rows, e.g. with ``row="metric"``); its y
        label comes from :data:`METRIC_LABELS`.
    col : str or None, default "model"
        Column giving one panel per value (``None``: one panel); models are ordered by depth.
    row : str or None, default None
        Column giving one row of panels per value (e.g. ``"metric"`` with ``metric=None``, or
        ``"method"`` to give each method its own y axis).
    hue : str or None, default "trained"
        Column giving the line colour (``trained`` is shown as trained / untrained; a numeric
        column gets a sequential palette).
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
        Wrap panels after this many columns (at most :data:`MAX_PANELS_PER_ROW` whatever it says).
    aspect : float, default 1.3
        Width / height of each panel (its width is the column's share).
    full_width : bool, default False
        Draw for the full page width instead of the text column.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, one axes per panel, the legend under the panels. A ``df`` without rows (a
        selection the run did not compute, such as a method left out of a chapter's
        ``methods``) gives one empty panel that says so, not an error.

    Raises
    ------
    ValueError
        If ``df`` is not a DataFrame, lacks a needed column, or has rows but none for ``metric``.
"""


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
    aspect: float = 1.3,
    full_width: bool = False,
) -> Figure:
    return _line_grid(
        df, metric=metric, xlabel=_PROFILE_XLABEL, col=col, row=row, hue=hue, style=style, errorbar=errorbar,
        n_boot=n_boot, sharey=sharey, title=title, ylabel=ylabel, col_wrap=col_wrap, aspect=aspect,
        full_width=full_width,
    )  # fmt: skip


plot_profile.__doc__ = """Layer-transition profile of a metric (e.g. adjacent-layer OT cost), one panel per model.

    Row ``layer = ℓ`` is the transition ℓ→ℓ+1. Lines are means over the rows sharing
    (panel, hue, style, layer), usually seeds, with a band given by ``errorbar``.
""" + _LINE_PARAMS


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
    aspect: float = 1.3,
    full_width: bool = False,
) -> Figure:
    return _line_grid(
        df, metric=metric, xlabel=_LAYER_XLABEL, col=col, row=row, hue=hue, style=style, errorbar=errorbar,
        n_boot=n_boot, sharey=sharey, title=title, ylabel=ylabel, col_wrap=col_wrap, aspect=aspect,
        full_width=full_width,
    )  # fmt: skip


plot_entropy.__doc__ = """Entropy per layer (row ``layer = ℓ`` is layer ℓ, 0 = embeddings), one panel per model.

    The same figure as :func:`plot_profile` with the x axis labelled "layer ℓ". ``metric``
    names the entropy rows (e.g. ``"norm_entropy"``, ``"prompt_entropy"``, ``"dataset_entropy"``).
""" + _LINE_PARAMS
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


def _heatmap(ax: Any, m: np.ndarray, row_labels: Sequence, col_labels: Sequence, *, cmap: str, annotate: bool,
             fmt: str, vmin: float | None, vmax: float | None, cbar: bool, cbar_label: str, side_in: float,
             square: bool = True, **kwargs: Any) -> None:
    """Draw one heatmap into ``ax`` with 8-pt annotations and tick labels thinned to fit ``side_in`` inches."""
    sns.heatmap(
        m, ax=ax, cmap=cmap, square=square, annot=annotate, fmt=fmt, mask=np.isnan(m), vmin=vmin, vmax=vmax,
        xticklabels=False, yticklabels=False, cbar=cbar, cbar_kws={"label": cbar_label} if cbar else None,
        annot_kws={"fontsize": FONT_SIZES["annotation"]}, **kwargs,
    )  # fmt: skip
    ax.grid(False)
    n_rows, n_cols = m.shape
    cell = side_in / max(n_rows, n_cols) if square else None
    _thin_ticks(ax, "x", list(col_labels), cell * n_cols if cell else side_in)
    _thin_ticks(ax, "y", list(row_labels), cell * n_rows if cell else side_in)
    ax.tick_params(axis="x", labelrotation=0)
    ax.tick_params(axis="y", labelrotation=0)


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
    full_width: bool = False,
) -> Figure:
    """Heatmap of a layer-by-layer matrix (e.g. the OT cost between all pairs of layers).

    Row ``i``, column ``j`` is drawn at row ``i`` from the top (origin upper left), with square
    cells and a labelled colour bar; NaN cells are left blank. Tick labels are thinned to every
    k-th layer when all would not fit at 8 pt.

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
    full_width : bool, default False
        Allow the full page width (a new figure is otherwise at most the column wide).

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
            side = float(np.clip(0.25 * max(m.shape) + 2.0, 3.0, 5.0))
            fig, ax = _figure(side + 1.4, side + 0.5, full_width=full_width)
        else:
            fig = ax.figure
        bbox = ax.get_position()
        side_in = 0.8 * min(bbox.width * fig.get_figwidth(), bbox.height * fig.get_figheight())
        _heatmap(ax, m, row_labels, col_labels, cmap=cmap, annotate=annotate, fmt=fmt, vmin=vmin, vmax=vmax,
                 cbar=True, cbar_label=cbar_label, side_in=side_in)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title is not None:
            ax.set_title(title)
        if own:
            return _finish(fig)
        for a in fig.axes:
            a.tick_params(labelsize=FONT_SIZES["tick"])
        return fig


def plot_layer_heatmaps(
    matrices: dict[str, Any],
    *,
    title: str | None = None,
    cmap: str = "viridis",
    cbar_label: str = "debiased OT divergence",
    shared_scale: bool = False,
    full_width: bool = False,
) -> Figure:
    """Several layer-by-layer matrices (e.g. trained vs untrained), at most 3 a row.

    ``matrices`` maps a panel title to a matrix accepted by :func:`plot_layer_heatmap`. Each
    panel has its own colour scale and colour bar, so every matrix's structure is visible even
    when their ranges differ by orders of magnitude; ``shared_scale=True`` puts them all on one
    scale (to compare levels across panels).

    Parameters
    ----------
    matrices : dict of str to array-like
        Panel title -> a matrix accepted by :func:`plot_layer_heatmap` (``[n_rows, n_cols]``),
        drawn in the dict's order.
    title : str, optional
        Figure title above the panels.
    cmap : str, default "viridis"
        Colour map.
    cbar_label : str, default "debiased OT divergence"
        Label of each panel's colour bar.
    shared_scale : bool, default False
        Put every panel on one colour scale (the smallest to the largest value over all
        matrices) instead of one scale per panel.
    full_width : bool, default False
        Draw for the full page width instead of the text column.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, one heatmap axes (with its colour bar) per matrix.

    Raises
    ------
    ValueError
        If ``matrices`` is not a non-empty dict, or a matrix is not a finite 2-D array.
    """
    if not isinstance(matrices, dict) or not matrices:
        raise ValueError(f"`matrices` must be a non-empty dict of title -> matrix; got {type(matrices).__name__}")
    arrays = {k: _as_matrix(v)[0] for k, v in matrices.items()}
    vmin = float(min(np.nanmin(a) for a in arrays.values())) if shared_scale else None
    vmax = float(max(np.nanmax(a) for a in arrays.values())) if shared_scale else None
    with plot_style():
        fig, axes = facet_grid(len(arrays), aspect=1.2, full_width=full_width, extra_height=0.3 if title else 0.0)
        width = _drawing_width(full_width) / min(len(arrays), MAX_PANELS_PER_ROW)
        for ax, (name, m) in zip(axes, arrays.items()):
            labels = list(range(m.shape[0])), list(range(m.shape[1]))
            _heatmap(ax, m, *labels, cmap=cmap, annotate=False, fmt=".2g", vmin=vmin, vmax=vmax, cbar=True,
                     cbar_label=cbar_label, side_in=0.62 * width)
            ax.set(title=name, xlabel="layer", ylabel="layer" if ax.get_subplotspec().is_first_col() else "")
        return _finish(fig, title)


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
    full_width: bool = False,
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
    full_width : bool, default False
        Draw a new figure for the full page width instead of the text column.

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
    categories = order if order is not None else _order(data, x_)
    common = dict(
        data=data, x=x_, y=y_, hue=hue_, order=categories,
        hue_order=hue_order if hue_order is not None else _order(data, hue_), errorbar=errorbar,
        n_boot=n_boot, seed=_BOOT_SEED, capsize=0.15,
    )  # fmt: skip
    with plot_style():
        if ax is None:
            fig, ax = _figure(FULL_WIDTH_IN, 3.4, full_width=full_width)
        else:
            fig = ax.figure
        if kind == "bar":
            sns.barplot(ax=ax, **common)
        else:
            sns.pointplot(ax=ax, dodge=0.3 if hue is not None else False, linestyles="none", **common)
        ax.set_xlabel(xlabel if xlabel is not None else x_)
        ax.set_ylabel(_metric_label(metric, ylabel) if y == "value" else (ylabel or y_))
        # long category names: rotate them when their lines would not fit side by side
        widest = max((max(len(p) for p in str(c).split("\n")) for c in categories), default=1)
        room = 0.75 * fig.get_figwidth() * 72.0 / max(len(categories), 1)
        if widest * 0.6 * FONT_SIZES["tick"] > room:  # upright, on one line each
            ax.set_xticks(ax.get_xticks(), [str(c).replace("\n", " ") for c in categories], rotation=90)
        if hue is not None:  # beside the axes, never over a bar
            _legend_beside(ax, title=hue_)
        if title is not None:
            ax.set_title(title)
        if own:
            return _finish(fig)
        ax.tick_params(labelsize=FONT_SIZES["tick"])
        return fig


# --------------------------------------------------------------------------------------------
# Chapter 3: attention as optimal transport


def plot_depth_error(df: pd.DataFrame, *, metric: str = "plan_error", title: str | None = None,
                     full_width: bool = False) -> Figure:
    """Error against depth (log-log), one panel per list length ``n`` (at most 3 a row), one line per method.

    ``df`` is :func:`otlens.attention_ot.sorting_study`'s table; bands are 95% intervals over
    seeds. The panels share the y axis; the legend is under them.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy rows with columns ``layer`` (the depth or iteration count), ``method``, ``n``,
        ``metric`` and ``value``; rows at ``layer`` 0 are left out (a log axis has no 0).
    metric : str, default "plan_error"
        The metric drawn; the y axis is logarithmic unless it is ``"sort_accuracy"`` or
        ``"sorted"``.
    title : str, optional
        Figure title above the panels.
    full_width : bool, default False
        Draw for the full page width instead of the text column.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, one axes per list length.
    """
    data = _prepare(df, metric=metric, columns=["layer", "method", "n"])
    data = data[data["layer"] > 0]
    lengths = sorted(data["n"].unique())
    methods = sorted(data["method"].unique(), key=str)
    with plot_style():
        fig, axes = facet_grid(len(lengths), aspect=1.15, sharey=True, full_width=full_width, extra_height=0.4)
        for ax, n in zip(axes, lengths):
            sns.lineplot(data=data[data["n"] == n], x="layer", y="value", hue="method", hue_order=methods, ax=ax,
                         marker="o", errorbar=("ci", 95), seed=_BOOT_SEED, legend=ax is axes[0])
            ax.set_xscale("log", base=2)
            if metric not in ("sort_accuracy", "sorted"):
                ax.set_yscale("log")
                ax.yaxis.set_minor_formatter(mpl.ticker.NullFormatter())  # crowded 3×10⁻¹, 4×10⁻¹, ...
            ax.set_title(f"n = {n}")
            ax.set_xlabel("depth / iterations")
            ax.set_ylabel(_metric_label(metric, None) if ax.get_subplotspec().is_first_col() else "")
        _legend_below(fig, axes[0])
        return _finish(fig, title)


def plot_sorted_lists(examples: Sequence[tuple[Any, Any]], *, title: str | None = None,
                      full_width: bool = False) -> Figure:
    """Input lists and the transformer's output order, one panel per list (at most 3 a row).

    ``examples`` holds ``(values, rank)`` pairs: ``rank[i]`` is the position the transformer
    gives ``values[i]``. Each panel plots the values at their input index (grey) and at their
    output position (colour): a correct sort is an increasing curve.

    Parameters
    ----------
    examples : sequence of (array-like, array-like)
        ``(values, rank)`` pairs, one panel each (:func:`otlens.attention_ot.sort_examples`).
    title : str, optional
        Figure title above the panels.
    full_width : bool, default False
        Draw for the full page width instead of the text column.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, one axes per list, each titled with its length and whether it was sorted.

    Raises
    ------
    ValueError
        If ``examples`` is empty.
    """
    if not examples:
        raise ValueError("`examples` must hold at least one (values, rank) pair")
    with plot_style():
        fig, axes = facet_grid(len(examples), aspect=1.2, full_width=full_width, extra_height=0.3)
        for ax, (values, rank) in zip(axes, examples):
            v, r = np.asarray(values, dtype=float), np.asarray(rank)
            ax.plot(np.arange(len(v)), v, "o", color="0.7", ms=3, label="input")
            ax.plot(r, v, ".-", color="C0", ms=4, label="transformer output")
            ok = np.array_equal(v[np.argsort(r, kind="stable")], np.sort(v)) and len(set(r.tolist())) == len(v)
            ax.set_title(f"n = {len(v)}: {'sorted' if ok else 'not sorted'}")
            ax.set_xlabel("position")
            ax.set_ylabel("value" if ax.get_subplotspec().is_first_col() else "")
        _legend_below(fig, axes[0])
        return _finish(fig, title)


def plot_alignment_maps(maps: dict, source_words: Sequence[str], target_words: Sequence[str], *,
                        gold: Any = None, title: str | None = None, full_width: bool = False) -> Figure:
    """Soft alignments (target words as rows, source words as columns), at most 3 a row.

    ``maps`` maps a panel title to a ``[n_source, n_target]`` matrix; each is shown
    column-normalised (each target word's distribution over source words), on one 0–1 scale.
    Gold links, if given as a set of ``(i, j)``, are marked with red dots. Panels a row: as many
    (up to 3, at least 2) as let every source word be labelled at 8 pt; where the words do not
    fit, every k-th word is labelled.

    Parameters
    ----------
    maps : dict of str to array-like
        Panel title -> a ``[n_source, n_target]`` matrix (array or tensor).
    source_words : sequence of str
        The source words (columns), ``n_source`` of them.
    target_words : sequence of str
        The target words (rows), ``n_target`` of them.
    gold : set of (int, int), optional
        Gold links ``(i, j)`` (source word ``i``, target word ``j``), marked with red dots.
    title : str, optional
        Figure title above the panels.
    full_width : bool, default False
        Draw for the full page width instead of the text column.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, one axes per map.

    Raises
    ------
    ValueError
        If ``maps`` is empty or a map's shape is not ``[n_source, n_target]``.
    """
    if not maps:
        raise ValueError("`maps` must hold at least one matrix")
    ns, nt = len(source_words), len(target_words)
    label_pt = FONT_SIZES["tick"] * 1.25  # one rotated word label
    word_in = FONT_SIZES["tick"] * 0.6 * max((len(str(w)) for w in [*source_words, *target_words]), default=1) / 72
    room = _drawing_width(full_width) - word_in - 0.4
    need = ns * label_pt / 72 + 0.15
    fewest = 2 if len(maps) > 1 else 1  # below that the figure gets too tall: thin the labels instead
    ncols = int(np.clip(room // need, fewest, min(len(maps), MAX_PANELS_PER_ROW)))
    panel_w = room / ncols
    panel_h = float(np.clip(panel_w * nt / max(ns, 1), min(nt * label_pt / 72, 3.0), 3.0))
    with plot_style():
        fig, axes = facet_grid(len(maps), ncols=ncols, row_height=panel_h + word_in + 0.35,
                               full_width=full_width, extra_height=0.3 if title else 0.0)
        for ax, (name, M) in zip(axes, maps.items()):
            M = np.asarray(M.detach().cpu() if hasattr(M, "detach") else M, dtype=float)
            if M.shape != (ns, nt):
                raise ValueError(f"map {name!r} must have shape ({ns}, {nt}); got {M.shape}")
            M = (M / np.clip(M.sum(0, keepdims=True), 1e-300, None)).T
            ax.imshow(M, cmap="Blues", vmin=0, vmax=1, aspect="auto")
            ax.grid(False)
            if gold:
                gi = np.array(sorted(gold))
                ax.plot(gi[:, 0], gi[:, 1], "o", color="red", ms=2.5)
            step_x = max(1, math.ceil(ns * label_pt / 72 / max(panel_w - 0.15, 0.3)))
            step_y = max(1, math.ceil(nt * label_pt / 72 / max(panel_h, 0.3)))
            first = ax.get_subplotspec().is_first_col()
            ax.set_xticks(range(0, ns, step_x), [str(w) for w in source_words][::step_x], rotation=90)
            ax.set_yticks(range(0, nt, step_y), [str(w) for w in target_words][::step_y] if first else [])
            ax.set_title(name)
        return _finish(fig, title)


def plot_alignment_by_layer(df: pd.DataFrame, *, metric: str = "accuracy", hue: str = "method",
                            ylabel: str | None = None, title: str | None = None,
                            full_width: bool = False) -> Figure:
    """A per-layer alignment score (or agreement), one line per ``hue`` value, legend beside it.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy rows with columns ``layer``, ``metric``, ``value`` and the ``hue`` column.
    metric : str, default "accuracy"
        The metric drawn.
    hue : str, default "method"
        The column whose values get one line each.
    ylabel : str, optional
        Label of the y axis (default: from :data:`METRIC_LABELS`, else the metric's name).
    title : str, optional
        Axes title.
    full_width : bool, default False
        Draw for the full page width instead of the text column.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, one axes.
    """
    data = _prepare(df, metric=metric, columns=["layer", hue])
    with plot_style():
        fig, ax = _figure(FULL_WIDTH_IN, 3.2, full_width=full_width)
        sns.lineplot(data=data, x="layer", y="value", hue=hue, hue_order=_order(data, hue), marker="o", ax=ax,
                     errorbar=None)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("block")
        ax.set_ylabel(_metric_label(metric, ylabel))
        _legend_beside(ax)
        if title:
            ax.set_title(title)
        return _finish(fig)


__all__ += ["plot_depth_error", "plot_sorted_lists", "plot_alignment_maps", "plot_alignment_by_layer"]


# --------------------------------------------------------------------------------------------
# Hierarchical OT (chapter 2)


def plot_couplings(couplings: dict[str, Any], *, title: str | None = None,
                   xlabel: str = "target layer", ylabel: str = "source layer",
                   cbar_label: str = "share of the source layer's mass", full_width: bool = False) -> Figure:
    """HOT layer couplings, one panel per model pair (shapes may differ), at most 3 a row.

    ``couplings`` maps a panel title to an ``[L, M]`` coupling ``P``. Each row is shown as the
    share of that source layer's mass (``L · P``, rows sum to 1), on one 0–1 colour scale with
    one colour bar for all panels. Panels keep the caller's order.

    Parameters
    ----------
    couplings : dict of str to array-like
        Panel title -> an ``[L, M]`` coupling ``P`` (array or tensor).
    title : str, optional
        Figure title above the panels.
    xlabel : str, default "target layer"
        Label of each panel's x axis.
    ylabel : str, default "source layer"
        Label of the y axis of the first panel of each row.
    cbar_label : str, default "share of the source layer's mass"
        Label of the shared colour bar.
    full_width : bool, default False
        Draw for the full page width instead of the text column.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, one axes per coupling and the colour bar under them.

    Raises
    ------
    ValueError
        If ``couplings`` is not a non-empty dict, or a coupling is not a finite 2-D array.
    """
    if not isinstance(couplings, dict) or not couplings:
        raise ValueError(f"`couplings` must be a non-empty dict of title -> [L, M] matrix; got {type(couplings).__name__}")
    mats = {}
    for name, P in couplings.items():
        m = _as_matrix(P)[0]
        mats[name] = m / np.where(m.sum(1, keepdims=True) > 0, m.sum(1, keepdims=True), 1.0)
    width = _drawing_width(full_width) / min(len(mats), MAX_PANELS_PER_ROW)
    with plot_style():
        fig, axes = facet_grid(len(mats), aspect=1.0, full_width=full_width, extra_height=0.5)
        for ax, (name, m) in zip(axes, mats.items()):
            _heatmap(ax, m, range(m.shape[0]), range(m.shape[1]), cmap="mako_r", annotate=False, fmt=".2g",
                     vmin=0, vmax=1, cbar=False, cbar_label="", side_in=0.7 * width, linewidths=0.3,
                     linecolor="white")
            ax.set_title(name)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel if ax.get_subplotspec().is_first_col() else "")
        bar = fig.colorbar(axes[0].collections[0], ax=axes, location="bottom", shrink=0.5, aspect=30)
        bar.set_label(cbar_label)
        return _finish(fig, title)


def plot_reconstruction(actual: Any, predicted: Any, *, n_units: int = 6, seed: int = 0,
                        title: str | None = None, full_width: bool = False) -> Figure:
    """Held-out responses of a few units against their reconstruction, one colour per unit.

    ``actual`` and ``predicted`` are ``[n_stimuli, n_units]`` (one layer); ``n_units`` units
    are drawn at random (seeded) and the legend gives each one's Pearson correlation.

    Parameters
    ----------
    actual : array-like, [n_stimuli, n_units]
        One layer's held-out responses.
    predicted : array-like, [n_stimuli, n_units]
        Their reconstruction from the target.
    n_units : int, default 6
        Units drawn (all of them when there are fewer).
    seed : int, default 0
        Seed of the draw.
    title : str, optional
        Axes title.
    full_width : bool, default False
        Draw for the full page width instead of the text column.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, one axes.

    Raises
    ------
    ValueError
        If ``actual`` and ``predicted`` are not 2-D arrays of one shape, or ``n_units`` < 1.
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
        fig, ax = _figure(FULL_WIDTH_IN, 3.6, full_width=full_width)
        sns.scatterplot(data=data, x="actual", y="predicted", hue="unit", s=14, alpha=0.7, ax=ax, linewidth=0)
        ax.set_xlabel("held-out response (standardised)")
        ax.set_ylabel("reconstruction from the target")
        _legend_beside(ax, title="")
        if title:
            ax.set_title(title)
        return _finish(fig)


__all__ += ["plot_couplings", "plot_reconstruction"]


# ------------------------------------------------------------------------------------------
# Training dynamics (issue 6): loss, per-checkpoint profiles, the information plane


def _steps_palette(steps: Sequence[int]) -> dict:
    """Checkpoint step -> colour, light (early) to dark (late); the lightest stays visible on white."""
    steps = sorted(set(int(s) for s in steps))
    colours = _sequential(len(steps), "viridis", 0.0, 0.82)[::-1]
    return dict(zip(steps, colours))


def plot_loss_curve(log: pd.DataFrame, *, title: str | None = None, smooth: int = 20,
                    full_width: bool = False) -> Figure:
    """Training and validation loss against the step (symlog x axis: step 0 is shown).

    The legend sits under the axes, off the curves.

    Parameters
    ----------
    log : pandas.DataFrame
        Columns ``step, metric, value`` with ``metric`` in ``train_loss`` / ``val_loss``
        (:attr:`otlens.training.TrainingRun.log`); an optional ``model`` column draws one curve
        per model.
    title : str, optional
        Axes title.
    smooth : int, default 20
        Rolling-mean window of the training loss (in steps).
    full_width : bool, default False
        Draw for the full page width instead of the text column.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, one axes.

    Raises
    ------
    ValueError
        If ``log`` is not a DataFrame with columns ``step``, ``metric``, ``value``, or
        ``smooth`` < 1.
    """
    if not isinstance(log, pd.DataFrame) or not {"step", "metric", "value"} <= set(log.columns):
        raise ValueError("`log` must be a DataFrame with columns step, metric, value")
    check_int(smooth, "smooth", minimum=1)
    data = log.copy()
    if "model" not in data.columns:
        data["model"] = ""
    with plot_style():
        fig, ax = _figure(FULL_WIDTH_IN, 3.6, full_width=full_width)
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
        if title is not None:
            ax.set_title(title)
        _legend_below(fig, ax, ncols=2)
        return _finish(fig)


def plot_checkpoint_heatmap(df: pd.DataFrame, *, metric: str, title: str | None = None,
                            label: str | None = None, full_width: bool = False) -> Figure:
    """Heatmap of a per-layer metric, checkpoint (rows, with validation loss) × layer (columns).

    ``df`` holds rows of one model with columns ``step, layer, metric, value`` (and ``val_loss``);
    values are averaged over seeds.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy rows of one model; with a ``val_loss`` column each row label shows its checkpoint's
        validation loss.
    metric : str
        The metric drawn.
    title : str, optional
        Axes title.
    label : str, optional
        Colour-bar label (default: from :data:`METRIC_LABELS`, else the metric's name).
    full_width : bool, default False
        Draw for the full page width instead of the text column.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, the heatmap axes and its colour bar.
    """
    data = _prepare(df, metric=metric, columns=["step", "layer", "value"])
    mat = data.groupby(["step", "layer"])["value"].mean().unstack("layer").sort_index()
    rows = [f"{s}" + (f"  (loss {data[data.step == s].val_loss.iloc[0]:.2f})" if "val_loss" in data else "")
            for s in mat.index]
    n_rows, n_cols = mat.shape
    with plot_style():
        fig, ax = _figure(2.9 + 0.6 * n_cols, 1.0 + 0.26 * n_rows, full_width=full_width)
        _heatmap(ax, mat.to_numpy(), rows, list(mat.columns), cmap="mako_r", annotate=n_cols <= 10, fmt=".2g",
                 vmin=None, vmax=None, cbar=True, cbar_label=label or _metric_label(metric, None),
                 side_in=10.0, square=False)
        ax.set_xlabel(_PROFILE_XLABEL if metric in ("ot_divergence", "ot_cost", "w2_squared") else _LAYER_XLABEL)
        ax.set_ylabel("checkpoint step")
        if title is not None:
            ax.set_title(title)
        return _finish(fig)


def plot_over_training(df: pd.DataFrame, *, metrics: Sequence[str], title: str | None = None,
                       sharey: bool = False, full_width: bool = False) -> Figure:
    """One panel per metric (at most 3 a row): each checkpoint's per-layer curve, coloured by step.

    Light = early, dark = late; the legend of steps is under the panels. ``df`` holds rows of
    one model with columns ``step, layer, metric, value`` (seeds averaged).

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy rows of one model.
    metrics : sequence of str
        The metrics drawn, one panel each.
    title : str, optional
        Figure title above the panels.
    sharey : bool, default False
        Share the y axis across panels.
    full_width : bool, default False
        Draw for the full page width instead of the text column.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, one axes per metric.

    Raises
    ------
    ValueError
        If ``metrics`` is a string or empty.
    """
    if isinstance(metrics, str) or not metrics:
        raise ValueError(f"`metrics` must be a non-empty list of metric names; got {metrics!r}")
    parts = [_prepare(df, metric=m, columns=["step", "layer", "value"]) for m in metrics]
    palette = _steps_palette(pd.concat(parts).step)
    with plot_style():
        aspect = 1.9 if len(metrics) == 1 else 1.15
        fig, axes = facet_grid(len(metrics), aspect=aspect, sharey=sharey, full_width=full_width,
                               extra_height=0.25 + 0.17 * math.ceil(len(palette) / 7))
        for ax, metric, data in zip(axes, metrics, parts):
            curves = data.groupby(["step", "layer"])["value"].mean().unstack("layer").sort_index()
            for step, curve in curves.iterrows():
                ax.plot(curve.index, curve.to_numpy(), "o-", ms=3, color=palette[int(step)], label=str(step))
            ax.set_xlabel(_PROFILE_XLABEL if metric.startswith(("ot_", "w2")) else _LAYER_XLABEL)
            ax.set_ylabel(_metric_label(metric, None))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _legend_below(fig, axes[0], ncols=min(len(palette), 7), title="checkpoint step")
        return _finish(fig, title)


def plot_information_plane(df: pd.DataFrame, *, x: str = "mi_xz", y: str = "mi_yz", title: str | None = None,
                           full_width: bool = False) -> Figure:
    """Information-plane trajectories: ``(I(X;Z), I(Y;Z))`` of each layer across checkpoints.

    One line per layer (colour, dark = shallow, never white), through the checkpoints in step
    order; marker size grows with the step and the final checkpoint is ringed. ``df`` holds rows
    of one model with columns ``step, layer, metric, value``.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy rows of one model (seeds averaged).
    x : str, default "mi_xz"
        The metric on the x axis.
    y : str, default "mi_yz"
        The metric on the y axis.
    title : str, optional
        Axes title.
    full_width : bool, default False
        Draw for the full page width instead of the text column.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, one axes.
    """
    dx = _prepare(df, metric=x, columns=["step", "layer", "value"])
    dy = _prepare(df, metric=y, columns=["step", "layer", "value"])
    both = (dx.groupby(["layer", "step"]).value.mean().rename("x").to_frame()
            .join(dy.groupby(["layer", "step"]).value.mean().rename("y"), how="inner").reset_index())
    layers = sorted(both.layer.unique())
    colours = dict(zip(layers, _sequential(len(layers))))
    with plot_style():
        fig, ax = _figure(FULL_WIDTH_IN, 3.8, full_width=full_width)
        for layer, g in both.groupby("layer"):
            g = g.sort_values("step")
            size = 12 + 50 * np.arange(len(g)) / max(1, len(g) - 1)
            ax.plot(g.x, g.y, "-", color=colours[layer], alpha=0.7)
            ax.scatter(g.x, g.y, s=size, color=colours[layer], label=f"layer {layer}", zorder=3)
            ax.scatter(g.x.iloc[-1:], g.y.iloc[-1:], s=140, facecolors="none", edgecolors=colours[layer], zorder=4)
        ax.set_xlabel("I(X; Z) (nats) — input context kept")
        ax.set_ylabel("I(Y; Z) (nats) — next token predicted")
        _legend_beside(ax)
        if title is not None:
            ax.set_title(title)
        return _finish(fig)


def plot_metric_vs_loss(df: pd.DataFrame, *, metric: str, title: str | None = None,
                        full_width: bool = False) -> Figure:
    """A per-layer metric against the checkpoint's validation loss (one line per layer; x reversed,
    so training runs left to right). Layers are coloured dark (shallow) to light (deep), the
    deepest still clearly visible on white.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy rows of one model with columns ``val_loss``, ``layer``, ``metric``, ``value``
        (seeds averaged).
    metric : str
        The metric drawn.
    title : str, optional
        Axes title.
    full_width : bool, default False
        Draw for the full page width instead of the text column.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, one axes.
    """
    data = _prepare(df, metric=metric, columns=["val_loss", "layer", "value"])
    agg = data.groupby(["layer", "val_loss"]).value.mean().reset_index()
    layers = sorted(agg.layer.unique())
    with plot_style():
        fig, ax = _figure(FULL_WIDTH_IN, 3.4, full_width=full_width)
        sns.lineplot(data=agg, x="val_loss", y="value", hue="layer", hue_order=layers, marker="o",
                     palette=dict(zip(layers, _sequential(len(layers)))), legend="full", ax=ax)
        ax.invert_xaxis()
        ax.set_xlabel("validation loss (nats / character; training runs left → right)")
        ax.set_ylabel(_metric_label(metric, None))
        _legend_beside(ax, title="layer")
        if title is not None:
            ax.set_title(title)
        return _finish(fig)


METRIC_LABELS.update({
    "mi_xz": "I(X; Z) (nats)",
    "mi_yz": "I(Y; Z) (nats)",
    "mi_yz_probe": "I(Y; Z), probe bound (nats)",
    "compression_ratio": "I(Y; Z) / I(X; Z)",
})

__all__ += ["plot_loss_curve", "plot_checkpoint_heatmap", "plot_over_training", "plot_information_plane",
            "plot_metric_vs_loss"]


# --------------------------------------------------------------------------- OT at scale (chapter 4)
def plot_scaling(df: pd.DataFrame, *, memory: str | None = None, title: str | None = None,
                 full_width: bool = False) -> Figure:
    """Time and memory against the number of points, one line per solver, log-log.

    ``df`` has columns ``solver``, ``n``, ``time_s`` and the ``memory`` column (one row per
    solver and size, e.g. from ``benchmarks/bench_scale.py``). ``memory`` defaults to
    ``solver_mem_mb`` (the solver's own rise of the process's peak memory) when ``df`` has it,
    else ``peak_mem_mb`` (the whole process: interpreter, libraries and inputs included). Values
    below 1 MiB are drawn at 1 MiB (a log axis has no 0). Returns one figure with two panels
    and the legend under them.

    Parameters
    ----------
    df : pandas.DataFrame
        The benchmark rows.
    memory : {"solver_mem_mb", "peak_mem_mb"}, optional
        The memory column drawn in the second panel (default: as above).
    title : str, optional
        Figure title above the panels.
    full_width : bool, default False
        Draw for the full page width instead of the text column.

    Returns
    -------
    matplotlib.figure.Figure
        The figure: time (left) and memory (right) against ``n``.
    """
    if memory is None:
        memory = "solver_mem_mb" if "solver_mem_mb" in getattr(df, "columns", ()) else "peak_mem_mb"
    check_choice(memory, "memory", ("solver_mem_mb", "peak_mem_mb"))
    data = _prepare(df, metric=None, columns=["solver", "n", "time_s", memory])
    data = data.rename(columns={COLUMN_LABELS.get("solver", "solver"): "solver"})
    data[memory] = data[memory].clip(lower=1.0)
    mem_label = "solver's own peak memory (MiB)" if memory == "solver_mem_mb" else "process peak memory (MiB)"
    with plot_style():
        fig, axes = facet_grid(2, aspect=1.25, full_width=full_width, extra_height=0.35)
        for ax, col, label in [(axes[0], "time_s", "time (s)"), (axes[1], memory, mem_label)]:
            sns.lineplot(data=data, x="n", y=col, hue="solver", style="solver", markers=True, dashes=False,
                         hue_order=sorted(data.solver.unique()), style_order=sorted(data.solver.unique()), ax=ax,
                         errorbar=None, legend=ax is axes[0])
            ax.set(xscale="log", yscale="log", xlabel="points per cloud n", ylabel=label)
            ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
            ax.yaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        _legend_below(fig, axes[0])
        return _finish(fig, title)


def plot_bijection(x: Any, y: Any, permutation: Any, *, n_lines: int = 400, seed: int = 0,
                   title: str | None = None, full_width: bool = False) -> Figure:
    """Two 2-D clouds and segments ``x_i -> y_{permutation_i}`` for a random subset of points.

    Parameters
    ----------
    x : array-like or torch.Tensor, [n, 2]
        The source cloud (drawn as "source (moons)").
    y : array-like or torch.Tensor, [n, 2]
        The target cloud (drawn as "target (S-curve)").
    permutation : array-like or torch.Tensor, [n]
        ``x_i`` is matched to ``y[permutation[i]]``.
    n_lines : int, default 400
        Segments drawn, for points picked at random (all of them when ``n`` is smaller).
    seed : int, default 0
        Seed of the pick.
    title : str, optional
        Axes title.
    full_width : bool, default False
        Draw for the full page width instead of the text column.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, one axes with equal x and y scales.

    Raises
    ------
    ValueError
        If ``x`` or ``y`` is not ``[n, 2]``, ``permutation`` is not ``[n]``, or ``n_lines`` < 0.
    """
    x, y = (np.asarray(v.detach().cpu() if hasattr(v, "detach") else v, dtype=float) for v in (x, y))
    perm = np.asarray(permutation.detach().cpu() if hasattr(permutation, "detach") else permutation)
    if x.ndim != 2 or x.shape[1] != 2 or y.shape != x.shape or perm.shape != (x.shape[0],):
        raise ValueError(f"`x`, `y` must be [n, 2] and `permutation` [n]; got {x.shape}, {y.shape}, {perm.shape}")
    check_int(n_lines, "n_lines", minimum=0)
    pick = np.random.default_rng(seed).permutation(x.shape[0])[:n_lines]
    with plot_style():
        fig, ax = _figure(FULL_WIDTH_IN, 4.2, full_width=full_width)
        segs = np.stack([x[pick], y[perm[pick]]], 1)
        ax.add_collection(mpl.collections.LineCollection(segs, colors="0.6", linewidths=0.5, alpha=0.6))
        ax.scatter(x[:, 0], x[:, 1], s=3, label="source (moons)")
        ax.scatter(y[:, 0], y[:, 1], s=3, label="target (S-curve)")
        ax.set_aspect("equal")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, markerscale=4)
        if title is not None:
            ax.set_title(title)
        return _finish(fig)


def plot_published_costs(ours: pd.DataFrame, paper: pd.DataFrame, *, title: str | None = None,
                         full_width: bool = False) -> Figure:
    """Transport cost against ``n``: our solvers (solid) beside a paper's recorded costs (dashed).

    Parameters
    ----------
    ours, paper : pandas.DataFrame
        Tidy tables with columns ``n``, ``method``, ``cost`` (e.g.
        :func:`otlens.published.our_costs` and :func:`otlens.published.paper_costs`).
    title : str, optional
        Figure title.
    full_width : bool, default False
        Draw for the full page width instead of the text column.

    Returns
    -------
    matplotlib.figure.Figure
        One panel, ``n`` on a log axis; colour is the solver, the line style whose numbers they are.
    """
    for name, t in (("ours", ours), ("paper", paper)):
        missing = {"n", "method", "cost"} - set(getattr(t, "columns", ()))
        if missing:
            raise ValueError(f"`{name}` lacks the columns {sorted(missing)}")
    data = pd.concat([ours.assign(whose="otlens")[["n", "method", "cost", "whose"]],
                      paper.assign(whose="paper")[["n", "method", "cost", "whose"]]], ignore_index=True)
    data = data.groupby(["n", "method", "whose"], as_index=False).cost.mean()
    methods = sorted(data.method.unique())
    with plot_style():
        fig, axes = facet_grid(1, aspect=1.9, full_width=full_width, extra_height=0.35)
        ax = axes[0]
        sns.lineplot(data=data, x="n", y="cost", hue="method", hue_order=methods, style="whose",
                     style_order=["otlens", "paper"], markers=True, errorbar=None, ax=ax)
        ax.set(xscale="log", xlabel="points per cloud n", ylabel="transport cost (Euclidean)")
        ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        _legend_below(fig, ax)
        return _finish(fig, title)


__all__ += ["plot_scaling", "plot_bijection", "plot_published_costs"]


_VERDICT_COLORS = {"reproduced": "#009E73", "reproduced with the published method only": "#E69F00",
                   "not reproduced": "#D55E00", "inconclusive (underpowered)": "#56B4E9",
                   "data not available here": "#999999", "open question": "#CC79A7"}


def plot_verdicts(table: pd.DataFrame, *, title: str | None = None, full_width: bool = False) -> Figure:
    """Verdicts of the reproduction table (:func:`otlens.reproduction.reproduction_table`) per study.

    One horizontal stacked bar per study (``study`` column), one colour per verdict; the legend
    is under the bars.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per claim, with columns ``study`` and ``verdict``; studies are drawn in their
        order of first appearance.
    title : str, optional
        Axes title.
    full_width : bool, default False
        Draw for the full page width instead of the text column.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, one axes.

    Raises
    ------
    ValueError
        If ``table`` is not a DataFrame with columns ``study`` and ``verdict``.
    """
    if not isinstance(table, pd.DataFrame) or not {"study", "verdict"} <= set(table.columns):
        raise ValueError("`table` must be a DataFrame with columns 'study' and 'verdict'")
    counts = table.groupby(["study", "verdict"]).size().unstack(fill_value=0)
    order = [v for v in _VERDICT_COLORS if v in counts.columns] + [v for v in counts.columns if v not in _VERDICT_COLORS]
    counts = counts[order].loc[list(dict.fromkeys(table.study))]
    with plot_style():
        fig, ax = _figure(FULL_WIDTH_IN, 1.2 + 0.4 * len(counts) + 0.18 * math.ceil(len(order) / 2),
                          full_width=full_width)
        left = np.zeros(len(counts))
        for verdict in order:
            ax.barh(counts.index, counts[verdict], left=left, label=verdict,
                    color=_VERDICT_COLORS.get(verdict, sns.color_palette("colorblind")[7]))
            left += counts[verdict].to_numpy()
        ax.invert_yaxis()
        ax.set(xlabel="claims", ylabel="study")
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
        if title is not None:
            ax.set_title(title)
        _legend_below(fig, ax, ncols=2)
        return _finish(fig)


__all__ += ["plot_verdicts"]


use_retina()  # inside IPython, figures are shown as 2x PNGs at their drawn size
