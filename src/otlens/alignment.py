r"""Word alignment from attention and from optimal transport, scored against gold alignments.

A *soft alignment* is a non-negative matrix :math:`M \in \mathbb R^{n \times m}` between the
``n`` source words and the ``m`` target words of a sentence pair: an OT plan between their word
vectors, or the attention of target words on source words. Hard links are read off it by a
rule (:func:`hard_links`); with gold links :math:`S` and predicted links :math:`A`,

.. math::

    \mathrm{precision} = \frac{|A \cap S|}{|A|}, \quad
    \mathrm{recall} = \frac{|A \cap S|}{|S|}, \quad
    \mathrm{AER} = 1 - \frac{2\,|A \cap S|}{|A| + |S|}

(the alignment error rate of :cite:t:`och:03` with every gold link "sure"), and the
**argmax accuracy** is the fraction of gold-aligned target words :math:`j` whose
:math:`\arg\max_i M_{ij}` is one of their gold source words.

Word vectors come from a decoder reading a translation prompt (``"<source language>:
<source>\n<target language>: <target>"``): the residual-stream states of a word's subword
tokens are averaged, per layer (:func:`pool_words`); the attention of a target word on a
source word is the attention of the target word's tokens (averaged) on the source word's
tokens (summed), renormalised over the source words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ._validation import check_choice, check_int, check_positive

__all__ = [
    "RULES",
    "hard_links",
    "alignment_counts",
    "alignment_scores",
    "argmax_accuracy",
    "agreement",
    "word_spans",
    "token_word_index",
    "pool_words",
    "pool_attention",
    "TranslationStates",
    "translation_states",
    "word_plans",
    "alignment_study",
    "agreement_study",
]

#: Rules that turn a soft alignment into links.
RULES = ("target-argmax", "source-argmax", "intersect", "union")


def _matrix(M: Any, name: str) -> np.ndarray:
    if isinstance(M, torch.Tensor):
        M = M.detach().cpu().numpy()
    M = np.asarray(M, dtype=np.float64)
    if M.ndim != 2 or min(M.shape) < 1:
        raise ValueError(f"`{name}` must be a non-empty 2-D [n_source, n_target] matrix; got shape {M.shape}")
    if not np.isfinite(M).all():
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return M


def _gold(gold: Any, shape: tuple[int, int]) -> np.ndarray:
    if isinstance(gold, (set, frozenset)) or (isinstance(gold, (list, tuple)) and (not gold or isinstance(gold[0], tuple))):
        G = np.zeros(shape, dtype=bool)
        for link in gold:
            i, j = link
            if not (0 <= i < shape[0] and 0 <= j < shape[1]):
                raise ValueError(f"gold link {(i, j)} is outside the {shape[0]} x {shape[1]} word grid")
            G[i, j] = True
        return G
    G = np.asarray(gold, dtype=bool)
    if G.shape != shape:
        raise ValueError(f"`gold` must have shape {shape} (the alignment's); got {G.shape}")
    return G


def hard_links(M: Any, *, rule: str = "intersect") -> np.ndarray:
    """Boolean ``[n, m]`` links read off a soft alignment ``M``.

    ``"target-argmax"``: each target word links to its best source word; ``"source-argmax"``:
    the converse; ``"intersect"``: both agree (mutual argmax, high precision); ``"union"``: either.
    """
    M = _matrix(M, "M")
    check_choice(rule, "rule", RULES)
    t = np.zeros(M.shape, dtype=bool)
    t[M.argmax(0), np.arange(M.shape[1])] = True
    s = np.zeros(M.shape, dtype=bool)
    s[np.arange(M.shape[0]), M.argmax(1)] = True
    return {"target-argmax": t, "source-argmax": s, "intersect": t & s, "union": t | s}[rule]


def alignment_counts(M: Any, gold: Any, *, rule: str = "intersect") -> dict[str, int]:
    """Counts behind the scores: ``n_pred``, ``n_gold``, ``n_hit``, ``n_target``, ``n_correct``.

    ``n_target`` counts target words with a gold link and ``n_correct`` those whose argmax
    source word is gold; summing counts over sentences gives corpus-level (micro) scores.
    """
    M = _matrix(M, "M")
    G = _gold(gold, M.shape)
    A = hard_links(M, rule=rule)
    has_gold = G.any(0)
    best = M.argmax(0)
    correct = G[best, np.arange(M.shape[1])] & has_gold
    return dict(n_pred=int(A.sum()), n_gold=int(G.sum()), n_hit=int((A & G).sum()),
                n_target=int(has_gold.sum()), n_correct=int(correct.sum()))


def _scores_from_counts(c: dict[str, int]) -> dict[str, float]:
    nan = float("nan")
    return dict(
        precision=c["n_hit"] / c["n_pred"] if c["n_pred"] else nan,
        recall=c["n_hit"] / c["n_gold"] if c["n_gold"] else nan,
        aer=1 - 2 * c["n_hit"] / (c["n_pred"] + c["n_gold"]) if c["n_pred"] + c["n_gold"] else nan,
        accuracy=c["n_correct"] / c["n_target"] if c["n_target"] else nan,
    )


def alignment_scores(M: Any, gold: Any, *, rule: str = "intersect") -> dict[str, float]:
    """Precision, recall, AER (links by ``rule``) and argmax accuracy of ``M`` against ``gold``.

    Parameters
    ----------
    M : array-like, shape (n_source, n_target)
        Soft alignment (plan or attention); larger is more aligned.
    gold : set of (i, j) or boolean array (n_source, n_target)
    rule : str
        One of :data:`RULES`, for precision, recall and AER.

    Returns
    -------
    dict with ``precision``, ``recall``, ``aer``, ``accuracy``.
    """
    return _scores_from_counts(alignment_counts(M, gold, rule=rule))


def argmax_accuracy(M: Any, gold: Any) -> float:
    """Fraction of gold-aligned target words whose argmax source word is a gold partner."""
    return alignment_scores(M, gold)["accuracy"]


def agreement(attention: Any, plan: Any) -> dict[str, float]:
    r"""How close an attention map is to a transport plan, target word by target word.

    Both ``[n_source, n_target]`` matrices are normalised over the source words (columns
    sum to one): :math:`\hat a_{\cdot j}`, :math:`\hat p_{\cdot j}`. Returns

    - ``argmax_agreement``: fraction of target words with the same argmax source word;
    - ``kl``: mean over target words of :math:`\mathrm{KL}(\hat p_{\cdot j} \,\|\, \hat a_{\cdot j})`
      (nats; attention floored at 1e-12);
    - ``tv``: mean total-variation distance :math:`\tfrac12 \lVert \hat p_{\cdot j} - \hat a_{\cdot j}\rVert_1`.
    """
    A, P = _matrix(attention, "attention"), _matrix(plan, "plan")
    if A.shape != P.shape:
        raise ValueError(f"`attention` and `plan` must have the same shape; got {A.shape} and {P.shape}")
    if (A < 0).any() or (P < 0).any():
        raise ValueError("`attention` and `plan` must be non-negative")
    A = A / np.clip(A.sum(0, keepdims=True), 1e-300, None)
    P = P / np.clip(P.sum(0, keepdims=True), 1e-300, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(P > 0, P * (np.log(np.clip(P, 1e-300, None)) - np.log(np.clip(A, 1e-12, None))), 0.0).sum(0)
    return dict(argmax_agreement=float((A.argmax(0) == P.argmax(0)).mean()), kl=float(kl.mean()),
                tv=float(0.5 * np.abs(A - P).sum(0).mean()))


# --------------------------------------------------------------------------------- pooling
def word_spans(text: str, words: Sequence[str], start: int = 0) -> list[tuple[int, int]]:
    """Character spans of ``words``, found in order in ``text`` from ``start``."""
    spans, pos = [], start
    for w in words:
        k = text.find(w, pos)
        if k < 0:
            raise ValueError(f"word {w!r} not found in the text after position {pos}: {text[pos:pos + 60]!r}")
        spans.append((k, k + len(w)))
        pos = k + len(w)
    return spans


def token_word_index(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """For each token (character ``offsets``), the index of the word span it overlaps, or -1."""
    out = np.full(len(offsets), -1, dtype=np.int64)
    for t, (ts, te) in enumerate(offsets):
        for w, (ws, we) in enumerate(spans):
            if max(ts, ws) < min(te, we):
                out[t] = w
                break
    missing = sorted(set(range(len(spans))) - set(out[out >= 0].tolist()))
    if missing:
        raise ValueError(f"word(s) {missing} have no token (spans {[spans[i] for i in missing]})")
    return out


def pool_words(states: torch.Tensor, word_index: np.ndarray, n_words: int) -> torch.Tensor:
    """Mean of token states over each word's tokens: ``[.., T, d]`` -> ``[.., n_words, d]``."""
    idx = torch.as_tensor(word_index)
    keep = idx >= 0
    sel, w = states[..., keep, :], idx[keep]
    out = states.new_zeros(*states.shape[:-2], n_words, states.shape[-1])
    out.index_add_(-2, w, sel)
    counts = torch.bincount(w, minlength=n_words).clamp_min(1).to(out.dtype)
    return out / counts[:, None]


def pool_attention(attn: torch.Tensor, target_index: np.ndarray, n_target: int, source_index: np.ndarray,
                   n_source: int) -> torch.Tensor:
    """Word-level attention ``[.., n_source, n_target]`` from token attention ``[.., T, T]`` (query, key).

    Target word ``j``'s row is the mean over its tokens (queries) of the attention summed over
    each source word's tokens (keys), renormalised over the source words.
    """
    tq, sk = torch.as_tensor(target_index), torch.as_tensor(source_index)
    A = attn[..., tq >= 0, :]  # [.., Tt, T]
    A = pool_words(A.transpose(-1, -2), sk.numpy(), n_source) * torch.bincount(sk[sk >= 0], minlength=n_source).to(A.dtype)[:, None]
    # A: [.., n_source, Tt] (sum over each source word's key tokens)
    A = pool_words(A.transpose(-1, -2), tq[tq >= 0].numpy(), n_target)  # [.., n_target, n_source]
    A = A / A.sum(-1, keepdim=True).clamp_min(1e-30)
    return A.transpose(-1, -2)


# --------------------------------------------------------------------------------- model run
@dataclass(frozen=True)
class TranslationStates:
    """Word vectors and word attention of one translation prompt.

    Attributes
    ----------
    source, target : torch.Tensor, shape (n_layers + 1, n_words, d_model)
        Residual-stream word vectors (index 0 = embeddings, ``l + 1`` = output of block ``l``).
    attention : torch.Tensor, shape (n_layers, n_heads, n_source, n_target)
        Attention of target words on source words in block ``l``, each column summing to one.
    source_words, target_words : tuple of str
    """

    source: torch.Tensor
    target: torch.Tensor
    attention: torch.Tensor
    source_words: tuple[str, ...]
    target_words: tuple[str, ...]


def translation_states(lm: Any, source_words: Sequence[str], target_words: Sequence[str], *,
                       languages: tuple[str, str] = ("Greek", "English")) -> TranslationStates:
    """Run a decoder on ``"<L1>: <source>\\n<L2>: <target>"``; return word vectors and attention.

    Parameters
    ----------
    lm : otlens.models.LoadedModel
        Loaded with ``attn_implementation="eager"`` (the default) so attention is returned.
    source_words, target_words : sequences of str
        The words (joined by spaces in the prompt).
    languages : (str, str)
        Names written before each side.
    """
    from .activations import _find_blocks, _ResidualRecorder

    if not source_words or not target_words:
        raise ValueError("`source_words` and `target_words` must be non-empty")
    src, tgt = " ".join(source_words), " ".join(target_words)
    head = f"{languages[0]}: "
    text = f"{head}{src}\n{languages[1]}: {tgt}"
    s_spans = word_spans(text, source_words, len(head))
    t_spans = word_spans(text, target_words, len(head) + len(src) + 1)
    enc = lm.tokenizer(text, return_offsets_mapping=True)
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    s_idx, t_idx = token_word_index(offsets, s_spans), token_word_index(offsets, t_spans)
    base = getattr(lm.model, "base_model", lm.model)
    device = next(lm.model.parameters()).device
    rec = _ResidualRecorder(_find_blocks(base, lm.n_layers))
    try:
        with torch.inference_mode():
            out = base(input_ids=torch.tensor([enc["input_ids"]], device=device), output_attentions=True,
                       **({"use_cache": False} if lm.kind == "decoder" else {}))
        states = torch.stack([s[0] for s in rec.states]).float().cpu()  # [L+1, T, d]
    finally:
        rec.remove()
        rec.states.clear()
    attn = torch.stack([a[0] for a in out.attentions]).float().cpu()  # [L, H, T, T]
    return TranslationStates(
        source=pool_words(states, s_idx, len(source_words)),
        target=pool_words(states, t_idx, len(target_words)),
        attention=pool_attention(attn, t_idx, len(target_words), s_idx, len(source_words)),
        source_words=tuple(source_words),
        target_words=tuple(target_words),
    )


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def word_plans(source: torch.Tensor, target: torch.Tensor, *, reg: float = 0.05) -> dict[str, np.ndarray]:
    r"""OT plans and a similarity baseline between the word vectors of one layer.

    Vectors are L2-normalised (cost :math:`\lVert u - v\rVert^2 = 2 - 2\cos`), weights uniform.
    Returns ``[n_source, n_target]`` matrices: ``"ot-exact"`` (network simplex),
    ``"ot-entropic"`` (Sinkhorn, :math:`\varepsilon` = ``reg``) and ``"cosine"`` (similarity,
    shifted to be non-negative), the nearest-neighbour baseline.
    """
    from .transport import exact_ot, sinkhorn

    reg = check_positive(reg, "reg")
    x, y = _unit(source.double()), _unit(target.double())
    exact = exact_ot(x, y, return_plan=True, warn=False).plan.numpy()
    ent = sinkhorn(x, y, reg=reg, return_plan=True, warn=False, max_iter=5000).plan.numpy()
    return {"ot-exact": exact, "ot-entropic": ent, "cosine": (1.0 + (x @ y.T)).numpy()}


def _check_layers(layers: Any, n_layers: int) -> list[int]:
    if layers is None:
        return list(range(n_layers))
    return [check_int(k, "layers", minimum=0, maximum=n_layers - 1) for k in layers]


def alignment_study(lm: Any, verses: Sequence[Any], *, layers: Any = None, reg: float = 0.05,
                    rule: str = "intersect", languages: tuple[str, str] = ("Greek", "English"),
                    progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score OT plans and attention against gold alignments, layer by layer.

    For every verse (an :class:`otlens.data.AlignedVerse`) and block ``l`` in ``layers``: OT
    plans between the word vectors of block ``l``'s output (:func:`word_plans`), the attention
    of block ``l`` averaged over heads and per head, and their agreement (:func:`agreement`).

    Returns
    -------
    (scores, agreements) : two tidy DataFrames
        ``scores``: experiment ``"gold_alignment"``, method in ``ot-exact``, ``ot-entropic``,
        ``cosine``, ``attention-mean``, ``attention-best-head`` (the head with the best
        accuracy at that layer, chosen on these verses: optimistic), metrics ``precision``,
        ``recall``, ``aer``, ``accuracy`` pooled over verses (micro). ``agreements``: per
        layer the mean over verses of the agreement of mean attention with each OT plan.
    """
    check_choice(rule, "rule", RULES)
    layers = _check_layers(layers, lm.n_layers)
    counts: dict[tuple[str, int], dict[str, int]] = {}
    agree: list[dict] = []

    def add(method: str, layer: int, c: dict) -> None:
        tot = counts.setdefault((method, layer), dict.fromkeys(c, 0))
        for k, v in c.items():
            tot[k] += v

    for v in tqdm(verses, desc=f"alignment {lm.name}", disable=not progress):
        ts = translation_states(lm, v.source_words, v.target_words, languages=languages)
        G = v.gold_matrix()
        for layer in layers:
            plans = word_plans(ts.source[layer + 1], ts.target[layer + 1], reg=reg)
            for method, M in plans.items():
                add(method, layer, alignment_counts(M, G, rule=rule))
            A = ts.attention[layer].numpy()  # [H, n_s, n_t]
            add("attention-mean", layer, alignment_counts(A.mean(0), G, rule=rule))
            for h in range(A.shape[0]):
                add(f"head-{h}", layer, alignment_counts(A[h], G, rule=rule))
            for method in ("ot-exact", "ot-entropic"):
                agree.append(dict(layer=layer, method=method, ref=v.ref, **agreement(A.mean(0), plans[method])))
    rows = []
    for (method, layer), c in counts.items():
        for metric, value in _scores_from_counts(c).items():
            rows.append(dict(method=method, layer=layer, metric=metric, value=value))
    scores = pd.DataFrame(rows)
    heads = scores[scores.method.str.startswith("head-")]
    best = heads[heads.metric == "accuracy"].sort_values("value").groupby("layer").tail(1).set_index("layer").method
    best_rows = heads[heads.apply(lambda r: best.get(r.layer) == r.method, axis=1)].assign(method="attention-best-head")
    best_rows = best_rows.assign(head=best_rows.layer.map(lambda k: int(best[k].split("-")[1])))
    scores = pd.concat([scores[~scores.method.str.startswith("head-")], best_rows], ignore_index=True)
    scores = scores.assign(experiment="gold_alignment", model=lm.name, trained=lm.trained, seed=0,
                           n_verses=len(verses))
    ag = pd.DataFrame(agree).melt(id_vars=["layer", "method", "ref"], var_name="metric", value_name="value")
    ag = ag.groupby(["layer", "method", "metric"], as_index=False).value.mean()
    ag = ag.assign(experiment=f"agreement_{languages[0].lower()}_{languages[1].lower()}", model=lm.name,
                   trained=lm.trained, seed=0, method="attention-vs-" + ag.method, n_verses=len(verses))
    return scores, ag


def agreement_study(lm: Any, pairs: Sequence[tuple[str, str, str]], *, layers: Any = None, reg: float = 0.05,
                    languages: tuple[str, str] = ("English", "French"), progress: bool = True) -> pd.DataFrame:
    """Agreement of attention (heads averaged) with the OT plans, per layer, without gold links.

    ``pairs`` are ``(ref, source_text, target_text)`` (as from :func:`otlens.data.verse_pairs`);
    words are the whitespace-separated pieces. Returns a tidy DataFrame like the second table
    of :func:`alignment_study`.
    """
    layers = _check_layers(layers, lm.n_layers)
    rows = []
    for ref, s_text, t_text in tqdm(pairs, desc=f"agreement {lm.name}", disable=not progress):
        ts = translation_states(lm, s_text.split(), t_text.split(), languages=languages)
        for layer in layers:
            plans = word_plans(ts.source[layer + 1], ts.target[layer + 1], reg=reg)
            A = ts.attention[layer].numpy().mean(0)
            for method in ("ot-exact", "ot-entropic"):
                rows.append(dict(layer=layer, method=method, ref=ref, **agreement(A, plans[method])))
    ag = pd.DataFrame(rows).melt(id_vars=["layer", "method", "ref"], var_name="metric", value_name="value")
    ag = ag.groupby(["layer", "method", "metric"], as_index=False).value.mean()
    return ag.assign(experiment=f"agreement_{languages[0].lower()}_{languages[1].lower()}", model=lm.name,
                     trained=lm.trained, seed=0, method="attention-vs-" + ag.method, n_verses=len(pairs))


# --------------------------------------------------------------------------------- verdicts
def _trend(layers: Any, values: Any) -> float:
    layers, values = np.asarray(layers, dtype=float), np.asarray(values, dtype=float)
    if len(layers) < 2 or np.ptp(layers) == 0 or np.ptp(values) == 0:
        return 0.0
    return float(np.corrcoef(layers, values)[0, 1])


def attention_claims(sorting: pd.DataFrame, scores: pd.DataFrame, agreements: pd.DataFrame, *,
                     target_accuracy: float = 0.9, tolerance: float = 0.05, partial_margin: float = 0.2,
                     plan_tol: float = 0.01, min_trend: float = 0.5) -> list[dict[str, Any]]:
    r"""Verdicts on the claims of :cite:t:`daneshmand:24`, decided from the measured numbers.

    Each verdict is ``"reproduced"``, ``"partly reproduced"`` or ``"not reproduced"``:

    - **depth**: the transformer's mean plan error (:func:`otlens.attention_ot.sorting_study`)
      at the deepest depth is below ``plan_tol`` for every list length -> reproduced; it falls
      from the shallowest to the deepest depth for every length (but not below ``plan_tol``
      everywhere) -> partly; otherwise not.
    - **sorting**: every list of every length sorted at the deepest depth -> reproduced; every
      list of some length -> partly; otherwise not.
    - **ot_accuracy**: best argmax accuracy over layers of ``ot-exact`` in ``scores``
      (:func:`alignment_study`) :math:`\ge` ``target_accuracy - tolerance`` -> reproduced;
      :math:`\ge` ``target_accuracy - partial_margin`` -> partly; otherwise not.
    - **attention_depth**: for each data set (``experiment``) of ``agreements`` with method
      ``attention-vs-ot-exact``, the correlation :math:`r` of argmax agreement with the layer
      index and the change from first to last layer. All data sets with :math:`r \ge`
      ``min_trend`` and a gain -> reproduced; some -> partly; none -> not.

    Returns
    -------
    list of dict
        ``claim``, ``verdict`` and the numbers behind it.
    """
    need = {"method", "layer", "metric", "value"}
    for name, df in (("sorting", sorting), ("scores", scores), ("agreements", agreements)):
        if not isinstance(df, pd.DataFrame) or not need <= set(df.columns):
            raise ValueError(f"`{name}` must be a tidy DataFrame with columns {sorted(need)}")
    if "n" not in sorting.columns:
        raise ValueError("`sorting` must have an `n` column (from attention_ot.sorting_study)")
    for v, name in ((target_accuracy, "target_accuracy"), (tolerance, "tolerance"), (partial_margin, "partial_margin")):
        if not 0 <= float(v) <= 1:
            raise ValueError(f"`{name}` must be in [0, 1]; got {v}")
    check_positive(plan_tol, "plan_tol")

    def verdict(all_ok: bool, some_ok: bool) -> str:
        return "reproduced" if all_ok else "partly reproduced" if some_ok else "not reproduced"

    out = []
    tf = sorting[sorting.method == "transformer"]
    if tf.empty:
        raise ValueError("`sorting` has no rows with method 'transformer'")
    err = tf[tf.metric == "plan_error"].groupby(["n", "layer"]).value.mean().unstack("layer")
    shallow = min(k for k in err.columns if k > 0) if (err.columns > 0).any() else err.columns.min()
    deep = err.columns.max()
    converged, falling = err[deep] < plan_tol, err[deep] < err[shallow]
    ns = sorted(err.index)
    no_sink = sorting[(sorting.method == "transformer-no-sink") & (sorting.metric == "plan_error") & (sorting.layer == deep)]
    out.append(dict(claim="depth", verdict=verdict(bool(converged.all()), bool(falling.all())), depth=int(deep),
                    lengths=ns, error_at_depth={int(n): float(err.loc[n, deep]) for n in ns},
                    no_sink_error=float(no_sink.value.min()) if len(no_sink) else float("nan")))
    done = tf[(tf.metric == "sorted") & (tf.layer == deep)].groupby("n").value.mean()
    acc = tf[(tf.metric == "sort_accuracy") & (tf.layer == deep)].groupby("n").value.mean()
    full = [int(n) for n in done.index if done[n] == 1.0]
    out.append(dict(claim="sorting", verdict=verdict(len(full) == len(done), bool(full)), depth=int(deep),
                    fully_sorted_lengths=full, accuracy={int(n): float(v) for n, v in acc.items()}))
    a = scores[scores.metric == "accuracy"].pivot_table(index="layer", columns="method", values="value")
    if "ot-exact" not in a.columns:
        raise ValueError("`scores` has no 'ot-exact' accuracy rows")
    best = float(a["ot-exact"].max())
    out.append(dict(claim="ot_accuracy", verdict=verdict(best >= target_accuracy - tolerance,
                                                         best >= target_accuracy - partial_margin),
                    best=best, best_layer=int(a["ot-exact"].idxmax()), target=target_accuracy,
                    **{f"best_{m}": float(a[m].max()) for m in a.columns if m != "ot-exact"}))
    ag = agreements[(agreements.method == "attention-vs-ot-exact") & (agreements.metric == "argmax_agreement")]
    if "experiment" not in ag.columns:
        ag = ag.assign(experiment="all")
    trends = {}
    for e, g in ag.groupby("experiment"):
        m = g.groupby("layer").value.mean().sort_index()
        trends[e] = dict(r=_trend(m.index, m.values), first=float(m.iloc[0]), last=float(m.iloc[-1]), max=float(m.max()))
    ok = [t["r"] >= min_trend and t["last"] > t["first"] for t in trends.values()]
    out.append(dict(claim="attention_depth", verdict=verdict(bool(ok) and all(ok), any(ok)), trends=trends))
    return out


def _label(experiment: str) -> str:
    if experiment.startswith("cross_attention_"):
        return "trained translation model, " + experiment.removeprefix("cross_attention_").replace("_", "-")
    return experiment.removeprefix("agreement_").replace("_", "-")


def describe_attention_claims(sorting: pd.DataFrame, scores: pd.DataFrame, agreements: pd.DataFrame,
                              **kwargs: Any) -> str:
    """Markdown bullets, one per claim of :func:`attention_claims` (same arguments), with the numbers."""
    c = {d["claim"]: d for d in attention_claims(sorting, scores, agreements, **kwargs)}
    d, s, o, t = c["depth"], c["sorting"], c["ot_accuracy"], c["attention_depth"]
    worst = max(d["error_at_depth"].values())
    lines = [
        f"- **(i) Fixed weights solve entropic OT, error vanishing with depth: {d['verdict']}.** With one set of "
        f"weights, the largest mean L1 plan error over lengths {d['lengths']} at depth {d['depth']} is {worst:.3g}; "
        f"without the sink tokens it stays at least {d['no_sink_error']:.2f}.",
        f"- **Sorting lists of any length with the same weights: {s['verdict']}.** At depth {s['depth']} every list "
        f"is sorted for lengths {s['fully_sorted_lengths'] or 'none'}; fraction of elements at their rank per length: "
        + ", ".join(f"{n}: {v:.0%}" for n, v in s["accuracy"].items()) + ".",
        f"- **(ii) OT on word embeddings reaches ~{o['target']:.0%} alignment accuracy: {o['verdict']}.** Best "
        f"exact-OT accuracy {o['best']:.0%} (layer {o['best_layer']})"
        + "".join(f", {m.removeprefix('best_')} {v:.0%}" for m, v in o.items() if m.startswith("best_") and m != "best_layer")
        + ".",
        f"- **Attention approaches the OT plan with depth: {t['verdict']}.** Argmax agreement of attention with "
        f"the exact plan, correlation with layer index (first -> last layer): "
        + "; ".join(f"{_label(e)}: r = {v['r']:+.2f} "
                    f"({v['first']:.0%} -> {v['last']:.0%})" for e, v in t["trends"].items()) + ".",
    ]
    return "\n".join(lines)


__all__ += ["attention_claims", "describe_attention_claims"]
