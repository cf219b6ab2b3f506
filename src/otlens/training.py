r"""Chapter 5's study: training dynamics, the OT profile and information plane of every checkpoint.

The tiny GPT and its trainer are :mod:`otlens.tiny_gpt` (an input: a model definition); its
names are re-exported here, so ``otlens.training.train_tiny_gpt``, ``TrainConfig`` and the
rest keep working. This module adds what chapter 5 computes from a run's checkpoints:
:func:`checkpoint_study` (profiles, entropies, information plane per checkpoint),
:func:`shape_over_training` and :func:`shape_onset` (when the profile's valley appears),
:func:`valley_stats` and :func:`information_summary`, :func:`entropy_bottlenecks`, and
:func:`training_observations`, which reads them together into what the chapter reports.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .activations import extract_activations
from .depth import adjacent_profile, entropy_profile, has_interior_minimum
from . import tiny_gpt
from .information import information_plane
from . import models
from .tiny_gpt import (
    DEFAULT_CONFIG,
    TRAINING_VERSION,
    TrainConfig,
    TrainingRun,
    alias_checkpoint,
    build_tokenizer,
    checkpoint_hashes,
    checkpoint_steps,
    heldout_texts,
    train_tiny_gpt,
)

__all__ = [
    *tiny_gpt.__all__,  # re-exported: otlens.training.X keeps working for the trainer's names
    "checkpoint_study",
    "shape_over_training",
    "shape_onset",
    "information_summary",
    "valley_stats",
    "entropy_bottlenecks",
    "TrainingObservations",
    "training_observations",
    "parse_spec",
    "resolve_spec",
]


# --------------------------------------------------------------------------------------------
# Analysis across checkpoints


def checkpoint_study(
    run: TrainingRun,
    texts: Sequence[str],
    *,
    steps: Sequence[int] | None = None,
    seeds: Sequence[int] = (0,),
    n_samples: int = 500,
    information: bool = True,
    k: int = 2,
    n_clusters: int = 32,
    n_tokens: int = 4000,
    probe: bool = True,
    device: Any = None,
    progress: bool = True,
) -> pd.DataFrame:
    """OT profile (corrected method), entropies and information plane of every checkpoint.

    For each checkpoint step the residual states over ``texts`` come from
    :func:`~otlens.activations.extract_activations` (cached); then
    :func:`~otlens.depth.adjacent_profile` (method ``"corrected"``, ``n_samples`` tokens per
    cloud, one profile per seed), :func:`~otlens.depth.entropy_profile` and, when
    ``information``, :func:`~otlens.information.information_plane`.

    Parameters
    ----------
    run : TrainingRun
        The trained run (:func:`otlens.tiny_gpt.train_tiny_gpt`).
    texts : sequence of str
        The texts (e.g. :func:`otlens.tiny_gpt.heldout_texts`).
    steps : sequence of int, optional
        The checkpoints (default: all of the run's).
    seeds : sequence of int
        Token-sample seeds of the profiles.
    n_samples : int
        Tokens per cloud.
    information : bool
        Also compute the information plane.
    k, n_clusters, n_tokens, probe :
        As for :func:`otlens.information.information_plane`.
    device : str or torch.device, optional
        Device of the model and the solver.
    progress : bool
        Show a progress bar over the checkpoints.

    Returns
    -------
    pandas.DataFrame
        The tables concatenated, ``model`` = the run's name (e.g. ``"tiny-gpt-L4"``),
        ``trained`` = ``step > 0``, plus the columns ``step``, ``val_loss`` (of that checkpoint)
        and ``n_layers``.
    """
    steps = list(run.steps if steps is None else steps)
    for s in steps:
        run.checkpoint(s)  # validates
    val = run.val_loss()
    out = []
    for step in tqdm(steps, desc=f"checkpoints {run.name}", disable=not progress):
        lm = run.load(step)
        acts = extract_activations(lm, list(texts), max_length=run.config.context, progress=False)
        trained = step > 0
        parts = [
            adjacent_profile(acts, method="corrected", n_samples=n_samples, seeds=seeds, model=run.name,
                             trained=trained, device=device, progress=False),
            entropy_profile(acts, model=run.name, trained=trained),
        ]
        if information:
            parts.append(information_plane(acts, k=k, n_clusters=n_clusters, n_tokens=n_tokens, probe=probe,
                                           model=run.name, trained=trained))
        df = pd.concat(parts, ignore_index=True)
        df["step"] = step
        df["val_loss"] = float(val.loc[step])
        df["n_layers"] = run.config.n_layers
        out.append(df)
    return pd.concat(out, ignore_index=True)


def valley_stats(values: Sequence[float]) -> dict[str, float]:
    r"""Depth and length of the "refinement valley" of one OT depth profile.

    With :math:`v_0, \dots, v_{m-1}` the transitions' values and
    :math:`e = \min(v_0, v_{m-1})` the lower end. Needs at least 3 transitions (an interior).

    Parameters
    ----------
    values : sequence of float
        The profile, one value per transition.

    Returns
    -------
    dict of str to float
        - ``valley_depth`` :math:`= 1 - \min_{0<i<m-1} v_i / e` (0: no dip below the ends; 1: the
          interior reaches zero; negative: the interior is above an end);
        - ``valley_length``: the fraction of the :math:`m` transitions below the midpoint
          :math:`(\min_i v_i + e)/2` (how much of the depth lies in the valley);
        - ``edge_ratio`` as in :func:`otlens.depth.profile_shape`;
        - ``argmin_frac``: where the minimum sits (0 = first transition, 1 = last).
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size < 3:
        raise ValueError(f"`values` must be a 1-D profile of at least 3 transitions; got shape {v.shape}")
    e = min(v[0], v[-1])
    lo = float(v[1:-1].min())
    mid = (min(lo, e) + e) / 2
    return dict(
        valley_depth=1 - lo / e if e > 0 else np.nan,
        valley_length=float((v < mid).mean()) if lo < e else 0.0,
        edge_ratio=e / float(np.median(v[1:-1])) if np.median(v[1:-1]) > 0 else np.nan,
        argmin_frac=float(np.argmin(v)) / (v.size - 1),
    )


def shape_over_training(study: pd.DataFrame, *, metric: str = "ot_divergence") -> pd.DataFrame:
    r"""Shape of the mean (over seeds) OT profile at every checkpoint, one row per (model, step).

    Parameters
    ----------
    study : pandas.DataFrame
        The table of :func:`checkpoint_study` (its ``experiment == "adjacent_ot"`` rows are read).
    metric : str
        The profile's metric.

    Returns
    -------
    pandas.DataFrame
        Columns: ``model, step, val_loss``; the :func:`valley_stats` columns and ``u_shape``
        (both ends above the interior median and the minimum inside) when the profile has an
        interior; ``first_share`` / ``last_share``, the share :math:`v_0 / \sum_i v_i` (resp.
        :math:`v_{m-1} / \sum_i v_i`) of the total movement made by the first (last) transition;
        ``dist_final``, the total-variation distance :math:`\tfrac12 \sum_i |p_i - p^\text{final}_i|`
        between this checkpoint's profile and the final one, each normalised to sum to 1 (0 = same
        shape, whatever the level); ``corr_final``, their Pearson correlation.
    """
    prof = study[(study.experiment == "adjacent_ot") & (study.metric == metric)]
    if prof.empty:
        raise ValueError(f"`study` has no adjacent_ot rows of metric {metric!r}")
    rows = []
    for model, g in prof.groupby("model", sort=False):
        curves = g.groupby(["step", "layer"]).value.mean().unstack("layer").sort_index()  # [steps, transitions]
        final = curves.iloc[-1].to_numpy()
        p_final = final / final.sum()
        for step, curve in curves.iterrows():
            v = curve.to_numpy()
            row = dict(model=model, step=int(step), val_loss=float(g[g.step == step].val_loss.iloc[0]))
            if v.size >= 3:
                st = valley_stats(v)
                row.update(st, u_shape=bool(st["edge_ratio"] > 1 and 0 < st["argmin_frac"] < 1))
            p = v / v.sum()
            row.update(first_share=float(p[0]), last_share=float(p[-1]),
                       dist_final=float(0.5 * np.abs(p - p_final).sum()))
            row["corr_final"] = float(np.corrcoef(v, final)[0, 1]) if v.size >= 2 and v.std() > 0 else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


def shape_onset(shapes: pd.DataFrame) -> dict[str, Any]:
    """When the profile takes its final shape, from :func:`shape_over_training` (one model).

    Parameters
    ----------
    shapes : pandas.DataFrame
        The rows of one model from :func:`shape_over_training`.

    Returns
    -------
    dict of str to Any
        - ``u_step`` / ``u_loss``: the first checkpoint from which every later one is U-shaped
          (None if the final one is not, or the profile has no interior);
        - ``shape_step`` / ``shape_loss``: the first checkpoint from which ``dist_final`` (the
          profile's distance in shape to the final one) stays at or below half its step-0 value;
        - ``jump_step`` / ``jump_loss``: the checkpoint reached by the largest drop of
          ``dist_final`` between consecutive checkpoints (None if it never drops).
    """
    g = shapes.sort_values("step").reset_index(drop=True)

    def first_from(mask: pd.Series) -> int | None:
        ok = mask.to_numpy()
        for i in range(len(ok)):
            if ok[i:].all():
                return i
        return None

    def at(i: int | None, prefix: str) -> dict[str, Any]:
        return {f"{prefix}_step": None if i is None else int(g.step[i]),
                f"{prefix}_loss": None if i is None else float(g.val_loss[i])}

    out: dict[str, Any] = {}
    out.update(at(first_from(g["u_shape"].fillna(False).astype(bool)) if "u_shape" in g else None, "u"))
    out.update(at(first_from(g["dist_final"] <= g["dist_final"].iloc[0] / 2), "shape"))
    drops = -g["dist_final"].diff()
    out.update(at(int(drops.idxmax()) if len(g) > 1 and drops.max() > 0 else None, "jump"))
    return out


def information_summary(info: pd.DataFrame, val_loss: pd.Series) -> pd.DataFrame:
    """Per layer, how its information plane moved over training.

    Parameters
    ----------
    info : pandas.DataFrame
        Information-plane rows (columns ``layer``, ``step``, ``metric`` with ``mi_xz``, ``mi_yz``
        and ``compression_ratio``, ``value``; layers < 0 are ignored).
    val_loss : pandas.Series
        The validation loss by step (:meth:`TrainingRun.val_loss`).

    Returns
    -------
    pandas.DataFrame
        One row per layer: ``mi_xz_peak_step`` (the checkpoint where I(X; Z) peaks),
        ``mi_xz_drop_after_peak`` (its peak minus its last value: > 0 means the layer
        compressed), ``mi_yz_gain`` (last minus first I(Y; Z)) and ``spearman_ratio_vs_loss``
        (rank correlation, across checkpoints, of the compression ratio with the validation loss:
        < 0 means better compression, lower loss).
    """
    needed = {"layer", "step", "metric", "value"} - set(info.columns)
    if needed:
        raise ValueError(f"`info` lacks the columns {sorted(needed)}")
    planes = info[info.layer >= 0].pivot_table(index=["layer", "step"], columns="metric", values="value")
    missing = {"mi_xz", "mi_yz", "compression_ratio"} - set(planes.columns)
    if planes.empty or missing:
        raise ValueError(f"`info` has no information-plane rows with {sorted(missing) or 'layers >= 0'}")
    planes = planes.reset_index()
    planes["val_loss"] = planes.step.map(val_loss)
    rows = {}
    for layer, g in planes.groupby("layer"):
        g = g.sort_values("step")
        rows[int(layer)] = {
            "mi_xz_peak_step": int(g.step.iloc[int(g.mi_xz.to_numpy().argmax())]),
            "mi_xz_drop_after_peak": float(g.mi_xz.max() - g.mi_xz.iloc[-1]),
            "mi_yz_gain": float(g.mi_yz.iloc[-1] - g.mi_yz.iloc[0]),
            "spearman_ratio_vs_loss": float(g[["compression_ratio", "val_loss"]].corr(method="spearman").iloc[0, 1]),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "layer"
    return out


def entropy_bottlenecks(study: pd.DataFrame, *, margin: float = 0.01) -> pd.DataFrame:
    """Whether each entropy profile has its minimum strictly inside the depth, per checkpoint.

    Parameters
    ----------
    study : pandas.DataFrame
        ``experiment == "entropy"`` rows (columns ``metric``, ``step``, ``layer``, ``value``), as
        :func:`checkpoint_study` returns.
    margin : float
        As for :func:`otlens.depth.has_interior_minimum`.

    Returns
    -------
    pandas.DataFrame
        A boolean table, one row per step (sorted) and one column per entropy metric:
        :func:`otlens.depth.has_interior_minimum` of the profile over layers (the mean over any
        repeated rows of a layer).
    """
    needed = {"experiment", "metric", "step", "layer", "value"} - set(study.columns)
    if needed:
        raise ValueError(f"`study` lacks the columns {sorted(needed)}")
    ent = study[study.experiment == "entropy"]
    if ent.empty:
        raise ValueError("`study` has no entropy rows (experiment == 'entropy')")
    curves = ent.groupby(["metric", "step", "layer"]).value.mean()
    out = {(m, int(step)): has_interior_minimum(c.sort_index(level="layer").to_numpy(), margin=margin)
           for (m, step), c in curves.groupby(level=["metric", "step"])}
    table = pd.Series(out).unstack(0).sort_index().astype(bool)
    table.index.name, table.columns.name = "step", "metric"
    return table


def _first_from(flags: pd.Series) -> int | None:
    """The first index from which every later value of a boolean series is true (None: never)."""
    ok = flags.to_numpy(bool)
    for i in range(len(ok)):
        if ok[i:].all():
            return int(flags.index[i])
    return None


@dataclass(frozen=True)
class TrainingObservations:
    """What chapter 5 observed in one training run, by :func:`training_observations`.

    Steps are checkpoint steps (None: never). The other fields are documented where they are
    declared.

    Attributes
    ----------
    val_loss : pandas.Series
        The validation loss by step.
    """

    val_loss: pd.Series
    loss_falls: int  #: intervals between consecutive checkpoints over which the validation loss fell
    half_step: int  #: first checkpoint by which half of the total loss drop is done
    shape_step: int | None  #: from here on the profile is within half its initial distance to the final shape
    jump_step: int | None  #: the checkpoint reached by the largest single change of shape
    u_step: int | None  #: from here on every checkpoint is U-shaped
    first_share: tuple[float, float]  #: first transition's share of the movement, first and last checkpoint
    last_share: tuple[float, float]  #: last transition's share, first and last checkpoint
    edge_ratio: tuple[float, float]  #: edge ratio, first and last checkpoint (nan without an interior)
    valley_depth: float  #: at the last checkpoint (nan without an interior)
    bottleneck_from: dict[str, int | None]  #: per entropy metric, first step from which its minimum is inside
    mi_yz_gain_last: float  #: gain of I(Y; Z) of the last block over training
    mi_xz_drop: tuple[float, float, int]  #: mean and largest drop of I(X; Z) after its peak, and that layer
    spearman: dict[int, float]  #: per layer, Spearman(compression ratio, validation loss) across checkpoints
    sweep: pd.DataFrame = field(default_factory=pd.DataFrame)  #: final shape per model of the depth sweep

    @property
    def loss_intervals(self) -> int:
        """Number of intervals between consecutive checkpoints."""
        return len(self.val_loss) - 1

    @property
    def loss_monotone(self) -> bool:
        """True when the validation loss fell over every interval (training time ranks it exactly)."""
        return self.loss_intervals > 0 and self.loss_falls == self.loss_intervals

    def step_text(self, step: int | None) -> str:
        """``"step s (validation loss l)"``, or ``"never"``.

        Parameters
        ----------
        step : int or None
            A checkpoint step.

        Returns
        -------
        str
            The text.
        """
        return "never" if step is None else f"step {step} (validation loss {self.val_loss.loc[step]:.2f})"

    def texts(self) -> dict[str, str]:
        """The numbers as the chapter's summary shows them (``glue`` name -> text).

        Returns
        -------
        dict of str to str
            Each ``glue`` name and its text.
        """
        def num(x: float) -> str:
            return "n/a" if not np.isfinite(x) else f"{x:.2f}"

        return {
            "obs_loss_first": f"{self.val_loss.iloc[0]:.2f}",
            "obs_loss_final": f"{self.val_loss.iloc[-1]:.2f}",
            "obs_half_step": str(self.half_step),
            "obs_loss_falls": str(self.loss_falls),
            "obs_loss_intervals": str(self.loss_intervals),
            "obs_shape_from": "at no checkpoint" if self.shape_step is None else f"from step {self.shape_step} on",
            "obs_u_from": "at no checkpoint" if self.u_step is None else f"from step {self.u_step} on",
            "obs_first_share": f"{self.first_share[0]:.2f} to {self.first_share[1]:.2f}",
            "obs_last_share": f"{self.last_share[0]:.2f} to {self.last_share[1]:.2f}",
            "obs_edge_ratio_first": num(self.edge_ratio[0]),
            "obs_edge_ratio_final": num(self.edge_ratio[1]),
            "obs_bottleneck": ", ".join(f"{m.replace('_', ' ')} {'never' if s is None else f'from step {s}'}"
                                        for m, s in self.bottleneck_from.items()),
            "obs_mi_yz_gain": f"{self.mi_yz_gain_last:.2f}",
            "obs_mi_xz_drop": f"{self.mi_xz_drop[0]:.2f}",
        }

    def describe(self) -> str:
        """Markdown bullets: what the run observed, checkpoint by checkpoint (no verdict).

        Returns
        -------
        str
            The markdown.
        """
        v, st = self.val_loss, self.step_text
        u = ("It is not U-shaped at the last checkpoint" if self.u_step is None
             else f"It is U-shaped at every checkpoint from {st(self.u_step)} on")
        sweep = "; ".join(
            f"{m}: no interior transition" if pd.isna(r.get("valley_depth", np.nan)) else
            f"{m}: valley depth {r['valley_depth']:.2f}, length {r['valley_length']:.2f}, edge ratio {r['edge_ratio']:.2f}"
            for m, r in self.sweep.iterrows())
        lines = [
            f"- **Loss.** {v.iloc[0]:.2f} → {v.iloc[-1]:.2f} nats per character; half of the drop is done by "
            f"{st(self.half_step)}.",
            f"- **OT profile.** Its shape (normalised to sum 1) is within half of its initial distance to the final "
            f"shape from {st(self.shape_step)} on; the largest single change of shape comes by {st(self.jump_step)}. "
            f"The first transition's share of the total movement goes from {self.first_share[0]:.2f} to "
            f"{self.first_share[1]:.2f}, the last one's from {self.last_share[0]:.2f} to {self.last_share[1]:.2f}. "
            f"{u} (final edge ratio {self.edge_ratio[1]:.2f}, valley depth {self.valley_depth:.2f}).",
            "- **Entropy minimum inside the depth** (from which checkpoint on): "
            + ", ".join(f"{m.replace('_', ' ')} {st(s)}" for m, s in self.bottleneck_from.items()) + ".",
            f"- **Information plane.** I(Y; Z) of the last block rose by {self.mi_yz_gain_last:.2f} nats; "
            f"I(X; Z) fell after its peak by {self.mi_xz_drop[0]:.2f} nats on average over layers "
            f"(largest {self.mi_xz_drop[1]:.2f}, layer {self.mi_xz_drop[2]}). "
            "Spearman correlation of the compression ratio with validation loss across checkpoints, per layer: "
            + ", ".join(f"layer {layer} {r:.2f}" for layer, r in self.spearman.items())
            + " (negative: better compression, lower loss).",
        ]
        if len(self.sweep):
            lines.append(f"- **Depth sweep (final checkpoints).** {sweep}.")
        return "\n".join(lines)


def training_observations(val_loss: pd.Series, shapes: pd.DataFrame, bottlenecks: pd.DataFrame,
                          per_layer: pd.DataFrame, sweep_shapes: pd.DataFrame | None = None) -> TrainingObservations:
    """Read one run's tables together: loss, shape onset, entropy minimum, information plane, depth sweep.

    Parameters
    ----------
    val_loss : pandas.Series
        Validation loss by checkpoint step (:meth:`TrainingRun.val_loss`), at least two steps.
    shapes : pandas.DataFrame
        :func:`shape_over_training` of the run (one model).
    bottlenecks : pandas.DataFrame
        :func:`entropy_bottlenecks` of the run.
    per_layer : pandas.DataFrame
        :func:`information_summary` of the run.
    sweep_shapes : pandas.DataFrame, optional
        :func:`shape_over_training` of the depth sweep; its last checkpoint per model is reported.

    Returns
    -------
    TrainingObservations
        The observations, with their texts (:meth:`TrainingObservations.texts`) and markdown
        (:meth:`TrainingObservations.describe`).
    """
    if not isinstance(val_loss, pd.Series) or len(val_loss) < 2:
        raise ValueError(f"`val_loss` must be a Series of the validation loss at >= 2 checkpoints; got {val_loss!r}")
    val = val_loss.sort_index()
    if not np.isfinite(val.to_numpy(float)).all():
        raise ValueError("`val_loss` contains NaN or infinite values")
    if shapes.empty or shapes.model.nunique() != 1:
        raise ValueError(f"`shapes` must hold one model's shape_over_training rows; got models {sorted(set(shapes.get('model', [])))}")
    missing = {"mi_yz_gain", "mi_xz_drop_after_peak", "spearman_ratio_vs_loss"} - set(per_layer.columns)
    if missing or per_layer.empty:
        raise ValueError(f"`per_layer` must be information_summary(); it lacks {sorted(missing) or 'rows'}")
    g = shapes.sort_values("step").reset_index(drop=True)
    onset = shape_onset(g)
    drop = val.iloc[0] - val.iloc[-1]
    half_step = int(val.index[((val.iloc[0] - val) >= drop / 2).to_numpy().argmax()])
    first, last = g.iloc[0], g.iloc[-1]
    drops = per_layer.mi_xz_drop_after_peak
    sweep = (pd.DataFrame() if sweep_shapes is None or sweep_shapes.empty
             else sweep_shapes.sort_values("step").groupby("model", sort=False).last())
    return TrainingObservations(
        val_loss=val,
        loss_falls=int((np.diff(val.to_numpy(float)) < 0).sum()),
        half_step=half_step,
        shape_step=onset["shape_step"], jump_step=onset["jump_step"], u_step=onset["u_step"],
        first_share=(float(first.first_share), float(last.first_share)),
        last_share=(float(first.last_share), float(last.last_share)),
        edge_ratio=(float(first.get("edge_ratio", np.nan)), float(last.get("edge_ratio", np.nan))),
        valley_depth=float(last.get("valley_depth", np.nan)),
        bottleneck_from={str(m): _first_from(bottlenecks[m]) for m in bottlenecks.columns},
        mi_yz_gain_last=float(per_layer.mi_yz_gain.iloc[-1]),
        mi_xz_drop=(float(drops.mean()), float(drops.max()), int(drops.idxmax())),
        spearman={int(k): float(r) for k, r in per_layer.spearman_ratio_vs_loss.items()},
        sweep=sweep,
    )


# --------------------------------------------------------------------------------------------
# Deprecated: the spec grammar is otlens.models.parse_spec (kept for one release)

def parse_spec(spec: str) -> tuple[TrainConfig, str] | None:
    """Deprecated (use :func:`otlens.models.parse_spec`): a tiny-gpt alias's (config, step), or None.

    ``"tiny-gpt-L8@100"`` → (:data:`DEFAULT_CONFIG` with 8 blocks, ``"100"``); None for a spec
    that is not a valid tiny-gpt alias.

    Parameters
    ----------
    spec : str
        A model spec.

    Returns
    -------
    (TrainConfig, str) or None
        The alias's settings and its checkpoint (``"final"`` when it names no step); None when
        ``spec`` is not a trained tiny-gpt alias.
    """
    warnings.warn("otlens.training.parse_spec is deprecated: otlens.models.parse_spec reads every model spec",
                  DeprecationWarning, stacklevel=2)
    try:
        parsed = models.parse_spec(spec)
    except ValueError:
        return None
    if not parsed.is_tiny_gpt or not parsed.trained:
        return None
    config = tiny_gpt.DEFAULT_CONFIG
    config = config if parsed.layers is None else dataclasses.replace(config, n_layers=parsed.layers)
    return config, "final" if parsed.step is None else str(parsed.step)


def resolve_spec(spec: str, *, progress: bool = True) -> Path:
    """Deprecated (use :func:`otlens.models.model_path`): the checkpoint folder of a tiny-gpt alias.

    Parameters
    ----------
    spec : str
        A tiny-gpt alias, e.g. ``"tiny-gpt"``, ``"tiny-gpt-L8"`` or ``"tiny-gpt-L4@100"``.
    progress : bool, default True
        Show the training progress bar, if the alias's run has to be trained.

    Returns
    -------
    pathlib.Path
        The checkpoint's folder (:func:`otlens.tiny_gpt.alias_checkpoint`).

    Raises
    ------
    ValueError
        If ``spec`` is not a trained tiny-gpt alias.
    """
    warnings.warn("otlens.training.resolve_spec is deprecated: use otlens.models.model_path",
                  DeprecationWarning, stacklevel=2)
    parsed = models.parse_spec(spec)
    if not parsed.is_tiny_gpt or not parsed.trained:
        raise ValueError(f"`spec` must look like 'tiny-gpt', 'tiny-gpt-L8' or 'tiny-gpt-L4@100'; got {spec!r}")
    return alias_checkpoint(parsed.layers, parsed.step, progress=progress)

