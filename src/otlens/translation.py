r"""A small encoder-decoder translation transformer, trained on verse pairs, and its cross-attention.

:cite:t:`daneshmand:24` (figure 1) looks at the cross-attention of a translation model across
layers: the attention of target words on source words becomes an alignment as depth grows.
This module trains such a model from scratch on parallel verses (e.g.
:func:`otlens.data.verse_pairs`, English -> French) and reads its cross-attention at word level.

**Tokens.** Text is lower-cased and split into word pieces and punctuation
(``\w+|[^\w\s]``); a *word* is a whitespace-separated piece of the original text, so ``"dit:"``
is one word of two tokens. One joint vocabulary covers both languages (the ``max_vocab`` most
frequent tokens of the training verses, the rest ``<unk>``); the embedding is shared by the
encoder, the decoder and the output layer.

**Model.** Pre-norm blocks (:math:`h \leftarrow h + \mathrm{MHA}(\mathrm{LN}(h))`, then the
feed-forward sub-layer), learned positions. The encoder reads ``source + <eos>``; decoder block
:math:`\ell` applies causal self-attention, then cross-attention with queries from its residual
stream :math:`h^{(\ell)}` and keys/values from the encoder output :math:`m`,

.. math::

    A^{(\ell, h)}_{ts} = \operatorname{softmax}_s\!\Big(\tfrac{\langle W_Q^{(\ell,h)} \mathrm{LN}(h^{(\ell)}_t),\,
        W_K^{(\ell,h)} m_s\rangle}{\sqrt{d_h}}\Big),

and the decoder input is ``<bos> + target``: query position :math:`t` *predicts* target token
:math:`t`, so row :math:`t` of :math:`A` is the attention used to produce target token
:math:`t`. Training minimises the token cross-entropy (teacher forcing) with AdamW; everything
(initialisation, dropout, batches) is drawn from ``seed`` and is deterministic on a CPU.

**Word level.** :func:`cross_attention` pools like :func:`otlens.alignment.pool_attention`: the
attention of target word :math:`j` on source word :math:`i` is the attention of :math:`j`'s
tokens (mean over queries) summed over :math:`i`'s tokens (keys), renormalised over the source
words (``<eos>`` dropped). Word vectors are token vectors averaged over each word.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ._validation import check_int, check_positive
from .alignment import agreement, pool_words, word_plans
from .train_loop import train_loop

__all__ = [
    "SPECIALS",
    "tokenize",
    "Vocabulary",
    "TranslationTransformer",
    "TranslationRun",
    "train_translation",
    "CrossAttention",
    "cross_attention",
    "cross_attention_study",
    "split_heldout",
    "example_pair",
    "cross_attention_maps",
]

#: Special tokens: padding, unknown, begin and end of sequence (ids 0..3).
SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")
PAD, UNK, BOS, EOS = range(4)
_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> tuple[list[str], list[int], list[str]]:
    """Lower-cased word-piece/punctuation tokens of ``text``.

    Parameters
    ----------
    text : str
        The text.

    Returns
    -------
    (tokens, word_index, words)
        ``word_index[t]`` is the index of the whitespace-separated word (in ``words``) that
        token ``t`` belongs to. Every word has at least one token.
    """
    if not isinstance(text, str):
        raise TypeError(f"`text` must be a str; got {type(text).__name__}")
    words = text.split()
    if not words:
        raise ValueError("`text` must contain at least one word")
    tokens, index = [], []
    for w, word in enumerate(words):
        pieces = _TOKEN.findall(word.lower()) or [word.lower()]
        tokens += pieces
        index += [w] * len(pieces)
    return tokens, index, words


@dataclass(frozen=True)
class Vocabulary:
    """A joint token vocabulary: :data:`SPECIALS` first, then tokens by decreasing frequency.

    Parameters
    ----------
    tokens : tuple of str
        The tokens, in id order.
    index : dict of str to int
        Token -> id.
    """

    tokens: tuple[str, ...]
    index: dict[str, int] = field(repr=False, compare=False)

    @classmethod
    def build(cls, texts: Sequence[str], *, max_vocab: int = 8000, min_count: int = 2) -> "Vocabulary":
        """The ``max_vocab`` most frequent tokens of ``texts`` seen at least ``min_count`` times (ties by token).

        Parameters
        ----------
        texts : sequence of str
            The texts of both languages.
        max_vocab : int
            Largest vocabulary, specials included.
        min_count : int
            Fewest occurrences of a kept token.

        Returns
        -------
        Vocabulary
            The vocabulary.
        """
        max_vocab = check_int(max_vocab, "max_vocab", minimum=len(SPECIALS) + 1)
        min_count = check_int(min_count, "min_count", minimum=1)
        if isinstance(texts, str) or not len(texts):
            raise ValueError("`texts` must be a non-empty sequence of strings")
        counts = Counter(t for text in texts for t in tokenize(text)[0])
        ranked = sorted((c, t) for t, c in counts.items() if c >= min_count)
        ranked = sorted(ranked, key=lambda ct: (-ct[0], ct[1]))[: max_vocab - len(SPECIALS)]
        tokens = SPECIALS + tuple(t for _, t in ranked)
        return cls(tokens, {t: i for i, t in enumerate(tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> tuple[list[int], list[int], list[str]]:
        """Token ids, token -> word index and words of ``text`` (see :func:`tokenize`).

        Parameters
        ----------
        text : str
            The text.

        Returns
        -------
        ids : list of int
            Token ids (unknown tokens map to ``<unk>``).
        word_index : list of int
            The word of each token.
        words : list of str
            The whitespace-separated words.
        """
        tokens, index, words = tokenize(text)
        return [self.index.get(t, UNK) for t in tokens], index, words


class _Block(nn.Module):
    """Pre-norm block: self-attention, optional cross-attention, feed-forward."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, cross: bool):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.cross = cross
        if cross:
            self.ln2 = nn.LayerNorm(d_model)
            self.cross_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.ln3 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, h, pad_mask, causal=None, memory=None, memory_pad=None, record=None):
        u = self.ln1(h)
        h = h + self.drop(self.self_attn(u, u, u, key_padding_mask=pad_mask, attn_mask=causal,
                                         need_weights=False)[0])
        if self.cross:
            u = self.ln2(h)
            out, w = self.cross_attn(u, memory, memory, key_padding_mask=memory_pad,
                                     need_weights=record is not None, average_attn_weights=False)
            if record is not None:
                record.append((h, w))  # residual stream entering cross-attention, [B, H, Tq, Tk]
            h = h + self.drop(out)
        return h + self.drop(self.ff(self.ln3(h)))


class TranslationTransformer(nn.Module):
    """Encoder-decoder transformer with a shared embedding (see the module docstring).

    Parameters
    ----------
    vocab_size : int
        Tokens in the shared vocabulary (specials included).
    d_model, n_heads, n_layers : int
        Width, heads (dividing ``d_model``), blocks in the encoder and in the decoder.
    d_ff : int, optional
        Feed-forward width (default ``4 * d_model``).
    max_len : int
        Longest token sequence (positions are learned).
    dropout : float
        Dropout rate of every block.
    """

    def __init__(self, vocab_size: int, *, d_model: int = 64, n_heads: int = 4, n_layers: int = 3,
                 d_ff: int | None = None, max_len: int = 128, dropout: float = 0.1):
        super().__init__()
        vocab_size = check_int(vocab_size, "vocab_size", minimum=len(SPECIALS) + 1)
        d_model = check_int(d_model, "d_model", minimum=1)
        n_heads = check_int(n_heads, "n_heads", minimum=1)
        if d_model % n_heads:
            raise ValueError(f"`n_heads` must divide `d_model`; got {n_heads} and {d_model}")
        self.n_layers = check_int(n_layers, "n_layers", minimum=1)
        self.max_len = check_int(max_len, "max_len", minimum=2)
        d_ff = check_int(d_ff if d_ff is not None else 4 * d_model, "d_ff", minimum=1)
        if not 0 <= float(dropout) < 1:
            raise ValueError(f"`dropout` must be in [0, 1); got {dropout}")
        self.d_model, self.n_heads = d_model, n_heads
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=PAD)
        self.pos_src = nn.Embedding(max_len, d_model)
        self.pos_tgt = nn.Embedding(max_len, d_model)
        self.encoder = nn.ModuleList(_Block(d_model, n_heads, d_ff, dropout, cross=False) for _ in range(n_layers))
        self.decoder = nn.ModuleList(_Block(d_model, n_heads, d_ff, dropout, cross=True) for _ in range(n_layers))
        self.ln_enc, self.ln_dec = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)
        nn.init.normal_(self.embed.weight, std=d_model ** -0.5)

    def encode(self, src: torch.Tensor) -> torch.Tensor:
        """Encoder output ``[B, S, d]`` of token ids ``src`` ``[B, S]`` (``PAD``-padded).

        Parameters
        ----------
        src : torch.Tensor of int64, [B, S]
            Source token ids.

        Returns
        -------
        torch.Tensor, [B, S, d]
            The encoder's output.
        """
        pad = src == PAD
        h = self.drop(self.embed(src) * math.sqrt(self.d_model) + self.pos_src(torch.arange(src.shape[1])))
        for block in self.encoder:
            h = block(h, pad)
        return self.ln_enc(h)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor, *, record: list | None = None) -> torch.Tensor:
        """Next-token logits ``[B, T, V]`` for decoder inputs ``tgt_in`` (``<bos>`` + target).

        Parameters
        ----------
        src : torch.Tensor of int64, [B, S]
            Source token ids (``PAD``-padded).
        tgt_in : torch.Tensor of int64, [B, T]
            Decoder inputs.
        record : list, optional
            If a list, each decoder block appends ``(residual, cross_attention)``: the residual
            stream entering its cross-attention ``[B, T, d]`` and the per-head attention
            ``[B, H, T, S]``.

        Returns
        -------
        torch.Tensor, [B, T, V]
            The logits.
        """
        if src.shape[1] > self.max_len or tgt_in.shape[1] > self.max_len:
            raise ValueError(f"sequences must have at most {self.max_len} tokens; got {src.shape[1]} and {tgt_in.shape[1]}")
        memory = self.encode(src)
        T = tgt_in.shape[1]
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        h = self.drop(self.embed(tgt_in) * math.sqrt(self.d_model) + self.pos_tgt(torch.arange(T)))
        for block in self.decoder:
            h = block(h, tgt_in == PAD, causal, memory, src == PAD, record)
        return self.ln_dec(h) @ self.embed.weight.T


def _batch(seqs: Sequence[Sequence[int]]) -> torch.Tensor:
    out = torch.full((len(seqs), max(len(s) for s in seqs)), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


def _pairs_text(pairs: Any, name: str) -> list[tuple[str, str]]:
    out = []
    for p in pairs:
        if not isinstance(p, (tuple, list)) or len(p) not in (2, 3):
            raise ValueError(f"`{name}` must hold (source, target) or (ref, source, target) tuples; got {p!r}")
        s, t = p[-2], p[-1]
        if not isinstance(s, str) or not isinstance(t, str) or not s.split() or not t.split():
            raise ValueError(f"`{name}` holds an empty or non-text verse: {p!r}")
        out.append((s, t))
    if not out:
        raise ValueError(f"`{name}` must hold at least one verse pair")
    return out


@dataclass
class TranslationRun:
    """A trained :class:`TranslationTransformer`, its vocabulary and its training log.

    Attributes
    ----------
    model : TranslationTransformer
        In eval mode.
    vocab : Vocabulary
    log : pandas.DataFrame
        ``step, metric, value`` with ``train_loss`` (every step) and ``val_loss`` (every
        ``eval_every`` steps and at the end, when validation pairs are given); nats per token.
    seconds : float
        Wall time of the training loop.
    config : dict
        The arguments of :func:`train_translation`.
    """

    model: TranslationTransformer
    vocab: Vocabulary
    log: pd.DataFrame
    seconds: float
    config: dict

    @property
    def n_parameters(self) -> int:
        """Number of trainable weights of the model."""
        return int(sum(p.numel() for p in self.model.parameters()))

    def texts(self, *, tail: int = 50) -> dict[str, str]:
        """The run as chapter 3 shows it (``glue`` name -> text).

        Parameters
        ----------
        tail : int
            Steps averaged for ``mt_train_loss``.

        Returns
        -------
        dict of str to str
            ``mt_train_loss`` is the mean training loss of the last ``tail`` steps; ``mt_val_first``
            and ``mt_val_loss`` the first and last validation loss ("n/a" without validation pairs).
        """
        tail = check_int(tail, "tail", minimum=1)
        c = self.config
        train = self.log[self.log.metric == "train_loss"].value
        val = self.log[self.log.metric == "val_loss"].value
        return {
            "mt_desc": f"{c['n_layers']}+{c['n_layers']} blocks, width {c['d_model']}, vocabulary {len(self.vocab)}, "
                       f"{self.n_parameters / 1e6:.2f}M parameters",
            "mt_seconds": f"{self.seconds:.0f}",
            "mt_steps": str(c["steps"]),
            "mt_train_loss": f"{train.tail(tail).mean():.2f}",
            "mt_val_first": f"{val.iloc[0]:.2f}" if len(val) else "n/a",
            "mt_val_loss": f"{val.iloc[-1]:.2f}" if len(val) else "n/a",
        }


def _loss(model: TranslationTransformer, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    logits = model(src, tgt[:, :-1])
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1), ignore_index=PAD)


def train_translation(pairs: Sequence[Any], *, val_pairs: Sequence[Any] | None = None, d_model: int = 64,
                      n_heads: int = 4, n_layers: int = 3, steps: int = 1500, batch_size: int = 32,
                      lr: float = 2e-3, dropout: float = 0.1, max_vocab: int = 8000, min_count: int = 2,
                      max_len: int = 128, eval_every: int = 250, seed: int = 0,
                      progress: bool = True) -> TranslationRun:
    r"""Train a :class:`TranslationTransformer` from scratch on parallel verses.

    Minimises the mean token cross-entropy :math:`-\frac1N\sum_t \log p(y_t \mid y_{<t}, x)`
    (target + ``<eos>``, teacher forcing) with :func:`otlens.train_loop.train_loop`: AdamW (weight
    decay 0.01), a linear warm-up over the first 5% of the steps then cosine decay to 10% of
    ``lr``, gradients clipped at norm 1. Each step draws ``batch_size`` pairs uniformly with
    replacement.

    Parameters
    ----------
    pairs : sequence of (source, target) or (ref, source, target)
        Training verses (e.g. :func:`otlens.data.verse_pairs`); the vocabulary is built from them.
    val_pairs : sequence, optional
        Held-out verses for the validation loss.
    d_model, n_heads, n_layers, dropout, max_len :
        See :class:`TranslationTransformer`.
    steps, batch_size, lr : int, int, float
        AdamW steps, pairs per batch and peak learning rate (warm-up then cosine decay).
    max_vocab, min_count : int
        See :meth:`Vocabulary.build`.
    eval_every : int
        Steps between validation losses.
    seed : int
        Seeds initialisation, dropout and batches (the same seed gives the same weights).
    progress : bool
        A tqdm bar over steps with the running training loss.

    Returns
    -------
    TranslationRun
        The trained model, its vocabulary and its loss log.
    """
    pairs = _pairs_text(pairs, "pairs")
    val = _pairs_text(val_pairs, "val_pairs") if val_pairs is not None else []
    steps = check_int(steps, "steps", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    lr = check_positive(lr, "lr")
    eval_every = check_int(eval_every, "eval_every", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    config = dict(d_model=d_model, n_heads=n_heads, n_layers=n_layers, steps=steps, batch_size=batch_size, lr=lr,
                  dropout=dropout, max_vocab=max_vocab, min_count=min_count, max_len=max_len, seed=seed,
                  n_pairs=len(pairs))
    vocab = Vocabulary.build([t for p in pairs for t in p], max_vocab=max_vocab, min_count=min_count)

    def encode(ps):
        src = [vocab.encode(s)[0][: max_len - 1] + [EOS] for s, _ in ps]
        tgt = [[BOS] + vocab.encode(t)[0][: max_len - 1] + [EOS] for _, t in ps]
        return src, tgt

    src, tgt = encode(pairs)
    v_src, v_tgt = encode(val)
    torch.manual_seed(seed)
    model = TranslationTransformer(len(vocab), d_model=d_model, n_heads=n_heads, n_layers=n_layers,
                                   max_len=max_len, dropout=dropout)
    gen = torch.Generator().manual_seed(seed)

    def batch_loss(step: int) -> torch.Tensor:
        idx = torch.randint(len(src), (batch_size,), generator=gen).tolist()
        return _loss(model, _batch([src[i] for i in idx]), _batch([tgt[i] for i in idx]))

    def validate(step: int) -> float:
        losses, counts = [], []
        for k in range(0, len(v_src), 64):
            b_tgt = _batch(v_tgt[k: k + 64])
            losses.append(float(_loss(model, _batch(v_src[k: k + 64]), b_tgt)))
            counts.append(int((b_tgt[:, 1:] != PAD).sum()))
        return float(np.average(losses, weights=counts))

    start = time.perf_counter()
    rows = train_loop(model, batch_loss, steps=steps, lr=lr, warmup=max(1, steps // 20), weight_decay=0.01,
                      evaluate=validate if val else None,
                      eval_steps=[k for k in range(1, steps + 1) if k % eval_every == 0 or k == steps],
                      progress=progress, desc="training translation model")
    seconds = time.perf_counter() - start
    return TranslationRun(model, vocab, pd.DataFrame(rows, columns=["step", "metric", "value"]), seconds, config)


@dataclass(frozen=True)
class CrossAttention:
    """Word-level cross-attention and word vectors of one verse pair.

    Attributes
    ----------
    attention : torch.Tensor, [n_layers, n_heads, n_source, n_target]
        Attention of target word ``j`` on source word ``i`` in decoder block ``l``; every column
        sums to one over the source words.
    source : torch.Tensor, [n_source, d_model]
        Encoder output (the cross-attention memory), averaged over each source word's tokens.
    target : torch.Tensor, [n_layers, n_target, d_model]
        Decoder residual stream entering block ``l``'s cross-attention, at the positions that
        predict each target word's tokens, averaged per word.
    source_embeddings, target_embeddings : torch.Tensor, [n_words, d_model]
        Shared input embeddings averaged per word.
    source_words, target_words : tuple of str
    """

    attention: torch.Tensor
    source: torch.Tensor
    target: torch.Tensor
    source_embeddings: torch.Tensor
    target_embeddings: torch.Tensor
    source_words: tuple[str, ...]
    target_words: tuple[str, ...]


def _pool_cross(attn: torch.Tensor, t_idx: torch.Tensor, n_t: int, s_idx: torch.Tensor, n_s: int) -> torch.Tensor:
    """``[.., Tq, Tk]`` token cross-attention -> ``[.., n_s, n_t]`` word attention (columns sum to 1)."""
    keep = s_idx >= 0
    # sum over each source word's key tokens: [.., Tq, n_s]
    A = attn.new_zeros(*attn.shape[:-1], n_s).index_add_(-1, s_idx[keep], attn[..., keep])
    A = pool_words(A, t_idx.numpy(), n_t)  # mean over each target word's query tokens: [.., n_t, n_s]
    A = A / A.sum(-1, keepdim=True).clamp_min(1e-30)
    return A.transpose(-1, -2)


def cross_attention(run: TranslationRun, source: str, target: str) -> CrossAttention:
    """Cross-attention of every decoder block, pooled to words, for one verse pair (teacher forcing).

    Parameters
    ----------
    run : TranslationRun
        From :func:`train_translation`.
    source, target : str
        The source verse and its reference translation; words are whitespace-separated pieces.

    Returns
    -------
    CrossAttention
        Word-level cross-attention of every block and head, and the word states.
    """
    if not isinstance(run, TranslationRun):
        raise TypeError(f"`run` must be a TranslationRun; got {type(run).__name__}")
    (s_ids, s_index, s_words), (t_ids, t_index, t_words) = (run.vocab.encode(x) for x in (source, target))
    model = run.model
    if len(s_ids) + 1 > model.max_len or len(t_ids) + 1 > model.max_len:
        raise ValueError(f"verses must have fewer than {model.max_len} tokens; got {len(s_ids)} and {len(t_ids)}")
    src = torch.tensor([s_ids + [EOS]])
    tgt_in = torch.tensor([[BOS] + t_ids])  # position t predicts target token t
    record: list = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(src, tgt_in, record=record)
            memory = model.encode(src)[0]
    finally:
        model.train(was_training)
    s_idx = torch.tensor(s_index + [-1])
    t_idx = torch.tensor(t_index + [-1])  # last position predicts <eos>
    n_s, n_t = len(s_words), len(t_words)
    attn = torch.stack([w[0] for _, w in record])  # [L, H, Tt+1, Ts+1]
    states = torch.stack([h[0] for h, _ in record])  # [L, Tt+1, d]
    emb = model.embed.weight.detach()
    return CrossAttention(
        attention=_pool_cross(attn, t_idx, n_t, s_idx, n_s),
        source=pool_words(memory, s_idx.numpy(), n_s),
        target=pool_words(states, t_idx.numpy(), n_t),
        source_embeddings=pool_words(emb[torch.tensor(s_ids)], np.array(s_index), n_s),
        target_embeddings=pool_words(emb[torch.tensor(t_ids)], np.array(t_index), n_t),
        source_words=tuple(s_words),
        target_words=tuple(t_words),
    )


def cross_attention_study(run: TranslationRun, pairs: Sequence[Any], *, reg: float = 0.05,
                          progress: bool = True) -> pd.DataFrame:
    r"""Agreement of cross-attention (heads averaged) with OT plans, per decoder block.

    For every pair and block :math:`\ell`, compares (:func:`otlens.alignment.agreement`) the
    word cross-attention with :func:`otlens.alignment.word_plans` (exact and entropic OT, uniform
    weights, unit-norm vectors) between

    - ``ot-exact`` / ``ot-entropic``: the source words' encoder states and the target words'
      decoder states entering block :math:`\ell`'s cross-attention;
    - ``ot-embeddings``: the words' shared input embeddings (the same plan at every block).

    Parameters
    ----------
    run : TranslationRun
        The trained model.
    pairs : sequence
        Verse pairs ``(source, target)`` or ``(ref, source, target)``.
    reg : float
        Sinkhorn's :math:`\varepsilon` for :func:`otlens.alignment.word_plans`.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        Tidy, means over pairs: ``experiment="cross_attention_english_french"``,
        ``model="translation-transformer"``, ``trained=True``, method
        ``attention-vs-<plan>``, layer, seed, metric (``argmax_agreement``, ``kl``, ``tv``),
        value, n_verses.
    """
    pairs = _pairs_text(pairs, "pairs")
    reg = check_positive(reg, "reg")
    rows = []
    for s, t in tqdm(pairs, desc="cross-attention vs OT", disable=not progress):
        ca = cross_attention(run, s, t)
        emb_plan = word_plans(ca.source_embeddings, ca.target_embeddings, reg=reg)["ot-exact"]
        for layer in range(ca.attention.shape[0]):
            A = ca.attention[layer].mean(0).numpy()
            plans = word_plans(ca.source, ca.target[layer], reg=reg)
            for method, P in (("ot-exact", plans["ot-exact"]), ("ot-entropic", plans["ot-entropic"]),
                              ("ot-embeddings", emb_plan)):
                rows.append(dict(layer=layer, method=method, **agreement(A, P)))
    ag = pd.DataFrame(rows).melt(id_vars=["layer", "method"], var_name="metric", value_name="value")
    ag = ag.groupby(["layer", "method", "metric"], as_index=False).value.mean()
    return ag.assign(experiment="cross_attention_english_french", model="translation-transformer", trained=True,
                     seed=run.config["seed"], method="attention-vs-" + ag.method, n_verses=len(pairs))


def split_heldout(pairs: Sequence[Any], n_heldout: int, *, seed: int = 0) -> tuple[list[Any], list[Any]]:
    """Split verse pairs into training and held-out pairs, ``n_heldout`` drawn at random by ``seed``.

    Both lists keep the input order.

    Parameters
    ----------
    pairs : sequence
        Verse pairs.
    n_heldout : int
        Number of held-out pairs.
    seed : int
        Seed of the draw.

    Returns
    -------
    train : list
        The training pairs.
    heldout : list
        The held-out pairs.
    """
    pairs = list(pairs)
    n_heldout = check_int(n_heldout, "n_heldout", minimum=1, maximum=max(len(pairs) - 1, 1))
    if len(pairs) < 2:
        raise ValueError(f"`pairs` must hold at least 2 pairs to split; got {len(pairs)}")
    seed = check_int(seed, "seed", minimum=0)
    held = set(np.random.default_rng(seed).choice(len(pairs), size=n_heldout, replace=False).tolist())
    return [p for i, p in enumerate(pairs) if i not in held], [p for i, p in enumerate(pairs) if i in held]


def example_pair(pairs: Sequence[Any], *, words: int = 12) -> Any:
    """The pair whose source verse is closest to ``words`` words long (the first one on ties).

    Used to pick a readable example for a figure: long enough to show an alignment, short
    enough to read.

    Parameters
    ----------
    pairs : sequence
        Verse pairs ``(source, target)`` or ``(ref, source, target)``.
    words : int
        The wanted source length in words.

    Returns
    -------
    tuple
        The chosen pair.
    """
    words = check_int(words, "words", minimum=1)
    text = _pairs_text(pairs, "pairs")
    lengths = [len(s.split()) for s, _ in text]
    best = min(range(len(text)), key=lambda i: abs(lengths[i] - words))
    return list(pairs)[best]


def cross_attention_maps(run: TranslationRun, pair: Any, *, reg: float = 0.05) -> tuple[dict[str, np.ndarray], CrossAttention]:
    r"""Maps for one verse pair: each decoder block's cross-attention (heads averaged), and the exact OT plans.

    The plans are between the last block's word states and between the word embeddings.

    Parameters
    ----------
    run : TranslationRun
        The trained model.
    pair : tuple
        A verse pair ``(source, target)`` or ``(ref, source, target)``.
    reg : float
        Sinkhorn's :math:`\varepsilon` for :func:`otlens.alignment.word_plans`.

    Returns
    -------
    maps : dict of str to numpy.ndarray
        Ordered for :func:`otlens.plots.plot_alignment_maps` (rows target words, columns
        source words).
    cross_attention : CrossAttention
        The verse's word-level cross-attention and states.
    """
    ((s, t),) = _pairs_text([pair], "pair")
    reg = check_positive(reg, "reg")
    ca = cross_attention(run, s, t)
    n_layers = ca.attention.shape[0]
    maps: dict[str, Any] = {f"cross-attention, block {k}": ca.attention[k].mean(0) for k in range(n_layers)}
    maps[f"OT plan, states of block {n_layers - 1}"] = word_plans(ca.source, ca.target[-1], reg=reg)["ot-exact"]
    maps["OT plan, embeddings"] = word_plans(ca.source_embeddings, ca.target_embeddings, reg=reg)["ot-exact"]
    return maps, ca
