"""Tests for otlens.plots: each figure kind on a small synthetic tidy frame."""

from __future__ import annotations

import copy
import doctest

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import otlens.plots as plots  # noqa: E402
from otlens.plots import plot_entropy, plot_layer_heatmap, plot_metric_bars, plot_profile  # noqa: E402

N_LAYERS = 5


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def frame():
    """Two models x trained/untrained x two methods x three seeds x five layers x two metrics."""
    rng = np.random.default_rng(0)
    rows = []
    for model in ("tiny-a", "tiny-b"):
        for trained in (True, False):
            for method in ("sinkhorn", "exact"):
                for seed in range(3):
                    for layer in range(N_LAYERS):
                        for metric in ("sinkhorn", "norm_entropy"):
                            rows.append(
                                {"experiment": "test", "model": model, "trained": trained, "method": method, "layer": layer,
                                     "seed": seed, "metric": metric, "value": float(rng.normal(layer, 0.3)), "n_samples": 64}
                            )  # fmt: skip
    return pd.DataFrame(rows)


def data_lines(ax):
    """Lines that draw data (seaborn adds empty proxy lines for the figure legend)."""
    return [line for line in ax.lines if len(line.get_xdata())]


def legend_texts(fig):
    texts = []
    for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]:
        if legend is not None:
            texts += [t.get_text() for t in legend.get_texts()] + [legend.get_title().get_text()]
    return texts


# --- line profiles -------------------------------------------------------------------------------


def test_plot_profile_one_panel_per_model_one_line_per_state(frame):
    df = frame[frame.method == "sinkhorn"]
    fig = plot_profile(df, metric="sinkhorn", title="OT profile", n_boot=100)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["tiny-a", "tiny-b"]
    for ax in fig.axes:
        assert len(data_lines(ax)) == 2  # trained, untrained
        assert len(ax.collections) == 2  # one error band each
        assert all(float(t).is_integer() for t in ax.get_xticks())
        assert ax.get_ylabel() in ("", plots.METRIC_LABELS["sinkhorn"])
    assert fig.axes[0].get_xlabel() == "layer transition ℓ→ℓ+1"
    assert fig.axes[0].get_ylabel() == plots.METRIC_LABELS["sinkhorn"]
    texts = legend_texts(fig)
    assert "trained" in texts and "untrained" in texts and "weights" in texts
    assert "True" not in texts
    assert fig._suptitle.get_text() == "OT profile"


def test_plot_profile_style_single_panel_and_no_band(frame):
    fig = plot_profile(frame, metric="sinkhorn", col=None, style="method", errorbar=None, sharey=True)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(data_lines(ax)) == 4  # 2 states x 2 methods
    assert len(ax.collections) == 0


def test_plot_profile_accepts_csv_roundtrip_and_string_trained(frame, tmp_path):
    path = tmp_path / "r.csv"
    frame.to_csv(path, index=False)
    fig = plot_profile(pd.read_csv(path), metric="sinkhorn", col="model", errorbar="sd")
    assert len(fig.axes) == 2
    df = frame.assign(trained=frame.trained.map({True: "True", False: "False"}))
    assert "untrained" in legend_texts(plot_profile(df, metric="sinkhorn", errorbar="sd"))


def test_plot_entropy_same_shape_with_layer_axis(frame):
    fig = plot_entropy(frame[frame.method == "exact"], metric="norm_entropy", errorbar="sd")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    assert all(len(data_lines(ax)) == 2 for ax in fig.axes)
    assert fig.axes[0].get_xlabel() == "layer ℓ"
    assert fig.axes[0].get_ylabel() == "norm entropy (normalised, 0–1)"


def test_unknown_metric_gets_its_name_and_ylabel_override(frame):
    df = frame.assign(metric=frame.metric.str.replace("sinkhorn", "my_score"))
    assert plot_profile(df, metric="my_score", errorbar=None).axes[0].get_ylabel() == "my score"
    fig = plot_profile(df, metric="my_score", ylabel="score (bits)", errorbar=None)
    assert fig.axes[0].get_ylabel() == "score (bits)"


@pytest.mark.parametrize("fn", [plot_profile, plot_entropy])
def test_line_plot_errors(fn, frame):
    present = r"metrics present: \['norm_entropy', 'sinkhorn'\]"
    with pytest.raises(ValueError, match=rf"`metric` 'nope' has no rows in `df`; {present}"):
        fn(frame, metric="nope")
    with pytest.raises(ValueError, match=r"`df` lacks column\(s\) \['layer'\]"):
        fn(frame.drop(columns="layer"), metric="sinkhorn")
    with pytest.raises(ValueError, match="`df` must be a pandas DataFrame"):
        fn(frame.to_dict(), metric="sinkhorn")
    with pytest.raises(ValueError, match="`metric` must be a metric name"):
        fn(frame, metric=["sinkhorn"])
    with pytest.raises(ValueError, match="`metric` is None but `df` holds several metrics"):
        fn(frame, metric=None)
    with pytest.raises(ValueError, match="`n_boot` must be >= 1"):
        fn(frame, metric="sinkhorn", n_boot=0)


# --- heatmap -------------------------------------------------------------------------------------


def test_plot_layer_heatmap_square_cells_colorbar_and_labels():
    m = np.arange(N_LAYERS * N_LAYERS, dtype=float).reshape(N_LAYERS, N_LAYERS)
    fig = plot_layer_heatmap(m, title="cost", annotate=True)
    assert isinstance(fig, Figure)
    ax, cbar = fig.axes  # heatmap + colour bar
    assert cbar.get_ylabel() == "OT cost (activation units²)"
    assert ax.get_title() == "cost"
    assert ax.get_xlabel() == "layer" and ax.get_ylabel() == "layer"
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(i) for i in range(N_LAYERS)]
    assert len(ax.texts) == N_LAYERS * N_LAYERS  # annotations
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # origin upper left: y axis inverted
    assert ax.get_aspect() == 1.0


def test_plot_layer_heatmap_inputs_and_existing_axes():
    fig0, ax0 = plt.subplots()
    t = torch.rand(3, 3)
    t[0, 2] = float("nan")  # blank cell
    assert plot_layer_heatmap(t, ax=ax0, labels=["emb", "L1", "L2"], cbar_label="W₂²") is fig0
    assert [x.get_text() for x in ax0.get_xticklabels()] == ["emb", "L1", "L2"]
    df = pd.DataFrame(np.eye(2, 3), index=["a0", "a1"], columns=["b0", "b1", "b2"])
    fig = plot_layer_heatmap(df, xlabel="model B layer", ylabel="model A layer")
    ax = fig.axes[0]
    assert [x.get_text() for x in ax.get_xticklabels()] == ["b0", "b1", "b2"]
    fig = plot_layer_heatmap(np.eye(2, 3), labels=(["r0", "r1"], ["c0", "c1", "c2"]))
    assert [x.get_text() for x in fig.axes[0].get_yticklabels()] == ["r0", "r1"]


def test_plot_layer_heatmap_errors():
    with pytest.raises(ValueError, match=r"`matrix` must be a non-empty 2-D array"):
        plot_layer_heatmap(np.ones(3))
    with pytest.raises(ValueError, match="infinite"):
        plot_layer_heatmap(np.array([[0.0, np.inf], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="`labels` must give 3 row and 3 column"):
        plot_layer_heatmap(np.eye(3), labels=["a", "b"])
    with pytest.raises(ValueError, match="`matrix` must be a 2-D array of numbers"):
        plot_layer_heatmap([["a", "b"], ["c", "d"]])


# --- bars ----------------------------------------------------------------------------------------


def test_plot_metric_bars_bars_and_points(frame):
    df = frame[frame.layer == 0]
    fig = plot_metric_bars(df, x="method", hue="trained", metric="sinkhorn", title="scores", n_boot=100)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert len(ax.containers) == 2  # one bar container per hue level
    assert sum(len(c) for c in ax.containers) == 4  # 2 methods x 2 states
    assert ax.get_ylabel() == plots.METRIC_LABELS["sinkhorn"]
    assert ax.get_xlabel() == "method" and ax.get_title() == "scores"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["trained", "untrained"]
    assert ax.get_legend().get_title().get_text() == "weights"
    assert len(ax.lines) >= 4  # error bars

    fig = plot_metric_bars(df, x="trained", metric="norm_entropy", kind="point", errorbar="sd")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["trained", "untrained"]
    assert ax.get_xlabel() == "weights"


def test_plot_metric_bars_existing_axes_and_errors(frame):
    fig0, ax0 = plt.subplots()
    assert plot_metric_bars(frame, x="model", metric="sinkhorn", ax=ax0) is fig0
    with pytest.raises(ValueError, match="`kind` must be one of"):
        plot_metric_bars(frame, x="model", kind="violin")
    with pytest.raises(ValueError, match=r"`df` lacks column\(s\) \['score'\]"):
        plot_metric_bars(frame, x="model", y="score")


# --- style ---------------------------------------------------------------------------------------


def test_plotting_leaves_global_rcparams_unchanged(frame):
    before = copy.deepcopy(dict(matplotlib.rcParams))
    plot_profile(frame, metric="sinkhorn", errorbar="sd")
    plot_layer_heatmap(np.eye(3))
    plot_metric_bars(frame, x="model", metric="sinkhorn")
    after = dict(matplotlib.rcParams)
    assert [k for k in before if before[k] != after[k]] == []


def test_style_applies_inside_context():
    with plots.plot_style():
        assert matplotlib.rcParams["axes.grid"] is True
        assert matplotlib.rcParams["axes.prop_cycle"].by_key()["color"][0] != "#1f77b4"


def test_doctests():
    assert doctest.testmod(plots).failed == 0


def test_plot_entropy_row_per_metric(frame):
    # metric=None with row="metric": one row of panels per metric, one column per model
    fig = plot_entropy(frame[frame.method == "exact"], metric=None, row="metric", errorbar="sd")
    assert len(fig.axes) == 4
    titles = {ax.get_title() for ax in fig.axes}
    assert any("tiny-a" in t for t in titles) and any("norm entropy" in t for t in titles)
    plt.close(fig)


def test_plot_layer_heatmaps_own_colour_scale_each_unless_shared():
    a, b = np.arange(9.0).reshape(3, 3), 10 + np.arange(9.0).reshape(3, 3) / 100
    fig = plots.plot_layer_heatmaps({"trained": a, "untrained": b}, title="m")
    meshes = [ax.collections[0] for ax in fig.axes if ax.get_title() in ("trained", "untrained")]
    assert [m.get_clim() for m in meshes] == [(0.0, 8.0), (10.0, 10.08)]  # each panel's own range
    fig = plots.plot_layer_heatmaps({"trained": a, "untrained": b}, shared_scale=True)
    meshes = [ax.collections[0] for ax in fig.axes if ax.get_title() in ("trained", "untrained")]
    assert {m.get_clim() for m in meshes} == {(0.0, 10.08)}
    plt.close(fig)
    with pytest.raises(ValueError, match="`matrices`"):
        plots.plot_layer_heatmaps({})


def test_returned_figures_are_detached_from_pyplot(frame):
    # a notebook shows the returned figure once; pyplot must not hold (and show) it again
    plt.close("all")
    plot_profile(frame, metric="sinkhorn", errorbar=None)
    plot_layer_heatmap(np.eye(3))
    plot_metric_bars(frame, x="trained", metric="sinkhorn", errorbar=None)
    assert plt.get_fignums() == []
    # a figure the caller owns stays open
    fig, ax = plt.subplots()
    assert plot_layer_heatmap(np.eye(3), ax=ax) is fig
    assert plt.get_fignums() == [fig.number]
    plt.close(fig)


def test_plot_scaling_uses_the_solvers_own_memory_and_clips_zero():
    df = pd.DataFrame({"solver": ["hiref", "hiref", "pot-emd", "pot-emd"], "n": [256, 1024, 256, 1024],
                           "time_s": [0.1, 0.4, 0.2, 3.0], "peak_mem_mb": [400.0, 410.0, 420.0, 500.0],
                           "solver_mem_mb": [0.0, 2.0, 5.0, 80.0]})
    fig = plots.plot_scaling(df)
    ax_t, ax_m = fig.axes[:2]
    assert ax_t.get_xscale() == ax_t.get_yscale() == ax_m.get_yscale() == "log"
    assert "own" in ax_m.get_ylabel()
    mem = sorted(v for line in ax_m.get_lines() for v in line.get_ydata())
    assert mem[0] == 1.0 and mem[-1] == 80.0  # 0 drawn at 1 MiB; the process peak is not drawn
    fig = plots.plot_scaling(df.drop(columns="solver_mem_mb"))
    assert max(v for line in fig.axes[1].get_lines() for v in line.get_ydata()) == 500.0
    with pytest.raises(ValueError, match="memory"):
        plots.plot_scaling(df, memory="rss")


@pytest.mark.parametrize("fn", [plot_profile, plot_entropy])
def test_a_selection_without_rows_draws_one_panel_saying_so(fn, frame):
    # chapter 1 run with a subset of `methods` plots each method's rows; a method left out has none
    fig = fn(frame[frame.method == "not-run"], metric="sinkhorn", title="shared basis")
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == [plots.NOT_COMPUTED]
    assert not data_lines(ax)
    assert ax.get_title() == "shared basis" and ax.get_ylabel() == fn(frame, metric="sinkhorn").axes[0].get_ylabel()


# --- the figure system: every plotting function, drawn for the column ---------------------------


def _tidy(models=("tiny-a", "tiny-b"), layers=None, metrics=("sinkhorn",), methods=("sinkhorn",), seeds=2):
    """A small tidy frame; ``layers`` maps a model to its number of layers (its depth)."""
    rng = np.random.default_rng(1)
    rows = []
    for model in models:
        for trained in (True, False):
            for method in methods:
                for seed in range(seeds):
                    for layer in range((layers or {}).get(model, N_LAYERS)):
                        for metric in metrics:
                            rows.append({"experiment": "t", "model": model, "trained": trained, "method": method, "seed": seed,
                                             "layer": layer, "metric": metric, "value": float(rng.normal(layer, 0.3)),
                                             "n_samples": 100 * (1 + seed)})
    return pd.DataFrame(rows)


def _training_frame(n_layers=5, steps=(0, 10, 100, 1000)):
    rows = []
    for step, loss in zip(steps, np.linspace(4.2, 1.5, len(steps))):
        for layer in range(n_layers):
            base = {"model": "m", "trained": step > 0, "seed": 0, "step": step, "val_loss": float(loss), "layer": layer}
            rows += [dict(base, experiment="adjacent_ot", method="corrected", metric="ot_divergence", value=1 + layer),
                     dict(base, experiment="entropy", method="matrix-renyi", metric="prompt_entropy", value=0.5),
                     dict(base, experiment="info", method="k", metric="mi_xz", value=1 + step / 1000 + layer),
                     dict(base, experiment="info", method="k", metric="mi_yz", value=0.2 * layer),
                     dict(base, experiment="info", method="k", metric="compression_ratio", value=0.1 * layer)]
    return pd.DataFrame(rows)


def _sorting_frame(lengths=(2, 5, 10, 20, 50)):
    rows = []
    for n in lengths:
        for method in ("transformer", "sinkhorn"):
            for seed in range(2):
                for depth in (1, 2, 4, 8, 16):
                    rows.append({"n": n, "method": method, "seed": seed, "layer": depth, "metric": "plan_error",
                                     "value": 1.0 / (depth + seed + 1)})
    return pd.DataFrame(rows)


def _words(n, stem):
    return [f"{stem}{i}" for i in range(n)]


def _paper_costs():
    from otlens.published import paper_costs

    return paper_costs()


def _cases():
    """Every public plotting function on data shaped like the book's largest use of it."""
    rng = np.random.default_rng(0)
    three = _tidy(models=("mpnet-base", "minilm-l6", "gemma3-270m"),
                  layers={"minilm-l6": 7, "mpnet-base": 13, "gemma3-270m": 19}, methods=("raw-scale", "layer-scale"),
                  metrics=("ot_divergence", "norm_entropy", "prompt_entropy"))
    scaling = pd.DataFrame({"solver": ["hiref", "hiref", "pot-emd", "pot-emd"], "n": [256, 1024, 256, 1024],
                                "time_s": [0.1, 0.4, 0.2, 3.0], "solver_mem_mb": [0.0, 2.0, 5.0, 80.0]})
    table = pd.DataFrame({"study": ["Ch. 1 — OT across depth"] * 3 + ["Ch. 2 — hierarchical alignment"] * 2,
                              "verdict": ["reproduced", "not reproduced", "inconclusive (underpowered)",
                                       "reproduced with the published method only", "open question"]})
    log = pd.DataFrame({"step": list(range(1, 200)) + [0, 100, 199], "metric": ["train_loss"] * 199 + ["val_loss"] * 3,
                            "value": list(np.linspace(4, 2, 199)) + [4.1, 2.6, 2.1]})
    pairs = {"MiniLM → MPNet": rng.random((7, 13)), "MPNet → MiniLM": rng.random((13, 7)),
             "Gemma → MiniLM": rng.random((19, 7)), "MiniLM → Gemma": rng.random((7, 19)),
             "MiniLM → MiniLM (untr.)": rng.random((7, 7))}
    src, tgt = _words(22, "λόγος"), _words(18, "word")
    maps = {f"{kind}, block {k}": rng.random((22, 18)) for kind in ("attention", "OT plan") for k in (0, 5, 17)}
    scores = _tidy(models=["MiniLM\n→ MPNet", "MPNet\n→ MiniLM", "Gemma\n→ MiniLM", "MiniLM\n→ Gemma",
                           "MiniLM\n→ MiniLM (untr.)", "MiniLM\n→ MiniLM"], methods=("hot", "pairwise-best", "hot+r"),
                   layers={}, metrics=("hot_score",))
    return {
        "plot_profile": lambda: plots.plot_profile(three[three.metric == "ot_divergence"], metric="ot_divergence",
                                                   row="method", n_boot=50),
        "plot_profile_5_models": lambda: plots.plot_profile(
            _tidy(models=[f"m{i}" for i in range(5)]), metric="sinkhorn", hue="n_samples", errorbar=None),
        "plot_entropy": lambda: plots.plot_entropy(three[three.metric.str.contains("entropy")], metric=None,
                                                   row="metric", errorbar="sd"),
        "plot_layer_heatmap": lambda: plots.plot_layer_heatmap(rng.random((19, 19))),
        "plot_layer_heatmaps": lambda: plots.plot_layer_heatmaps({"trained": rng.random((19, 19)),
                                                                  "untrained": rng.random((19, 19))}, title="gemma"),
        "plot_metric_bars": lambda: plots.plot_metric_bars(scores[scores.layer == 0], x="model", hue="method",
                                                           metric="hot_score", kind="point", errorbar="sd"),
        "plot_depth_error": lambda: plots.plot_depth_error(_sorting_frame()),
        "plot_sorted_lists": lambda: plots.plot_sorted_lists([(rng.random(n), rng.permutation(n)) for n in (5, 10, 20, 50)]),
        "plot_alignment_maps": lambda: plots.plot_alignment_maps(maps, src, tgt, gold={(0, 0), (3, 2)}),
        "plot_alignment_by_layer": lambda: plots.plot_alignment_by_layer(
            _tidy(metrics=("aer",), methods=("attention", "ot-exact", "cosine", "diagonal")), metric="aer"),
        "plot_couplings": lambda: plots.plot_couplings(pairs, title="HOT layer couplings"),
        "plot_reconstruction": lambda: plots.plot_reconstruction(rng.normal(size=(50, 20)), rng.normal(size=(50, 20))),
        "plot_loss_curve": lambda: plots.plot_loss_curve(log),
        "plot_checkpoint_heatmap": lambda: plots.plot_checkpoint_heatmap(
            _training_frame(steps=[0, 1, 3, 10, 30, 100, 300, 1000, 2000, 3000, 4000, 5000, 6000, 7000]),
            metric="ot_divergence"),
        "plot_over_training": lambda: plots.plot_over_training(_training_frame(), metrics=["ot_divergence", "prompt_entropy"]),
        "plot_information_plane": lambda: plots.plot_information_plane(_training_frame()),
        "plot_metric_vs_loss": lambda: plots.plot_metric_vs_loss(_training_frame(), metric="compression_ratio"),
        "plot_scaling": lambda: plots.plot_scaling(scaling),
        "plot_bijection": lambda: plots.plot_bijection(rng.normal(size=(300, 2)), rng.normal(size=(300, 2)),
                                                       rng.permutation(300)),
        "plot_verdicts": lambda: plots.plot_verdicts(table),
        "plot_published_costs": lambda: plots.plot_published_costs(
            pd.DataFrame(dict(n=[2**k for k in range(10, 17)] * 3, method=["hiref"] * 7 + ["sinkhorn"] * 7 + ["exact"] * 7,
                              cost=rng.uniform(2.1, 2.3, 21))), _paper_costs()),
        "not_computed": lambda: plots.plot_profile(three[three.method == "none"], metric="ot_divergence"),
    }


def _drawn_texts(fig):
    """(text, window extent) of every text the renderer actually draws, and the renderer."""
    drawn = []
    original = matplotlib.text.Text.draw

    def record(self, renderer):
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append((self, self.get_window_extent(renderer)))

    matplotlib.text.Text.draw = record
    try:
        FigureCanvasAgg(fig)  # a detached figure has a bare canvas; draw as the PNG writer does
        fig.canvas.draw()
    finally:
        matplotlib.text.Text.draw = original
    return drawn, fig.canvas.get_renderer()


def _overlaps(drawn, tol_px=-1.0):
    """Pairs of drawn texts whose boxes overlap, or touch: closer than ``-tol_px`` in both directions."""
    out = []
    for i, (a, ba) in enumerate(drawn):
        for b, bb in drawn[i + 1:]:
            dx = min(ba.x1, bb.x1) - max(ba.x0, bb.x0)
            dy = min(ba.y1, bb.y1) - max(ba.y0, bb.y0)
            if dx > tol_px and dy > tol_px:
                out.append((a.get_text(), b.get_text()))
    return out


def _panels_per_row(fig):
    """Most data panels (colour bars excluded) side by side: axes whose vertical spans overlap."""
    panels = [ax.get_position() for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    most = 0
    for p in panels:
        same_row = [q for q in panels if min(p.y1, q.y1) - max(p.y0, q.y0) > 0.5 * min(p.height, q.height)]
        most = max(most, len(same_row))
    return most


def check_figure_rules(fig):
    """The figure system's rules; returns the list of violations (empty: the figure passes)."""
    problems = []
    width_kind = getattr(fig, plots.WIDTH_ATTR, None)
    if width_kind not in ("column", "full"):
        problems.append(f"figure does not say what width it was drawn for ({plots.WIDTH_ATTR}={width_kind!r})")
    target_in = plots.FULL_WIDTH_IN if width_kind == "full" else plots.COLUMN_WIDTH_IN
    if fig.dpi != plots.DISPLAY_DPI:
        problems.append(f"dpi {fig.dpi} != {plots.DISPLAY_DPI}")
    drawn, renderer = _drawn_texts(fig)
    # the inline backend crops to the tight box (+0.1 in a side); wider than the target, the page shrinks it
    shown_in = fig.get_tightbbox(renderer).width + 0.2
    if fig.get_figwidth() > target_in + 1e-9:
        problems.append(f"drawn {fig.get_figwidth():.2f} in wide for a {target_in} in column")
    shrink = min(1.0, target_in / shown_in)
    if shrink < 0.97:
        problems.append(f"the PNG is {shown_in:.2f} in wide: shrunk to {shrink:.0%} in a {target_in} in column")
    png_px = shown_in * fig.dpi * plots.PIXEL_RATIO
    if png_px < 2 * shown_in * plots.DISPLAY_DPI * shrink - 1:
        problems.append(f"the PNG has {png_px:.0f} px for {shown_in * plots.DISPLAY_DPI * shrink:.0f} displayed px")
    small = sorted({(round(t.get_fontsize() * shrink, 1), t.get_text()[:20]) for t, _ in drawn
                    if t.get_fontsize() * shrink < plots.MIN_FONT_PT - 1e-6})
    if small:
        problems.append(f"text below {plots.MIN_FONT_PT} pt at page size: {small[:5]}")
    if _panels_per_row(fig) > plots.MAX_PANELS_PER_ROW:
        problems.append(f"{_panels_per_row(fig)} panels in one row")
    overlaps = _overlaps(drawn)
    if overlaps:
        problems.append(f"overlapping text: {overlaps[:5]}")
    return problems


CASES = _cases()


def test_every_public_plotting_function_has_a_size_case():
    public = {name for name in plots.__all__ if name.startswith("plot_") and name != "plot_style"}
    assert public <= set(CASES), sorted(public - set(CASES))


@pytest.mark.parametrize("name", sorted(CASES))
def test_figure_is_drawn_for_the_column_and_legible(name):
    fig = CASES[name]()
    assert check_figure_rules(fig) == []
    assert getattr(fig, plots.WIDTH_ATTR) == "column"
    assert fig.get_figwidth() <= plots.COLUMN_WIDTH_IN


def test_the_rule_check_fails_on_a_regression():
    # the old chapter 2 figure: five panels in one 16-inch row at 100 dpi, 7-pt ticks
    fig, axes = plt.subplots(1, 5, figsize=(16, 3.2))
    for ax in axes:
        ax.imshow(np.random.default_rng(0).random((13, 13)))
        ax.set_xticks(range(13), [f"layer {i}" for i in range(13)], fontsize=7)
        ax.set_title("minilm-l6 → mpnet-base", fontsize=10)
    problems = " | ".join(check_figure_rules(fig))
    for fragment in ("width it was drawn for", "panels in one row", "below 8.0 pt", "overlapping text", "drawn 16.00 in"):
        assert fragment in problems
    # a column figure with a legend hanging far outside its right edge is shrunk on the page
    fig = plots.plot_alignment_by_layer(_tidy(metrics=("aer",)), metric="aer")
    fig.axes[0].legend(["a very long legend entry " * 4], loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.set_layout_engine("none")
    assert any("shrunk" in p for p in check_figure_rules(fig))


def test_facet_grid_wraps_at_three_and_full_width_says_so():
    with plots.plot_style():
        fig, axes = plots.facet_grid(5)
    assert len(axes) == 5 and len(fig.axes) == 5
    assert [ax.get_subplotspec().rowspan.start for ax in axes] == [0, 0, 0, 1, 1]
    assert fig.get_figwidth() == pytest.approx(plots.COLUMN_WIDTH_IN - 0.2) and fig.dpi == plots.DISPLAY_DPI
    with plots.plot_style():
        fig, axes = plots.facet_grid(4, ncols=7, full_width=True)
    assert getattr(fig, plots.WIDTH_ATTR) == "full" and fig.get_figwidth() == pytest.approx(plots.FULL_WIDTH_IN - 0.2)
    assert _panels_per_row(fig) == 2 or _panels_per_row(fig) == 3
    assert max(ax.get_subplotspec().colspan.start for ax in axes) == 2
    fig = plots.plot_profile(_tidy(), metric="sinkhorn", errorbar=None, full_width=True)
    assert getattr(fig, plots.WIDTH_ATTR) == "full" and check_figure_rules(fig) == []


def test_models_are_ordered_by_depth_and_rows_get_their_own_axes():
    df = _tidy(models=("b-deep", "a-mid", "c-shallow"), layers={"b-deep": 9, "a-mid": 6, "c-shallow": 3},
               methods=("raw-scale", "layer-scale"))
    df.loc[df.method == "raw-scale", "value"] *= 1e8
    fig = plots.plot_profile(df, metric="sinkhorn", row="method", errorbar=None)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [f"{m} · {n}" for m in ("layer-scale", "raw-scale") for n in ("c-shallow", "a-mid", "b-deep")]
    top, bottom = fig.axes[0], fig.axes[3]
    assert top.get_ylim()[1] < 100 and bottom.get_ylim()[1] > 1e7  # the layer-scale row is not squashed
    assert check_figure_rules(fig) == []  # no "1e8" offset text run into the panel title
    assert "e8" in " ".join(t.get_text() for t in bottom.get_yticklabels())


def test_sequential_palettes_stay_visible_on_white():
    # figure 27 drew its deepest layer in the colour map's near-white end
    fig = plots.plot_metric_vs_loss(_training_frame(n_layers=5), metric="compression_ratio")
    colours = [line.get_color() for line in data_lines(fig.axes[0])]
    assert len(colours) == 5
    luminance = [0.2126 * r + 0.7152 * g + 0.0722 * b for r, g, b, *_ in map(matplotlib.colors.to_rgba, colours)]
    assert max(luminance) < 0.8
    steps = plots._steps_palette(range(14))
    assert max(0.2126 * r + 0.7152 * g + 0.0722 * b for r, g, b, *_ in steps.values()) < 0.85


def test_loss_legend_is_off_the_curves():
    fig = plots.plot_loss_curve(_cases_log())
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    assert ax.get_legend() is None and len(fig.legends) == 1
    legend_box = fig.legends[0].get_window_extent(renderer)
    assert legend_box.y1 <= ax.get_window_extent(renderer).y0 + 1  # under the axes, not inside


def _cases_log():
    steps = list(range(1, 200))
    return pd.DataFrame({"step": steps + [0, 100, 199], "metric": ["train_loss"] * 199 + ["val_loss"] * 3,
                             "value": list(np.linspace(4, 2, 199)) + [4.1, 2.6, 2.1]})


def test_use_retina_switches_the_inline_backend():
    pytest.importorskip("matplotlib_inline")
    from IPython.core.interactiveshell import InteractiveShell
    from matplotlib_inline.config import InlineBackend

    shell = InteractiveShell.instance()
    try:
        assert plots.use_retina() is True
        assert "retina" in InlineBackend.instance().figure_formats
        assert "png" not in InlineBackend.instance().figure_formats
    finally:
        InteractiveShell.clear_instance()
        InlineBackend.clear_instance()
    assert shell is not None
