r"""Chapter 2's study: hierarchical OT between language models (and a brain), scored on held-out stimuli.

The method itself (inner and outer OT, HOT+R, reconstruction, the baselines) is the solver
:mod:`otlens.ot.hot`; its names are re-exported here, so ``otlens.hot.hot_align`` and
``from otlens.hot import reconstruct`` keep working. This module adds what the chapter runs:
held-out scores over random splits (:func:`hot_scores`), pooled stimulus features of named
systems (:func:`pooled_states`, :func:`system_features`), ``"source>target"`` model pairs
(:func:`pair_study`, returning a :class:`PairStudy`), the shape of the layer coupling
(:func:`coupling_shape`) with its shuffled null (:func:`coupling_null`) and the verdict
(:func:`describe_hot`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from ._validation import check_choice, check_int
from .activations import check_texts, computation_key, extract_activations
from .brain import image_states, load_brain_data, load_stimuli, shared_layers
from .ot import hot as hot_solver
from .cache import Cache, make_key
from .ot.hot import (
    INNER_METHODS,
    VARIANTS,
    HOTAlignment,
    check_pair,
    as_layers,
    correlation_costs,
    hot_align,
    outer_ot,
    procrustes,
    reconstruct,
    reconstruction_scores,
    split_stimuli,
    uniform_ot,
    variant_coupling,
)
from .models import UNTRAINED_SUFFIX, load_model  # noqa: F401 (UNTRAINED_SUFFIX: otlens.hot's old name)
from .models import parse_pair as _parse_pair
from .models import parse_spec
from .results import RESULT_COLUMNS, StudyResult

__all__ = [
    *hot_solver.__all__,  # re-exported: otlens.hot.X keeps working for the solver's names
    "hot_scores",
    "hot_study",
    "pooled_states",
    "pooled_key",
    "pooled_file",
    "system_features",
    "parse_pair",
    "PairStudy",
    "pair_study",
    "coupling_shape",
    "coupling_table",
    "coupling_null",
    "describe_hot",
    "brain_study",
]


# --------------------------------------------------------------------------------------------
# Studies: splits × variants → tidy table


def hot_scores(
    source: Any,
    target: Any,
    *,
    n_splits: int = 5,
    train_fraction: float = 0.8,
    seed: int = 0,
    rotation: Sequence[bool] = (False,),
    variants: Sequence[str] = VARIANTS,
    inner: str = "exact",
    reg: float = 0.01,
    max_rotation_iter: int = 20,
    model: str = "",
    trained: Any = True,
    device: Any = "cpu",
    progress: bool = True,
    keep_units: Any = "all",
) -> tuple[pd.DataFrame, dict]:
    """Held-out reconstruction scores of HOT and its baselines over ``n_splits`` random splits.

    ``keep_units`` says which fits keep their unit couplings once scored: ``"all"``, or a
    collection of ``(rotation, split)`` keys; the others are kept as
    :meth:`~otlens.ot.hot.HOTAlignment.without_units` (layer coupling and costs), so the memory
    held grows with the number of splits by a few hundred numbers, not by a set of unit plans.


    Parameters
    ----------
    source, target : Activations, array [L, T, n] or list of [T, n_l]
        The two systems' responses to the same ``T`` stimuli.
    n_splits : int
        Number of random train / held-out splits.
    train_fraction : float
        Fraction of the stimuli in each training split.
    seed : int
        Seed of the splits.
    rotation : sequence of bool
        Fit HOT (False), HOT+R (True) or both.
    variants : sequence of str
        The reconstructions scored (see :func:`otlens.ot.hot.variant_coupling`).
    inner : {"exact", "entropic"}
        Inner OT solver of :func:`otlens.ot.hot.hot_align`.
    reg : float
        Entropic regularisation of ``inner="entropic"``.
    max_rotation_iter : int
        HOT+R's alternation limit.
    model : str
        Label of the table's ``model`` column.
    trained : bool or str
        Label of the table's ``trained`` column.
    device : str
        Device of the entropic solver.
    progress : bool
        Show a progress bar.
    keep_units : "all" or collection of (bool, int)
        The fits that keep their unit couplings (see above).

    Returns
    -------
    table : pandas.DataFrame
        A tidy table (:data:`~otlens.results.RESULT_COLUMNS`; ``experiment="hot"``, ``method``
        = variant with ``+R`` for HOT+R, ``layer`` = source layer, ``seed`` = split,
        ``metric="score"``; plus one ``metric="hot_score"`` row per split and method with
        ``layer=-1``, the mean over layers).
    alignments : dict
        The fitted :class:`~otlens.ot.hot.HOTAlignment` keyed by ``(rotation, split)``.
    """
    from tqdm.auto import tqdm

    src, tgt = as_layers(source, "source"), as_layers(target, "target")
    n_stim = check_pair(src, tgt)
    n_splits = check_int(n_splits, "n_splits", minimum=1)
    for v in variants:
        check_choice(v, "variants", VARIANTS)
    split_stimuli(n_stim, train_fraction=train_fraction, seed=seed)  # validate before compute
    rows, fits = [], {}
    jobs = [(s, r) for s in range(n_splits) for r in rotation]
    for split, rot in tqdm(jobs, desc=f"HOT {model}".strip(), unit="fit", disable=not progress):
        train, test = split_stimuli(n_stim, train_fraction=train_fraction, seed=seed + split)
        al = hot_align(src, tgt, train=train, rotation=rot, inner=inner, reg=reg,
                       max_rotation_iter=max_rotation_iter, device=device, progress=progress)
        actual = al.standardize_source([x[test] for x in src])
        y_test = [y[test] for y in tgt]
        for variant in variants:
            pred = reconstruct(al, y_test, variant=variant, seed=seed + split)
            scores = reconstruction_scores(actual, pred)
            name = variant + ("+R" if rot else "")
            for layer, value in enumerate(scores):
                rows.append((model, trained, name, layer, seed + split, "score", float(value)))
            rows.append((model, trained, name, -1, seed + split, "hot_score", float(np.nanmean(scores))))
        fits[(rot, split)] = al if keep_units == "all" or (rot, split) in keep_units else al.without_units()
        del al, actual, y_test, pred
    df = pd.DataFrame(rows, columns=[c for c in RESULT_COLUMNS if c != "experiment"])
    df.insert(0, "experiment", "hot")
    return df[list(RESULT_COLUMNS)], fits


def hot_study(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sd over splits of each method's HOT score, per model pair (one row per pair × method).

    Parameters
    ----------
    scores : pandas.DataFrame
        The table of :func:`hot_scores` or :func:`pair_study`.

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``method``, ``mean``, ``std`` and ``n_splits``.
    """
    s = scores[scores.metric == "hot_score"]
    out = s.groupby(["model", "method"], sort=False).value.agg(["mean", "std", "count"]).reset_index()
    return out.rename(columns={"count": "n_splits"})


# --------------------------------------------------------------------------------------------
# Stimulus features from a language model


def pooled_states(
    model: str,
    texts: Sequence[str],
    *,
    max_length: int = 64,
    batch_size: int = 16,
    chunk: int = 64,
    trained: bool = True,
    seed: int = 0,
    device: Any = None,
    cache: bool = True,
    progress: bool = True,
) -> torch.Tensor:
    """Per-text mean of every block's residual state: ``[n_layers, n_texts, d_model]`` float32.

    The texts are run in chunks of ``chunk`` (token states are pooled and dropped, so memory
    does not grow with the corpus) and the pooled result is cached in the
    :class:`otlens.cache.Cache` ``cache_dir("pooled")``: written atomically with its sha256,
    verified on every read (a corrupt entry is deleted and recomputed with a
    :class:`~otlens.cache.CorruptCacheWarning` naming it, never returned). The key
    (:func:`pooled_key`) holds the texts, ``chunk`` and everything in
    :func:`otlens.activations.computation_key` (model identity with its dtype, ``max_length``,
    ``batch_size``, the device, the torch/transformers versions). Entries written before
    this cache have other keys: they are a miss and recomputed.

    Parameters
    ----------
    model : str
        The model spec (see :func:`otlens.models.load_model`).
    texts : sequence of str
        The texts.
    max_length : int
        Token limit per text.
    batch_size : int
        Texts per forward pass.
    chunk : int
        Texts per extraction chunk.
    trained : bool
        False for the untrained twin.
    seed : int
        Initialisation seed of the untrained twin.
    device : str or torch.device, optional
        Device of the model.
    cache : bool
        Read and write the cache.
    progress : bool
        Show a progress bar over the chunks.

    Returns
    -------
    torch.Tensor, [n_layers, n_texts, d_model]
        float32, the embedding excluded.
    """
    from tqdm.auto import tqdm

    texts = check_texts(texts)
    chunk = check_int(chunk, "chunk", minimum=1)

    def compute() -> torch.Tensor:
        lm = load_model(model, trained=trained, seed=seed, device=str(device or "cpu"))
        parts = []
        for start in tqdm(range(0, len(texts), chunk), desc=f"pooling {model}{'' if trained else ' (untrained)'}",
                          unit="chunk", disable=not progress):
            acts = extract_activations(lm, texts[start:start + chunk], max_length=max_length, batch_size=batch_size,
                                       cache=False, device=device, progress=False)
            parts.append(acts.pooled()[1:])
        return torch.cat(parts, dim=1).contiguous()

    if not cache:
        return compute()
    key = pooled_key(model, texts, max_length=max_length, batch_size=batch_size, chunk=chunk, trained=trained,
                     seed=seed, device=device)
    return _pooled_cache().fetch(key, compute, _save_pooled, _load_pooled, stacklevel=2)


#: Bump when what :func:`pooled_states` stores (or how it computes it) changes.
POOLED_CACHE_VERSION = 2


def pooled_key(model: str, texts: Sequence[str], *, max_length: int = 64, batch_size: int = 16, chunk: int = 64,
               trained: bool = True, seed: int = 0, device: Any = None) -> str:
    """The sha256 naming :func:`pooled_states`' cache entry for these arguments.

    Parameters
    ----------
    model : str
        The model spec.
    texts : sequence of str
        The texts.
    max_length, batch_size, chunk, trained, seed, device :
        As for :func:`pooled_states`.

    Returns
    -------
    str
        The hex digest.
    """
    texts = check_texts(texts)
    fields = computation_key(model, max_length=max_length, batch_size=batch_size, special_tokens=False,
                             device=device, trained=trained, seed=seed)
    return make_key({"cache": "pooled", "cache_version": POOLED_CACHE_VERSION, "texts": texts,
                     "chunk": check_int(chunk, "chunk", minimum=1), **fields})


def pooled_file(model: str, texts: Sequence[str], **kw: Any):
    """Path of :func:`pooled_states`' cache entry (same keywords as :func:`pooled_key`).

    Parameters
    ----------
    model : str
        The model spec.
    texts : sequence of str
        The texts.
    **kw
        The keywords of :func:`pooled_key`.

    Returns
    -------
    pathlib.Path
        The entry's payload file (it may not exist yet).
    """
    return _pooled_cache().path(pooled_key(model, texts, **kw))


def _pooled_cache() -> Cache:
    return Cache("pooled", suffix=".safetensors")


def _save_pooled(pooled: torch.Tensor, path) -> None:
    from safetensors.torch import save_file

    save_file({"pooled": pooled}, str(path))


def _load_pooled(path) -> torch.Tensor:
    from safetensors.torch import load_file

    return load_file(str(path))["pooled"]


# --------------------------------------------------------------------------------------------
# The chapter's study: named systems, model pairs, coupling shape, verdict

def system_features(systems: Sequence[str], texts: Sequence[str], *, max_length: int = 64, batch_size: int = 16,
                    device: Any = None, progress: bool = True) -> dict[str, torch.Tensor]:
    """Pooled block states ``[L, T, d]`` of each named system on ``texts``.

    A name is a model spec (:func:`otlens.models.parse_spec`: offline alias, Hugging Face id or local path), optionally followed
    by ``~untrained`` for its untrained twin (seed 0).

    Parameters
    ----------
    systems : sequence of str
        The names.
    texts : sequence of str
        The texts (the stimuli).
    max_length : int
        Token limit per text.
    batch_size : int
        Texts per forward pass.
    device : str or torch.device, optional
        Device of the models.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict of str to torch.Tensor
        Name -> pooled states ``[L, T, d]`` (:func:`pooled_states`).
    """
    out = {}
    for name in dict.fromkeys(systems):
        spec = parse_spec(name)
        out[name] = pooled_states(spec.model, texts, max_length=max_length, batch_size=batch_size, trained=spec.trained,
                                  device=device, progress=progress)
    return out


def parse_pair(pair: str) -> tuple[str, str]:
    """``"source>target"`` → ``(source, target)``, each a system name (:func:`otlens.models.parse_pair`).

    Parameters
    ----------
    pair : str
        The pair.

    Returns
    -------
    tuple of (str, str)
        The source and target names.

    Raises
    ------
    ValueError
        If ``pair`` is not ``source>target`` of two model specs.
    """
    source, target = _parse_pair(pair)
    return str(source), str(target)


def _cross_model(pair: str) -> bool:
    """Whether a pair aligns two different systems (not a model with itself)."""
    source, target = _parse_pair(pair)
    return source != target


@dataclass(frozen=True, eq=False)
class PairStudy(StudyResult):
    """What :func:`pair_study` returns: chapter 2's scores and fitted alignments (frozen).

    Attributes
    ----------
    scores : pandas.DataFrame
        The :func:`hot_scores` tables of every pair (``model`` = the pair).
    fits : dict
        ``{pair: {(rotation, split): HOTAlignment}}``.
    seed : int
        The study's seed; it also seeds the shuffled-coupling null (:attr:`null`).

    ``scores, fits = pair_study(...)`` still unpacks (iterating yields the two). The derived
    tables (:attr:`couplings`, :attr:`null`, :attr:`summary`) are computed once, on first use.
    :meth:`describe` is chapter 2's verdict on :meth:`to_frame` (the brain rows are not in it).
    """

    scores: pd.DataFrame
    fits: dict
    seed: int = 0

    chapter = "02_hierarchical_alignment"

    @cached_property
    def couplings(self) -> pd.DataFrame:
        """:func:`coupling_table` of the fits: the shape of every pair's layer coupling, per split."""
        return coupling_table(self.fits)

    @cached_property
    def null(self) -> pd.DataFrame:
        """:func:`coupling_null` of the fits, seeded with :attr:`seed`."""
        return coupling_null(self.fits, seed=self.seed)

    @cached_property
    def summary(self) -> pd.DataFrame:
        """:func:`hot_study` of the scores: mean and sd over splits per pair and method."""
        return hot_study(self.scores)

    def to_frame(self) -> pd.DataFrame:
        """The scores, the coupling shapes and their null, one tidy table (rows in that order).

        Returns
        -------
        pandas.DataFrame
            :attr:`scores`, :attr:`couplings` and :attr:`null` concatenated, with a fresh index.
        """
        return pd.concat([self.scores, self.couplings, self.null], ignore_index=True)

    def __iter__(self):
        return iter((self.scores, self.fits))


def pair_study(pairs: Sequence[str], features: dict[str, Any], *, n_splits: int = 5, train_fraction: float = 0.8,
               seed: int = 0, rotation_pairs: Sequence[str] = (), max_rotation_iter: int = 20,
               keep_units: Sequence[str] | str = (), progress: bool = True) -> PairStudy:
    """:func:`hot_scores` for every ``"source>target"`` pair (HOT+R too for those in ``rotation_pairs``).

    The study streams: every fit is scored as it is made, and only the pairs named in
    ``keep_units`` (``"all"``: every pair) keep the unit couplings of their first plain-HOT split
    (the one a reconstruction figure draws); every other fit keeps its layer coupling and costs
    (:meth:`~otlens.ot.hot.HOTAlignment.without_units`), which is all the coupling tables and their
    null read. Chapter 2 at the paper profile's scale (1,000 passages, 10 splits, HOT+R on seven
    pairs) was killed at 24 GB holding every fit; what is held now is one fit in flight plus the
    kept ones.


    Parameters
    ----------
    pairs : sequence of str
        ``"source>target"`` pairs of system names.
    features : dict of str to array-like
        Each system's pooled states (:func:`system_features`).
    n_splits : int
        Number of random splits.
    train_fraction : float
        Fraction of the stimuli in each training split.
    seed : int
        Seed of the splits.
    rotation_pairs : sequence of str
        The pairs also fitted with HOT+R.
    max_rotation_iter : int
        HOT+R's alternation limit.
    keep_units : sequence of str or "all"
        The pairs whose first plain-HOT split keeps its unit couplings (see above).
    progress : bool
        Show a progress bar.

    Returns
    -------
    PairStudy
        ``.scores``: the concatenated tidy table (``model`` = the pair, ``trained`` = whether
        both systems are trained); ``.fits``: ``{pair: {(rotation, split): HOTAlignment}}``;
        ``.to_frame()`` the scores with the coupling shapes and their null, ``.describe()`` the
        chapter's verdict on them.
    """
    parsed = [parse_pair(p) for p in pairs]
    for p in rotation_pairs:
        if p not in pairs:
            raise ValueError(f"rotation pair {p!r} is not one of `pairs`")
    missing = sorted({s for pq in parsed for s in pq} - set(features))
    if missing:
        raise ValueError(f"no features for {missing}; compute them with system_features")
    kept = set(pairs) if isinstance(keep_units, str) and keep_units == "all" else set(keep_units)
    unknown = sorted(kept - set(pairs))
    if isinstance(keep_units, str) and keep_units != "all" or unknown:
        raise ValueError(f"`keep_units` must be \"all\" or pairs of `pairs`; got {keep_units!r}")
    tables, fits = [], {}
    for pair, (src, tgt) in zip(pairs, parsed):
        rot = (False, True) if pair in rotation_pairs else (False,)
        trained = all(spec.trained for spec in _parse_pair(pair))
        df, f = hot_scores(features[src], features[tgt], n_splits=n_splits, train_fraction=train_fraction, seed=seed,
                           rotation=rot, max_rotation_iter=max_rotation_iter, model=pair, trained=trained,
                           progress=progress, keep_units={(False, 0)} if pair in kept else ())
        tables.append(df)
        fits[pair] = f
    return PairStudy(pd.concat(tables, ignore_index=True), fits, seed=seed)


def coupling_shape(P: Any, *, threshold: float = 0.05) -> dict[str, float]:
    """How a layer coupling spreads: ordered, contiguous, how wide.

    Parameters
    ----------
    P : array-like, [L, M]
        The layer coupling.
    threshold : float
        Mass (of a row normalised to one) above which a target layer counts as used.

    Returns
    -------
    dict of str to float
        With rows normalised to one (``L · P``) and a row's centre its mean target index:
        ``order`` is the Spearman correlation of the centres with the source index (1: depth is
        preserved); ``monotone`` (1 or 0) whether the centres never decrease; ``contiguous`` (1
        or 0) whether every row's target layers (mass above ``threshold``) are consecutive;
        ``spread`` the mean number of those layers per source layer.
    """
    from scipy.stats import spearmanr

    P = np.asarray(P, dtype=float)
    rows = P / P.sum(1, keepdims=True)
    centre = rows @ np.arange(P.shape[1])
    support = [np.flatnonzero(r > threshold) for r in rows]
    contiguous = all(len(s) == 0 or s[-1] - s[0] + 1 == len(s) for s in support)
    order = float(spearmanr(np.arange(P.shape[0]), centre).statistic) if P.shape[0] > 2 and np.ptp(centre) > 0 else float("nan")
    return dict(order=order, monotone=float(bool(np.all(np.diff(centre) >= -1e-9))), contiguous=float(contiguous),
                spread=float(np.mean([len(s) for s in support])))


def coupling_table(fits: dict) -> pd.DataFrame:
    """:func:`coupling_shape` of every pair's HOT coupling, per split, as tidy rows (``experiment="coupling"``).

    Parameters
    ----------
    fits : dict
        ``{pair: {(rotation, split): HOTAlignment}}`` (:func:`pair_study`).

    Returns
    -------
    pandas.DataFrame
        Tidy rows, one per pair, split and statistic.
    """
    rows = []
    for pair, by_fit in fits.items():
        for (rot, split), al in by_fit.items():
            for metric, value in coupling_shape(al.P).items():
                rows.append(("coupling", pair, True, "hot+R" if rot else "hot", -1, split, metric, value))
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def coupling_null(fits: dict, *, n_perm: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The shuffled-coupling null of the depth-order statistic, per pair, as tidy rows.

    For every pair's HOT coupling (split 0), the source layers' rows are shuffled ``n_perm``
    times and the rank correlation of the shuffled centres with depth recomputed
    (:func:`coupling_shape`); rows ``experiment="coupling_null"``, metrics ``order_q95`` and
    ``order_mean``.

    Parameters
    ----------
    fits : dict
        ``{pair: {(rotation, split): HOTAlignment}}`` (:attr:`PairStudy.fits`); each pair's
        ``(False, 0)`` fit (plain HOT, split 0) is used.
    n_perm : int, default 1000
        Shuffles per pair.
    seed : int, default 0
        Seed of the shuffles (one generator for all pairs, in ``fits``' order).

    Returns
    -------
    pandas.DataFrame
        Two tidy rows per pair (``model`` = the pair, ``layer`` = -1, an ``n_perm`` column): the
        95% quantile and the mean of the shuffled statistic (NaN statistics counted as 0).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for pair, by_fit in fits.items():
        P = np.asarray(by_fit[(False, 0)].P, dtype=float)
        orders = [coupling_shape(P[rng.permutation(P.shape[0])])["order"] for _ in range(n_perm)]
        orders = np.nan_to_num(np.asarray(orders, dtype=float))
        for metric, value in (("order_q95", float(np.quantile(orders, 0.95))), ("order_mean", float(orders.mean()))):
            rows.append(dict(experiment="coupling_null", model=pair, trained=True, method="hot", layer=-1, seed=0,
                             metric=metric, value=value, n_perm=n_perm))
    return pd.DataFrame(rows)


def describe_hot(scores: pd.DataFrame, couplings: pd.DataFrame) -> str:
    """A markdown verdict on the three claims, from the chapter's tables.

    Parameters
    ----------
    scores : pandas.DataFrame
        The scores table (:func:`pair_study`).
    couplings : pandas.DataFrame
        The couplings table (:func:`coupling_table`).

    Returns
    -------
    str
        The markdown.
    """
    summ = hot_study(scores).pivot(index="model", columns="method", values=["mean", "std"])
    mean, sd = summ["mean"], summ["std"].fillna(0.0)
    lines = []
    beat = [(p, mean.loc[p, "hot"], mean.loc[p, "pairwise"]) for p in mean.index if _cross_model(p)]
    wins = [p for p, h, b in beat if h > b]
    clear = [p for p, h, b in beat if h - b > sd.loc[p, "hot"] + sd.loc[p, "pairwise"]]
    detail = "; ".join(f"{p}: {h:.3f} vs {b:.3f}" for p, h, b in beat)
    lines.append(f"- **HOT vs pairwise-best** (held-out score, mean over splits): HOT is higher for {len(wins)} of "
                 f"{len(beat)} model pairs, by more than the two standard deviations together for {len(clear)} ({detail}).")
    perm = [p for p in mean.index if mean.loc[p, "hot"] > mean.loc[p, "perm-p"]]
    lines.append(f"- **HOT vs Perm-P**: HOT is higher for {len(perm)} of {len(mean)} pairs: the layer coupling carries "
                 "information beyond the unit couplings." if perm else "- **HOT vs Perm-P**: never higher.")
    c = couplings[(couplings.method == "hot")].groupby(["model", "metric"]).value.mean().unstack()
    deep = [p for p in c.index if _cross_model(p)]
    mism = [p for p in deep if c.loc[p, "spread"] > 1.0 + 1e-9]
    parts = [f"{p} (over {c.loc[p, 'spread']:.1f} target layers on average; centres in depth order in "
             f"{c.loc[p, 'monotone']:.0%} of splits, targets consecutive in {c.loc[p, 'contiguous']:.0%}, "
             f"rank correlation of depths {c.loc[p, 'order']:.2f})" for p in mism]
    lines.append(f"- **Depth mismatch**: a source layer spreads its mass over several target layers in {len(mism)} "
                 f"of {len(deep)} cross-model pairs" + (": " + "; ".join(parts) + "." if parts else "."))
    twins = [p for p in deep if not all(spec.trained for spec in _parse_pair(p))]
    if twins:
        twin_text = "; ".join(f"{p}: {c.loc[p, 'order']:.2f}, HOT score {mean.loc[p, 'hot']:.3f}" for p in twins)
        lines.append(f"- **Trained vs untrained twin**: rank correlation between the depths of matched layers "
                     f"({twin_text}).")
    if "hot+R" in mean.columns:
        rp = [p for p in mean.index if pd.notna(mean.loc[p].get("hot+R")) and _cross_model(p)]
        gains = "; ".join(f"{p}: {mean.loc[p, 'hot+R']:.3f} vs {mean.loc[p, 'hot']:.3f}" for p in rp)
        higher = [p for p in rp if mean.loc[p, "hot+R"] > mean.loc[p, "hot"] + sd.loc[p, "hot+R"] + sd.loc[p, "hot"]]
        lines.append(f"- **HOT+R vs HOT**: HOT+R is higher, by more than the two standard deviations together, for "
                     f"{len(higher)} of the {len(rp)} cross-model pairs where it was run ({gains}).")
    return "\n".join(lines)


def brain_study(brain_dir: Any, *, rois: Sequence[str] | None = None, model: str | None = None,
                n_splits: int = 5, seed: int = 0, max_length: int = 64, device: Any = "cpu",
                progress: bool = True) -> pd.DataFrame | None:
    """HOT between brains, and between a model and a brain, on recordings in the NSD layout.

    Subject ↔ subject: consecutive subjects of ``brain_dir`` (:func:`otlens.brain.load_brain_data`),
    ROIs as layers, on the stimuli both saw (:func:`otlens.brain.shared_layers`). Model ↔ brain,
    when ``model`` is given: the model's states for the first subject's stimuli (images through
    :func:`otlens.brain.image_states` when ``stimuli.csv`` has an ``image`` column, texts through
    :func:`pooled_states` otherwise) against that subject's ROIs. Each pair is scored by
    :func:`hot_scores`, ``model = "<source>><target>"``.

    Parameters
    ----------
    brain_dir : str or pathlib.Path
        The recordings (layout of :mod:`otlens.brain`).
    rois : sequence of str, optional
        The regions used as layers (default: all).
    model : str, optional
        A model spec to align with the first subject.
    n_splits : int
        Number of random splits.
    seed : int
        Seed of the splits.
    max_length : int
        Token limit per text stimulus.
    device : str or torch.device
        Device of the model.
    progress : bool
        Show progress bars.

    Returns
    -------
    pandas.DataFrame or None
        The :func:`hot_scores` tables with ``experiment="hot-brain"``; None when there is nothing
        to align (one subject and no ``model``).
    """
    subjects = load_brain_data(brain_dir, rois=rois)
    names = list(subjects)
    parts = []
    for a, b in zip(names, names[1:]):
        xa, xb, _ = shared_layers(subjects[a], subjects[b], rois=rois)
        df, _ = hot_scores(xa, xb, n_splits=n_splits, seed=seed, model=f"{a}>{b}", progress=progress)
        parts.append(df.assign(experiment="hot-brain"))
    if model is not None:
        stim = load_stimuli(brain_dir).set_index("stimulus_id")
        subj = subjects[names[0]]
        ids = [i for i in subj.stimulus_ids.tolist() if i in stim.index]
        if not ids:
            raise ValueError(f"`brain_dir` {brain_dir}: stimuli.csv names none of {names[0]}'s stimuli")
        if "image" in stim:
            states = image_states(model, list(stim.loc[ids, "image"]), device=None if device == "cpu" else device)
        else:
            states = pooled_states(model, list(stim.loc[ids, "text"]), max_length=max_length)
        df, _ = hot_scores(states, subj.layers(ids, rois), n_splits=n_splits, seed=seed,
                           model=f"{model}>{names[0]}", progress=progress)
        parts.append(df.assign(experiment="hot-brain"))
    return pd.concat(parts, ignore_index=True) if parts else None
