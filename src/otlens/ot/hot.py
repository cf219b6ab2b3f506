r"""Hierarchical optimal transport (HOT), the solver: aligning the layers of two networks, or of a network and a brain.

After :cite:t:`shah:25`. A *system* is a list of layers; layer :math:`\ell` is a matrix
:math:`X_\ell \in \mathbb R^{T \times n_\ell}` of the responses of its :math:`n_\ell` units to
the same :math:`T` stimuli (for a transformer: each layer's token states mean-pooled per text;
for a brain: the voxels of one region). Source :math:`X_1, \dots, X_L`, target
:math:`Y_1, \dots, Y_M`. Everything is fitted on training stimuli and scored on held-out ones.

**Inner OT.** For every pair :math:`(\ell, m)` the cost between source unit :math:`i` and
target unit :math:`j` is the correlation distance over the training stimuli,

.. math::

    C^{\ell m}_{ij} = 1 - \rho\big(X_\ell[:, i],\, Y_m[:, j]\big),

and :math:`Q_{\ell m}` is the exact OT plan with uniform marginals :math:`1/n_\ell`,
:math:`1/n_m` (the widths may differ), with cost :math:`c_{\ell m} = \langle Q_{\ell m},
C^{\ell m}\rangle`.

**Outer OT.** :math:`P` is the exact OT plan for the :math:`L \times M` cost :math:`c` with row
sums :math:`1/L` and column sums :math:`1/M`. With :math:`L = M` its optimum is a vertex of the
transport polytope, a permutation; with :math:`L \ne M` a layer can spread over several.

**Reconstruction.** In units standardised on the training stimuli,

.. math::

    \hat X_\ell = L \sum_m P_{\ell m}\, Y_m\, (n_\ell Q_{\ell m})^\top ,

so each predicted unit is a weighted average of target units (the weights of a row of
:math:`n_\ell Q_{\ell m}` and of :math:`L P_{\ell \cdot}` sum to one; a one-to-one coupling
reproduces the matched unit exactly). The score of layer :math:`\ell` is the mean over its
units of the Pearson correlation between :math:`X_\ell[:, i]` and :math:`\hat X_\ell[:, i]`
on the held-out stimuli; the HOT score is the mean over layers.

**HOT+R** adds an orthogonal :math:`R_{\ell m}` per pair and minimises
:math:`\lVert X_\ell R - n_\ell Y_m Q^\top \rVert_F^2` (standardised units) by alternating an
OT step for :math:`Q` (cost :math:`1 - R^\top G`, :math:`G` the correlation matrix) with an
orthogonal Procrustes step for :math:`R` (SVD of :math:`G Q^\top`; directions the training
stimuli leave free, when a layer has more units than stimuli, stay unrotated); both steps lower the same
objective :math:`\langle Q, 1 - R^\top G \rangle`, whose final value is :math:`c_{\ell m}`. The
prediction is :math:`\hat X_\ell = L \sum_m P_{\ell m} (n_\ell Y_m Q_{\ell m}^\top) R_{\ell m}^\top`.

**Baselines**, scored the same way (:data:`VARIANTS`): ``pairwise`` (each source layer takes
its lowest-cost target layer, chosen independently), ``perm-p`` (the rows of :math:`P`
shuffled by a derangement, :math:`Q` kept), ``single-best`` (only each row's largest
:math:`P` entry kept).

Speed: all :math:`L \times M` cost matrices come from one matrix product; equal or commensurate
widths are solved as assignment problems (:func:`scipy.optimize.linear_sum_assignment`, exact
for uniform marginals), the rest with POT's network simplex.
``inner="entropic"`` uses :func:`otlens.ot.sinkhorn` for wide layers, batched over
target layers of one width.

This module is a solver: it knows no model and no chapter. Chapter 2's study (scores over splits,
named systems, model pairs, the verdict) is :mod:`otlens.hot`, which re-exports every name here.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from .._validation import check_choice, check_int, check_positive
from ..exceptions import ConvergenceWarning
from .entropic import sinkhorn
from .exact import exact_ot

__all__ = [
    "VARIANTS",
    "HOTAlignment",
    "as_layers",
    "split_stimuli",
    "correlation_costs",
    "uniform_ot",
    "outer_ot",
    "procrustes",
    "hot_align",
    "variant_coupling",
    "reconstruct",
    "reconstruction_scores",
]

VARIANTS = ("hot", "perm-p", "single-best", "pairwise")
INNER_METHODS = ("exact", "entropic")


# --------------------------------------------------------------------------------------------
# Inputs


def as_layers(x: Any, name: str = "x") -> list[np.ndarray]:
    """A system's layers as a list of finite float64 arrays ``[T, n_l]`` with one ``T``.

    Accepts an :class:`~otlens.activations.Activations` (its pooled block outputs, embedding
    excluded), a 3-D array ``[L, T, n]``, or a sequence of 2-D arrays ``[T, n_l]`` (widths may
    differ, as for brain regions).

    Parameters
    ----------
    x : Activations, array [L, T, n] or sequence of [T, n_l]
        The system's responses to ``T`` stimuli.
    name : str
        How error messages name ``x``.

    Returns
    -------
    list of numpy.ndarray
        One float64 array ``[T, n_l]`` per layer.

    Raises
    ------
    ValueError
        If a layer is not 2-D, holds NaN / inf, or the layers disagree on ``T``.
    """
    if callable(getattr(x, "pooled", None)):  # an Activations (duck-typed: a solver imports no model code)
        x = x.pooled()[1:]
    if isinstance(x, (torch.Tensor, np.ndarray)):
        arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if arr.ndim != 3:
            raise ValueError(f"`{name}` must be [n_layers, n_stimuli, n_units] or a list of [n_stimuli, n_units]; "
                             f"got shape {arr.shape}")
        x = list(arr)
    if not isinstance(x, (list, tuple)) or len(x) == 0:
        raise ValueError(f"`{name}` must be a non-empty list of layers [n_stimuli, n_units]; got {type(x).__name__}")
    layers = []
    for i, layer in enumerate(x):
        arr = layer.detach().cpu().numpy() if isinstance(layer, torch.Tensor) else np.asarray(layer)
        if arr.ndim != 2 or arr.shape[1] < 1:
            raise ValueError(f"`{name}[{i}]` must be 2-D [n_stimuli, n_units]; got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"`{name}[{i}]` must hold numbers; got dtype {arr.dtype}")
        arr = arr.astype(np.float64, copy=False)  # never modified: no copy when already float64
        if not np.isfinite(arr).all():
            raise ValueError(f"`{name}[{i}]` contains {int((~np.isfinite(arr)).sum())} NaN or infinite value(s)")
        layers.append(arr)
    n_stim = {a.shape[0] for a in layers}
    if len(n_stim) != 1:
        raise ValueError(f"all layers of `{name}` must have the same number of stimuli; got {sorted(n_stim)}")
    return layers


def check_pair(source: list[np.ndarray], target: list[np.ndarray]) -> int:
    t_s, t_t = source[0].shape[0], target[0].shape[0]
    if t_s != t_t:
        raise ValueError(f"source and target must respond to the same stimuli; got {t_s} and {t_t} stimuli")
    return t_s


def split_stimuli(n_stimuli: int, *, train_fraction: float = 0.8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random train / held-out split of ``range(n_stimuli)`` (sorted indices), by ``seed``.

    At least 3 training stimuli (a correlation needs them) and 2 held-out ones are required.

    Parameters
    ----------
    n_stimuli : int
        Number of stimuli.
    train_fraction : float
        Fraction of them in the training split, in ``(0, 1)``.
    seed : int
        Seed of the random split.

    Returns
    -------
    train : numpy.ndarray, [n_train]
        Sorted training indices.
    heldout : numpy.ndarray, [n_stimuli - n_train]
        Sorted held-out indices.
    """
    n_stimuli = check_int(n_stimuli, "n_stimuli", minimum=1)
    train_fraction = float(train_fraction)
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"`train_fraction` must be in (0, 1); got {train_fraction}")
    n_train = int(round(train_fraction * n_stimuli))
    if n_train < 3 or n_stimuli - n_train < 2:
        raise ValueError(
            f"too few stimuli for a train/held-out split: {n_stimuli} stimuli at train_fraction={train_fraction} "
            f"give {n_train} train and {n_stimuli - n_train} held-out; need >= 3 and >= 2"
        )
    perm = np.random.default_rng(seed).permutation(n_stimuli)
    return np.sort(perm[:n_train]), np.sort(perm[n_train:])


@dataclass(frozen=True)
class _Scaler:
    """Per-unit mean and standard deviation of one layer on the training stimuli."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> "_Scaler":
        std = x.std(axis=0)
        return cls(x.mean(axis=0), np.where(std > 1e-12 * (1 + np.abs(x).max(initial=0.0)), std, np.inf))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std  # constant units become 0


def _unit_vectors(z: np.ndarray) -> np.ndarray:
    """Columns of a standardised ``[T, n]`` scaled to unit norm: their inner products are correlations."""
    return z / math.sqrt(z.shape[0])


def correlation_costs(source: Any, target: Any) -> np.ndarray:
    r"""Correlation-distance costs of every layer pair, from one matrix product.

    Parameters
    ----------
    source : Activations, array [L, T, n] or list of [T, n_l]
        The source system's responses to ``T`` stimuli.
    target : Activations, array [M, T, n] or list of [T, n_m]
        The target system's responses to the same stimuli.

    Returns
    -------
    numpy.ndarray, [L, M], dtype object
        Entry ``(l, m)`` is the ``[n_l, n_m]`` matrix :math:`1 - \rho` over the stimuli given
        (units constant over them count as uncorrelated).
    """
    src, tgt = as_layers(source, "source"), as_layers(target, "target")
    check_pair(src, tgt)
    corr = _correlation_blocks([_unit_vectors(_Scaler.fit(x)(x)) for x in src],
                               [_unit_vectors(_Scaler.fit(y)(y)) for y in tgt])
    return 1.0 - corr


def _correlation_blocks(us: list[np.ndarray], vs: list[np.ndarray]) -> np.ndarray:
    """Correlation matrices of every (source, target) layer pair from one matrix product.

    ``us`` / ``vs`` hold each layer's unit vectors ``[T, n_l]``; entry ``(l, m)`` of the
    returned object array is the ``[n_l, n_m]`` block (a view into one ``[sum n_l, sum n_m]``
    product).
    """
    corr = np.concatenate(us, axis=1).T @ np.concatenate(vs, axis=1)
    rows = np.cumsum([0] + [u.shape[1] for u in us])
    cols = np.cumsum([0] + [v.shape[1] for v in vs])
    out = np.empty((len(us), len(vs)), dtype=object)
    for i in range(len(us)):
        for j in range(len(vs)):
            out[i, j] = corr[rows[i]:rows[i + 1], cols[j]:cols[j + 1]]
    return out


# --------------------------------------------------------------------------------------------
# OT with uniform marginals


def uniform_ot(cost: Any, *, max_replication: int = 0) -> tuple[np.ndarray, float]:
    r"""Exact OT plan with uniform marginals ``1/n``, ``1/m`` for an ``[n, m]`` cost.

    With ``k = lcm(n, m)``, repeating each row ``k/n`` times and each column ``k/m`` times turns
    the problem into a ``k × k`` assignment whose optimal permutation, summed back into blocks
    and scaled by ``1/k``, is an optimal plan (Birkhoff–von Neumann). That is solved with
    :func:`scipy.optimize.linear_sum_assignment` when ``n == m`` or
    ``k <= max_replication * max(n, m)``, otherwise POT's network simplex solves the ``n × m``
    problem (:func:`otlens.ot.exact_ot`). Measured on correlation costs of real layers (384 × 768): the simplex is faster on
    the plain costs (default 0: equal widths only), the replicated assignment on the rotated
    costs of HOT+R (which passes 2).

    Parameters
    ----------
    cost : array-like, [n, m]
        Cost matrix.
    max_replication : int
        Use the replicated assignment when ``lcm(n, m) <= max_replication * max(n, m)``.

    Returns
    -------
    plan : numpy.ndarray, [n, m]
        An optimal plan (rows sum to ``1/n``, columns to ``1/m``).
    cost : float
        Its cost :math:`\langle P, C\rangle`.
    """
    from scipy.optimize import linear_sum_assignment

    c = np.asarray(cost, dtype=np.float64)
    if c.ndim != 2 or min(c.shape) < 1:
        raise ValueError(f"`cost` must be a 2-D [n, m] matrix; got shape {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError("`cost` contains NaN or infinite values")
    n, m = c.shape
    k = n * m // math.gcd(n, m)
    if n == m or k <= max_replication * max(n, m):
        rep_r, rep_c = k // n, k // m
        rows = np.repeat(np.arange(n), rep_r)
        cols = np.repeat(np.arange(m), rep_c)
        r, col = linear_sum_assignment(c[rows][:, cols])
        plan = np.zeros((n, m))
        np.add.at(plan, (rows[r], cols[col]), 1.0 / k)
    else:
        plan = exact_ot(cost=c, max_iter=10_000_000, return_plan=True).plan.numpy()
    return plan, float((plan * c).sum())


def outer_ot(cost: Any) -> np.ndarray:
    """Exact OT plan for an ``[L, M]`` layer cost with row sums ``1/L`` and column sums ``1/M``.

    Parameters
    ----------
    cost : array-like, [L, M]
        Inner costs of the layer pairs.

    Returns
    -------
    numpy.ndarray, [L, M]
        The layer coupling :math:`P`.
    """
    c = np.asarray(cost, dtype=np.float64)
    if c.ndim != 2 or not np.isfinite(c).all():
        raise ValueError(f"`cost` must be a finite 2-D [L, M] matrix; got shape {c.shape}")
    return exact_ot(cost=c, max_iter=100_000, return_plan=True).plan.numpy()


def _entropic_plans(u: np.ndarray, vs: list[np.ndarray], reg: float, device: Any) -> list[tuple[np.ndarray, float]]:
    """Entropic plans between the unit vectors ``u`` [T, n] and each of ``vs`` (same width), batched.

    Unit vectors ``a, b`` of correlation ``rho`` have ``|a/sqrt2 - b/sqrt2|^2 = 1 - rho``: the
    squared-Euclidean Sinkhorn on ``u / sqrt(2)`` is OT with the correlation-distance cost.
    """
    x = torch.from_numpy(u.T / math.sqrt(2)).expand(len(vs), -1, -1)
    y = torch.from_numpy(np.stack([v.T for v in vs]) / math.sqrt(2))
    res = sinkhorn(x, y, reg=reg, return_plan=True, dtype=torch.float64, device=device, max_iter=10_000, warn=False)
    if not res.converged:
        warnings.warn(f"entropic inner OT (reg={reg}) did not reach its tolerance", ConvergenceWarning, stacklevel=3)
    plans = res.plan.cpu().numpy()
    return [(p, float(c)) for p, c in zip(plans, res.cost.cpu().numpy())]


def procrustes(m: np.ndarray, *, rtol: float = 1e-10) -> np.ndarray:
    """The orthogonal ``R`` maximising ``tr(R^T m)``, and among the maximisers the closest to the identity.

    With ``m = U S V^T``, ``R = U V^T`` on the singular directions with ``S > rtol * S.max()``.
    When ``m`` is rank-deficient (more units than training stimuli) the rest of ``R`` is not
    determined by the data; it is chosen to maximise ``tr(R)``, so directions the training
    stimuli do not constrain are left unrotated rather than rotated at random.

    Parameters
    ----------
    m : numpy.ndarray, [n, n]
        The cross-covariance to align.
    rtol : float
        Singular values below ``rtol`` times the largest count as zero.

    Returns
    -------
    numpy.ndarray, [n, n]
        The orthogonal matrix ``R``.
    """
    u, s, vt = np.linalg.svd(m)
    r = int((s > rtol * max(s[0], 1e-300)).sum())
    rot = u[:, :r] @ vt[:r]
    if r < m.shape[0]:
        u_perp, v_perp = u[:, r:], vt[r:].T
        a, _, bt = np.linalg.svd(u_perp.T @ v_perp)
        rot += u_perp @ (a @ bt) @ v_perp.T
    return rot


def _rotation_ot(g: np.ndarray, *, max_iter: int, tol: float) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """HOT+R for one pair: alternate OT (``Q`` given ``R``) and Procrustes (``R`` given ``Q``).

    ``g`` is the ``[n, m]`` correlation matrix. Returns ``(Q, R, objective, converged)`` with
    objective ``<Q, 1 - R^T g>``, non-increasing over the iterations.
    """
    n = g.shape[0]
    rot = np.eye(n)
    prev = math.inf
    for _ in range(max_iter):
        plan, _ = uniform_ot(1.0 - rot.T @ g, max_replication=2)
        rot = procrustes(g @ plan.T)
        obj = float((plan * (1.0 - rot.T @ g)).sum())
        if prev - obj <= tol * max(1.0, abs(obj)):
            return plan, rot, obj, True
        prev = obj
    return plan, rot, obj, False


# --------------------------------------------------------------------------------------------
# Alignment


@dataclass(frozen=True)
class HOTAlignment:
    """A fitted HOT (or HOT+R) alignment of a source system onto a target system.

    Attributes
    ----------
    P : numpy.ndarray, [L, M]
        Layer coupling (rows sum to ``1/L``, columns to ``1/M``).
    Q : tuple of tuples of numpy.ndarray
        ``Q[l][m]`` is the ``[n_l, n_m]`` unit coupling of the pair (rows ``1/n_l``, columns ``1/n_m``).
    cost : numpy.ndarray, [L, M]
        Inner costs ``<Q, C>`` (for HOT+R, after rotation).
    R : tuple of tuples of numpy.ndarray or None
        HOT+R only: ``R[l][m]`` is the ``[n_l, n_l]`` orthogonal rotation of the source units.
    inner : str
        ``"exact"`` or ``"entropic"``.
    converged : bool
        Every inner problem (and rotation loop) reached its tolerance.
    source_scalers, target_scalers : tuple
        Per layer, the standardisation (mean and scale per unit) fitted on the training stimuli;
        :meth:`standardize_source` and :meth:`standardize_target` apply them.
    units_kept : bool
        Whether ``Q`` (and ``R``) are held; False for an alignment reduced by
        :meth:`without_units` (layer coupling and costs only), which cannot reconstruct.
    """

    P: np.ndarray
    Q: tuple
    cost: np.ndarray
    R: tuple | None
    inner: str
    converged: bool
    source_scalers: tuple = field(repr=False)
    target_scalers: tuple = field(repr=False)
    units_kept: bool = True

    @property
    def rotation(self) -> bool:
        """Whether this is a HOT+R alignment (it holds rotations ``R``)."""
        return self.R is not None

    def without_units(self) -> "HOTAlignment":
        """The alignment without its unit couplings and rotations: ``P``, ``cost`` and the scalers only.

        A study that scores many fits keeps this light copy of the ones no figure reads: the
        unit couplings are ``L x M`` dense ``[n_l, n_m]`` plans (about 1.2 GB for Gemma-3 270M
        against its untrained twin), the layer coupling a few hundred numbers.

        Returns
        -------
        HOTAlignment
            ``units_kept=False``; ``rotation`` is unchanged.
        """
        from dataclasses import replace

        return replace(self, Q=(), R=() if self.R is not None else None, units_kept=False)

    @property
    def shape(self) -> tuple[int, int]:
        """``(L, M)``: the numbers of source and target layers."""
        return self.P.shape

    def standardize_source(self, source: Any) -> list[np.ndarray]:
        """Source layers in the training standardisation (the space predictions live in).

        Parameters
        ----------
        source : Activations, array [L, T, n] or list of [T, n_l]
            The source system's responses to any ``T`` stimuli (layers as in :func:`as_layers`).

        Returns
        -------
        list of numpy.ndarray
            One ``[T, n_l]`` array per source layer, standardised with the training statistics.

        Raises
        ------
        ValueError
            If the number of layers differs from the fitted one.
        """
        src = as_layers(source, "source")
        if len(src) != len(self.source_scalers):
            raise ValueError(f"expected {len(self.source_scalers)} source layers; got {len(src)}")
        return [s(x) for s, x in zip(self.source_scalers, src)]

    def standardize_target(self, target: Any) -> list[np.ndarray]:
        """Target layers in the training standardisation (the space :func:`reconstruct` reads them in).

        Parameters
        ----------
        target : Activations, array [M, T, n] or list of [T, n_m]
            The target system's responses to any ``T`` stimuli.

        Returns
        -------
        list of numpy.ndarray
            One ``[T, n_m]`` array per target layer, standardised with the training statistics.

        Raises
        ------
        ValueError
            If the number of layers, or a layer's width, differs from the fitted ones.
        """
        tgt = as_layers(target, "target")
        if len(tgt) != len(self.target_scalers):
            raise ValueError(f"expected {len(self.target_scalers)} target layers; got {len(tgt)}")
        for j, (s, y) in enumerate(zip(self.target_scalers, tgt)):
            if y.shape[1] != s.mean.shape[0]:
                raise ValueError(f"target layer {j} has {y.shape[1]} units; the alignment was fitted on {s.mean.shape[0]}")
        return [s(y) for s, y in zip(self.target_scalers, tgt)]


def hot_align(
    source: Any,
    target: Any,
    *,
    train: Any = None,
    rotation: bool = False,
    inner: str = "exact",
    reg: float = 0.01,
    max_rotation_iter: int = 20,
    rotation_tol: float = 1e-6,
    device: Any = "cpu",
    progress: bool = True,
    client: Any = None,
) -> HOTAlignment:
    """Fit HOT (``rotation=False``) or HOT+R between two systems on the ``train`` stimuli.

    Parameters
    ----------
    source, target : Activations, array ``[L, T, n]`` or list of ``[T, n_l]``
        The two systems' responses to the same ``T`` stimuli.
    train : array of int, optional
        Indices of the training stimuli (default: all).
    rotation : bool
        HOT+R: an orthogonal rotation per layer pair (alternating OT and Procrustes).
    inner : {"exact", "entropic"}
        Inner OT solver. ``"entropic"`` (Sinkhorn, absolute ``reg`` in units of the
        correlation distance) is for layers too wide for exact OT; not with ``rotation``.
    reg : float
        Entropic regularisation of ``inner="entropic"``.
    max_rotation_iter, rotation_tol : int, float
        HOT+R stops when the objective falls by less than ``rotation_tol`` (relative).
    device : str
        Device of the entropic solver.
    progress : bool
        tqdm bar over the ``L × M`` pairs.
    client : distributed.Client, optional
        Exact inner OT only: solve the ``L × M`` inner problems as Dask tasks on this client's
        workers (the layers' unit vectors are scattered once; each task builds its correlation
        block and returns the plan's nonzeros). Same plans as without a client, up to the
        rounding of the correlation products.

    Returns
    -------
    HOTAlignment
        The layer coupling ``P``, the unit couplings ``Q`` (and rotations ``R`` for HOT+R), and
        the training standardisation of both systems.

    See Also
    --------
    reconstruct : Predict the source layers from the target's responses through the alignment.
    """
    from tqdm.auto import tqdm

    src, tgt = as_layers(source, "source"), as_layers(target, "target")
    n_stim = check_pair(src, tgt)
    check_choice(inner, "inner", INNER_METHODS)
    check_positive(reg, "reg")
    max_rotation_iter = check_int(max_rotation_iter, "max_rotation_iter", minimum=1)
    check_positive(rotation_tol, "rotation_tol", allow_zero=True)
    if rotation and inner != "exact":
        raise ValueError("HOT+R (`rotation=True`) uses exact inner OT; got inner='entropic'")
    if client is not None and inner != "exact":
        raise ValueError("`client` distributes the exact inner problems; got inner='entropic' (drop `client`)")
    idx = np.arange(n_stim) if train is None else np.asarray(train, dtype=np.int64)
    if idx.ndim != 1 or len(idx) < 3 or idx.min() < 0 or idx.max() >= n_stim:
        raise ValueError(f"`train` must hold >= 3 stimulus indices in [0, {n_stim}); got {len(idx)} indices")

    s_scale = tuple(_Scaler.fit(x[idx]) for x in src)
    t_scale = tuple(_Scaler.fit(y[idx]) for y in tgt)
    us = [_unit_vectors(s(x[idx])) for s, x in zip(s_scale, src)]
    vs = [_unit_vectors(s(y[idx])) for s, y in zip(t_scale, tgt)]
    L, M = len(src), len(tgt)
    Q = [[None] * M for _ in range(L)]
    R = [[None] * M for _ in range(L)] if rotation else None
    cost = np.zeros((L, M))
    ok = True
    if client is not None and inner == "exact":
        ok = _inner_on_dask(client, us, vs, Q, R, cost, rotation=rotation, max_iter=max_rotation_iter,
                            tol=rotation_tol, progress=progress)
        return _finish_alignment(Q, R, cost, ok, rotation, max_rotation_iter, inner, s_scale, t_scale)
    corr = _correlation_blocks(us, vs)
    bar = tqdm(total=L * M, desc=f"HOT{'+R' if rotation else ''} inner OT", unit="pair", disable=not progress, leave=False)
    # The loop's matrix products are small and the solvers single-threaded: one BLAS thread. Idle
    # BLAS threads spin between calls, which on a busy machine starves the solver.
    with threadpool_limits(limits=1, user_api="blas") if inner == "exact" else contextlib.nullcontext():
        for i in range(L):
            if inner == "entropic":
                by_width: dict[int, list[int]] = {}
                for j, v in enumerate(vs):
                    by_width.setdefault(v.shape[1], []).append(j)
                for js in by_width.values():
                    for j, (plan, c) in zip(js, _entropic_plans(us[i], [vs[j] for j in js], reg, device)):
                        Q[i][j], cost[i, j] = plan, c
                    bar.update(len(js))
                continue
            for j in range(M):
                g = corr[i, j]
                if rotation:
                    Q[i][j], R[i][j], cost[i, j], conv = _rotation_ot(g, max_iter=max_rotation_iter, tol=rotation_tol)
                    ok = ok and conv
                else:
                    Q[i][j], cost[i, j] = uniform_ot(1.0 - g)
                bar.update(1)
    bar.close()
    return _finish_alignment(Q, R, cost, ok, rotation, max_rotation_iter, inner, s_scale, t_scale)


def _finish_alignment(Q, R, cost, ok, rotation, max_rotation_iter, inner, s_scale, t_scale) -> HOTAlignment:
    """The outer OT over the inner costs, and the alignment."""
    if rotation and not ok:
        warnings.warn(f"HOT+R: some rotation loops did not settle within {max_rotation_iter} iterations "
                      "(objective still falling); raise `max_rotation_iter`", ConvergenceWarning, stacklevel=3)
    P = outer_ot(cost)
    as_tuple = lambda grid: tuple(tuple(row) for row in grid)  # noqa: E731
    return HOTAlignment(P=P, Q=as_tuple(Q), cost=cost, R=as_tuple(R) if rotation else None, inner=inner,
                        converged=ok, source_scalers=s_scale, target_scalers=t_scale)


def _inner_pair(u: np.ndarray, v: np.ndarray, rotation: bool, max_iter: int, tol: float):
    """One exact inner problem (a Dask task): the plan's nonzeros ``(rows, cols, values)``, R, cost, converged."""
    with threadpool_limits(limits=1, user_api="blas"):
        g = u.T @ v
        if rotation:
            plan, rot, c, conv = _rotation_ot(g, max_iter=max_iter, tol=tol)
        else:
            (plan, c), rot, conv = uniform_ot(1.0 - g), None, True
    rows, cols = np.nonzero(plan)
    return (rows.astype(np.int32), cols.astype(np.int32), plan[rows, cols], plan.shape), rot, c, conv


def _inner_on_dask(client: Any, us: list, vs: list, Q: list, R: list | None, cost: np.ndarray, *, rotation: bool,
                   max_iter: int, tol: float, progress: bool) -> bool:
    """Solve the ``L × M`` exact inner problems as Dask tasks; fill ``Q``, ``R``, ``cost``; all converged?"""
    from distributed import as_completed
    from tqdm.auto import tqdm

    # hash=False: fresh keys each call. Content-hashed keys collide with the data a previous call
    # has just released, and the scheduler may forget them while this call uses them ("lost data").
    u_f, v_f = client.scatter(us, hash=False), client.scatter(vs, hash=False)
    futures = {client.submit(_inner_pair, u_f[i], v_f[j], rotation, max_iter, tol, pure=False): (i, j)
               for i in range(len(us)) for j in range(len(vs))}
    ok = True
    with tqdm(total=len(futures), desc=f"HOT{'+R' if rotation else ''} inner OT (Dask)", unit="pair",
              disable=not progress, leave=False) as bar:
        try:
            for future in as_completed(futures, loop=client.loop):
                i, j = futures[future]
                (rows, cols, values, shape), rot, cost[i, j], conv = future.result()
                plan = np.zeros(shape)
                plan[rows, cols] = values
                Q[i][j] = plan
                if rotation:
                    R[i][j] = rot
                ok = ok and conv
                bar.update(1)
        finally:
            for future in [*futures, *u_f, *v_f]:
                future.release()
    return ok


def _derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    while True:
        p = rng.permutation(n)
        if not (p == np.arange(n)).any():
            return p


def variant_coupling(alignment: HOTAlignment, variant: str = "hot", *, seed: int = 0) -> np.ndarray:
    """The ``[L, M]`` layer weights a variant reconstructs with (rows sum to ``1/L``).

    ``hot``: :math:`P`. ``perm-p``: the rows of :math:`P` permuted by a random derangement
    (seeded), so every source layer gets another layer's row. ``single-best``: each row's
    largest entry of :math:`P`, alone. ``pairwise``: each source layer's lowest inner cost,
    chosen independently of the others.

    Parameters
    ----------
    alignment : HOTAlignment
        The fitted alignment.
    variant : {"hot", "perm-p", "single-best", "pairwise"}
        Which layer weights (above).
    seed : int
        Seed of the derangement of ``"perm-p"``.

    Returns
    -------
    numpy.ndarray, [L, M]
        The layer weights :math:`W`.
    """
    check_choice(variant, "variant", VARIANTS)
    P = alignment.P
    L, M = P.shape
    if variant == "hot":
        return P.copy()
    if variant == "perm-p":
        return P[_derangement(L, np.random.default_rng(seed))]
    pick = P.argmax(axis=1) if variant == "single-best" else alignment.cost.argmin(axis=1)
    W = np.zeros_like(P)
    W[np.arange(L), pick] = 1.0 / L
    return W


def reconstruct(alignment: HOTAlignment, target: Any, *, variant: str = "hot", seed: int = 0,
                layers: Sequence[int] | None = None) -> list[np.ndarray]:
    r"""Predict the source layers from target responses: :math:`\hat X_\ell = L \sum_m W_{\ell m} Y_m (n_\ell Q_{\ell m})^\top [R_{\ell m}^\top]`.

    Predictions are in the source's training standardisation (compare with
    :meth:`HOTAlignment.standardize_source`).

    Parameters
    ----------
    alignment : HOTAlignment
        The fitted alignment.
    target : Activations, array [M, T, n] or list of [T, n_m]
        The target system's responses to any ``T`` stimuli (e.g. held-out ones).
    variant : {"hot", "perm-p", "single-best", "pairwise"}
        The layer weights :math:`W` (see :func:`variant_coupling`).
    seed : int
        Seed of the ``"perm-p"`` variant.
    layers : sequence of int, optional
        Restrict to these source layers (default: all).

    Returns
    -------
    list of numpy.ndarray
        One predicted ``[T, n_l]`` array per source layer asked for.
    """
    if not alignment.units_kept:
        raise ValueError("this alignment was reduced with without_units(): its unit couplings were not kept, so "
                         "it cannot reconstruct (keep them with pair_study's `keep_units`)")
    W = variant_coupling(alignment, variant, seed=seed)
    ys = alignment.standardize_target(target)
    L, M = W.shape
    layers = range(L) if layers is None else [check_int(l, "layer", minimum=0, maximum=L - 1) for l in layers]
    out = []
    for i in layers:
        n_i = alignment.Q[i][0].shape[0]
        acc = np.zeros((ys[0].shape[0], n_i))
        for j in np.flatnonzero(W[i] > 0):
            pred = n_i * ys[j] @ alignment.Q[i][j].T
            if alignment.R is not None:
                pred = pred @ alignment.R[i][j].T
            acc += L * W[i, j] * pred
        out.append(acc)
    return out


def reconstruction_scores(actual: Sequence[np.ndarray], predicted: Sequence[np.ndarray], *,
                          per_unit: bool = False) -> np.ndarray | list[np.ndarray]:
    """Pearson correlation, over stimuli, of each actual unit with its prediction.

    Parameters
    ----------
    actual : sequence of numpy.ndarray
        Per layer, the actual ``[T, n_l]`` responses (standardised as the predictions).
    predicted : sequence of numpy.ndarray
        Per layer, the predicted ``[T, n_l]`` responses (:func:`reconstruct`).
    per_unit : bool
        Return every unit's correlation instead of the layer means.

    Returns
    -------
    numpy.ndarray or list of numpy.ndarray
        The mean per layer ``[L]`` (units whose actual or predicted response is constant are
        left out), or with ``per_unit=True`` the list of per-unit correlations ``[n_l]`` (NaN
        for those).
    """
    if len(actual) != len(predicted):
        raise ValueError(f"got {len(actual)} actual and {len(predicted)} predicted layers")
    per = []
    for k, (x, xh) in enumerate(zip(actual, predicted)):
        x, xh = np.asarray(x, dtype=np.float64), np.asarray(xh, dtype=np.float64)
        if x.shape != xh.shape:
            raise ValueError(f"layer {k}: actual {x.shape} and predicted {xh.shape} differ")
        if x.shape[0] < 2:
            raise ValueError(f"layer {k}: a correlation needs >= 2 stimuli; got {x.shape[0]}")
        xc, hc = x - x.mean(0), xh - xh.mean(0)
        den = np.linalg.norm(xc, axis=0) * np.linalg.norm(hc, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(den > 0, (xc * hc).sum(0) / den, np.nan)
        per.append(r)
    if per_unit:
        return per
    return np.array([np.nanmean(r) if np.isfinite(r).any() else np.nan for r in per])
