r"""Residual-stream states of a model over texts, cached on disk by content hash.

For a model with :math:`L` blocks, the residual stream of token :math:`t` is

.. math::

    h^{(0)}_t = \mathrm{embed}(x)_t, \qquad h^{(\ell)}_t = \mathrm{block}_\ell\big(h^{(\ell-1)}\big)_t,
    \quad \ell = 1, \dots, L,

where:

- :math:`h^{(0)}` is the input of block 0 (``hook_embed``): for BERT/MPNet the embeddings after
  their LayerNorm, for Gemma the token embeddings times :math:`\sqrt{d_\text{model}}`;
- :math:`h^{(\ell)}` is the output of block :math:`\ell-1` (``blocks.{l}.hook_resid_post``),
  captured with a forward hook on the block itself.

The hooks matter for decoders: Hugging Face's ``output_hidden_states`` puts the *final norm* of
the model on its last entry (``hidden_states[-1]`` of Gemma is ``norm(h^{(L)})``), so it is not
the residual stream of the last block. Here every entry, the last included, is the raw block
output, the same quantity as TransformerLens's ``blocks.{l}.hook_resid_post``.

Shapes follow the library's convention: ``states`` is ``[n_layers + 1, n_tokens, d_model]``,
tokens of all texts concatenated text by text, position by position; padding is never included
and special tokens (``[CLS]``, ``[SEP]``, ``<s>``, ``</s>``, ``<bos>``) only on request.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ._validation import check_int
from .cache import Cache, CorruptCacheWarning, make_key
from .models import LoadedModel, load_model, model_identity

__all__ = [
    "CACHE_VERSION",
    "Activations",
    "CorruptCacheWarning",
    "extract_activations",
    "layer_names",
    "cache_key",
    "cache_file",
    "computation_key",
]

#: Bump when what is stored (or how it is computed) changes; old entries are then ignored.
#: 2: entries live in :class:`otlens.cache.Cache` (sha256 beside each file); the key holds
#: ``batch_size``, the device and the torch/transformers versions.
CACHE_VERSION = 2
_TENSORS = ("states", "text_index", "token_ids")


def layer_names(n_layers: int) -> tuple[str, ...]:
    """TransformerLens names of the ``n_layers + 1`` residual-stream points.

    Parameters
    ----------
    n_layers : int
        Number of blocks.

    Returns
    -------
    tuple of str
        ``hook_embed``, then ``blocks.<i>.hook_resid_post`` per block.

    Examples
    --------
    >>> layer_names(2)
    ('hook_embed', 'blocks.0.hook_resid_post', 'blocks.1.hook_resid_post')
    """
    n_layers = check_int(n_layers, "n_layers", minimum=1)
    return ("hook_embed",) + tuple(f"blocks.{layer}.hook_resid_post" for layer in range(n_layers))


@dataclass(frozen=True)
class Activations:
    """Residual-stream states of one model over a list of texts.

    Attributes
    ----------
    states : torch.Tensor, [n_layers + 1, n_tokens, d_model], float32
        Index 0 is the embedding output (input of block 0); index ``l + 1`` the output of block ``l``.
    layer_names : tuple of str
        ``("hook_embed", "blocks.0.hook_resid_post", ..., f"blocks.{n_layers-1}.hook_resid_post")``.
    text_index : torch.Tensor, [n_tokens], int64
        Which text each token came from (non-decreasing).
    token_ids : torch.Tensor, [n_tokens], int64
        The tokenizer's id of each token.
    model : str
        :attr:`otlens.models.LoadedModel.name` of the model that produced them.
    n_texts : int
        Number of texts.
    """

    states: torch.Tensor  # [n_layers + 1, n_tokens, d_model]
    layer_names: tuple[str, ...]
    text_index: torch.Tensor  # [n_tokens]
    token_ids: torch.Tensor  # [n_tokens]
    model: str
    n_texts: int

    def __post_init__(self) -> None:
        s = self.states
        if s.ndim != 3 or s.shape[0] != len(self.layer_names):
            raise ValueError(
                f"`states` must be [n_layers + 1, n_tokens, d_model] with one slice per layer name "
                f"({len(self.layer_names)}); got shape {tuple(s.shape)}"
            )
        for name in ("text_index", "token_ids"):
            t = getattr(self, name)
            if t.shape != (s.shape[1],):
                raise ValueError(f"`{name}` must have shape ({s.shape[1]},) (one per token); got {tuple(t.shape)}")

    @property
    def n_layers(self) -> int:
        """Number of transformer blocks (``states`` has one more slice, the embedding)."""
        return self.states.shape[0] - 1

    @property
    def d_model(self) -> int:
        """Width of the residual stream."""
        return self.states.shape[2]

    @property
    def n_tokens(self) -> int:
        """Number of token positions over all texts."""
        return self.states.shape[1]

    def blocks(self) -> torch.Tensor:
        """Output of each block, embedding excluded: ``[n_layers, n_tokens, d_model]``.

        Returns
        -------
        torch.Tensor, [n_layers, n_tokens, d_model]
            ``states[1:]``.
        """
        return self.states[1:]

    def pooled(self) -> torch.Tensor:
        """Mean over each text's tokens: ``[n_layers + 1, n_texts, d_model]``.

        Returns
        -------
        torch.Tensor, [n_layers + 1, n_texts, d_model]
            One vector per state (embedding first) and text.
        """
        n_layers1, _, d_model = self.states.shape
        sums = self.states.new_zeros(n_layers1, self.n_texts, d_model)
        sums.index_add_(1, self.text_index, self.states)  # [n_layers + 1, n_texts, d_model]
        counts = torch.bincount(self.text_index, minlength=self.n_texts).clamp_min(1)
        return sums / counts.to(sums.dtype)[None, :, None]

    def text_states(self, i: int) -> torch.Tensor:
        """States of text ``i``'s tokens: ``[n_layers + 1, n_tokens_i, d_model]``.

        Parameters
        ----------
        i : int
            Index of the text.

        Returns
        -------
        torch.Tensor, [n_layers + 1, n_tokens_i, d_model]
            Every state of that text's tokens.
        """
        i = check_int(i, "i", minimum=-self.n_texts, maximum=self.n_texts - 1) % self.n_texts
        return self.states[:, self.text_index == i]


# --------------------------------------------------------------------------------------------
# Validation and cache keys


def check_texts(texts: Any) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ValueError(f"`texts` must be a list of strings; got {type(texts).__name__}")
    if len(texts) == 0:
        raise ValueError("`texts` must contain at least one text; got an empty sequence")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"`texts` must hold only strings; item {i} is {type(text).__name__}: {text!r:.60}")
        if not text.strip():
            raise ValueError(f"`texts` item {i} is empty or whitespace only")
    return list(texts)


def _check_model(model: Any, trained: bool | None, seed: int | None) -> None:
    if isinstance(model, LoadedModel):
        if trained is not None or seed is not None:
            raise ValueError("`trained` and `seed` apply only when `model` is a spec string, not a LoadedModel")
    elif not isinstance(model, str):
        raise ValueError(f"`model` must be a LoadedModel or a model spec string; got {type(model).__name__}")


def _identity(model: LoadedModel | str, trained: bool | None, seed: int | None) -> str:
    if isinstance(model, LoadedModel):
        return model.identity
    return model_identity(model, trained=True if trained is None else trained, seed=0 if seed is None else seed)


def _device_of(model: LoadedModel | str, device: Any) -> torch.device:
    """Where :func:`extract_activations` runs: ``device``, else where a LoadedModel is, else the CPU."""
    if device is not None:
        return torch.device(device)
    if isinstance(model, LoadedModel):
        return next(model.model.parameters()).device
    return torch.device("cpu")


def _device_key(device: torch.device) -> str:
    """The device as far as it changes the numbers: its kind, and the accelerator's name."""
    if device.type == "cuda" and torch.cuda.is_available():
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return device.type


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def computation_key(model: LoadedModel | str, *, max_length: int, batch_size: int, special_tokens: bool,
                    device: Any, trained: bool | None, seed: int | None) -> dict[str, Any]:
    """Everything besides the texts that changes the numbers :func:`extract_activations` returns.

    Used by this module's and :func:`otlens.hot.pooled_states`' cache keys.

    Parameters
    ----------
    model : LoadedModel or str
        A loaded model or a model spec.
    max_length : int
        Token limit per text.
    batch_size : int
        Texts per forward pass (texts are padded to the longest of their batch: about 4e-6).
    special_tokens : bool
        Whether special tokens are kept.
    device : str, torch.device or None
        The device (its kind, and the GPU's name, enter the key).
    trained, seed : bool, int, optional
        For a spec: which twin.

    Returns
    -------
    dict
        The model's :attr:`~otlens.models.LoadedModel.identity` (spec, trained, seed, dtype,
        files), ``max_length``, ``batch_size``, ``special_tokens``, the device, and the torch and
        transformers versions.
    """
    _check_model(model, trained, seed)
    return {
        "model": _identity(model, trained, seed),
        "max_length": check_int(max_length, "max_length", minimum=2),
        "batch_size": check_int(batch_size, "batch_size", minimum=1),
        "special_tokens": bool(special_tokens),
        "device": _device_key(_device_of(model, device)),
        "torch": torch.__version__,
        "transformers": _version("transformers"),
    }


def cache_key(
    model: LoadedModel | str,
    texts: Sequence[str],
    *,
    max_length: int = 128,
    batch_size: int = 16,
    special_tokens: bool = False,
    device: str | torch.device | None = None,
    trained: bool | None = None,
    seed: int | None = None,
) -> str:
    """The sha256 that names the cache entry of :func:`extract_activations` with these arguments.

    It hashes the exact texts, :data:`CACHE_VERSION` and :func:`computation_key`.

    Parameters
    ----------
    model : LoadedModel or str
        A loaded model or a model spec (see :func:`otlens.models.load_model`).
    texts : sequence of str
        The texts.
    max_length, batch_size, special_tokens, device :
        As for :func:`extract_activations`.
    trained, seed : bool, int, optional
        For a spec: which twin (see :func:`otlens.models.model_identity`).

    Returns
    -------
    str
        The hex digest.
    """
    texts = check_texts(texts)
    fields = computation_key(model, max_length=max_length, batch_size=batch_size, special_tokens=special_tokens,
                             device=device, trained=trained, seed=seed)
    return make_key({"cache": "activations", "cache_version": CACHE_VERSION, "texts": texts, **fields})


def cache_file(model: LoadedModel | str, texts: Sequence[str], **kw: Any) -> Path:
    """Path of the cache entry for these arguments (same keywords as :func:`cache_key`).

    Parameters
    ----------
    model : LoadedModel or str
        A loaded model or a model spec.
    texts : sequence of str
        The texts.
    **kw
        The keywords of :func:`cache_key`.

    Returns
    -------
    pathlib.Path
        The entry's payload file (it may not exist yet).
    """
    return _cache().path(cache_key(model, texts, **kw))


def _cache() -> Cache:
    return Cache("activations", suffix=".safetensors")


# --------------------------------------------------------------------------------------------
# Cache read/write


def _save(path: Path, key: str, acts: Activations) -> None:
    from safetensors.torch import save_file

    tensors = {name: getattr(acts, name).contiguous() for name in _TENSORS}
    meta = {
        "key": key,
        "cache_version": str(CACHE_VERSION),
        "layer_names": json.dumps(list(acts.layer_names)),
        "model": acts.model,
        "n_texts": str(acts.n_texts),
    }
    save_file(tensors, str(path), metadata=meta)


def _load(path: Path, key: str) -> Activations:
    """Read an entry (its bytes already verified by the cache); any problem raises (the cache recomputes)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {name: f.get_tensor(name) for name in _TENSORS}
    if meta.get("key") != key or meta.get("cache_version") != str(CACHE_VERSION):
        raise ValueError("key or cache version in the metadata does not match")
    return Activations(
        states=tensors["states"],
        layer_names=tuple(json.loads(meta["layer_names"])),
        text_index=tensors["text_index"],
        token_ids=tensors["token_ids"],
        model=meta["model"],
        n_texts=int(meta["n_texts"]),
    )


# --------------------------------------------------------------------------------------------
# Computation


def _find_blocks(module: torch.nn.Module, n_layers: int) -> torch.nn.ModuleList:
    """The model's list of transformer blocks: its first ``ModuleList`` of length ``n_layers``."""
    for _, child in module.named_modules():
        if isinstance(child, torch.nn.ModuleList) and len(child) == n_layers:
            return child
    raise ValueError(f"cannot find the {n_layers} transformer blocks of {type(module).__name__}")


def _first_tensor(x: Any) -> torch.Tensor:
    return x[0] if isinstance(x, (tuple, list)) else x


class _ResidualRecorder:
    """Forward hooks that record the input of block 0 and the output of every block."""

    def __init__(self, blocks: torch.nn.ModuleList) -> None:
        self.states: list[torch.Tensor] = []  # n_layers + 1 tensors [batch, seq, d_model]
        self._handles = [blocks[0].register_forward_pre_hook(self._pre, with_kwargs=True)]
        self._handles += [b.register_forward_hook(self._post) for b in blocks]

    def _pre(self, module: Any, args: tuple, kwargs: dict) -> None:
        self.states.append(args[0] if args else kwargs["hidden_states"])

    def _post(self, module: Any, args: Any, output: Any) -> None:
        self.states.append(_first_tensor(output))

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def _tokenize(lm: LoadedModel, texts: list[str], max_length: int, special_tokens: bool) -> tuple[list, list]:
    """Token ids per text, and per text the boolean mask of the tokens to keep."""
    enc = lm.tokenizer(texts, truncation=True, max_length=max_length, return_special_tokens_mask=True)
    ids = [list(x) for x in enc["input_ids"]]
    keep = [[special_tokens or not s for s in mask] for mask in enc["special_tokens_mask"]]
    for i, k in enumerate(keep):
        if not any(k):
            raise ValueError(f"`texts` item {i} has no tokens left once special tokens are removed: {texts[i]!r:.60}")
    return ids, keep


def _forward_batch(lm: LoadedModel, base: torch.nn.Module, rec: _ResidualRecorder, ids: list, device: Any) -> torch.Tensor:
    """Run one right-padded batch; return the recorded states ``[n_layers + 1, batch, seq, d_model]``."""
    seq = max(len(x) for x in ids)
    pad_id = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(ids), seq), pad_id, dtype=torch.long)  # [batch, seq]
    attention_mask = torch.zeros((len(ids), seq), dtype=torch.long)  # [batch, seq]
    for j, x in enumerate(ids):
        input_ids[j, : len(x)] = torch.tensor(x)
        attention_mask[j, : len(x)] = 1
    kwargs = {"use_cache": False} if lm.kind == "decoder" else {}
    rec.states.clear()
    base(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), **kwargs)
    if len(rec.states) != lm.n_layers + 1:
        raise RuntimeError(f"recorded {len(rec.states)} residual states, expected {lm.n_layers + 1}")
    return torch.stack(rec.states)  # [n_layers + 1, batch, seq, d_model]


def _compute(lm: LoadedModel, texts: list[str], *, max_length: int, batch_size: int, special_tokens: bool,
             device: Any, progress: bool) -> Activations:
    ids, keep = _tokenize(lm, texts, max_length, special_tokens)
    base = getattr(lm.model, "base_model", lm.model)  # skip an LM head if there is one
    if device is not None:
        lm.model.to(device)
    device = next(lm.model.parameters()).device
    order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))  # longest first: less padding
    per_text: list[torch.Tensor | None] = [None] * len(texts)
    rec = _ResidualRecorder(_find_blocks(base, lm.n_layers))
    try:
        batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
        with torch.inference_mode():
            for batch in tqdm(batches, desc=f"activations {lm.name}", unit="batch", disable=not progress):
                stack = _forward_batch(lm, base, rec, [ids[i] for i in batch], device)
                for j, i in enumerate(batch):
                    mask = torch.tensor(keep[i], device=stack.device)
                    per_text[i] = stack[:, j, : len(ids[i])][:, mask].float().cpu()  # [n_layers+1, n_i, d]
    finally:
        rec.remove()
        rec.states.clear()
    kept_ids = [torch.tensor(ids[i], dtype=torch.long)[torch.tensor(keep[i])] for i in range(len(texts))]
    counts = torch.tensor([len(k) for k in kept_ids])
    return Activations(
        states=torch.cat(per_text, dim=1).clone(),  # [n_layers + 1, n_tokens, d_model]
        layer_names=layer_names(lm.n_layers),
        text_index=torch.repeat_interleave(torch.arange(len(texts)), counts),
        token_ids=torch.cat(kept_ids),
        model=lm.name,
        n_texts=len(texts),
    )


def extract_activations(
    model: LoadedModel | str,
    texts: Sequence[str],
    *,
    max_length: int = 128,
    batch_size: int = 16,
    special_tokens: bool = False,
    cache: bool = True,
    device: str | torch.device | None = None,
    progress: bool = True,
    trained: bool | None = None,
    seed: int | None = None,
) -> Activations:
    """Residual-stream states of ``model`` at every layer, for every token of ``texts``.

    Parameters
    ----------
    model : LoadedModel or str
        A loaded model, or a spec for :func:`otlens.models.load_model` (then loaded only on a
        cache miss).
    texts : sequence of str, length n_texts
        Non-empty strings.
    max_length : int, default 128
        Truncation length in tokens, special tokens included; at least 2.
    batch_size : int, default 16
        Texts per forward pass (texts are batched by length; output order is input order).
    special_tokens : bool, default False
        Keep ``[CLS]``/``[SEP]``/``<s>``/``</s>``/``<bos>`` tokens. Padding is always dropped.
    cache : bool, default True
        Read/write the :class:`otlens.cache.Cache` entry ``cache_dir("activations")/<cache_key>.safetensors``
        (its sha256 beside it). A corrupted entry (flipped byte, truncated) is detected, deleted
        and recomputed with a :class:`CorruptCacheWarning` naming it. The key holds everything
        that changes the numbers (:func:`cache_key`); entries written before cache version 2
        are never read (their keys differ): they are a miss and recomputed.
    device : str or torch.device, optional
        Where to run; a LoadedModel is moved there (``model.to`` is in place). Default: where
        the model already is (``"cpu"`` for specs).
    progress : bool, default True
        Show a tqdm bar over batches.
    trained, seed : optional
        Only with a spec string: passed to :func:`~otlens.models.load_model` (default trained).

    Returns
    -------
    Activations
        ``states`` ``[n_layers + 1, n_tokens, d_model]`` float32 on the CPU.

    Raises
    ------
    ValueError
        Empty ``texts``, non-string or empty items, ``max_length < 2``, ``batch_size < 1``.

    Warns
    -----
    CorruptCacheWarning
        When a cache entry had to be recomputed.

    Examples
    --------
    >>> acts = extract_activations("minilm-l6", ["The cat sat.", "A dog ran home."])  # doctest: +SKIP
    >>> acts.states.shape  # doctest: +SKIP
    torch.Size([7, 8, 384])
    """
    texts = check_texts(texts)
    max_length = check_int(max_length, "max_length", minimum=2)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    _check_model(model, trained, seed)
    if not isinstance(special_tokens, bool):
        raise ValueError(f"`special_tokens` must be a bool; got {special_tokens!r}")

    def compute() -> Activations:
        lm = model
        if isinstance(lm, str):
            lm = load_model(lm, trained=True if trained is None else trained,
                            seed=0 if seed is None else seed, device=str(device or "cpu"))
        return _compute(lm, texts, max_length=max_length, batch_size=batch_size,
                        special_tokens=special_tokens, device=device, progress=progress)

    if not cache:
        return compute()
    key = cache_key(model, texts, max_length=max_length, batch_size=batch_size, special_tokens=special_tokens,
                    device=device, trained=trained, seed=seed)
    return _cache().fetch(key, compute, lambda acts, tmp: _save(tmp, key, acts), lambda path: _load(path, key),
                          stacklevel=2)
