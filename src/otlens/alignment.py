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
from .activations import _find_blocks, _ResidualRecorder
from .ot import solve
from .results import StudyResult

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
    "AlignmentStudy",
    "alignment_study",
    "agreement_study",
    "diagonal_alignment",
    "GoldSummary",
    "gold_summary",
    "agreement_trend",
    "densest_verse",
    "verse_maps",
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

    Parameters
    ----------
    M : array-like, [n_source, n_target]
        Soft alignment (plan or attention); larger is more aligned.
    rule : {"intersect", "union", "target-argmax", "source-argmax"}
        How links are read off (above).

    Returns
    -------
    numpy.ndarray of bool, [n_source, n_target]
        The links.
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

    Parameters
    ----------
    M : array-like, [n_source, n_target]
        Soft alignment.
    gold : set of (i, j) or array-like of bool, [n_source, n_target]
        The gold links.
    rule : str
        One of :data:`RULES` (see :func:`hard_links`).

    Returns
    -------
    dict of str to int
        The five counts.
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
    M : array-like, [n_source, n_target]
        Soft alignment (plan or attention); larger is more aligned.
    gold : set of (i, j) or array-like of bool, [n_source, n_target]
        The gold links.
    rule : str
        One of :data:`RULES`, for precision, recall and AER.

    Returns
    -------
    dict of str to float
        ``precision``, ``recall``, ``aer`` and ``accuracy``.
    """
    return _scores_from_counts(alignment_counts(M, gold, rule=rule))


def argmax_accuracy(M: Any, gold: Any) -> float:
    """Fraction of gold-aligned target words whose argmax source word is a gold partner.

    Parameters
    ----------
    M : array-like, [n_source, n_target]
        Soft alignment.
    gold : set of (i, j) or array-like of bool, [n_source, n_target]
        The gold links.

    Returns
    -------
    float
        The accuracy, in [0, 1].
    """
    return alignment_scores(M, gold)["accuracy"]


def agreement(attention: Any, plan: Any) -> dict[str, float]:
    r"""How close an attention map is to a transport plan, target word by target word.

    Both ``[n_source, n_target]`` matrices are normalised over the source words (columns
    sum to one): :math:`\hat a_{\cdot j}`, :math:`\hat p_{\cdot j}`.

    Parameters
    ----------
    attention : array-like, [n_source, n_target]
        Non-negative attention weights (target words as queries).
    plan : array-like, [n_source, n_target]
        Non-negative transport plan.

    Returns
    -------
    dict of str to float
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
    """Character spans of ``words``, found in order in ``text`` from ``start``.

    Parameters
    ----------
    text : str
        The text.
    words : sequence of str
        The words, in order.
    start : int
        Character offset where the search starts.

    Returns
    -------
    list of tuple of (int, int)
        ``(start, end)`` of each word.
    """
    spans, pos = [], start
    for w in words:
        k = text.find(w, pos)
        if k < 0:
            raise ValueError(f"word {w!r} not found in the text after position {pos}: {text[pos:pos + 60]!r}")
        spans.append((k, k + len(w)))
        pos = k + len(w)
    return spans


def token_word_index(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """For each token (character ``offsets``), the index of the word span it overlaps, or -1.

    Parameters
    ----------
    offsets : sequence of (int, int)
        The tokens' character spans (a tokenizer's offset mapping).
    spans : sequence of (int, int)
        The words' character spans (:func:`word_spans`).

    Returns
    -------
    numpy.ndarray of int, [n_tokens]
        Word index per token; -1 for tokens outside every word.
    """
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
    """Mean of token states over each word's tokens: ``[.., T, d]`` -> ``[.., n_words, d]``.

    Parameters
    ----------
    states : torch.Tensor, [.., T, d]
        Token states.
    word_index : numpy.ndarray of int, [T]
        Word of each token, -1 for none (:func:`token_word_index`).
    n_words : int
        Number of words.

    Returns
    -------
    torch.Tensor, [.., n_words, d]
        One vector per word.
    """
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

    Parameters
    ----------
    attn : torch.Tensor, [.., T, T]
        Token attention, queries first.
    target_index : numpy.ndarray of int, [T]
        Target word of each token, -1 for none.
    n_target : int
        Number of target words.
    source_index : numpy.ndarray of int, [T]
        Source word of each token, -1 for none.
    n_source : int
        Number of source words.

    Returns
    -------
    torch.Tensor, [.., n_source, n_target]
        Word-level attention; each target word's column sums to one over the source words.
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
    source, target : torch.Tensor, [n_layers + 1, n_words, d_model]
        Residual-stream word vectors (index 0 = embeddings, ``l + 1`` = output of block ``l``).
    attention : torch.Tensor, [n_layers, n_heads, n_source, n_target]
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

    Returns
    -------
    TranslationStates
        Word vectors of both sides at every state and the word-level attention of every
        block and head.
    """
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

    Parameters
    ----------
    source : torch.Tensor, [n_source, d]
        Source word vectors.
    target : torch.Tensor, [n_target, d]
        Target word vectors.
    reg : float
        Sinkhorn's :math:`\varepsilon` (absolute, in units of the cost).

    Returns
    -------
    dict of str to numpy.ndarray
        ``[n_source, n_target]`` matrices: ``"ot-exact"`` (network simplex), ``"ot-entropic"``
        (Sinkhorn) and ``"cosine"`` (similarity, shifted to be non-negative), the
        nearest-neighbour baseline.
    """
    reg = check_positive(reg, "reg")
    x, y = _unit(source.double()), _unit(target.double())
    exact = solve(x, y, method="exact", return_plan=True, warn=False).plan.numpy()
    ent = solve(x, y, method="sinkhorn", reg=reg, return_plan=True, warn=False, max_iter=5000).plan.numpy()
    return {"ot-exact": exact, "ot-entropic": ent, "cosine": (1.0 + (x @ y.T)).numpy()}


def _check_layers(layers: Any, n_layers: int) -> list[int]:
    if layers is None:
        return list(range(n_layers))
    return [check_int(k, "layers", minimum=0, maximum=n_layers - 1) for k in layers]


def diagonal_alignment(n_source: int, n_target: int) -> np.ndarray:
    """The position-aware baseline: target word ``j`` aligned to the source word at the same relative position.

    ``M[i, j] = 1 - |(i + 1/2) / n_source - (j + 1/2) / n_target|``, so each column's argmax is
    the diagonal (translations keep much of the word order); no model is read.

    Parameters
    ----------
    n_source, n_target : int
        Numbers of source and target words.

    Returns
    -------
    numpy.ndarray, [n_source, n_target]
        The matrix ``M``.
    """
    n_source, n_target = check_int(n_source, "n_source", minimum=1), check_int(n_target, "n_target", minimum=1)
    i = (np.arange(n_source) + 0.5) / n_source
    j = (np.arange(n_target) + 0.5) / n_target
    return 1.0 - np.abs(i[:, None] - j[None, :])


def _uniform_counts(G: np.ndarray) -> dict[str, float]:
    """Expected accuracy counts of a uniform (random-argmax) alignment: gold partners / source words."""
    has_gold = G.any(0)
    return dict(n_target=float(has_gold.sum()), n_correct=float((G.sum(0)[has_gold] / G.shape[0]).sum()))


def _baseline_agreements(plan: np.ndarray) -> list[tuple[str, dict[str, float]]]:
    n_s, n_t = plan.shape
    diag = agreement(diagonal_alignment(n_s, n_t), plan)
    uni = agreement(np.ones_like(plan), plan)
    uni["argmax_agreement"] = 1.0 / n_s  # a random argmax agrees with probability 1 / n_source
    return [("diagonal", diag), ("uniform", uni)]


@dataclass(frozen=True, eq=False)
class AlignmentStudy(StudyResult):
    """What :func:`alignment_study` returns: scores against gold alignments and agreements (frozen).

    Attributes
    ----------
    scores : pandas.DataFrame
        Pooled scores (``experiment="gold_alignment"``) then per-verse counts
        (``"gold_alignment_verse"``), as described in :func:`alignment_study`.
    agreements : pandas.DataFrame
        Per layer and verse, the agreement of attention and of the baselines with each OT plan.

    ``scores, agreements = alignment_study(...)`` still unpacks (iterating yields the two).
    :meth:`describe` is chapter 3's verdict on :meth:`to_frame` (the claims on sorting need
    :func:`otlens.attention_ot.sorting_study`'s rows, so they read "missing" here).
    """

    scores: pd.DataFrame
    agreements: pd.DataFrame

    chapter = "03_attention_as_ot"

    def to_frame(self) -> pd.DataFrame:
        """The scores then the agreements, one tidy table (rows in that order).

        Returns
        -------
        pandas.DataFrame
            :attr:`scores` and :attr:`agreements` concatenated, with a fresh index.
        """
        return pd.concat([self.scores, self.agreements], ignore_index=True)

    def __iter__(self):
        return iter((self.scores, self.agreements))


def alignment_study(lm: Any, verses: Sequence[Any], *, layers: Any = None, reg: float = 0.05,
                    rule: str = "intersect", languages: tuple[str, str] = ("Greek", "English"),
                    progress: bool = True) -> AlignmentStudy:
    """Score OT plans and attention against gold alignments, layer by layer, verse by verse.

    For every verse (an :class:`otlens.data.AlignedVerse`) and block ``l`` in ``layers``: OT
    plans between the word vectors of block ``l``'s output (:func:`word_plans`), the attention
    of block ``l`` averaged over heads and per head, the chance baselines (uniform and the
    position-aware :func:`diagonal_alignment`), and the agreement (:func:`agreement`) of mean
    attention and of the baselines with each OT plan.

    Parameters
    ----------
    lm : otlens.models.LoadedModel
        A decoder loaded with eager attention.
    verses : sequence of AlignedVerse
        Gold-aligned verses (:func:`otlens.data.aligned_verses`).
    layers : sequence of int, optional
        Blocks to read (default: all).
    reg : float
        Sinkhorn's :math:`\varepsilon` for :func:`word_plans`.
    rule : str
        How links are read off for precision, recall and AER (:func:`hard_links`).
    languages : (str, str)
        Names written before each side of the prompt.
    progress : bool
        Show a progress bar.

    Returns
    -------
    AlignmentStudy
        Two tidy tables. ``.scores``: experiment ``"gold_alignment"``, method in ``ot-exact``,
        ``ot-entropic``, ``cosine``, ``attention-mean``, ``attention-best-head`` (the head with the best
        accuracy at that layer, chosen on these verses: optimistic), ``diagonal``, ``uniform``,
        metrics ``precision``, ``recall``, ``aer``, ``accuracy`` pooled over verses (micro);
        plus experiment ``"gold_alignment_verse"``: per verse (``ref``, ``verse``) the counts
        ``n_correct`` and ``n_target`` of every method and head (``head-<h>``), from which
        held-out selection and bootstrap intervals are computed. ``.agreements``: per layer and
        verse the agreement of mean attention (``attention-vs-<plan>``) and of the baselines
        (``diagonal-vs-<plan>``, ``uniform-vs-<plan>``) with each OT plan. ``.to_frame()``:
        both; ``.describe()``: the chapter's verdict on them.
    """
    check_choice(rule, "rule", RULES)
    layers = _check_layers(layers, lm.n_layers)
    counts: dict[tuple[str, int], dict[str, int]] = {}
    agree: list[dict] = []
    per_verse: list[dict] = []

    def add(method: str, layer: int, c: dict, verse: int, ref: str) -> None:
        tot = counts.setdefault((method, layer), dict.fromkeys(c, 0))
        for k, v in c.items():
            tot[k] += v
        per_verse.append(dict(method=method, layer=layer, verse=verse, ref=ref, n_correct=c["n_correct"],
                              n_target=c["n_target"]))

    for i, v in enumerate(tqdm(verses, desc=f"alignment {lm.name}", disable=not progress)):
        ts = translation_states(lm, v.source_words, v.target_words, languages=languages)
        G = v.gold_matrix()
        diag = alignment_counts(diagonal_alignment(*G.shape), G, rule=rule)
        for layer in layers:
            plans = word_plans(ts.source[layer + 1], ts.target[layer + 1], reg=reg)
            for method, M in plans.items():
                add(method, layer, alignment_counts(M, G, rule=rule), i, v.ref)
            A = ts.attention[layer].numpy()  # [H, n_s, n_t]
            add("attention-mean", layer, alignment_counts(A.mean(0), G, rule=rule), i, v.ref)
            for h in range(A.shape[0]):
                add(f"head-{h}", layer, alignment_counts(A[h], G, rule=rule), i, v.ref)
            add("diagonal", layer, diag, i, v.ref)
            per_verse.append(dict(method="uniform", layer=layer, verse=i, ref=v.ref, **_uniform_counts(G)))
            for method in ("ot-exact", "ot-entropic"):
                agree.append(dict(layer=layer, method="attention-vs-" + method, ref=v.ref, verse=i,
                                  **agreement(A.mean(0), plans[method])))
                for name, a in _baseline_agreements(plans[method]):
                    agree.append(dict(layer=layer, method=f"{name}-vs-{method}", ref=v.ref, verse=i, **a))
    rows = []
    for (method, layer), c in counts.items():
        for metric, value in _scores_from_counts(c).items():
            rows.append(dict(method=method, layer=layer, metric=metric, value=value))
    uni = pd.DataFrame([r for r in per_verse if r["method"] == "uniform"]).groupby("layer")[["n_correct", "n_target"]].sum()
    rows += [dict(method="uniform", layer=int(k), metric="accuracy", value=float(r.n_correct / r.n_target))
             for k, r in uni.iterrows() if r.n_target]
    scores = pd.DataFrame(rows)
    heads = scores[scores.method.str.startswith("head-")]
    best = heads[heads.metric == "accuracy"].sort_values("value").groupby("layer").tail(1).set_index("layer").method
    best_rows = heads[heads.apply(lambda r: best.get(r.layer) == r.method, axis=1)].assign(method="attention-best-head")
    best_rows = best_rows.assign(head=best_rows.layer.map(lambda k: int(best[k].split("-")[1])))
    scores = pd.concat([scores[~scores.method.str.startswith("head-")], best_rows], ignore_index=True)
    scores = scores.assign(experiment="gold_alignment", model=lm.name, trained=lm.trained, seed=0,
                           n_verses=len(verses))
    verse_rows = (pd.DataFrame(per_verse).melt(id_vars=["method", "layer", "verse", "ref"], var_name="metric",
                                               value_name="value")
                  .assign(experiment="gold_alignment_verse", model=lm.name, trained=lm.trained, seed=0,
                          n_verses=len(verses)))
    ag = pd.DataFrame(agree).melt(id_vars=["layer", "method", "ref", "verse"], var_name="metric", value_name="value")
    ag = ag.assign(experiment=f"agreement_{languages[0].lower()}_{languages[1].lower()}", model=lm.name,
                   trained=lm.trained, seed=0, n_verses=len(verses))
    return AlignmentStudy(pd.concat([scores, verse_rows], ignore_index=True), ag)


def agreement_study(lm: Any, pairs: Sequence[tuple[str, str, str]], *, layers: Any = None, reg: float = 0.05,
                    languages: tuple[str, str] = ("English", "French"), progress: bool = True) -> pd.DataFrame:
    r"""Agreement of attention (heads averaged) and of the baselines with the OT plans, per layer and verse pair.

    Words are the whitespace-separated pieces of each text.

    Parameters
    ----------
    lm : otlens.models.LoadedModel
        A decoder loaded with eager attention.
    pairs : sequence of (str, str, str)
        ``(ref, source_text, target_text)`` (as from :func:`otlens.data.verse_pairs`).
    layers : sequence of int, optional
        Blocks to read (default: all).
    reg : float
        Sinkhorn's :math:`\varepsilon` for :func:`word_plans`.
    languages : (str, str)
        Names written before each side of the prompt.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        A tidy table like the second table of :func:`alignment_study` (one row per layer,
        method, verse and metric).
    """
    layers = _check_layers(layers, lm.n_layers)
    rows = []
    for i, (ref, s_text, t_text) in enumerate(tqdm(pairs, desc=f"agreement {lm.name}", disable=not progress)):
        ts = translation_states(lm, s_text.split(), t_text.split(), languages=languages)
        for layer in layers:
            plans = word_plans(ts.source[layer + 1], ts.target[layer + 1], reg=reg)
            A = ts.attention[layer].numpy().mean(0)
            for method in ("ot-exact", "ot-entropic"):
                rows.append(dict(layer=layer, method="attention-vs-" + method, ref=ref, verse=i,
                                 **agreement(A, plans[method])))
                for name, a in _baseline_agreements(plans[method]):
                    rows.append(dict(layer=layer, method=f"{name}-vs-{method}", ref=ref, verse=i, **a))
    ag = pd.DataFrame(rows).melt(id_vars=["layer", "method", "ref", "verse"], var_name="metric", value_name="value")
    return ag.assign(experiment=f"agreement_{languages[0].lower()}_{languages[1].lower()}", model=lm.name,
                     trained=lm.trained, seed=0, n_verses=len(pairs))





# --------------------------------------------------------------------------------- reading the studies
@dataclass(frozen=True)
class GoldSummary:
    """Per-block accuracy and AER of every method on the gold-aligned verses, by :func:`gold_summary`.

    Attributes
    ----------
    accuracy, aer : pandas.DataFrame
        Index ``layer``, one column per method (mean over verses as the study reports it).
    table : pandas.DataFrame
        Every metric per block for exact OT and mean attention (columns ``(method, metric)``).

    The best blocks are read on the same verses, so they are optimistic; the chapter's verdict
    holds the block choice out.
    """

    accuracy: pd.DataFrame
    aer: pd.DataFrame
    table: pd.DataFrame

    @property
    def best_ot_layer(self) -> int:
        """The block where exact OT is most accurate (the first one on ties)."""
        return int(self.accuracy["ot-exact"].idxmax())

    def texts(self) -> dict[str, str]:
        """Best accuracy over blocks per method, and exact OT's best AER (``glue`` name -> text).

        Returns
        -------
        dict of str to str
            Each ``glue`` name and its text.
        """
        acc = self.accuracy
        return {
            "ot_best_acc": f"{acc['ot-exact'].max():.0%}",
            "ot_best_layer": str(self.best_ot_layer),
            "ent_best_acc": f"{acc['ot-entropic'].max():.0%}",
            "cos_best_acc": f"{acc['cosine'].max():.0%}",
            "att_best_acc": f"{acc['attention-mean'].max():.0%}",
            "head_best_acc": f"{acc['attention-best-head'].max():.0%}",
            "att_best_layer": str(int(acc["attention-mean"].idxmax())),
            "ot_best_aer": f"{self.aer['ot-exact'].min():.2f}",
        }


_GOLD_METHODS = ("ot-exact", "ot-entropic", "cosine", "attention-mean", "attention-best-head")


def gold_summary(scores: pd.DataFrame) -> GoldSummary:
    """Accuracy and AER per block and method from :func:`alignment_study`'s scores.

    Reads the ``experiment == "gold_alignment"`` rows (the other rows are ignored).

    Parameters
    ----------
    scores : pandas.DataFrame
        The first table of :func:`alignment_study`.

    Returns
    -------
    GoldSummary
        The summary table and its numbers as text.
    """
    needed = {"experiment", "method", "layer", "metric", "value"} - set(scores.columns)
    if needed:
        raise ValueError(f"`scores` lacks the columns {sorted(needed)} (expected alignment_study()'s scores)")
    pooled = scores[scores.experiment == "gold_alignment"]
    missing = set(_GOLD_METHODS) - set(pooled.method)
    if pooled.empty or missing or not {"accuracy", "aer"} <= set(pooled.metric):
        raise ValueError(f"`scores` has no gold_alignment accuracy and AER rows for {sorted(missing) or 'every method'}")
    acc = pooled[pooled.metric == "accuracy"].pivot_table(index="layer", columns="method", values="value")
    aer = pooled[pooled.metric == "aer"].pivot_table(index="layer", columns="method", values="value")
    table = pd.concat({m: pooled[pooled.method == m].pivot_table(index="layer", columns="metric", values="value")
                       for m in ["ot-exact", "attention-mean"]}, axis=1)
    return GoldSummary(accuracy=acc, aer=aer, table=table)


def agreement_trend(agreements: pd.DataFrame, *, method: str = "attention-vs-ot-exact",
                    metric: str = "argmax_agreement") -> pd.DataFrame:
    """Per experiment, how ``method``'s agreement with the OT plan moves with the block index.

    Averages over verses per (experiment, layer), then one row per experiment.

    Parameters
    ----------
    agreements : pandas.DataFrame
        The agreement table (:func:`alignment_study`'s second table or :func:`agreement_study`).
    method : str
        The method, e.g. ``"attention-vs-ot-exact"``.
    metric : str
        The agreement metric, e.g. ``"argmax_agreement"``.

    Returns
    -------
    pandas.DataFrame
        One row per experiment: ``trend`` (Pearson correlation of the mean agreement with the
        layer index; nan with fewer than two layers or a constant agreement) and ``max`` (the
        highest mean agreement).
    """
    needed = {"experiment", "method", "layer", "metric", "value"} - set(agreements.columns)
    if needed:
        raise ValueError(f"`agreements` lacks the columns {sorted(needed)}")
    ag = agreements[(agreements.metric == metric) & (agreements.method == method)]
    if ag.empty:
        raise ValueError(f"`agreements` has no rows of method {method!r} and metric {metric!r}")
    ag = ag.groupby(["experiment", "layer"], as_index=False).value.mean()
    rows = {}
    for e, g in ag.groupby("experiment"):
        x, y = g.layer.to_numpy(float), g.value.to_numpy(float)
        trend = float(np.corrcoef(x, y)[0, 1]) if len(g) >= 2 and x.std() > 0 and y.std() > 0 else float("nan")
        rows[e] = {"trend": trend, "max": float(y.max())}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "experiment"
    return out


def densest_verse(verses: Sequence[Any], *, first: int = 8) -> Any:
    """Among the first ``first`` verses, the one with the most gold links per word pair (for a figure).

    Parameters
    ----------
    verses : sequence of AlignedVerse
        Gold-aligned verses (at least one).
    first : int
        How many of the first verses to consider.

    Returns
    -------
    AlignedVerse
        The densest verse.
    """
    first = check_int(first, "first", minimum=1)
    verses = list(verses)
    if not verses:
        raise ValueError("`verses` must hold at least one verse")
    return max(verses[:first], key=lambda v: len(v.links) / (len(v.source_words) * len(v.target_words)))


def verse_maps(lm: Any, verse: Any, layers: Sequence[int], *, reg: float = 0.05) -> dict[str, np.ndarray]:
    r"""Attention (heads averaged) and the exact OT plan between word vectors at each block in ``layers``.

    For :func:`otlens.plots.plot_alignment_maps`.

    Parameters
    ----------
    lm : otlens.models.LoadedModel
        A decoder loaded with eager attention.
    verse : AlignedVerse
        One gold-aligned verse.
    layers : sequence of int
        The blocks.
    reg : float
        Sinkhorn's :math:`\varepsilon` for :func:`word_plans`.

    Returns
    -------
    dict of str to numpy.ndarray
        ``"attention, block <k>"`` maps first, then ``"OT plan, block <k>"`` plans, each
        ``[n_source, n_target]``.
    """
    ts = translation_states(lm, verse.source_words, verse.target_words)
    layers = _check_layers(layers, ts.attention.shape[0])
    maps: dict[str, Any] = {f"attention, block {k}": ts.attention[k].mean(0) for k in layers}
    maps.update({f"OT plan, block {k}": word_plans(ts.source[k + 1], ts.target[k + 1], reg=reg)["ot-exact"]
                 for k in layers})
    return maps
