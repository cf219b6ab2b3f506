r"""OT across depth: how far each layer moves the cloud of token states.

For a stack of token states ``[n_states, n_tokens, d_model]`` (state 0 is the embedding
output, state ``ℓ`` the residual stream after block ``ℓ-1``), the *depth profile* is the OT
cost between the clouds of states ``ℓ`` and ``ℓ+1`` for every transition. How the clouds are
prepared is a :class:`ProfileMethod`:

``published``
    The 2025 study's method :cite:`geomot:25`: block outputs only (embedding excluded), PCA to
    50 components fitted **separately for each layer**, row L2-normalisation, the same sampled
    tokens in both layers, squared-Euclidean cost, uniform weights, ``reg = 0.1``, the
    transport cost :math:`\langle P, C\rangle`.
``shared-basis``
    As published, but one PCA basis fitted on both layers of a transition, so both clouds
    live in the same coordinates. Separate bases make the cost measure how the two bases
    differ (arbitrary rotations and sign flips), not how the representation moved.
``corrected``
    Full dimension (no PCA), row L2-normalisation, the debiased Sinkhorn divergence
    :cite:`feydy:19` (zero when nothing moves), embedding transition included.
``raw-scale`` / ``layer-scale``
    Controls without row normalisation: raw activations, or each layer divided by its mean
    token norm; both with ``reg = 0.1 ×`` the mean cost. Their difference separates the growth
    of token norms with depth from changes of geometry.

Every function returns a tidy :class:`pandas.DataFrame` with the results contract's columns
(experiment, model, trained, method, layer, seed, metric, value, ...).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ._validation import as_stack, check_choice, check_int, check_positive
from .activations import extract_activations
from .entropy import _renyi_batched, _spectrum_entropy, dataset_entropy, norm_entropy, prompt_entropy
from .ot import solve
from .results import StudyResult

__all__ = [
    "ProfileMethod",
    "PROFILE_METHODS",
    "get_method",
    "pca_project",
    "prepare_transition",
    "sample_tokens",
    "adjacent_profile",
    "pairwise_layer_ot",
    "entropy_profile",
    "profile_shape",
    "shape_table",
    "PROFILE_SOLVER",
    "DepthStudy",
    "depth_study",
    "solver_accuracy",
    "has_interior_minimum",
    "mid_depth_dip",
    "entropy_dip_bootstrap",
]

BASES = ("per-layer-pca", "shared-pca", "none")
NORMALIZATIONS = ("row", "layer", "none")
ESTIMATORS = ("sinkhorn", "divergence", "exact")


@dataclass(frozen=True)
class ProfileMethod:
    r"""How the two clouds of a transition are prepared and compared.

    Parameters
    ----------
    name : str
        The method's name (the key in :data:`PROFILE_METHODS` for a preset).
    basis : {"none", "per-layer-pca", "shared-pca"}
        The basis the states are projected on before normalising.
    n_components : int
        PCA components when a basis is used.
    normalize : {"row", "layer", "none"}
        ``"row"``: unit-norm tokens; ``"layer"``: divide by the layer's mean norm.
    estimator : {"sinkhorn", "divergence", "exact"}
        ``"sinkhorn"``: :math:`\langle P, C\rangle`; ``"divergence"``: the debiased
        :math:`S_\varepsilon`; ``"exact"``: :math:`W_2^2`.
    reg : float
        Entropic regularisation (absolute, or times the mean cost with ``relative_reg``).
    relative_reg : bool
        Whether ``reg`` is relative to the mean cost.
    include_embedding : bool
        Whether the embedding → block 0 transition is included.
    """

    name: str
    basis: str = "none"  # "per-layer-pca" | "shared-pca" | "none"
    n_components: int = 50  # PCA components when a basis is used
    normalize: str = "row"  # "row": unit-norm tokens; "layer": divide by the layer's mean norm; "none"
    estimator: str = "sinkhorn"  # "sinkhorn": <P, C>; "divergence": debiased S_eps; "exact": W2^2
    reg: float = 0.1  # entropic regularisation (absolute, or × mean cost if relative_reg)
    relative_reg: bool = False
    include_embedding: bool = False  # whether the embedding → block 0 transition is included

    def __post_init__(self) -> None:
        check_choice(self.basis, "basis", BASES)
        check_choice(self.normalize, "normalize", NORMALIZATIONS)
        check_choice(self.estimator, "estimator", ESTIMATORS)
        check_int(self.n_components, "n_components", minimum=1)
        check_positive(self.reg, "reg")


PROFILE_METHODS: dict[str, ProfileMethod] = {
    m.name: m
    for m in (
        ProfileMethod("published", basis="per-layer-pca", normalize="row", estimator="sinkhorn"),
        ProfileMethod("shared-basis", basis="shared-pca", normalize="row", estimator="sinkhorn"),
        ProfileMethod("corrected", normalize="row", estimator="divergence", include_embedding=True),
        ProfileMethod("raw-scale", normalize="none", estimator="divergence", relative_reg=True, include_embedding=True),
        ProfileMethod("layer-scale", normalize="layer", estimator="divergence", relative_reg=True, include_embedding=True),
    )
}


def get_method(method: str | ProfileMethod) -> ProfileMethod:
    """Return a preset :class:`ProfileMethod` by name (or the method itself).

    Parameters
    ----------
    method : str or ProfileMethod
        A key of :data:`PROFILE_METHODS`, or a method.

    Returns
    -------
    ProfileMethod
        The method.
    """
    if isinstance(method, ProfileMethod):
        return method
    check_choice(method, "method", PROFILE_METHODS)
    return PROFILE_METHODS[method]


# --------------------------------------------------------------------------- preparation
def pca_project(z: torch.Tensor, n_components: int) -> torch.Tensor:
    """Project ``z [n, d]`` on its top principal components (centred), ``[n, min(k, d, n)]``.

    Computed in float64 from the eigendecomposition of the ``d × d`` covariance (or of the
    ``n × n`` Gram matrix when ``n < d``). Signs follow scikit-learn's convention (the largest
    loading of each component is positive), so the result is deterministic.

    Parameters
    ----------
    z : torch.Tensor, [n, d]
        Points as rows.
    n_components : int
        Number ``k`` of components.

    Returns
    -------
    torch.Tensor, [n, min(k, d, n)]
        The centred points' coordinates on the components.
    """
    zc = z.double() - z.double().mean(0, keepdim=True)
    n, d = zc.shape
    k = min(n_components, n, d)
    if n >= d:
        _, vecs = torch.linalg.eigh(zc.T @ zc)  # ascending eigenvalues
        comps = vecs[:, -k:].flip(1).T  # [k, d]
    else:
        _, vecs = torch.linalg.eigh(zc @ zc.T)  # [n, n]
        comps = vecs[:, -k:].flip(1).T @ zc  # [k, d]: right singular vectors, unnormalised
        comps = comps / comps.norm(dim=1, keepdim=True).clamp_min(1e-300)
    signs = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))
    return (zc @ (comps * signs).T).float()  # [n, k]


def _normalize(z: torch.Tensor, how: str) -> torch.Tensor:
    if how == "row":
        return z / z.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    if how == "layer":
        return z / z.norm(dim=-1).mean().clamp_min(1e-12)
    return z


def prepare_transition(
    states: torch.Tensor, src: int, idx: torch.Tensor | None, method: ProfileMethod
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the two clouds ``(x, y)``, each ``[len(idx), k]``, of transition ``src → src+1``.

    PCA (when the method uses it) is fitted on all tokens of the layer(s), as published;
    then tokens are normalised and the sampled tokens ``idx`` — the same in both layers — kept.

    Parameters
    ----------
    states : torch.Tensor, [n_states, n_tokens, d_model]
        The token states of every state (0 = embedding).
    src : int
        The source state ``ℓ`` of the transition.
    idx : torch.Tensor, [n_samples], optional
        Indices of the sampled tokens (:func:`sample_tokens`); None keeps every token.
    method : ProfileMethod
        The preparation.

    Returns
    -------
    x, y : torch.Tensor, [n_samples, k]
        The clouds of states ``ℓ`` and ``ℓ + 1``.
    """
    a, b = states[src].float(), states[src + 1].float()  # [n_tokens, d_model]
    if method.basis == "per-layer-pca":
        a, b = pca_project(a, method.n_components), pca_project(b, method.n_components)
    elif method.basis == "shared-pca":
        both = pca_project(torch.cat([a, b]), method.n_components)  # [2 n_tokens, k]
        a, b = both[: a.shape[0]], both[a.shape[0]:]
    a, b = _normalize(a, method.normalize), _normalize(b, method.normalize)
    return (a, b) if idx is None else (a[idx], b[idx])


#: Solver settings for depth profiles. Adjacent layers hold nearly the same cloud, so the plan
#: is close to a permutation and Sinkhorn's marginal error decays slowly (about as k^-0.8) at
#: reg = 0.1; at an L1 marginal error of 1e-4 the cost is within about 2e-4 (relative) of its
#: converged value, far below the differences between layers. Every row records `converged`
#: and `marginal_error`, and the chapter measures the cost error against a tight solve.
PROFILE_SOLVER = dict(tol=1e-4, max_iter=1000)


def _solve(x: torch.Tensor, y: torch.Tensor, method: ProfileMethod, device: Any, solver_kw: dict):
    if method.estimator == "exact":
        return solve(x, y, method="exact", warn=False)
    kw = {**PROFILE_SOLVER, **solver_kw}
    return solve(x, y, method=method.estimator, reg=method.reg, relative_reg=method.relative_reg, device=device,
                 warn=False, **kw)


def _batch_size(batch_size: int | None, device: Any) -> int:
    """Transitions per solver call: 1 on CPU, 8 on a GPU, unless given.

    On a CPU one kernel of 1,000 × 1,000 stays in cache across iterations and a stack of them
    does not: solving MiniLM's 6 transitions one at a time took 0.42 s against 0.97 s batched
    (n = 1,024). A GPU wants the batch.
    """
    if batch_size is not None:
        return check_int(batch_size, "batch_size", minimum=1)
    return 8 if torch.device(device or "cpu").type == "cuda" else 1


def _row_converged(res, j: int, method: ProfileMethod, solver_kw: dict) -> bool:
    """Whether problem ``j`` of a batched solve met the tolerance (``res.converged`` is for the batch)."""
    if method.estimator == "exact":
        return bool(res.converged)
    tol = {**PROFILE_SOLVER, **solver_kw}["tol"]
    return bool(float(res.marginal_error[j]) < tol)


def sample_tokens(n_tokens: int, n_samples: int, seed: int) -> torch.Tensor:
    """Indices ``[min(n_samples, n_tokens)]`` of a seeded sample of tokens without replacement, sorted.

    The one token sampler of the depth profiles (chapter 1) and of the scale study (chapter 4):
    the same ``seed`` draws the same tokens for every transition of a profile.

    Parameters
    ----------
    n_tokens : int
        Number of tokens to sample from.
    n_samples : int
        Number of tokens wanted.
    seed : int
        Seed of the sample.

    Returns
    -------
    torch.Tensor of int64, [min(n_samples, n_tokens)]
        Sorted token indices.
    """
    g = torch.Generator().manual_seed(int(seed))
    n = min(n_samples, n_tokens)
    return torch.randperm(n_tokens, generator=g)[:n].sort().values


def _as_states(acts: Any) -> tuple[torch.Tensor, str | None]:
    """Accept an :class:`~otlens.activations.Activations` or a raw ``[n_states, n_tokens, d]`` stack."""
    if hasattr(acts, "states"):
        return acts.states, getattr(acts, "model", None)
    return as_stack(acts, "states", min_points=2), None


# --------------------------------------------------------------------------- profiles
def adjacent_profile(
    acts: Any,
    *,
    method: str | ProfileMethod = "published",
    n_samples: int = 1000,
    seeds: Iterable[int] = (0,),
    model: str | None = None,
    trained: bool = True,
    batch_size: int | None = None,
    device: Any = None,
    progress: bool = True,
    **solver_kw,
) -> pd.DataFrame:
    """OT cost between adjacent layers, for every transition and seed (tidy table).

    Parameters
    ----------
    acts : Activations or tensor, [n_states, n_tokens, d_model]
        Token states; state 0 is the embedding output.
    method : str or ProfileMethod
        A preset name from :data:`PROFILE_METHODS` or a custom method.
    n_samples : int
        Tokens sampled (the same indices in both layers of a transition).
    seeds : iterable of int
        One profile per seed (a different token sample each).
    model, trained :
        Labels for the table (``model`` defaults to the activations' model name).
    batch_size : int, optional
        Transitions solved together in one batched Sinkhorn call (default: 1 on CPU, where
        separate kernels stay in cache, and 8 on a GPU).
    device : str, optional
        Where the solver runs (``"cuda"`` on a GPU).
    progress : bool
        Show a progress bar.
    **solver_kw
        Overrides of :data:`PROFILE_SOLVER` (``max_iter``, ``tol``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per (seed, transition): ``layer`` is the source state index ``ℓ`` of the
        transition ``ℓ → ℓ+1``; ``metric`` is ``"ot_cost"``, ``"ot_divergence"`` or
        ``"w2_squared"``; also ``n_samples``, ``n_iter``, ``converged``, ``marginal_error``.
    """
    m = get_method(method)
    states, name = _as_states(acts)
    n_states, n_tokens = states.shape[0], states.shape[1]
    n_samples = check_int(n_samples, "n_samples", minimum=2)
    batch_size = _batch_size(batch_size, device)
    seeds = [check_int(s, "seeds", minimum=0) for s in seeds]
    if not seeds:
        raise ValueError("`seeds` must hold at least one seed; got none")
    first = 0 if m.include_embedding else 1
    if n_states - first < 2:
        raise ValueError(f"`acts` must hold at least two layers to compare; got {n_states} state(s)")
    sources = list(range(first, n_states - 1))
    metric = {"sinkhorn": "ot_cost", "divergence": "ot_divergence", "exact": "w2_squared"}[m.estimator]
    rows = []
    bar = tqdm(total=len(seeds) * len(sources), desc=f"{model or name} · {m.name}", disable=not progress, leave=False)
    # PCA and normalisation do not depend on the token sample: prepare each transition once
    clouds = {s: prepare_transition(states, s, None, m) for s in sources}  # s -> ([n_tokens, k], [n_tokens, k])
    for seed in seeds:
        idx = sample_tokens(n_tokens, n_samples, seed)
        for start in range(0, len(sources), batch_size):
            chunk = sources[start : start + batch_size]
            x = torch.stack([clouds[s][0][idx] for s in chunk])  # [b, n, k]
            y = torch.stack([clouds[s][1][idx] for s in chunk])
            res = _solve(x, y, m, device, solver_kw)
            for j, src in enumerate(chunk):
                rows.append(dict(
                    experiment="adjacent_ot", model=model or name, trained=trained, method=m.name, layer=src,
                    seed=seed, metric=metric, value=float(res.cost[j]), n_samples=int(idx.numel()),
                    n_iter=res.n_iter, converged=_row_converged(res, j, m, solver_kw),
                    marginal_error=float(res.marginal_error[j]),
                ))
            bar.update(len(chunk))
    bar.close()
    return pd.DataFrame(rows)


def pairwise_layer_ot(
    acts: Any,
    *,
    method: str | ProfileMethod = "corrected",
    n_samples: int = 512,
    seed: int = 0,
    batch_size: int | None = None,
    device: Any = None,
    progress: bool = True,
    **solver_kw,
) -> np.ndarray:
    """OT between the clouds of every pair of states, a symmetric ``[n_states, n_states]`` matrix.

    Uses the same preparation as :func:`adjacent_profile` (for PCA-based methods the pair's
    layers play the roles of ``ℓ`` and ``ℓ+1``); the diagonal is 0.

    Parameters
    ----------
    acts : Activations or tensor, [n_states, n_tokens, d_model]
        The token states.
    method : str or ProfileMethod
        The preparation and estimator (:data:`PROFILE_METHODS`).
    n_samples : int
        Tokens sampled (the same in every state).
    seed : int
        Seed of the token sample.
    batch_size : int, optional
        Pairs solved together in one batched call (as in :func:`adjacent_profile`).
    device : str, optional
        Where the solver runs.
    progress : bool
        Show a progress bar.
    **solver_kw
        Overrides of :data:`PROFILE_SOLVER` (``max_iter``, ``tol``, ...).

    Returns
    -------
    numpy.ndarray, [n_states, n_states]
        The OT value of every pair of states.
    """
    m = get_method(method)
    states, _ = _as_states(acts)
    n = states.shape[0]
    idx = sample_tokens(states.shape[1], check_int(n_samples, "n_samples", minimum=2), seed)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    batch_size = _batch_size(batch_size, device)
    out = np.zeros((n, n))
    for start in tqdm(range(0, len(pairs), batch_size), desc="layer pairs", disable=not progress, leave=False):
        chunk = pairs[start : start + batch_size]
        clouds = [prepare_transition(torch.stack([states[i], states[j]]), 0, idx, m) for i, j in chunk]
        res = _solve(torch.stack([c[0] for c in clouds]), torch.stack([c[1] for c in clouds]), m, device, solver_kw)
        for k, (i, j) in enumerate(chunk):
            out[i, j] = out[j, i] = float(res.cost[k])
    return out


def entropy_profile(
    acts: Any,
    *,
    model: str | None = None,
    trained: bool = True,
    seed: int = 0,
    alpha: float = 1.0,
) -> pd.DataFrame:
    """Both entropy definitions for every state (tidy table; ``layer`` = state index, 0 = embedding).

    ``norm_entropy`` is the 2025 study's entropy of token norms, normalised by ``log N``;
    ``prompt_entropy`` and ``dataset_entropy`` are matrix-based Rényi entropies of order
    ``alpha`` :cite:`giraldo:14` of each text's token Gram matrix (averaged over texts) and of
    the mean-pooled text vectors, normalised by ``log(min(N, D))`` :cite:`skean:25`.

    Parameters
    ----------
    acts : Activations
        The model's activations.
    model : str, optional
        Model name for the table (default: the activations').
    trained : bool
        Label for the table.
    seed : int
        Label for the table (the twin's initialisation seed).
    alpha : float
        Order of the Rényi entropies.

    Returns
    -------
    pandas.DataFrame
        Tidy rows, metrics ``norm_entropy``, ``prompt_entropy`` and ``dataset_entropy``.
    """
    if not hasattr(acts, "states"):
        raise ValueError("`acts` must be an Activations object (text boundaries are needed)")
    states = acts.states
    values = {
        "norm_entropy": norm_entropy(states, normalize=True),
        "prompt_entropy": prompt_entropy(states, acts.text_index, alpha=alpha),
        "dataset_entropy": dataset_entropy(acts.pooled(), alpha=alpha),
    }
    method = {"norm_entropy": "published", "prompt_entropy": "matrix-renyi", "dataset_entropy": "matrix-renyi"}
    rows = [
        dict(experiment="entropy", model=model or acts.model, trained=trained, method=method[k], layer=layer,
             seed=seed, metric=k, value=float(v[layer]))
        for k, v in values.items()
        for layer in range(states.shape[0])
    ]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- shape
def profile_shape(values: Sequence[float]) -> dict[str, float]:
    """Summary statistics of one depth profile (transitions in order).

    Parameters
    ----------
    values : sequence of float
        The profile, one value per transition.

    Returns
    -------
    dict of str to float
        ``edge_ratio``: ``min(first, last) / median(interior)`` — above 1 when both ends exceed
        the middle (a U); ``first_ratio`` and ``last_ratio`` each end over the interior median;
        ``argmin_frac``: where the minimum sits, 0 = first transition, 1 = last; ``cv``: the
        coefficient of variation (flatness); ``roughness``: mean absolute second difference over
        the mean (erratic profiles score high).
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size < 3:
        raise ValueError(f"`values` must be a 1-D profile of at least 3 transitions; got shape {v.shape}")
    mid = float(np.median(v[1:-1]))
    scale = float(np.mean(np.abs(v))) or 1.0
    return dict(
        edge_ratio=min(v[0], v[-1]) / mid if mid else np.nan,
        first_ratio=v[0] / mid if mid else np.nan,
        last_ratio=v[-1] / mid if mid else np.nan,
        argmin_frac=float(np.argmin(v)) / (v.size - 1),
        cv=float(np.std(v) / scale),
        roughness=float(np.mean(np.abs(np.diff(v, 2))) / scale) if v.size >= 3 else np.nan,
    )


def shape_table(df: pd.DataFrame, *, by: Sequence[str] = ("model", "trained", "method", "metric")) -> pd.DataFrame:
    """:func:`profile_shape` of every profile in a tidy table, one row per group and seed.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy profiles (:func:`adjacent_profile`).
    by : sequence of str
        The columns that, with ``seed``, identify a profile.

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, ``seed`` and one column per statistic of :func:`profile_shape`.
    """
    rows = []
    for key, g in df.groupby(list(by) + ["seed"], sort=False):
        stats = profile_shape(g.sort_values("layer")["value"].to_numpy())
        rows.append(dict(zip(list(by) + ["seed"], key), **stats))
    return pd.DataFrame(rows)


def has_interior_minimum(values: Sequence[float], *, margin: float = 0.01) -> bool:
    """Whether a per-layer curve dips in the middle.

    Parameters
    ----------
    values : sequence of float
        The curve.
    margin : float
        Fraction of the curve's range by which the minimum must lie below both ends.

    Returns
    -------
    bool
        True when the minimum is not at either end and lies below both ends by more than
        ``margin`` × the curve's range.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size < 3:
        raise ValueError(f"`values` must be a 1-D curve of at least 3 layers; got shape {v.shape}")
    k = int(np.argmin(v))
    gap = margin * (v.max() - v.min())
    return bool(0 < k < v.size - 1 and v[k] < v[0] - gap and v[k] < v[-1] - gap)


def mid_depth_dip(values: Sequence[float]) -> float:
    r"""How far a per-layer curve's minimum over its middle third lies below its minimum elsewhere.

    With layers :math:`0, \dots, L` and :math:`M = \{k : L/3 \le k \le 2L/3\}`,

    .. math:: \mathrm{dip} = \min_{k \notin M} v_k - \min_{k \in M} v_k,

    positive exactly when the curve's lowest point lies in the middle third (a minimum at layer 1
    of 18 or at layer 5 of 6 does not count), and as large as the bottleneck is deep.

    Parameters
    ----------
    values : sequence of float
        The curve, one value per layer ``0..L``.

    Returns
    -------
    float
        The dip.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size < 3:
        raise ValueError(f"`values` must be a 1-D curve of at least 3 layers; got shape {v.shape}")
    k = np.arange(v.size)
    last = v.size - 1
    mid = (3 * k >= last) & (3 * k <= 2 * last)
    if mid.all():  # 3 layers: the middle one only
        mid = k == v.size // 2
    return float(v[~mid].min() - v[mid].min())


def _centred_gram_entropy(k: torch.Tensor, d_model: int, alpha: float, counts: torch.Tensor | None = None) -> torch.Tensor:
    """Normalised Rényi entropy of centred, unit-norm rows, from their raw Gram matrices ``[B, u, u]``.

    The same number as :func:`otlens.entropy.dataset_entropy` of the rows, computed in the
    ``u x u`` space, so a bootstrap resample of a few hundred texts costs a few small
    eigendecompositions whatever the width. ``counts`` ``[u]`` says how often each row is drawn
    (a resample with replacement; default: once each): the rows are the ``u`` distinct ones and
    the result is that of the ``n = counts.sum()`` drawn rows. Centring subtracts the weighted mean
    (``K - K w 1^T / n - 1 w^T K / n + w^T K w / n^2``), and the spectrum of the ``n x n``
    normalised Gram ``E K_u E^T`` (``E`` the ``n x u`` indicator of the draws) is that of
    ``W^(1/2) K_u W^(1/2)`` plus zeros, with ``W = diag(counts)``: the ``n x n`` matrix is never
    formed (at ``n = 512`` texts a resample holds about 330 distinct ones: about six times fewer
    operations).
    """
    u = k.shape[-1]
    w = k.new_ones(u) if counts is None else counts.to(k.dtype)
    n = float(w.sum())
    if min(n, d_model) < 2:
        return k.new_zeros(k.shape[0])
    kw = k @ w  # [B, u]
    kc = k - (kw[:, :, None] + kw[:, None, :]) / n + (kw @ w)[:, None, None] / n**2
    d = torch.diagonal(kc, dim1=-2, dim2=-1).clamp_min(0).sqrt()  # row norms after centring
    scale = torch.diagonal(k, dim1=-2, dim2=-1).clamp_min(0).sqrt().amax(-1, keepdim=True)
    nz = d > max(64, n) * torch.finfo(k.dtype).eps * scale  # rows at the mean are zero rows
    inv = torch.where(nz, 1.0 / d.clamp_min(torch.finfo(k.dtype).tiny), 0.0)
    root = w.sqrt()
    kn = kc * (inv * root)[:, :, None] * (inv * root)[:, None, :]
    lam = torch.linalg.eigvalsh(kn)
    lam = torch.where(lam > lam[:, -1:] * n * torch.finfo(k.dtype).eps, lam, 0.0)
    total = lam.sum(-1, keepdim=True)
    ent = _spectrum_entropy(lam / total.clamp_min(torch.finfo(k.dtype).tiny), alpha)
    return torch.where(total[:, 0] > 0, ent, 0.0) / math.log(min(n, d_model))


@contextmanager
def _one_thread():
    """Run many tiny tensor operations on one thread (thread synchronisation would dominate them)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@torch.no_grad()
def entropy_dip_bootstrap(acts: Any, *, n_resamples: int = 200, seed: int = 0, model: str | None = None,
                          trained: bool = True, init_seed: int = 0, alpha: float = 1.0) -> pd.DataFrame:
    """:func:`mid_depth_dip` of each entropy curve, over bootstrap resamples of the texts.

    Resample ``r`` draws the texts with replacement (the same draws, by ``seed``, for every
    model and twin, so their dips can be paired) and recomputes the norm entropy (over the drawn
    texts' tokens), the prompt entropy (mean over the drawn texts) and the dataset entropy
    (of the drawn texts' pooled vectors).

    Parameters
    ----------
    acts : Activations
        The model's activations.
    n_resamples : int
        Number of bootstrap resamples.
    seed : int
        Seed of the resamples.
    model : str, optional
        Model name for the table (default: the activations').
    trained : bool
        Label for the table.
    init_seed : int
        The twin's initialisation seed (the table's ``seed``).
    alpha : float
        Order of the Rényi entropies.

    Returns
    -------
    pandas.DataFrame
        Tidy rows ``experiment="entropy_dip"``, ``layer=-1``, ``seed=init_seed``,
        ``resample=r`` (``-1``: all texts once), metric, value.
    """
    with _one_thread():
        return _entropy_dip_bootstrap(acts, n_resamples=n_resamples, seed=seed, model=model, trained=trained,
                                      init_seed=init_seed, alpha=alpha)


def _entropy_dip_bootstrap(acts: Any, *, n_resamples: int, seed: int, model: str | None, trained: bool,
                           init_seed: int, alpha: float) -> pd.DataFrame:
    n_resamples = check_int(n_resamples, "n_resamples", minimum=2)
    alpha = check_positive(alpha, "alpha")
    states, text_index = acts.states, acts.text_index
    n_layers, n_texts = states.shape[0], int(acts.n_texts)
    norms = states.to(torch.float64).norm(dim=-1)  # [n_layers, n_tokens]
    per_text_norm = torch.zeros(n_layers, n_texts, dtype=torch.float64)
    per_text_nlogn = torch.zeros_like(per_text_norm)
    per_text_norm.index_add_(1, text_index, norms)
    per_text_nlogn.index_add_(1, text_index, norms * torch.log(norms.clamp_min(1e-300)))
    n_tok = torch.bincount(text_index, minlength=n_texts).to(torch.float64)
    # each text's prompt entropy, once (text_index is non-decreasing: a text is a slice)
    ends = torch.cumsum(n_tok.long(), 0).tolist()
    prompt = torch.full((n_layers, n_texts), float("nan"), dtype=torch.float64)
    for i, (a, b) in enumerate(zip([0] + ends[:-1], ends)):
        if b - a >= 2:
            prompt[:, i] = _renyi_batched(states[:, a:b].to(torch.float64), alpha, True)
    pooled = acts.pooled().to(torch.float64)  # [n_layers, n_texts, d_model]
    gram = pooled @ pooled.mT  # [n_layers, n_texts, n_texts]: every resample's dataset entropy works in it
    d_model = pooled.shape[-1]
    keep = torch.isfinite(prompt[0])
    rng = np.random.default_rng(seed)
    draws = [np.arange(n_texts)] + [rng.integers(0, n_texts, n_texts) for _ in range(n_resamples)]
    method = {"norm_entropy": "published", "prompt_entropy": "matrix-renyi", "dataset_entropy": "matrix-renyi"}
    rows = []
    for r, idx in enumerate(draws):
        w = torch.as_tensor(np.bincount(idx, minlength=n_texts), dtype=torch.float64)
        s = per_text_norm @ w  # sum of the drawn tokens' norms, per layer
        # H = -sum_i (n_i / S) log(n_i / S) = log S - (sum_i n_i log n_i) / S, normalised by log N
        h_norm = (torch.log(s) - (per_text_nlogn @ w) / s) / math.log(float(n_tok @ w))
        h_prompt = (prompt[:, keep] @ w[keep]) / w[keep].sum()
        uniq = np.flatnonzero(w.numpy())  # the distinct texts drawn, with their counts as weights
        h_data = _centred_gram_entropy(gram[:, uniq][:, :, uniq], d_model, alpha, counts=w[uniq])
        for metric, curve in (("norm_entropy", h_norm), ("prompt_entropy", h_prompt), ("dataset_entropy", h_data)):
            rows.append(dict(experiment="entropy_dip", model=model or acts.model, trained=trained,
                             method=method[metric], layer=-1, seed=init_seed, metric=metric,
                             value=mid_depth_dip(curve.cpu().numpy()), resample=r - 1))
    return pd.DataFrame(rows)


@dataclass(frozen=True, eq=False)
class DepthStudy(StudyResult):
    """What :func:`depth_study` returns: chapter 1's tables for one model or several (frozen).

    Attributes
    ----------
    profiles : pandas.DataFrame
        The adjacent-layer OT profiles (:func:`adjacent_profile` rows), every method and run.
    entropies : pandas.DataFrame
        The entropy profiles (:func:`entropy_profile` rows) and, when bootstrapped, the
        ``experiment="entropy_dip"`` rows of :func:`entropy_dip_bootstrap`.

    ``profiles, entropies = depth_study(...)`` still unpacks (iterating yields the two tables).
    :meth:`describe` is chapter 1's verdict on :meth:`to_frame`.
    """

    profiles: pd.DataFrame
    entropies: pd.DataFrame

    chapter = "01_ot_across_depth"

    def to_frame(self) -> pd.DataFrame:
        """The profiles then the entropies, one tidy table (rows in that order).

        Returns
        -------
        pandas.DataFrame
            :attr:`profiles` and :attr:`entropies` concatenated, with a fresh index.
        """
        return pd.concat([self.profiles, self.entropies], ignore_index=True)

    def __iter__(self):
        return iter((self.profiles, self.entropies))

    @classmethod
    def concat(cls, studies: Iterable["DepthStudy"]) -> "DepthStudy":
        """One study of several models: their profiles, then their entropies, in the given order.

        Parameters
        ----------
        studies : iterable of DepthStudy
            One result per model, as :func:`depth_study` returns them.

        Returns
        -------
        DepthStudy
            The profiles of every study, then the entropies of every study.

        Raises
        ------
        ValueError
            If ``studies`` is empty or holds something other than a :class:`DepthStudy`.
        """
        studies = list(studies)
        if not studies or not all(isinstance(s, DepthStudy) for s in studies):
            raise ValueError(f"`studies` must be a non-empty sequence of DepthStudy; got {studies!r:.200}")
        return cls(pd.concat([s.profiles for s in studies], ignore_index=True),
                   pd.concat([s.entropies for s in studies], ignore_index=True))


def depth_study(
    spec: str,
    texts: Sequence[str],
    *,
    methods: Sequence[str | ProfileMethod] = tuple(PROFILE_METHODS),
    seeds: Sequence[int] = (0, 1, 2),
    n_samples: int = 1000,
    max_length: int = 64,
    device: Any = None,
    progress: bool = True,
    entropy_resamples: int = 0,
) -> DepthStudy:
    """Depth profiles and entropies of a model and its untrained twins, for every method.

    The trained model gives one profile per seed (a different token sample each); the
    untrained twin of seed ``s`` is initialised with ``s`` and sampled with ``s``, so its spread
    over seeds covers both the initialisation and the sampling. Activations come from
    :func:`~otlens.activations.extract_activations` (cached on disk).

    With ``entropy_resamples > 0`` the entropies table also holds, for every run, the
    :func:`entropy_dip_bootstrap` rows (``experiment="entropy_dip"``, the same text resamples for
    the model and every twin), from which the bottleneck claim is decided.

    Parameters
    ----------
    spec : str
        The model (see :func:`otlens.models.load_model`).
    texts : sequence of str
        The texts.
    methods : sequence of str or ProfileMethod
        The profile methods (default: every one of :data:`PROFILE_METHODS`).
    seeds : sequence of int
        Token-sample seeds of the trained model, and the untrained twins' seeds.
    n_samples : int
        Tokens sampled per transition.
    max_length : int
        Token limit per text.
    device : str, optional
        Where the solver runs.
    progress : bool
        Show a progress bar over the runs.
    entropy_resamples : int
        Bootstrap resamples of the texts for :func:`entropy_dip_bootstrap` (0: none).

    Returns
    -------
    DepthStudy
        ``.profiles`` and ``.entropies``: tidy tables from :func:`adjacent_profile` and
        :func:`entropy_profile`, ``model`` = ``spec``; ``.to_frame()`` both, ``.describe()`` the
        chapter's verdict on them.
    """
    seeds = [check_int(s, "seeds", minimum=0) for s in seeds]
    if not seeds:
        raise ValueError("`seeds` must hold at least one seed; got none")
    methods = [get_method(m) for m in methods]
    runs = [(True, 0, seeds)] + [(False, s, [s]) for s in seeds]
    profiles, entropies = [], []
    for trained, init_seed, sample_seeds in tqdm(runs, desc=spec, disable=not progress, leave=False):
        acts = extract_activations(spec, list(texts), trained=trained, seed=init_seed, max_length=max_length,
                                   progress=False)
        for m in methods:
            profiles.append(adjacent_profile(acts, method=m, n_samples=n_samples, seeds=sample_seeds, model=spec,
                                             trained=trained, device=device, progress=False))
        entropies.append(entropy_profile(acts, model=spec, trained=trained, seed=init_seed))
        if entropy_resamples:
            entropies.append(entropy_dip_bootstrap(acts, n_resamples=entropy_resamples, model=spec, trained=trained,
                                                   init_seed=init_seed))
    return DepthStudy(pd.concat(profiles, ignore_index=True), pd.concat(entropies, ignore_index=True))


def solver_accuracy(
    acts: Any,
    *,
    method: str | ProfileMethod = "corrected",
    n_samples: int = 500,
    seed: int = 0,
    factor: int = 4,
    device: Any = None,
) -> dict[str, float]:
    """How much the profile's solver settings (:data:`PROFILE_SOLVER`) limit its accuracy.

    Solves every transition twice, with :data:`PROFILE_SOLVER` and with ``factor`` times more
    iterations and a 100 times tighter tolerance.

    Parameters
    ----------
    acts : Activations or tensor, [n_states, n_tokens, d_model]
        The token states.
    method : str or ProfileMethod
        The profile's method.
    n_samples : int
        Tokens sampled.
    seed : int
        Seed of the token sample.
    factor : int
        How many times more iterations the tight solve may run.
    device : str, optional
        Where the solver runs.

    Returns
    -------
    dict of str to float
        ``max_rel_error`` (the largest relative change of a value), ``marginal_error`` and
        ``marginal_error_tight`` (the largest marginal errors of both solves), ``n_iter`` and
        ``n_iter_tight``.
    """
    factor = check_int(factor, "factor", minimum=2)
    tight = dict(tol=PROFILE_SOLVER["tol"] / 100, max_iter=PROFILE_SOLVER["max_iter"] * factor)
    base = adjacent_profile(acts, method=method, n_samples=n_samples, seeds=[seed], device=device, progress=False)
    ref = adjacent_profile(acts, method=method, n_samples=n_samples, seeds=[seed], device=device, progress=False,
                           **tight)
    rel = (base.value - ref.value).abs() / ref.value.abs().clip(lower=1e-12)
    return dict(
        max_rel_error=float(rel.max()),
        marginal_error=float(base.marginal_error.max()),
        marginal_error_tight=float(ref.marginal_error.max()),
        n_iter=int(base.n_iter.max()),
        n_iter_tight=int(ref.n_iter.max()),
    )
