r"""Entropy of layer representations: norm entropy and matrix-based Rényi entropy.

Two definitions, both computed per layer on stacks ``[n_layers, n_tokens, d_model]``.

**Norm entropy** (the "representation entropy" of the 2025 OT study of transformer layers
:cite:`geomot:25`):
the Shannon entropy of the distribution that the token norms induce,

.. math::

    p_i = \frac{\lVert h_i \rVert}{\sum_{j=1}^{N} \lVert h_j \rVert}, \qquad
    H(h_1, \dots, h_N) = -\sum_{i=1}^{N} p_i \log p_i \in [0, \log N],

where :math:`h_i \in \mathbb R^{D}` are the :math:`N` token states of one layer. It is
:math:`\log N` when all norms are equal and tends to 0 when one token dominates.

**Matrix-based Rényi entropy** :cite:`giraldo:14`, as used for "prompt entropy" and "dataset
entropy" by :cite:`skean:25`: for a matrix :math:`Z \in \mathbb R^{N \times D}`,

.. math::

    \tilde z_i = \frac{z_i - \bar z}{\lVert z_i - \bar z \rVert}, \qquad
    A = \frac{\tilde Z \tilde Z^\top}{\operatorname{tr}(\tilde Z \tilde Z^\top)}, \qquad
    S_\alpha(Z) = \frac{1}{1-\alpha} \log \sum_{k} \lambda_k(A)^\alpha
    \Big/ \log \min(N, D),

where:

- :math:`\bar z = \frac1N \sum_i z_i` is the mean row (centring is optional, ``center=True``),
- :math:`\lambda_k(A) \ge 0` are the eigenvalues of :math:`A` (they sum to 1),
- :math:`\alpha > 0` is the order; :math:`\alpha \to 1` gives the von Neumann / Shannon form
  :math:`S_1 = -\sum_k \lambda_k \log \lambda_k`,
- dividing by :math:`\log \min(N, D)` (the largest possible rank's entropy, Skean et al.'s
  "maxEntropy" normalisation) puts the value in :math:`[0, 1]`.

The nonzero eigenvalues of the Gram matrix :math:`\tilde Z \tilde Z^\top` (``N x N``) and of
:math:`\tilde Z^\top \tilde Z` (``D x D``) coincide, so the smaller one is diagonalised.

Conventions (edge cases), fixed here and tested:

- Rows equal to the mean (after centring, a norm below ``max(64, N)`` float64 machine epsilons
  times the largest row norm, i.e. round-off of the mean) are zero vectors: they are kept as
  zeros instead of being divided by zero, and contribute nothing to :math:`A`. No NaN is ever
  produced.
- All rows identical (so :math:`\tilde Z = 0`), a single row, or ``min(N, D) == 1`` give
  entropy **0**: the cloud has no spread to measure (the same value as rank-1 data).
- With centring, the rank of :math:`\tilde Z` is at most :math:`\min(N - 1, D)`; for
  :math:`N \le D` the largest attainable value is therefore
  :math:`\log(N-1) / \log N` (a regular simplex), and the value 1 is reached only for
  :math:`N > D` with an isotropic cloud (e.g. the rows :math:`\pm e_1, \dots, \pm e_D`).
  With ``center=False`` orthonormal rows give exactly 1.
- :math:`S_\alpha` is invariant to scaling :math:`Z` by a constant and to translating it
  (with centring); with ``center=False`` it is invariant to scaling each row separately.
- Eigenvalues at round-off level (below ``size * eps * max eigenvalue``, the rank tolerance
  of ``numpy.linalg.matrix_rank``), including tiny negative ones, are set to 0; otherwise
  :math:`\lambda^\alpha` of a numerically-zero eigenvalue would bias :math:`S_\alpha` for
  :math:`\alpha < 1`.
- The spectrum is computed in float64 whatever the input dtype; the result is returned in the
  input's floating dtype and device, so float32 and float64 inputs agree to float32 precision.

These functions compute no gradients (they run under ``torch.no_grad``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ._validation import as_stack, check_positive

__all__ = ["norm_entropy", "renyi_entropy", "prompt_entropy", "dataset_entropy"]

_ZERO_RTOL = 64  # centred rows with norm <= max(_ZERO_RTOL, N) * eps(float64) * max row norm count as zero
_MAX_ELEMENTS = 2**23  # float64 elements per batched chunk in prompt_entropy (64 MiB)


def _as_layers(x: Any, name: str) -> tuple[torch.Tensor, bool]:
    """Validate ``[n_tokens, d]`` or ``[n_layers, n_tokens, d]``; return the 3-D stack and whether input was 2-D."""
    ndim = x.ndim if hasattr(x, "ndim") else np.ndim(x)
    if ndim not in (2, 3):
        shape = tuple(getattr(x, "shape", np.shape(x)))
        raise ValueError(f"`{name}` must be [n_tokens, d_model] or [n_layers, n_tokens, d_model]; got shape {shape}")
    return as_stack(x, name), ndim == 2


def _finish(h64: torch.Tensor, like: torch.Tensor, single: bool) -> torch.Tensor:
    out = h64.to(dtype=like.dtype)
    return out[0] if single else out


def _spectrum_entropy(lam: torch.Tensor, alpha: float) -> torch.Tensor:
    """Rényi entropy of order ``alpha`` of the probability vectors on the last axis (>= 0, no -0.0)."""
    if alpha == 1.0:
        h = -torch.special.xlogy(lam, lam).sum(-1)
    else:
        h = torch.log((lam**alpha).sum(-1)) / (1.0 - alpha)
    return torch.where(h > 0, h, torch.zeros_like(h))  # round-off can leave -1e-16 (or -0.0)


def _renyi_batched(z: torch.Tensor, alpha: float, center: bool) -> torch.Tensor:
    """Normalised matrix-based Rényi entropy of each ``[N, D]`` matrix of a ``[B, N, D]`` float64 stack."""
    n, d = z.shape[-2:]
    if min(n, d) < 2:  # log(min(N, D)) = 0: nothing to normalise by; the entropy is 0 anyway
        return z.new_zeros(z.shape[0])
    # The input was cast to float64 exactly, so the only error in a centred row is the float64
    # round-off of the mean (<~ N eps |z|): rows below that level are copies of the mean.
    rtol = max(_ZERO_RTOL, n) * torch.finfo(torch.float64).eps
    scale = z.norm(dim=-1).amax(dim=-1)  # [B]
    if center:
        z = z - z.mean(dim=-2, keepdim=True)  # [B, N, D]
    norms = z.norm(dim=-1, keepdim=True)  # [B, N, 1]
    nonzero = norms > rtol * scale[:, None, None]
    z = torch.where(nonzero, z / norms.clamp_min(torch.finfo(z.dtype).tiny), 0.0)  # unit or zero rows
    gram = z @ z.mT if n <= d else z.mT @ z  # [B, N, N] or [B, D, D]: same nonzero spectrum
    lam = torch.linalg.eigvalsh(gram)  # [B, min(N, D)], ascending
    cutoff = lam[:, -1:] * lam.shape[-1] * torch.finfo(lam.dtype).eps  # round-off level, as in matrix_rank
    lam = torch.where(lam > cutoff, lam, 0.0)  # also clamps tiny negative eigenvalues
    total = lam.sum(-1, keepdim=True)  # [B, 1] = tr(gram) up to round-off
    lam = lam / total.clamp_min(torch.finfo(z.dtype).tiny)
    h = _spectrum_entropy(lam, alpha)
    h = torch.where(total[:, 0] > 0, h, 0.0)  # all rows zero: no spread, entropy 0
    return h / math.log(min(n, d))


@torch.no_grad()
def norm_entropy(states: Any, *, normalize: bool = False) -> torch.Tensor:
    r"""Shannon entropy of the token-norm distribution, per layer.

    .. math::

        H = -\sum_{i=1}^{N} p_i \log p_i, \qquad
        p_i = \frac{\lVert h_i \rVert}{\sum_j \lVert h_j \rVert},

    where :math:`h_i` are the rows (token states) of one layer. This is the "representation
    entropy" of the 2025 OT study of transformer layers :cite:`geomot:25`.

    Parameters
    ----------
    states : array-like, [n_tokens, d_model] or [n_layers, n_tokens, d_model]
        Token states, one point per row; a stack gives one value per layer.
    normalize : bool, default False
        Divide by :math:`\log N` so that values lie in :math:`[0, 1]` (for :math:`N = 1`,
        where :math:`H = 0`, the normalised value is defined as 0).

    Returns
    -------
    torch.Tensor
        A 0-d tensor for 2-D input, else ``[n_layers]``; in nats (or unitless when
        normalised), in the input's floating dtype (float32 for integer input) and device.

    Raises
    ------
    ValueError
        If ``states`` is not 2-D/3-D, is empty, holds NaN/inf, or a layer has only zero
        vectors (the distribution :math:`p` is then undefined).

    Examples
    --------
    >>> round(float(norm_entropy(torch.eye(2))), 4)  # equal norms: log 2
    0.6931
    >>> norm_entropy(torch.eye(2), normalize=True)
    tensor(1.)
    """
    t, single = _as_layers(states, "states")
    norms = t.to(torch.float64).norm(dim=-1)  # [n_layers, n_tokens]
    total = norms.sum(-1)  # [n_layers]
    if bool((total == 0).any()):
        layer = int(torch.nonzero(total == 0)[0, 0])
        raise ValueError(
            f"`states` has only zero vectors in layer {layer} (shape {tuple(t.shape)}); "
            "the norm distribution is undefined"
        )
    p = norms / total[:, None]
    h = _spectrum_entropy(p, 1.0)  # [n_layers]
    if normalize:
        n = t.shape[1]
        h = h / math.log(n) if n > 1 else torch.zeros_like(h)
    return _finish(h, t, single)


@torch.no_grad()
def renyi_entropy(z: Any, *, alpha: float = 1.0, center: bool = True) -> torch.Tensor:
    r"""Normalised matrix-based Rényi entropy of a point cloud, per layer.

    .. math::

        S_\alpha(Z) = \frac{1}{(1-\alpha) \log \min(N, D)} \log \sum_k \lambda_k(A)^\alpha,
        \qquad A = \frac{\tilde Z \tilde Z^\top}{\operatorname{tr}(\tilde Z \tilde Z^\top)},

    where :math:`\tilde Z` is :math:`Z` with rows centred (``center=True``) and scaled to unit
    length, and :math:`\alpha = 1` means :math:`-\sum_k \lambda_k \log \lambda_k`
    :cite:`giraldo:14`, :cite:`skean:25`. See the module docstring for the edge cases.

    Parameters
    ----------
    z : array-like, [N, D] or [n_layers, N, D]
        Points as rows; a stack gives one value per layer.
    alpha : float, default 1.0
        Order of the entropy, > 0. ``alpha=2`` is :math:`-\log \lVert A \rVert_F^2`.
    center : bool, default True
        Subtract the mean row before normalising rows (as Skean et al. do).

    Returns
    -------
    torch.Tensor
        A 0-d tensor for 2-D input, else ``[n_layers]``, in :math:`[0, 1]`; in the
        input's floating dtype and device.

    Raises
    ------
    ValueError
        If ``z`` is not 2-D/3-D, is empty or holds NaN/inf, or ``alpha`` is not > 0.

    Examples
    --------
    >>> z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    >>> renyi_entropy(z)  # isotropic cloud with N > D: maximal entropy
    tensor(1.)
    >>> renyi_entropy(torch.tensor([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]]))  # rank 1
    tensor(0.)
    """
    alpha = check_positive(alpha, "alpha")
    t, single = _as_layers(z, "z")
    h = _renyi_batched(t.to(torch.float64), alpha, bool(center))
    return _finish(h, t, single)


def _text_groups(text_index: Any, n_tokens: int) -> list[torch.Tensor]:
    """Token positions of each text (in order of first label), for texts with >= 2 tokens."""
    idx = text_index if isinstance(text_index, torch.Tensor) else torch.as_tensor(np.asarray(text_index))
    if idx.ndim != 1 or idx.shape[0] != n_tokens:
        raise ValueError(
            f"`text_index` must be 1-D with one entry per token (length {n_tokens}); got shape {tuple(idx.shape)}"
        )
    if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
        raise ValueError(f"`text_index` must hold integer text labels; got dtype {idx.dtype}")
    idx = idx.cpu().long()
    labels, counts = torch.unique(idx, return_counts=True)
    order = torch.argsort(idx, stable=True)  # tokens grouped by label, in label order
    groups = torch.split(order, counts.tolist())
    kept = [g for g in groups if g.numel() >= 2]
    if not kept:
        raise ValueError(
            f"`text_index` has no text with >= 2 tokens ({labels.numel()} text(s), {n_tokens} token(s)); "
            "prompt entropy needs at least one"
        )
    return kept


@torch.no_grad()
def prompt_entropy(states: Any, text_index: Any, *, alpha: float = 1.0, center: bool = True) -> torch.Tensor:
    r"""Prompt entropy: the Rényi entropy of each text's tokens, averaged over texts, per layer.

    .. math::

        \mathrm{PE}_\alpha = \frac{1}{|T|} \sum_{t \in T} S_\alpha(Z_t),

    where :math:`Z_t` holds the token states of text :math:`t` (one row per token), each
    normalised by :math:`\log \min(N_t, D)` (see :func:`renyi_entropy`), and :math:`T` is the
    set of texts with at least two tokens (a single token has no spread; such texts are
    skipped) :cite:`skean:25`.

    Parameters
    ----------
    states : array-like, [n_tokens, d_model] or [n_layers, n_tokens, d_model]
        Token states of all texts, concatenated along the token axis.
    text_index : array-like of int, [n_tokens]
        Which text each token belongs to (any integer labels, tokens of a text need not be
        contiguous), e.g. ``np.repeat(np.arange(n_texts), lengths)``.
    alpha : float, default 1.0
        Order of the entropy, > 0.
    center : bool, default True
        Centre each text's tokens on their mean before normalising rows.

    Returns
    -------
    torch.Tensor
        A 0-d tensor for 2-D ``states``, else ``[n_layers]``, in :math:`[0, 1]`.

    Raises
    ------
    ValueError
        If ``states`` is invalid (see :func:`renyi_entropy`), ``text_index`` is not an integer
        vector of length ``n_tokens``, no text has two tokens, or ``alpha`` is not > 0.
    """
    alpha = check_positive(alpha, "alpha")
    t, single = _as_layers(states, "states")
    n_layers, n_tokens, d = t.shape
    groups = _text_groups(text_index, n_tokens)
    total = torch.zeros(n_layers, dtype=torch.float64, device=t.device)
    by_length: dict[int, list[torch.Tensor]] = {}
    for g in groups:
        by_length.setdefault(g.numel(), []).append(g)
    for length, same in by_length.items():  # texts of equal length are stacked into one batch
        per_chunk = max(1, _MAX_ELEMENTS // (n_layers * length * d))
        for start in range(0, len(same), per_chunk):
            pos = torch.stack(same[start : start + per_chunk]).to(t.device)  # [G, length]
            z = t[:, pos].to(torch.float64)  # [n_layers, G, length, d]
            h = _renyi_batched(z.reshape(-1, length, d), alpha, bool(center))  # [n_layers * G]
            total += h.reshape(n_layers, -1).sum(-1)
    return _finish(total / len(groups), t, single)


@torch.no_grad()
def dataset_entropy(pooled: Any, *, alpha: float = 1.0, center: bool = True) -> torch.Tensor:
    r"""Dataset entropy: the Rényi entropy of the per-text (mean-pooled) vectors, per layer.

    .. math::

        \mathrm{DE}_\alpha = S_\alpha\big([\bar h_1; \dots; \bar h_T]\big), \qquad
        \bar h_t = \frac{1}{N_t} \sum_{i \in t} h_i,

    i.e. :func:`renyi_entropy` of the ``T x D`` matrix of pooled text representations,
    normalised by :math:`\log \min(T, D)` :cite:`skean:25`. High values mean the texts are
    spread over many directions; low values mean they collapse onto few.

    Parameters
    ----------
    pooled : array-like, [n_texts, d_model] or [n_layers, n_texts, d_model]
        One (mean-pooled) vector per text; a stack gives one value per layer.
    alpha : float, default 1.0
        Order of the entropy, > 0.
    center : bool, default True
        Centre the text vectors on their mean before normalising rows.

    Returns
    -------
    torch.Tensor
        A 0-d tensor for 2-D input, else ``[n_layers]``, in :math:`[0, 1]`.

    Raises
    ------
    ValueError
        As :func:`renyi_entropy` (the message names ``pooled``).
    """
    alpha = check_positive(alpha, "alpha")
    t, single = _as_layers(pooled, "pooled")
    h = _renyi_batched(t.to(torch.float64), alpha, bool(center))
    return _finish(h, t, single)
