r"""Chapter 5's study: training dynamics, the OT profile and information plane of every checkpoint.

The tiny GPT and its trainer are :mod:`otlens.tiny_gpt` (an input: a model definition); its
names are re-exported here, so ``otlens.training.train_tiny_gpt``, ``TrainConfig`` and the
rest keep working. This module adds what chapter 5 computes from a run's checkpoints:
:func:`checkpoint_study` (profiles, entropies, information plane per checkpoint),
:func:`shape_over_training` and :func:`shape_onset` (when the profile's valley appears),
:func:`valley_stats` and :func:`information_summary`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .activations import extract_activations
from .depth import adjacent_profile, entropy_profile
from .information import information_plane
from .tiny_gpt import (
    DEFAULT_CONFIG,
    TRAINING_VERSION,
    TrainConfig,
    TrainingRun,
    build_tokenizer,
    checkpoint_hashes,
    checkpoint_steps,
    heldout_texts,
    parse_spec,
    resolve_spec,
    train_tiny_gpt,
)

__all__ = [
    "TrainConfig",
    "DEFAULT_CONFIG",
    "TrainingRun",
    "checkpoint_steps",
    "train_tiny_gpt",
    "build_tokenizer",
    "parse_spec",
    "resolve_spec",
    "heldout_texts",
    "checkpoint_hashes",
    "checkpoint_study",
    "shape_over_training",
    "shape_onset",
    "information_summary",
    "valley_stats",
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
    :math:`e = \min(v_0, v_{m-1})` the lower end,

    - ``valley_depth`` :math:`= 1 - \min_{0<i<m-1} v_i / e` (0: no dip below the ends; 1: the
      interior reaches zero; negative: the interior is above an end);
    - ``valley_length``: the fraction of the :math:`m` transitions below the midpoint
      :math:`(\min_i v_i + e)/2` (how much of the depth lies in the valley);
    - ``edge_ratio`` as in :func:`otlens.depth.profile_shape`.

    Needs at least 3 transitions (an interior).
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

    Columns: ``model, step, val_loss``; the :func:`valley_stats` columns and ``u_shape`` (both
    ends above the interior median and the minimum inside) when the profile has an interior;
    ``first_share`` / ``last_share``, the share :math:`v_0 / \sum_i v_i` (resp.
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

    Returns

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

    ``info`` holds information-plane rows (columns ``layer``, ``step``, ``metric`` with
    ``mi_xz``, ``mi_yz`` and ``compression_ratio``, ``value``; layers < 0 are ignored) and
    ``val_loss`` the validation loss by step (:meth:`TrainingRun.val_loss`). Returns one row per
    layer: ``mi_xz_peak_step`` (the checkpoint where I(X; Z) peaks), ``mi_xz_drop_after_peak``
    (its peak minus its last value: > 0 means the layer compressed), ``mi_yz_gain`` (last minus
    first I(Y; Z)) and ``spearman_ratio_vs_loss`` (rank correlation, across checkpoints, of the
    compression ratio with the validation loss: < 0 means better compression, lower loss).
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
