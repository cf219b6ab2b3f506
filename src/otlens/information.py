r"""Mutual information between token representations, inputs and next tokens.

The information-bottleneck view of a layer :cite:`tishby:15` places its representation
:math:`Z` on the *information plane* :math:`(I(X; Z), I(Y; Z))`, with :math:`X` the input and
:math:`Y` the target. For a language model we take, for every token position :math:`t`,

- :math:`Z` the layer's residual-stream state at :math:`t`,
- :math:`X` the input context: the last :math:`k` tokens :math:`(x_{t-k+1}, \dots, x_t)`,
- :math:`Y` the next token :math:`x_{t+1}`.

Estimators
----------
**Plug-in with Miller–Madow correction** (:func:`discrete_mi`), for two discrete variables
observed :math:`n` times:

.. math::

    \hat I(A; B) = \hat H(A) + \hat H(B) - \hat H(A, B), \qquad
    \hat H_\text{MM}(A) = -\sum_a \hat p_a \log \hat p_a + \frac{m_A - 1}{2n},

where :math:`m_A` is the number of distinct observed values. The plug-in entropy is biased
low by about :math:`(m-1)/2n` :cite:`paninski:03`; the correction removes that first-order
term, so :math:`\hat I` is nearly unbiased while :math:`n \gg m_A m_B`.

**Discretised representations** (:func:`binned_mi`): :math:`Z` is continuous and (in a
deterministic network) a function of the input, so :math:`I(X; Z)` is infinite or equal to
:math:`H(X)` unless :math:`Z` is observed at a finite resolution — the reason the
information-plane literature bins :math:`Z` :cite:`tishby:15`. Here :math:`Z` is quantised
by k-means into :math:`K` cells, :math:`C = q(Z)`, and :math:`I(X; C)`, :math:`I(Y; C)` are
estimated with :func:`discrete_mi`. By the data-processing inequality
:math:`I(\cdot; C) \le I(\cdot; Z)`, and :math:`I(\cdot; C) \le H(C) \le \log K`: the
estimate is the information that survives at resolution :math:`K`, comparable across layers
and checkpoints only at the same :math:`K` and :math:`n`. K-means (rather than a fixed grid)
adapts the cells to where the tokens are, which matters in 128+ dimensions where a grid has
almost every point in its own cell.

**Classifier probe** (:func:`probe_mi`), for a discrete :math:`Y` and continuous :math:`Z`
(the variational bound of Barber and Agakov): for any classifier :math:`q(y \mid z)`,

.. math::

    I(Y; Z) = H(Y) - H(Y \mid Z) \ge H(Y) - \mathbb E\big[-\log q(Y \mid Z)\big],

with equality when :math:`q` is the true posterior. A multinomial logistic regression is fit
on one part of the samples and both terms are measured on the rest (the entropy as the
cross-entropy of the training split's smoothed class frequencies), so over-fitting lowers
the estimate instead of inflating it. It is a lower bound (up to sampling error) that needs
no discretisation of :math:`Z`.

The tests check each estimator against closed-form values: binary and ``m``-ary symmetric
channels, independent variables, correlated Gaussians (:math:`-\tfrac12\log(1-\rho^2)`) and a
two-component Gaussian mixture (numerical quadrature).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch

from ._validation import as_points, check_int, check_positive

__all__ = [
    "entropy_discrete",
    "discrete_mi",
    "kmeans",
    "binned_mi",
    "probe_mi",
    "context_codes",
    "information_plane",
]

_CORRECTIONS = ("miller-madow", "none")


def _codes(x: Any, name: str) -> np.ndarray:
    """Return a discrete variable as integer codes ``[n]`` (rows of a 2-D array are joint symbols)."""
    a = np.asarray(x)
    if a.ndim not in (1, 2) or a.shape[0] == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-D array of labels or 2-D [n, k] of joint labels; got shape {a.shape}")
    if a.dtype.kind not in "iub":
        raise ValueError(f"`{name}` must hold integer labels; got dtype {a.dtype}")
    if a.ndim == 2:
        return np.unique(a, axis=0, return_inverse=True)[1].reshape(-1)
    return np.unique(a, return_inverse=True)[1].reshape(-1)


def _entropy_of_codes(c: np.ndarray, correction: str) -> float:
    counts = np.bincount(c)
    counts = counts[counts > 0]
    n = counts.sum()
    p = counts / n
    h = float(-(p * np.log(p)).sum())
    if correction == "miller-madow":
        h += (counts.size - 1) / (2.0 * n)
    return h


def entropy_discrete(x: Any, *, correction: str = "miller-madow") -> float:
    r"""Entropy (nats) of a discrete variable from samples: plug-in plus Miller–Madow term.

    Parameters
    ----------
    x : array-like of int, [n] or [n, k]
        Samples; rows of a 2-D array are joint symbols.
    correction : {"miller-madow", "none"}
        Add :math:`(m-1)/2n` (``m`` distinct values) to the plug-in estimate, or not.

    Returns
    -------
    float
        The entropy in nats.
    """
    if correction not in _CORRECTIONS:
        raise ValueError(f"`correction` must be one of {list(_CORRECTIONS)}; got {correction!r}")
    return _entropy_of_codes(_codes(x, "x"), correction)


def discrete_mi(a: Any, b: Any, *, correction: str = "miller-madow") -> float:
    r"""Mutual information (nats) of two discrete variables observed together.

    :math:`\hat I = \hat H(A) + \hat H(B) - \hat H(A, B)` with each entropy estimated by
    :func:`entropy_discrete` (see the module docstring). Clipped at 0 (the correction can push
    an independent pair slightly below).

    Parameters
    ----------
    a, b : array-like of int, [n] or [n, k]
        Paired samples (rows of 2-D arrays are joint symbols, e.g. a context of ``k`` tokens).
    correction : {"miller-madow", "none"}
        Bias correction of each entropy (see :func:`entropy_discrete`).

    Returns
    -------
    float
        :math:`I(A; B)` in nats.

    Raises
    ------
    ValueError
        Non-integer labels, empty input or different numbers of samples.
    """
    if correction not in _CORRECTIONS:
        raise ValueError(f"`correction` must be one of {list(_CORRECTIONS)}; got {correction!r}")
    ca, cb = _codes(a, "a"), _codes(b, "b")
    if ca.size != cb.size:
        raise ValueError(f"`a` and `b` must have the same number of samples; got {ca.size} and {cb.size}")
    joint = ca.astype(np.int64) * (int(cb.max()) + 1) + cb
    mi = _entropy_of_codes(ca, correction) + _entropy_of_codes(cb, correction) - _entropy_of_codes(
        np.unique(joint, return_inverse=True)[1].reshape(-1), correction)
    return max(mi, 0.0)


@torch.no_grad()
def kmeans(z: Any, n_clusters: int, *, seed: int = 0, max_iter: int = 50, tol: float = 1e-6) -> np.ndarray:
    r"""Lloyd's k-means with k-means++ seeding; returns the cluster label of every row.

    Minimises :math:`\sum_i \lVert z_i - \mu_{c_i} \rVert^2`. Deterministic for a given
    ``seed`` (a private ``torch.Generator``; float64 on the CPU). Stops when the relative
    decrease of the objective is below ``tol`` or after ``max_iter`` iterations.

    Parameters
    ----------
    z : array-like, [n, d]
        Points as rows.
    n_clusters : int
        ``1 <= n_clusters <= n``.
    seed : int, default 0
        Seed of the k-means++ seeding.
    max_iter : int, default 50
        Maximum Lloyd iterations.
    tol : float, default 1e-6
        Stop when no centre moves by more than ``tol`` (relative to the data's scale).

    Returns
    -------
    numpy.ndarray of int64, [n]
        The cluster label of every row.
    """
    x = as_points(z, "z", dtype=torch.float64, device="cpu")
    n = x.shape[0]
    k = check_int(n_clusters, "n_clusters", minimum=1, maximum=n)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    check_positive(tol, "tol", allow_zero=True)
    g = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
    sq = (x * x).sum(1)  # [n]
    centres = [x[torch.randint(n, (1,), generator=g)].squeeze(0)]
    d2 = (sq - 2 * x @ centres[0] + centres[0] @ centres[0]).clamp_min(0)  # [n]
    for _ in range(1, k):  # k-means++: next centre drawn with probability ∝ squared distance
        total = float(d2.sum())
        i = torch.multinomial(d2 / total, 1, generator=g) if total > 0 else torch.randint(n, (1,), generator=g)
        c = x[i].squeeze(0)
        centres.append(c)
        d2 = torch.minimum(d2, (sq - 2 * x @ c + c @ c).clamp_min(0))
    mu = torch.stack(centres)  # [k, d]
    prev = math.inf
    for _ in range(max_iter):
        dist = sq[:, None] - 2 * x @ mu.T + (mu * mu).sum(1)[None]  # [n, k]
        obj, labels = dist.min(1)
        cost = float(obj.clamp_min(0).sum())
        sums = torch.zeros_like(mu).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k).to(x.dtype)
        mu = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], mu)  # empty cells keep their centre
        if prev - cost <= tol * max(prev, 1e-300):
            break
        prev = cost
    return labels.numpy().astype(np.int64)


def binned_mi(z: Any, labels: Any, *, n_clusters: int = 32, seed: int = 0,
              correction: str = "miller-madow") -> float:
    r"""I(labels; Z) at resolution ``n_clusters``: k-means cells of ``z``, then :func:`discrete_mi`.

    A lower bound on :math:`I(\text{labels}; Z)` (data processing) and at most
    :math:`\log K`; see the module docstring.

    Parameters
    ----------
    z : array-like, [n, d]
        Continuous representations (rows are samples).
    labels : array-like of int, [n] or [n, k]
        The paired discrete variable.
    n_clusters : int, default 32
        Number of k-means cells that discretise ``z``.
    seed : int, default 0
        Seed of k-means.
    correction : {"miller-madow", "none"}
        Bias correction of the entropies (see :func:`entropy_discrete`).

    Returns
    -------
    float
        The estimate of :math:`I(\text{labels}; Z)` in nats.
    """
    cells = kmeans(z, n_clusters, seed=seed)
    lab = np.asarray(labels)
    if lab.shape[:1] != cells.shape:
        raise ValueError(f"`labels` must have one entry per row of `z` ({cells.size}); got shape {lab.shape}")
    return discrete_mi(cells, lab, correction=correction)


def probe_mi(z: Any, y: Any, *, test_fraction: float = 0.3, weight_decay: float = 1e-3, max_iter: int = 200,
             seed: int = 0, standardize: bool = True) -> float:
    r"""Lower bound on I(Y; Z) (nats) from a held-out multinomial logistic-regression probe.

    .. math::

        \hat I = \frac{1}{|T|}\sum_{i \in T} \big[-\log \hat p(y_i)\big]
        - \frac{1}{|T|}\sum_{i \in T} \big[-\log q(y_i \mid z_i)\big],

    where :math:`T` is the held-out split, :math:`\hat p` the training split's class
    frequencies (add-one smoothed) and :math:`q` a softmax-linear classifier fit on the training
    split by L-BFGS with an L2 penalty ``weight_decay`` (mean over samples). See the module
    docstring for why this bounds :math:`I(Y; Z)` from below. Clipped at 0.

    Parameters
    ----------
    z : array-like, [n, d]
        Representations (rows are samples).
    y : array-like of int, [n]
        Class labels.
    test_fraction : float in (0, 1), default 0.3
        Fraction of the samples held out for the estimate.
    weight_decay : float, default 1e-3
        L2 penalty of the classifier.
    max_iter : int, default 200
        L-BFGS iterations.
    seed : int, default 0
        Seed of the train/test split.
    standardize : bool, default True
        Centre and scale each feature by the training split's statistics.

    Returns
    -------
    float
        The lower bound on :math:`I(Y; Z)` in nats (at least 0).
    """
    x = as_points(z, "z", dtype=torch.float64, device="cpu")
    yc = _codes(y, "y")
    n = x.shape[0]
    if yc.ndim != 1 or yc.size != n:
        raise ValueError(f"`y` must be 1-D with one label per row of `z` ({n}); got shape {np.shape(y)}")
    if not 0 < float(test_fraction) < 1:
        raise ValueError(f"`test_fraction` must be in (0, 1); got {test_fraction!r}")
    check_positive(weight_decay, "weight_decay", allow_zero=True)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    n_test = int(round(n * float(test_fraction)))
    if n_test < 1 or n - n_test < 2:
        raise ValueError(f"`z` needs enough rows for both splits; got {n} with test_fraction={test_fraction}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(check_int(seed, "seed", minimum=0)))
    test, train = perm[:n_test], perm[n_test:]
    labels = torch.as_tensor(yc, dtype=torch.long)
    m = int(labels.max()) + 1
    xtr, xte = x[train], x[test]
    if standardize:
        mu, sd = xtr.mean(0), xtr.std(0).clamp_min(1e-12)
        xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    ytr, yte = labels[train], labels[test]
    prior = (torch.bincount(ytr, minlength=m).double() + 1) / (len(train) + m)
    h_y = float(-prior.log()[yte].mean())
    w = torch.zeros(xtr.shape[1], m, dtype=torch.float64, requires_grad=True)
    b = prior.log().clone().requires_grad_(True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xtr @ w + b, ytr) + weight_decay * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        ce = float(torch.nn.functional.cross_entropy(xte @ w + b, yte))
    return max(h_y - ce, 0.0)


def context_codes(token_ids: Any, text_index: Any, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs ``X`` (last ``k`` tokens), targets ``Y`` (next token) and the positions they exist for.

    Parameters
    ----------
    token_ids, text_index : array-like of int, [n_tokens]
        As in :class:`~otlens.activations.Activations` (tokens of each text consecutive).
    k : int
        Context length; positions closer than ``k`` to their text's start are padded with -1.

    Returns
    -------
    (x, y, keep) : tuple of numpy.ndarray
        ``x`` ``[n_keep, k]`` (oldest token first), ``y`` ``[n_keep]`` and ``keep`` ``[n_keep]``
        the token positions that have a next token in the same text.
    """
    ids = np.asarray(token_ids, dtype=np.int64)
    txt = np.asarray(text_index, dtype=np.int64)
    if ids.ndim != 1 or ids.shape != txt.shape:
        raise ValueError(f"`token_ids` and `text_index` must be 1-D of equal length; got {ids.shape} and {txt.shape}")
    k = check_int(k, "k", minimum=1)
    keep = np.flatnonzero(txt[:-1] == txt[1:])  # positions with a next token in the same text
    if keep.size == 0:
        raise ValueError("no token has a next token in the same text (every text has one token)")
    y = ids[keep + 1]
    cols = []
    for j in range(k - 1, -1, -1):  # j tokens back
        pos = keep - j
        ok = (pos >= 0) & (txt[np.clip(pos, 0, None)] == txt[keep])
        cols.append(np.where(ok, ids[np.clip(pos, 0, None)], -1))
    return np.stack(cols, 1), y, keep


def information_plane(
    acts: Any,
    *,
    k: int = 2,
    n_clusters: int = 32,
    n_tokens: int | None = 4000,
    probe: bool = True,
    seed: int = 0,
    model: str | None = None,
    trained: bool = True,
) -> pd.DataFrame:
    r"""I(X; Z) and I(Y; Z) for every layer of a model over some texts (tidy table).

    ``X`` is the last ``k`` tokens, ``Y`` the next token, ``Z`` the layer's state (see the
    module docstring). For each state (0 = embedding) the rows hold the metrics ``mi_xz`` and
    ``mi_yz`` (:func:`binned_mi`, ``n_clusters`` k-means cells, the same cells for both),
    ``mi_yz_probe`` (:func:`probe_mi`, when ``probe``) and ``compression_ratio``
    ``mi_yz / mi_xz``; plus the reference values ``h_y`` (:math:`H(Y)`) and ``mi_xy``
    (:math:`I(X; Y)`, the most any representation of the ``k``-token context could keep about
    ``Y``), as ``layer = -1`` rows.

    Parameters
    ----------
    acts : Activations
        From :func:`~otlens.activations.extract_activations`.
    k : int, default 2
        Context length: ``X`` is the last ``k`` tokens.
    n_clusters : int, default 32
        k-means cells of :func:`binned_mi`.
    n_tokens : int or None, default 4000
        Token positions used (a seeded random subset; None = all).
    probe : bool, default True
        Also compute the probe estimate ``mi_yz_probe``.
    seed : int, default 0
        Seed of the subset, k-means and the probe's split.
    model, trained : str, bool
        Labels for the table (``model`` defaults to the activations' model name).

    Returns
    -------
    pandas.DataFrame
        Tidy rows (``layer``, ``metric``, ``value``, ...) as described above.
    """
    if not hasattr(acts, "states") or not hasattr(acts, "token_ids"):
        raise ValueError("`acts` must be an Activations object (token ids and text boundaries are needed)")
    n_clusters = check_int(n_clusters, "n_clusters", minimum=2)
    seed = check_int(seed, "seed", minimum=0)
    x, y, keep = context_codes(acts.token_ids.numpy(), acts.text_index.numpy(), k)
    if n_tokens is not None:
        n_tokens = check_int(n_tokens, "n_tokens", minimum=n_clusters)
        if keep.size > n_tokens:
            pick = np.sort(np.random.default_rng(seed).choice(keep.size, size=n_tokens, replace=False))
            x, y, keep = x[pick], y[pick], keep[pick]
    if keep.size < n_clusters:
        raise ValueError(f"only {keep.size} token positions for n_clusters={n_clusters}; use more texts or fewer clusters")
    name = model or acts.model
    base = dict(experiment="information_plane", model=name, trained=trained, method=f"kmeans-{n_clusters}", seed=seed)
    rows = [dict(base, layer=-1, metric="h_y", value=entropy_discrete(y)),
            dict(base, layer=-1, metric="mi_xy", value=discrete_mi(x, y))]
    for layer in range(acts.states.shape[0]):
        z = acts.states[layer, torch.as_tensor(keep)].double()  # [n, d]
        cells = kmeans(z, n_clusters, seed=seed)
        mi_xz, mi_yz = discrete_mi(cells, x), discrete_mi(cells, y)
        rows += [dict(base, layer=layer, metric="mi_xz", value=mi_xz),
                 dict(base, layer=layer, metric="mi_yz", value=mi_yz),
                 dict(base, layer=layer, metric="compression_ratio", value=mi_yz / mi_xz if mi_xz > 0 else np.nan)]
        if probe:
            rows.append(dict(base, layer=layer, method="probe", metric="mi_yz_probe", value=probe_mi(z, y, seed=seed)))
    out = pd.DataFrame(rows)
    out["k"] = k
    out["n_tokens"] = keep.size
    return out
