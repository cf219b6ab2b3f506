r"""Hierarchical Refinement (HiRef): a bijective OT map in linear space.

For two clouds of the same size :math:`n` with uniform weights, the optimal coupling of
the assignment problem

.. math::

    \min_{\sigma \in S_n} \frac1n \sum_{i=1}^n c(x_i, y_{\sigma(i)})

is a permutation (the Monge map). :cite:t:`halmos:25` observe that the factors of an optimal
low-rank coupling *co-cluster* each point with its Monge image, so the problem can be cut
into independent sub-problems: split :math:`X` and :math:`Y` into blocks of equal sizes that
are paired, and recurse inside every pair of blocks until the blocks are small enough to be
solved exactly.

One split
    A block pair :math:`(X_b, Y_b)` of :math:`n_b` points each is split in two by the rank-2
    latent-coupling problem with fixed inner marginals :math:`g = (c_0, c_1)/n_b`,
    :math:`c_0 = \lceil n_b/2 \rceil`, :math:`c_1 = \lfloor n_b/2 \rfloor`:

    .. math::

        \min_{Q \in \Pi(a, g),\, R \in \Pi(b, g)} \langle C, Q\, \mathrm{diag}(1/g)\, R^\top\rangle ,

    solved by mirror descent (a KL-proximal step on :math:`Q` and :math:`R` in turn, each
    followed by the exact projection on its marginals), as in :cite:t:`scetbon:21` and FRLC
    :cite:p:`halmos:24`. For the squared Euclidean cost the gradient needs only the centroids
    of the soft clusters,

    .. math::

        (C R\, \mathrm{diag}(1/g))_{ik} = \lVert x_i - \mu^Y_k \rVert^2 + s_k ,\qquad
        \mu^Y_k = \frac{\sum_j R_{jk}\, y_j}{g_k},

    so one iteration is a couple of linear passes over the points and nothing
    :math:`n_b \times n_b` is formed. For two clusters only the log-ratio
    :math:`z_i = \log(Q_{i0}/Q_{i1})` matters; the step on it is
    :math:`z_i \leftarrow z_i + \gamma\, x_i\cdot(\mu^Y_0 - \mu^Y_1) / \text{range}_b`
    (the step scaled by the block's gradient range, as FRLC scales by
    :math:`\lVert\nabla\rVert_\infty`), and the projection is a per-block shift of :math:`z`
    (a scalar Newton solve). The soft clusters are rounded to hard ones with the exact sizes
    :math:`c_0, c_1` (the :math:`c_0` largest :math:`z_i` go to cluster 0), so every child
    pair again holds equal numbers of points: any :math:`n` works, primes included.

Coarse splits (``split="coarse"``, the default for the Euclidean cost)
    The centroid geometry above is that of the squared Euclidean cost. For the Euclidean
    cost (:math:`W_1`) it is only a heuristic, and a poor one: optimal :math:`W_1` plans are
    not those of :math:`W_2` at large scale (moons to S-curve, n = 8,192: the exact
    :math:`W_2` map is 2.2% above the :math:`W_1` optimum, and the rank-2 splits left HiRef 2.5%
    above it, which local polishing cannot repair). A coarse split uses the cost itself: in
    every block pair, each cloud is cut by a tree of median principal cuts into :math:`m`
    balanced clusters (``clusters``, at most half the block size; both trees have the same
    shape, so the clusters' sizes agree), the clusters are matched by an exact assignment of
    their centroids under the cost (:math:`m \times m`, Hungarian), :math:`X`'s block is split
    by its tree's first cut and :math:`Y`'s block follows the matched clusters (a cluster
    matched across sizes that differ by one point is evened out by the rounding, so the
    children keep exact sizes). Every split then agrees with a coarse but exact transport
    plan. Moons to S-curve (n = 8,192, Euclidean cost): 0.1% above exact OT before polishing,
    against 4.3% with rank-2 splits (``clusters`` = 16: 3.1%, 32: 0.5%, 64 and more: < 0.1%).
    Per level it costs :math:`\log_2 m` cut passes over both clouds and one
    :math:`m \times m` assignment per block, about the time of the mirror descent.

Leaves and polishing
    Once every block holds at most ``leaf_size`` points, each block pair is solved exactly
    (Hungarian algorithm, :func:`scipy.optimize.linear_sum_assignment`) with the requested
    cost. Every hyperplane cut separates some Monge pairs (on MiniLM token clouds, d = 384,
    about 2% of the pairs per level, 10% after five levels, which left the map 29% above exact
    OT at n = 4,000). ``polish`` rounds repair this: each builds a fresh tree over the matched
    pairs' midpoints :math:`(x_i + y_{\sigma(i)})/2` (cut across each block's principal
    direction, in the top 32 principal coordinates when d > 32, at a *random* quantile in
    :math:`[1/4, 3/4]`, so its cuts fall away from the refinement's median cuts), down to
    windows of at most ``window`` pairs, and re-solves every window exactly. Each round can only
    lower the cost, since the current matching restricted to a window is feasible there.

Complexity
    :math:`\lceil\log_2(n/\text{leaf})\rceil` levels, each ``max_iter`` passes of
    :math:`O(n d)` at most, plus :math:`O(n\, \text{leaf}^2)` for the leaves, plus per polishing
    round one :math:`O(n d)` pass and :math:`O(\log(n/\text{window}))` passes over an
    :math:`n \times 32` sketch and :math:`O(n\, \text{window}^2)` for the windows: log-linear time.
    Memory is the inputs plus :math:`O(n)` integers and floats (the sketch: 32 per point) plus chunks bounded by
    ``memory_mb``; the data are never copied or reordered (points are addressed through their
    block ids).

Squared Euclidean cost is the default; ``cost="euclidean"`` uses the Euclidean cost for the
coarse splits, the exact leaves, the polishing and the reported cost (with ``split="lowrank"``
it splits by the squared-Euclidean centroid geometry, a heuristic there). The coarse splits add
the clusters' centroids, :math:`O(n d)` floats at the deepest levels (at most half a cloud's
points, in float64), and :math:`m \times m` cost blocks in batches bounded by ``memory_mb``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from .._validation import as_points, check_choice, check_int, check_positive
from ..exceptions import ConvergenceWarning
from .result import OTResult

__all__ = ["HiRefResult", "hiref", "hiref_schedule", "COSTS"]

#: Ground costs :func:`hiref` accepts.
COSTS = ("sqeuclidean", "euclidean")
#: Ways :func:`hiref` cuts a block pair in two.
SPLITS = ("auto", "lowrank", "coarse")

_GEMM_BLOCKS = 64  # up to this many blocks, per-point dot products go through one GEMM
_CACHE_BYTES = 4 * 2**20  # target size of one chunk of points in the linear passes
_SKETCH_DIM = 32  # polishing windows are cut in this many principal coordinates of the pair midpoints
_SKETCH_SAMPLE = 2048  # pairs sampled to find those coordinates


@dataclass(frozen=True)
class HiRefResult(OTResult):
    """:class:`~otlens.ot.OTResult` of :func:`hiref`, plus the bijection.

    Attributes
    ----------
    permutation : torch.Tensor, [n], int64
        ``y[permutation[i]]`` is the image of ``x[i]``: the coupling is
        :math:`P_{i, \\sigma(i)} = 1/n`.
    schedule : tuple of int
        The largest block size at each level, from ``n`` down to the leaves (solved exactly).
    level_iters : tuple of int
        Mirror-descent iterations run at each splitting level (0 for a ``"coarse"`` split).
    """

    permutation: torch.Tensor | None = None
    schedule: tuple[int, ...] = field(default_factory=tuple)
    level_iters: tuple[int, ...] = field(default_factory=tuple)


def hiref_schedule(n: int, *, leaf_size: int | None = None, d: int = 1, memory_mb: float = 256.0) -> tuple[int, ...]:
    """Block sizes of the refinement levels: ``n``, then halved (rounded up) down to the leaves.

    ``leaf_size=None`` picks it from the memory budget: 256 when ``d >= 64`` (fewer levels, so
    fewer cut Monge pairs, where cuts are costly) and a batch of 64 such leaves fits, else the
    largest of 128, 64, 32, 16, 8
    whose leaf batch (a few thousand ``leaf × leaf`` cost blocks, plus their points in ``d``
    dimensions) fits in ``memory_mb``. The rank of every split is 2; the last entry is the size
    of the blocks solved exactly.

    Parameters
    ----------
    n : int
        Number of points of each cloud.
    leaf_size : int, optional
        Size of the blocks solved exactly; ``None`` picks it from ``memory_mb`` (above).
    d : int
        Dimension of the points.
    memory_mb : float
        Budget for a batch of leaves, in MiB.

    Returns
    -------
    tuple of int
        The largest block size at each level, from ``n`` down to the leaves.

    Examples
    --------
    >>> hiref_schedule(1000, leaf_size=64)
    (1000, 500, 250, 125, 63)
    """
    n = check_int(n, "n", minimum=1)
    leaf = _auto_leaf(d, memory_mb) if leaf_size is None else check_int(leaf_size, "leaf_size", minimum=1)
    sizes = [n]
    while sizes[-1] > leaf:
        sizes.append((sizes[-1] + 1) // 2)
    return tuple(sizes)


def _auto_leaf(d: int, memory_mb: float) -> int:
    budget = memory_mb * 2**20
    # in high dimension every hyperplane cut separates more Monge pairs (token clouds, d=384: ~2% of
    # the pairs per level), so fewer levels pay for the larger exact leaves
    if d >= 64 and 64 * 256 * (2 * d * 4 + 256 * 8) <= budget / 2:  # a batch of 64 such leaves fits
        return 256
    for leaf in (128, 64, 32, 16, 8):
        # one batch of 256 blocks: two gathered point sets [256, leaf, d] and a float64 cost block
        if 256 * leaf * (2 * d * 4 + leaf * 8) <= budget / 2:
            return leaf
    return 4


def hiref(
    x: Any,
    y: Any,
    *,
    cost: str = "sqeuclidean",
    leaf_size: int | None = None,
    split: str = "auto",
    clusters: int = 128,
    polish: int = 6,
    window: int | None = None,
    max_iter: int = 30,
    tol: float = 1e-2,
    step: float = 2.0,
    seed: int = 0,
    memory_mb: float = 256.0,
    dtype: torch.dtype | None = None,
    device: Any = None,
    progress: bool = True,
    warn: bool = True,
) -> HiRefResult:
    r"""Bijective OT map between two equal-size clouds by Hierarchical Refinement.

    Parameters
    ----------
    x, y : array-like, [n, d]
        The two clouds (same ``n`` and ``d``; any ``n >= 1``), uniform weights.
    cost : {"sqeuclidean", "euclidean"}
        Ground cost :math:`\lVert x - y\rVert^2` or :math:`\lVert x - y \rVert`.
    leaf_size : int, optional
        Blocks of at most this many points are solved exactly. Default: chosen from
        ``memory_mb`` (see :func:`hiref_schedule`); ``1`` refines down to single points, as in
        the published algorithm.
    split : {"auto", "lowrank", "coarse"}
        How a block pair is cut in two. ``"lowrank"``: the rank-2 latent coupling of the published
        algorithm (mirror descent on the squared-Euclidean centroid geometry). ``"coarse"``: ``x``'s
        block is cut at the median of its principal direction and ``y``'s block follows an exact
        assignment between ``clusters`` balanced clusters of each (see the module notes); it uses
        the requested cost, so it suits costs the centroid geometry does not describe. ``"auto"``:
        ``"coarse"`` for ``cost="euclidean"``, ``"lowrank"`` otherwise.
    clusters : int
        Clusters per block for ``split="coarse"`` (rounded down to a power of two, and to at
        most half the block size).
    polish : int
        Rounds of exact re-solving of windows of matched pairs, each round over a fresh random
        partition (0 disables).
    window : int, optional
        Largest window of the polishing rounds (default: twice the leaf size).
    max_iter : int
        Maximum mirror-descent iterations per level.
    tol : float
        A level stops when the mean change of the soft assignments of both clouds is below it.
    step : float
        Mirror-descent step :math:`\gamma` (in units of the block's gradient range).
    seed : int
        Seed of the initial soft assignments; the result is a deterministic function of it.
    memory_mb : float
        Budget for temporary buffers (chunks of points, leaf batches), in MiB.
    dtype, device : torch.dtype, str or torch.device, optional
        Computation dtype (default: the input's float dtype, float32 for integers) and device.
        The leaves are solved on the CPU in float64.
    progress : bool
        Show a progress bar over levels.
    warn : bool
        Warn (:class:`~otlens.exceptions.ConvergenceWarning`) when some level hit ``max_iter``
        before ``tol``; the result is still a valid permutation, its ``converged`` is False.

    Returns
    -------
    HiRefResult
        ``cost`` is :math:`\frac1n\sum_i c(x_i, y_{\sigma(i)})` (float64), ``permutation`` is
        :math:`\sigma`, ``marginal_error`` is 0 (a permutation is an exact coupling), ``n_iter``
        the total number of mirror-descent iterations.

    Raises
    ------
    ValueError
        If the clouds differ in size or dimension, contain NaN / inf, or a setting is invalid.

    See Also
    --------
    otlens.ot.sinkhorn : Entropic OT with a dense (or chunked) plan, any weights, batched.
    otlens.ot.sinkhorn_divergence : The debiased entropic divergence.
    otlens.ot.exact_ot : Exact OT (network simplex), the small-case reference.
    otlens.ot.frlc : A low-rank coupling, for clouds of different sizes or weights (FRLC).
    otlens.ot.solve : One entry point (``method="hiref"`` runs this function).
    hiref_schedule : The block sizes of the levels.

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(7.0)[:, None]
    >>> r = hiref(x, x.flip(0) + 1, leaf_size=2, progress=False)
    >>> bool((r.permutation.sort().values == torch.arange(7)).all()), float(r.cost)
    (True, 1.0)
    """
    check_choice(cost, "cost", COSTS)
    check_choice(split, "split", SPLITS)
    clusters = check_int(clusters, "clusters", minimum=2)
    polish = check_int(polish, "polish", minimum=0)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    tol = check_positive(tol, "tol")
    step = check_positive(step, "step")
    seed = check_int(seed, "seed")
    memory_mb = check_positive(memory_mb, "memory_mb")
    x = as_points(x, "x", dtype=dtype, device=device)
    y = as_points(y, "y", dtype=x.dtype, device=x.device)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"`x` and `y` must hold the same number of points for a bijection; got {x.shape[0]} and {y.shape[0]}"
        )
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"`y` must have the same dimension as `x` (d={x.shape[1]}); got d={y.shape[1]}")
    n, d = x.shape
    schedule = hiref_schedule(n, leaf_size=leaf_size, d=d, memory_mb=memory_mb)
    # rows per pass: chunks of a few MiB stay in cache (the per-chunk temporaries of the segment sums
    # and dot products), 3-4x faster than chunks of the whole budget; never more than the budget allows
    row_bytes = d * x.element_size()
    chunk = max(256, min(int(memory_mb * 2**20 / (4 * row_bytes)), _CACHE_BYTES // row_bytes))
    gen = torch.Generator(device="cpu").manual_seed(seed)

    bx = torch.zeros(n, dtype=torch.long, device=x.device)  # block id of every point, original order
    by = torch.zeros(n, dtype=torch.long, device=x.device)
    sizes = torch.tensor([n], dtype=torch.long, device=x.device)
    level_iters: list[int] = []
    window = 2 * schedule[-1] if window is None else check_int(window, "window", minimum=2)
    bar = tqdm(total=len(schedule) + polish, desc="HiRef levels", disable=not progress, leave=False)
    coarse = split == "coarse" or (split == "auto" and cost == "euclidean")
    with torch.no_grad():
        for _ in schedule[:-1]:
            if coarse:
                zx, zy = _coarse_split(x, y, bx, by, sizes, clusters=clusters, cost=cost, gen=gen, chunk=chunk,
                                       memory_mb=memory_mb)
                iters = 0
            else:
                zx, zy, iters = _split_level(x, y, bx, by, sizes, max_iter=max_iter, tol=tol, step=step, gen=gen,
                                             chunk=chunk)
            level_iters.append(iters)
            bx, sizes_x = _round(zx, bx, sizes)
            by, _ = _round(zy, by, sizes)
            sizes = sizes_x
            bar.update(1)
        xo, yo = x.cpu(), y.cpu()
        perm = _solve_blocks(xo, yo, bx.cpu(), by.cpu(), cost, memory_mb)
        bar.update(1)
        for _ in range(polish):
            win = _polish_windows(x, y, perm.to(x.device), window=window, gen=gen, chunk=chunk).cpu()
            perm = _solve_blocks(xo, yo, win, win[torch.argsort(perm)], cost, memory_mb, perm=perm)
            bar.update(1)
    bar.close()
    total = _assignment_cost(xo, yo, perm, cost, chunk)
    converged = all(it < max_iter for it in level_iters)
    if warn and not converged:
        warnings.warn(
            f"HiRef: {sum(it >= max_iter for it in level_iters)} of {len(level_iters)} levels stopped at "
            f"max_iter={max_iter} before tol={tol:g}; the map is still a bijection. Raise `max_iter` or `tol`.",
            ConvergenceWarning, stacklevel=2,
        )  # fmt: skip
    c = torch.tensor(total, dtype=torch.float64)
    return HiRefResult(
        cost=c, objective=c, n_iter=int(sum(level_iters)), converged=converged,
        marginal_error=torch.zeros((), dtype=torch.float64), method="hiref",
        permutation=perm.to(x.device), schedule=schedule, level_iters=tuple(level_iters),
    )  # fmt: skip


# --------------------------------------------------------------------------- one level
def _rows(v: torch.Tensor, s: int, e: int, pair) -> torch.Tensor:
    """Rows ``s:e`` of ``v``, or of the pair midpoints ``(v_i + y_{perm_i}) / 2`` when ``pair = (y, perm)``."""
    if pair is None:
        return v[s:e]
    y, perm = pair
    return (v[s:e] + y[perm[s:e]]) * 0.5


def _segment_sum(v: torch.Tensor, w: torch.Tensor | None, block: torch.Tensor, nb: int, chunk: int,
                 pair=None) -> torch.Tensor:
    """``out[b] = sum_{i in b} w_i v_i`` (``w`` None: unweighted), chunked, accumulated in float64."""
    out = torch.zeros(nb, v.shape[1], dtype=torch.float64, device=v.device)
    for s in range(0, v.shape[0], chunk):
        vc = _rows(v, s, s + chunk, pair)
        vc = vc if w is None else vc * w[s : s + chunk, None].to(vc.dtype)
        # summed in the points' dtype within a chunk (no float64 copy of the chunk), accumulated in float64
        out += torch.zeros(nb, v.shape[1], dtype=vc.dtype, device=v.device).index_add_(0, block[s : s + chunk], vc)
    return out


def _block_dots(v: torch.Tensor, dirs: torch.Tensor, block: torch.Tensor, chunk: int, pair=None) -> torch.Tensor:
    """``u_i = v_i · dirs[block_i]`` for every point, chunked (one GEMM when there are few blocks)."""
    dirs = dirs.to(v.dtype)
    u = torch.empty(v.shape[0], dtype=v.dtype, device=v.device)
    few = dirs.shape[0] <= _GEMM_BLOCKS
    for s in range(0, v.shape[0], chunk):
        vc, bc = _rows(v, s, s + chunk, pair), block[s : s + chunk]
        if few:
            u[s : s + chunk] = (vc @ dirs.T).gather(1, bc[:, None]).squeeze(1)
        else:
            u[s : s + chunk] = (vc * dirs[bc]).sum(1)
    return u


def _project(z: torch.Tensor, block: torch.Tensor, c0: torch.Tensor, nb: int) -> torch.Tensor:
    """Shift ``z`` by one scalar per block so that ``sum_{i in b} sigmoid(z_i) = c0[b]`` (Newton)."""
    t = torch.zeros(nb, dtype=z.dtype, device=z.device)
    target = c0.to(z.dtype)
    for _ in range(30):
        s = torch.sigmoid(z + t[block])
        f = torch.zeros_like(t).index_add_(0, block, s) - target
        df = torch.zeros_like(t).index_add_(0, block, s * (1 - s))
        dt = (-f / df.clamp_min(1e-6)).clamp(-4.0, 4.0)
        t = t + dt
        if float(f.abs().max()) < 1e-3:
            break
    return z + t[block]


def _split_level(x, y, bx, by, sizes, *, max_iter, tol, step, gen, chunk):
    """Mirror descent for the rank-2 co-clustering of every block pair of one level at once."""
    nb = sizes.shape[0]
    c0, c1 = (sizes + 1) // 2, sizes // 2
    active = c1 > 0  # a block of one point is not split
    tot_x = _segment_sum(x, None, bx, nb, chunk)
    tot_y = _segment_sum(y, None, by, nb, chunk)
    # a small tilt along a random direction breaks the symmetry; mirror descent never forgets it,
    # so it stays far below the steps (each moves z by up to 2 * step). Q and R are updated
    # simultaneously: identical clouds then get identical splits at every level (hence the
    # identity map; updating them in turn lost 2.6% of the pairs of identical 20,000 x 384 clouds),
    # and after polishing the cost is the same as with updates in turn (token clouds, moons).
    v = torch.randn(x.shape[1], generator=gen, dtype=torch.float64).to(x.device, x.dtype)
    zx = _tilt(x, v, bx, c0, nb, chunk)
    zy = _tilt(y, v, by, c0, nb, chunk)
    qx_old = torch.sigmoid(zx)
    qy_old = torch.sigmoid(zy)
    iters = max_iter
    for k in range(1, max_iter + 1):
        zx, zy = (_mirror_step(zx, x, bx, y, by, zy, tot_y, c0, c1, active, nb, step, chunk),
                  _mirror_step(zy, y, by, x, bx, zx, tot_x, c0, c1, active, nb, step, chunk))
        qx, qy = torch.sigmoid(zx), torch.sigmoid(zy)
        change = max(float((qx - qx_old).abs().mean()), float((qy - qy_old).abs().mean()))
        qx_old, qy_old = qx, qy
        if k > 1 and change < tol:
            iters = k
            break
    return zx, zy, iters


def _tilt(v, direction, block, c0, nb, chunk):
    """Initial log-ratios: ``1e-3`` times the projection on ``direction`` scaled to unit range per block."""
    u = _block_dots(v, direction[None, :].expand(nb, -1), block, chunk)
    hi = torch.full((nb,), -math.inf, dtype=u.dtype, device=u.device).scatter_reduce(0, block, u, "amax")
    lo = torch.full((nb,), math.inf, dtype=u.dtype, device=u.device).scatter_reduce(0, block, u, "amin")
    return _project(1e-3 * u / (hi - lo).clamp_min(torch.finfo(u.dtype).tiny)[block], block, c0, nb)


def _mirror_step(z, v, bv, w, bw, zw, tot_w, c0, c1, active, nb, step, chunk):
    """KL-proximal step on one cloud's soft assignment given the other cloud's clusters, then projection."""
    qw = torch.sigmoid(zw)
    s0 = _segment_sum(w, qw, bw, nb, chunk)  # [nb, d] float64: sum of q * w over cluster 0
    c0f, c1f = c0.to(torch.float64)[:, None], c1.clamp_min(1).to(torch.float64)[:, None]
    delta = s0 / c0f - (tot_w - s0) / c1f  # centroid difference mu_0 - mu_1 of the other cloud
    delta[~active] = 0.0
    u = _block_dots(v, delta, bv, chunk)  # the gradient difference is -2 u + const per block
    return _scaled_step(z, u, bv, c0, nb, step)


def _scaled_step(z, u, bv, c0, nb, step):
    """``z += 2 step u / range_b(u)`` (the gradient difference is ``-2u`` + const), then project."""
    hi = torch.full((nb,), -math.inf, dtype=u.dtype, device=u.device).scatter_reduce(0, bv, u, "amax")
    lo = torch.full((nb,), math.inf, dtype=u.dtype, device=u.device).scatter_reduce(0, bv, u, "amin")
    scale = (hi - lo).clamp_min(torch.finfo(u.dtype).tiny)
    z = z + step * 2.0 * u / scale[bv]
    return _project(z, bv, c0, nb)


def _round(z: torch.Tensor, block: torch.Tensor, sizes: torch.Tensor,
           c0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard split with exact sizes: in every block the ``c0`` largest ``z`` form child 0.

    ``c0`` defaults to ``ceil(size / 2)``. Returns the child block id of every point (children
    numbered in tree order, empty ones dropped) and the children's sizes.
    """
    order = torch.argsort(z, descending=True, stable=True)
    order = order[torch.argsort(block[order], stable=True)]  # by block, then z descending
    starts = torch.cumsum(sizes, 0) - sizes
    rank = torch.empty_like(block)
    rank[order] = torch.arange(z.shape[0], device=z.device) - starts[block[order]]
    c0 = (sizes + 1) // 2 if c0 is None else c0
    child = 2 * block + (rank >= c0[block]).long()
    child_sizes = torch.stack([c0, sizes - c0], 1).reshape(-1)
    keep = child_sizes > 0
    remap = torch.cumsum(keep.long(), 0) - 1
    return remap[child], child_sizes[keep]


# --------------------------------------------------------------------------- coarse split
def _principal_cut(v, block, sizes, start, chunk, power_iters=2, pair=None) -> torch.Tensor:
    """Per point, its coordinate along its block's (approximate) principal direction.

    ``power_iters`` power iterations from the directions ``start`` (one per block), linear passes
    only. With ``pair=(y, perm)`` the points are the midpoints of ``v_i`` and ``y_{perm_i}``.
    """
    nb = sizes.shape[0]
    mean = _segment_sum(v, None, block, nb, chunk, pair) / sizes[:, None].clamp_min(1).to(torch.float64)
    w = start
    for _ in range(power_iters):  # w <- sum_i (v_i - mean_b) ((v_i - mean_b) . w)
        w = w / w.norm(dim=1, keepdim=True).clamp_min(1e-300)
        u = _block_dots(v, w, block, chunk, pair).to(torch.float64) - (mean * w).sum(1)[block]
        w = _segment_sum(v, u, block, nb, chunk, pair)
    return _block_dots(v, w, block, chunk, pair)


def _coarse_split(x, y, bx, by, sizes, *, clusters, cost, gen, chunk, memory_mb):
    """Split every block pair in two along an exact assignment of clusters of its points.

    In every block, ``x``'s points are cut by a tree of median principal cuts into ``m`` balanced
    clusters (``m`` a power of two, at most ``clusters`` and half the block size); the first cut
    is ``x``'s split. ``y``'s points get a tree of the same shape, hence clusters of the same
    sizes, and the clusters of the two clouds are matched by an exact assignment of their
    centroids under ``cost``: ``y``'s child 0 gathers the clusters matched to those of ``x``'s
    child 0 (clusters matched across sizes that differ by one point are evened out by the
    rounding, along the direction between ``y``'s two children). Returns scores whose
    :func:`_round` is the split.
    """
    from scipy.optimize import linear_sum_assignment

    nb = sizes.shape[0]
    levels = max(1, min(int(math.log2(clusters)), int(sizes.max()).bit_length() - 2))
    cx, cy, csizes = bx, by, sizes
    owner = torch.arange(nb, device=x.device)  # block of every cluster
    for lev in range(levels):
        if lev and int(csizes.max()) <= 1:  # (the caller splits only blocks of two points or more)
            break
        # the same random starts for both clouds: identical clouds get identical clusters (then the
        # matching is the identity), and nearly identical ones nearly identical clusters
        start = torch.randn(csizes.shape[0], x.shape[1], generator=gen, dtype=torch.float64).to(x.device)
        cx, new_sizes = _round(_principal_cut(x, cx, csizes, start, chunk), cx, csizes)
        cy, _ = _round(_principal_cut(y, cy, csizes, start, chunk), cy, csizes)
        halves = torch.stack([(csizes + 1) // 2, csizes // 2], 1).reshape(-1)
        owner = owner.repeat_interleave(2)[halves > 0]
        if lev == 0:
            zx = (halves > 0).nonzero().squeeze(1) % 2 == 0  # child 0 of its block, per first-level cluster
            first = torch.arange(new_sizes.shape[0], device=x.device)  # first-level cluster of every cluster
        else:
            first = first.repeat_interleave(2)[halves > 0]
        csizes = new_sizes
    k_tot = csizes.shape[0]
    mx = _segment_sum(x, None, cx, k_tot, chunk) / csizes[:, None].to(torch.float64)
    my = _segment_sum(y, None, cy, k_tot, chunk) / csizes[:, None].to(torch.float64)
    # clusters of one block are consecutive (tree order); match them block by block, batched by count
    counts = torch.bincount(owner, minlength=nb).cpu()
    starts = torch.cumsum(counts, 0) - counts
    mx, my = mx.cpu(), my.cpu()
    match = torch.arange(k_tot)  # y cluster matched to each x cluster
    for m in torch.unique(counts).tolist():
        blocks = torch.nonzero(counts == m).squeeze(1)
        if m == 1:
            continue
        per_batch = max(1, int(memory_mb * 2**20 / 2 / (m * (2 * x.shape[1] * 8 + m * 8))))
        for b0 in range(0, blocks.shape[0], per_batch):
            idx = starts[blocks[b0 : b0 + per_batch]][:, None] + torch.arange(m)[None, :]
            C = _pair_cost(mx[idx], my[idx], cost).numpy()
            for k in range(C.shape[0]):
                rows, cols = linear_sum_assignment(C[k])
                match[idx[k, rows]] = idx[k, cols]
    child0 = zx.cpu()[first.cpu()]  # per x cluster: in x's child 0
    ylab = torch.zeros(k_tot, dtype=torch.bool)
    ylab[match] = child0
    ylab = ylab.to(y.device)
    # x: child 0 is exactly the first cut's child 0; y: its clusters' labels, ties evened out along
    # the direction from y's child-1 centroid to its child-0 centroid
    zxp = child0.to(x.device)[cx].to(x.dtype)
    lab = ylab[cy]
    n0 = torch.zeros(nb, dtype=torch.float64, device=y.device).index_add_(0, by, lab.to(torch.float64))
    s0 = _segment_sum(y, lab.to(y.dtype), by, nb, chunk)
    tot = _segment_sum(y, None, by, nb, chunk)
    sz = sizes.to(torch.float64)[:, None]
    n0c = n0[:, None].clamp_min(1)
    direction = s0 / n0c - (tot - s0) / (sz - n0c).clamp_min(1)
    u = _block_dots(y, direction, by, chunk).to(torch.float64)
    hi = torch.full((nb,), -math.inf, dtype=u.dtype, device=u.device).scatter_reduce(0, by, u, "amax")
    lo = torch.full((nb,), math.inf, dtype=u.dtype, device=u.device).scatter_reduce(0, by, u, "amin")
    u = (u - lo[by]) / (hi - lo).clamp_min(1e-300)[by]  # in [0, 1] per block
    zyp = lab.to(torch.float64) * 2.0 + u
    return zxp.to(torch.float64), zyp


# --------------------------------------------------------------------------- polishing windows
def _polish_windows(x, y, perm, *, window, gen, chunk, power_iters=3) -> torch.Tensor:
    """Window id of every matched pair ``(x_i, y_{perm_i})``: a fresh tree over the pair midpoints.

    Every block larger than ``window`` is cut across its (approximate) principal direction, found
    by ``power_iters`` power iterations from a random start, at a random quantile in
    ``[1/4, 3/4]``: the cuts fall elsewhere than the refinement's (and the previous round's)
    median cuts, so pairs of points that those separated meet in a window. Linear passes only.
    """
    n, d = x.shape
    if d > _SKETCH_DIM:  # the tree is built on the midpoints' coordinates in their top principal subspace
        sub = torch.randperm(n, generator=gen)[:_SKETCH_SAMPLE].to(x.device)
        ms = ((x[sub] + y[perm[sub]]) * 0.5).to(torch.float64)
        basis = torch.linalg.svd(ms - ms.mean(0), full_matrices=False).Vh[:_SKETCH_DIM].T.to(x.dtype)
        sketch = torch.empty(n, _SKETCH_DIM, dtype=x.dtype, device=x.device)
        for s in range(0, n, chunk):
            sketch[s : s + chunk] = _rows(x, s, s + chunk, (y, perm)) @ basis
        x, pair, d = sketch, None, _SKETCH_DIM
    else:
        pair = (y, perm)
    block = torch.zeros(n, dtype=torch.long, device=x.device)
    sizes = torch.tensor([n], dtype=torch.long, device=x.device)
    while int(sizes.max()) > window:
        nb = sizes.shape[0]
        big = sizes > window
        start = torch.randn(nb, d, generator=gen, dtype=torch.float64).to(x.device)
        u = _principal_cut(x, block, sizes, start, chunk, power_iters, pair=pair)
        q = 0.25 + 0.5 * torch.rand(nb, generator=gen, dtype=torch.float64).to(x.device)
        c0 = torch.where(big, (q * sizes).round().long().clamp(1, None).minimum(sizes - 1), sizes)
        block, sizes = _round(u, block, sizes, c0)
    return block


# --------------------------------------------------------------------------- exact blocks
def _pair_cost(xb: torch.Tensor, yb: torch.Tensor, cost: str) -> torch.Tensor:
    """Cost blocks ``[B, s, s]`` in float64 between stacks of points ``[B, s, d]``."""
    xb, yb = xb.to(torch.float64), yb.to(torch.float64)
    diff2 = (xb.pow(2).sum(-1)[:, :, None] + yb.pow(2).sum(-1)[:, None, :]
             - 2 * torch.bmm(xb, yb.transpose(1, 2))).clamp_min_(0.0)  # fmt: skip
    return diff2 if cost == "sqeuclidean" else diff2.sqrt_()


def _solve_blocks(x, y, bx, by, cost, memory_mb, perm=None) -> torch.Tensor:
    """Exact assignment inside every block pair (``bx`` and ``by`` hold equal counts per block).

    Returns ``perm`` with ``y[perm[i]]`` matched to ``x[i]``. With a current ``perm`` given
    (polishing), every block is re-solved exactly, so its cost cannot rise.
    """
    from scipy.optimize import linear_sum_assignment

    n = x.shape[0]
    px = torch.argsort(bx, stable=True)  # x indices grouped by block
    py = torch.argsort(by, stable=True)
    counts = torch.bincount(bx)
    if not torch.equal(counts, torch.bincount(by, minlength=counts.shape[0])):
        raise AssertionError("block pairs of unequal sizes")  # an internal invariant
    starts = torch.cumsum(counts, 0) - counts
    out = torch.empty(n, dtype=torch.long) if perm is None else perm.clone()
    d = x.shape[1]
    for s in torch.unique(counts).tolist():
        if s == 0:
            continue
        blocks = torch.nonzero(counts == s).squeeze(1)
        per_batch = max(1, int(memory_mb * 2**20 / 2 / (s * (2 * d * 8 + s * 8))))
        for b0 in range(0, blocks.shape[0], per_batch):
            bs = blocks[b0 : b0 + per_batch]
            idx = starts[bs][:, None] + torch.arange(s)[None, :]  # [B, s] positions in px / py
            ix, iy = px[idx], py[idx]  # original indices
            C = _pair_cost(x[ix], y[iy], cost).numpy()
            for k in range(C.shape[0]):
                rows, cols = linear_sum_assignment(C[k])
                out[ix[k, rows]] = iy[k, cols]
    return out


def _assignment_cost(x, y, perm, cost, chunk) -> float:
    """:math:`\\frac1n \\sum_i c(x_i, y_{perm_i})` in float64, chunked."""
    total = 0.0
    for s in range(0, x.shape[0], chunk):
        diff = x[s : s + chunk].to(torch.float64) - y[perm[s : s + chunk]].to(torch.float64)
        d2 = diff.pow(2).sum(1)
        total += float(d2.sum() if cost == "sqeuclidean" else d2.sqrt().sum())
    return total / x.shape[0]
