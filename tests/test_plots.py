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
                                dict(experiment="test", model=model, trained=trained, method=method, layer=layer,
                                     seed=seed, metric=metric, value=float(rng.normal(layer, 0.3)), n_samples=64)
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


def test_plot_layer_heatmaps_share_one_colour_scale():
    a, b = np.arange(9.0).reshape(3, 3), 10 * np.ones((3, 3))
    fig = plots.plot_layer_heatmaps({"trained": a, "untrained": b}, title="m")
    meshes = [ax.collections[0] for ax in fig.axes if ax.get_title() in ("trained", "untrained")]
    assert len(meshes) == 2
    assert {m.get_clim() for m in meshes} == {(0.0, 10.0)}
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
    df = pd.DataFrame(dict(solver=["hiref", "hiref", "pot-emd", "pot-emd"], n=[256, 1024, 256, 1024],
                           time_s=[0.1, 0.4, 0.2, 3.0], peak_mem_mb=[400.0, 410.0, 420.0, 500.0],
                           solver_mem_mb=[0.0, 2.0, 5.0, 80.0]))
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
