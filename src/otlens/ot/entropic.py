r"""Optimal transport between point clouds: entropic (Sinkhorn), exact, and debiased.

Every solver here takes two point clouds (or a stack of ``B`` pairs of clouds) and returns
one :class:`OTResult`. The cost between points is the squared Euclidean distance,

.. math::

    C_{ij} = \lVert x_i - y_j \rVert^2 ,

and the entropic problem solved by :func:`sinkhorn` is

.. math::

    \mathrm{OT}_\varepsilon(a, b) = \min_{P \in U(a, b)} \langle P, C \rangle
        + \varepsilon \, \mathrm{KL}(P \,\|\, a \otimes b),
    \qquad U(a, b) = \{P \ge 0 : P\mathbf 1 = a,\ P^\top \mathbf 1 = b\},

where:

- :math:`a \in \Delta_n`, :math:`b \in \Delta_m` are the weights of the points (uniform by default),
- :math:`\varepsilon` is ``reg``, in the units of the cost.

Its minimiser is the same plan as with the entropy :math:`-\varepsilon H(P)` of
:cite:`cuturi:13` (the two regularisers differ by a constant on :math:`U(a, b)`), so
``result.cost`` — the transport cost :math:`\langle P, C\rangle` without the entropy term — is
what POT's ``ot.sinkhorn2`` returns. The iterations run in the log domain on the dual potentials
:math:`(f, g)`, so they stay finite for any ``reg > 0``, and ``eps_scaling`` anneals
:math:`\varepsilon` from the cost's scale down to ``reg``, warm-starting each stage
:cite:`peyre:19`. They stop on the L1 error of the row marginal (the column marginal is exact
after each half-step).

:func:`sinkhorn_divergence` is the debiased divergence of :cite:`genevay:18` and :cite:`feydy:19`,

.. math::

    S_\varepsilon(a, b) = \mathrm{OT}_\varepsilon(a, b) - \tfrac12 \mathrm{OT}_\varepsilon(a, a)
        - \tfrac12 \mathrm{OT}_\varepsilon(b, b),

which is zero for identical clouds and, for a cloud and its translate by :math:`t`, equals
:math:`\lVert t \rVert^2` for every :math:`\varepsilon`. :func:`exact_ot` calls POT's network
simplex :cite:`flamary:21` for small clouds.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from .._validation import check_choice, check_int, check_positive
from ..exceptions import ConvergenceWarning
from ._inputs import prepare, sq_euclidean_cost, unbatch
from .result import OTResult

__all__ = [
    "sinkhorn",
    "sinkhorn_divergence",
    "DENSE_BYTES",
    "CHUNK_BYTES",
]

def _default_tol(dtype: torch.dtype) -> float:
    return 1e-5 if dtype in (torch.float32, torch.float16, torch.bfloat16) else 1e-6


def _check_scale(cmax: torch.Tensor, eps: torch.Tensor, dtype: torch.dtype) -> None:
    """Raise before iterating when the costs, or the costs over ``reg``, overflow ``dtype``."""
    if not bool(torch.isfinite(cmax).all()):
        raise ValueError(f"the costs are not finite in {dtype} (they overflow it): rescale the inputs "
                         "or compute in float64 (`dtype=torch.float64`)")
    if not bool(torch.isfinite(cmax / eps).all()) or not bool((eps > 0).all()):
        raise ValueError(f"`reg` is too small for the cost scale in {dtype}: cost / reg overflows "
                         f"(largest cost {float(cmax.max()):g}, smallest reg {float(eps.min()):g})")


# --------------------------------------------------------------------------- cost

def _eps_schedule(cmax: torch.Tensor, reg: torch.Tensor, ratio: float | None) -> list[tuple]:
    """Geometric schedules from each problem's cost scale down to its ``reg``: ``[(eps [B], frozen [B] or None)]``.

    Each problem runs its own schedule, aligned on the final stage (``eps = reg``, ``frozen``
    None): a problem that needs fewer stages than the batch's longest waits, frozen, through
    the first ones, so a batch gives every problem exactly the stages it gets alone.
    """
    if ratio is None:
        return [(reg, None)]
    start = torch.maximum(cmax, reg)
    counts = torch.ceil(torch.log(start / reg) / -math.log(ratio)).long()  # stages per problem
    N = int(counts.max())
    stages = []
    for k in range(N):
        j = k - (N - counts)  # the problem's own stage index; < 0: not started yet
        eps = torch.maximum(start * torch.pow(ratio, j.clamp_min(0).to(start.dtype)), reg)
        stages.append((eps, j < 0))
    return stages + [(reg, None)]


def _exp_floor(dtype: torch.dtype, margin: float = 8.0) -> float:
    """Arguments below this are clamped before ``exp``: their exponentials are negligible (at most
    ``e^margin`` times the dtype's smallest normal number) and they would send the vectorised
    ``exp`` into its slow underflow path (10-14x slower on a CPU, measured on float32 and float64)."""
    return math.log(torch.finfo(dtype).tiny) + margin


#: The kernel's entries stay above ``e^30`` times the smallest normal number: their products with
#: the scaled weights ``b v`` (down to ``e^-15 / n``) in the matrix-vector products are then normal
#: numbers too. Subnormal operands made those products twice as slow (11.7 ms against ~5 ms per
#: iteration at n = 4,096 on one thread); the clamped entries add under 1e-12 to any row sum as
#: long as the scalings stay within ``e^±15`` (``_ABSORB``). A scaling beyond ``e^±30`` means that
#: whole rows or columns of the kernel sit at the clamp (a tiny ``reg``, potentials far from the
#: solution): the clamped entries would then count, so the stage is redone in the log domain.
_KERNEL_MARGIN = 30.0


def _lse_(Z: torch.Tensor, dim: int) -> torch.Tensor:
    """Log-sum-exp of ``Z`` along ``dim``, overwriting ``Z`` (a temporary) on the way."""
    mx = Z.amax(dim, keepdim=True)
    out = Z.sub_(mx).clamp_min_(_exp_floor(Z.dtype)).exp_().sum(dim).log_()
    return out.add_(mx.squeeze(dim))


class _DenseCost:
    """The cost stack ``C [B, n, m]`` held in memory (one GEMM per problem)."""

    chunked = False

    def __init__(self, x: torch.Tensor | None, y: torch.Tensor | None, C: torch.Tensor | None = None,
                 dtype: torch.dtype | None = None) -> None:
        self.C = sq_euclidean_cost(x, y) if C is None else C  # clouds, or a cost matrix given
        self.given = C is not None
        self.dtype = self.C.dtype if dtype is None else dtype  # of the kernel; C is promoted on the fly
        self.shape = self.C.shape
        self._eps, self._C_e = None, None

    def _scaled(self, eps: torch.Tensor) -> torch.Tensor:
        if self._eps is None or not torch.equal(self._eps, eps):  # C / eps, once per stage
            self._eps, self._C_e = eps, self.C / eps[:, None, None]
        return self._C_e

    def lse_rows(self, h: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``[B, n]``: :math:`\\log\\sum_j \\exp(h_j - C_{ij}/\\varepsilon)`, block by block."""
        Ce = self._scaled(eps)
        out = torch.empty(self.shape[:2], dtype=h.dtype, device=h.device)
        for sl in self._row_blocks():
            out[:, sl] = _lse_(torch.sub(h[:, None, :], Ce[:, sl]), dim=2)
        return out

    def lse_cols(self, h: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``[B, m]``: :math:`\\log\\sum_i \\exp(h_i - C_{ij}/\\varepsilon)`, an online log-sum-exp over row blocks."""
        Ce = self._scaled(eps)
        M = torch.full((self.shape[0], self.shape[2]), -math.inf, dtype=h.dtype, device=h.device)
        S = torch.zeros_like(M)
        floor = _exp_floor(h.dtype)
        for sl in self._row_blocks():
            Z = torch.sub(h[:, sl, None], Ce[:, sl])  # [B, r, m]
            M_new = torch.maximum(M, Z.amax(1))
            S = S * (M - M_new).exp() + Z.sub_(M_new[:, None, :]).clamp_min_(floor).exp_().sum(1)
            M = M_new
        return S.log_().add_(M)

    def amax(self) -> torch.Tensor:
        """Each problem's cost scale ``[B]``: the largest cost (its range, for a given matrix that may be negative)."""
        if self.given:
            return self.C.amax(dim=(1, 2)) - self.C.amin(dim=(1, 2)).clamp_max(0.0)
        return self.C.amax(dim=(1, 2))

    def mean(self) -> torch.Tensor:
        return self.C.mean(dim=(1, 2))

    def _row_blocks(self):
        """Slices of rows whose ``[B, rows, m]`` block takes about ``_BLOCK_BYTES`` (cache-sized)."""
        B, n, m = self.shape
        block = _BLOCK_BYTES if self.C.device.type == "cpu" else 2**28  # a GPU wants few, large launches
        rows = max(1, block // (m * self.C.element_size()))  # not of B: the same blocks batched or alone
        return [slice(i, i + rows) for i in range(0, n, rows)]

    def kernel(self, f, g, eps, problems=None) -> torch.Tensor:
        r""":math:`K = e^{(f + g - C)/\varepsilon}` ``[B, n, m]``, written into one reused buffer.

        Block by block, in place: one pass over ``C`` and none over temporaries (a fresh
        ``n × m`` tensor per operation cost more than the exponentials: page faults). With
        ``problems`` (indices), only those problems' kernels are rewritten.
        """
        if getattr(self, "_K", None) is None:
            self._K = torch.empty_like(self.C, dtype=self.dtype)
        for i in range(self.shape[0]) if problems is None else problems:
            r = 1.0 / eps[i]
            for sl in self._row_blocks():
                Kb = self._K[i, sl]
                torch.sub(f[i, sl, None], self.C[i, sl], out=Kb)
                Kb.add_(g[i, None, :]).mul_(r).clamp_min_(_exp_floor(Kb.dtype, _KERNEL_MARGIN)).exp_()
        return self._K

    def subset(self, idx: torch.Tensor, dtype: torch.dtype) -> "_DenseCost":
        """The problems ``idx`` alone, computed in ``dtype`` (the costs are promoted when read, not copied)."""
        return _DenseCost(None, None, self.C[idx], dtype=dtype)

    def cost_blocks(self):
        """Yield ``(rows slice, C[:, rows])`` over cache-sized blocks of rows (views: do not modify)."""
        for sl in self._row_blocks():
            yield sl, self.C[:, sl]


class _ChunkedCost:
    """The cost computed block by block from the points; never holds an ``n × m`` matrix.

    A block of ``chunk`` rows (or columns) of :math:`C` is rebuilt by one GEMM whenever it is
    needed, with the same centring and formula as :func:`sq_euclidean_cost`, so the values
    equal the dense ones. Memory is ``O(chunk × max(n, m))`` per problem.
    """

    chunked = True

    def __init__(self, x: torch.Tensor, y: torch.Tensor, chunk: int) -> None:
        centre = torch.cat([x, y], dim=1).mean(dim=1, keepdim=True)
        self.x, self.y = x - centre, y - centre
        self.x2, self.y2 = (self.x * self.x).sum(-1), (self.y * self.y).sum(-1)  # [B, n], [B, m]
        self.chunk = chunk
        self.shape = torch.Size([x.shape[0], x.shape[1], y.shape[1]])

    @staticmethod
    def _block(x, x2, y, y2) -> torch.Tensor:
        return torch.baddbmm(x2[:, :, None] + y2[:, None, :], x, y.transpose(1, 2), alpha=-2.0).clamp_min_(0.0)

    def _blocks(self, rows: bool = True):
        """Yield ``(slice, C_block)``: blocks of rows ``[B, r, m]`` (or of columns, transposed ``[B, c, n]``)."""
        (u, u2, v, v2) = (self.x, self.x2, self.y, self.y2) if rows else (self.y, self.y2, self.x, self.x2)
        for i in range(0, u.shape[1], self.chunk):
            sl = slice(i, i + self.chunk)
            yield sl, self._block(u[:, sl], u2[:, sl], v, v2)

    def _lse(self, h, eps, rows: bool) -> torch.Tensor:
        e = eps[:, None, None]
        out = torch.empty(h.shape[0], self.shape[1 if rows else 2], dtype=h.dtype, device=h.device)
        for sl, Cb in self._blocks(rows):
            out[:, sl] = _lse_(Cb.div_(-e).add_(h[:, None, :]), dim=2)
        return out

    def lse_rows(self, h, eps):
        return self._lse(h, eps, rows=True)

    def lse_cols(self, h, eps):
        return self._lse(h, eps, rows=False)

    def amax(self) -> torch.Tensor:
        return torch.stack([Cb.amax(dim=(1, 2)) for _, Cb in self._blocks()]).amax(0)

    def mean(self) -> torch.Tensor:
        # mean_ij |x_i - y_j|^2 = mean |x|^2 + mean |y|^2 - 2 <mean x, mean y>, no matrix needed
        return self.x2.mean(1) + self.y2.mean(1) - 2 * (self.x.mean(1) * self.y.mean(1)).sum(-1)

    def subset(self, idx: torch.Tensor, dtype: torch.dtype) -> "_ChunkedCost":
        """The problems ``idx`` alone, with their points in ``dtype``."""
        return _ChunkedCost(self.x[idx].to(dtype), self.y[idx].to(dtype), self.chunk)

    def cost_blocks(self):
        """Yield ``(rows slice, C[:, rows])``, each block computed afresh."""
        return self._blocks()


def _evaluate(op, log_a, log_b, f, g, eps, plan: bool = False) -> dict:
    r"""Everything reported about the plan :math:`P = a\otimes b\, e^{(f + g - C)/\varepsilon}` of ``(f, g)``.

    One pass over the cost, block by block: ``cost`` :math:`\langle P, C\rangle`, ``mass``
    (the plan's total), ``err`` (the larger of the two L1 marginal errors, ``[B]``) and, with
    ``plan``, ``P [B, n, m]``. What a solver reports is measured here, on what it returns,
    never on an intermediate (clamped kernel, extrapolated) iterate. The exponents
    ``log P = (f + g - C)/reg + log a + log b`` and the sums are taken in float64 whatever the
    compute dtype, so the numbers are those of the plan that the returned potentials and the
    solver's costs define, not float32 rounding of it (at ``reg = 1e-3`` × the mean cost,
    rounding ``(f + g - C)/reg`` to float32 alone moves the row sums by ~3e-5). The
    exponential itself runs in the compute dtype: ``log P`` is small where ``P`` matters, so
    its relative rounding error stays below ~1e-6, and float32 ``exp`` is twice as fast.
    """
    B, n, m = op.shape
    wide = torch.float64
    inv = 1.0 / eps.to(wide)[:, None]  # [B, 1]
    # a and b absorbed in the scaled potentials (-inf where a weight is 0)
    fa, gb = f.to(wide) * inv + log_a.to(wide), g.to(wide) * inv + log_b.to(wide)
    rows = torch.zeros(B, n, dtype=wide, device=f.device)
    cols = torch.zeros(B, m, dtype=wide, device=f.device)
    cost = torch.zeros(B, dtype=wide, device=f.device)
    P = torch.empty(B, n, m, dtype=f.dtype, device=f.device) if plan else None
    narrow = f.dtype
    floor = _exp_floor(narrow)
    for sl, Cb in op.cost_blocks():
        # log P = f/reg + g/reg - C/reg, in float64 (C is promoted on the fly, not copied)
        Zb = torch.mul(Cb, -inv[:, :, None]).add_(fa[:, sl, None]).add_(gb[:, None, :]).to(narrow)
        # the returned plan is exact (zero rows stay zero); sums clamp what is negligible anyway
        Pb = Zb.exp_() if plan else Zb.clamp_min_(floor).exp_()
        if plan:
            P[:, sl] = Pb
        rows[:, sl] = Pb.sum(2, dtype=wide)  # accumulated in float64, without a float64 copy
        cols += Pb.sum(1, dtype=wide)
        cost += Pb.mul_(Cb).sum(dim=(1, 2), dtype=wide)
    a, b = log_a.to(wide).exp(), log_b.to(wide).exp()
    err = torch.maximum((rows - a).abs().sum(1), (cols - b).abs().sum(1))
    return {k: v.to(f.dtype) for k, v in dict(cost=cost, mass=rows.sum(1), err=err).items()} | dict(plan=P)


class _Anderson:
    r"""Anderson acceleration (type II) of the final stage's fixed-point map, one per problem.

    Sinkhorn is a fixed-point iteration :math:`x \leftarrow \Phi(x)` on the scaled row
    potential :math:`x = f/\varepsilon` (in the kernel domain, :math:`\log u`). When the plan is
    nearly a permutation its linear rate is so close to 1 that the iteration looks sub-linear.
    Anderson acceleration :cite:`anderson:65,walker:11` keeps the last ``depth`` differences of
    iterates :math:`\Delta X` and of residuals :math:`\Delta R` (:math:`r = \Phi(x) - x`),
    solves the small least-squares problem :math:`\gamma = \arg\min \lVert r - \Delta R\,\gamma
    \rVert` per problem, and steps to :math:`\Phi(x) - (\Delta X + \Delta R)\gamma`. Each step
    costs :math:`O(n \cdot \text{depth})`, nothing next to the two matrix-vector products.

    Safeguards, per problem (plain Sinkhorn is the convergent fallback):

    - a step that is not finite or moves any coordinate by more than ``MAX_STEP`` beyond the
      plain update is replaced by the plain update;
    - the history is cleared when the marginal error rises above ``RESTART`` times its best
      since the last clearing, and when the best error has not improved at all in ``patience``
      iterations (a stall: the extrapolation can settle on a point that is not a fixed point of
      :math:`\Phi`, where the error stays constant for ever);
    - after ``MAX_STALLS`` stalls the problem takes plain steps for the rest of the stage.

    Measured on a 60 × 50 problem (non-uniform weights, reg 1e-3 × the mean cost, float64) that
    stalled at an error of 5.2e-4 for 50,000 iterations before the stall rule: 22,057
    iterations now, against 30,060 for plain Sinkhorn; the same problem in the log domain
    without annealing, 1,900 as before. A patience of 16-64 iterations, or a threshold of a 1%
    improvement, stopped working accelerations too often (up to 7,323 iterations for the
    latter problem, and 20,000+ for a cloud against itself at tol 1e-10 that converges in
    about 1,300), hence ``patience = 16 × depth``.

    The least squares are Tikhonov-regularised (``LAM`` times the largest diagonal entry):
    without it the iteration stagnated on near-permutation plans in float64 (5,062 iterations
    against 822 with ``LAM = 1e-3``, 400 points in d = 8). Measured on MiniLM's adjacent-layer
    clouds (n = 4,096, float32, reg = 0.01 × mean cost, tol 1e-5): 88–249 final-stage
    iterations per transition with depth 8, against 1,430 to more than 10,000 with adaptive
    over-relaxation.
    """

    MAX_STEP = 10.0
    RESTART = 10.0
    LAM = 1e-3
    MAX_STALLS = 4

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.patience = max(32, 16 * depth)
        self.dX: list[torch.Tensor] = []
        self.dR: list[torch.Tensor] = []
        self.x = self.r = self.best = None

    def shift(self, s: torch.Tensor) -> None:
        """The coordinates moved by ``-s`` (potentials re-absorbed into the kernel)."""
        if self.x is not None:
            self.x = self.x - s

    def _watch(self, err: torch.Tensor) -> torch.Tensor:
        """Update the per-problem best error and stall counters; return the problems to restart ``[B]``."""
        if self.best is None:
            self.best, self.since = err, torch.zeros_like(err, dtype=torch.long)
            self.stalls = torch.zeros_like(self.since)
            self.plain = torch.zeros_like(err, dtype=torch.bool)
            return self.plain.clone()
        improved = err < self.best
        self.best = torch.minimum(self.best, err)
        self.since = torch.where(improved, 0, self.since + 1)
        stalled = self.since >= self.patience
        self.stalls += stalled.long()
        self.plain |= self.stalls >= self.MAX_STALLS
        restart = stalled | (err > self.RESTART * self.best) | self.plain
        self.since = torch.where(restart, 0, self.since)
        self.best = torch.where(restart & ~stalled, err, self.best)  # a rise restarts the reference
        return restart

    def step(self, x: torch.Tensor, fx: torch.Tensor, err: torch.Tensor) -> torch.Tensor:
        """Next iterate from the current one ``x [B, n]``, its image ``fx`` and its marginal error ``err [B]``."""
        if self.depth == 0 or (self.best is not None and bool(self.plain.all())):
            return fx
        r = fx - x
        restart = self._watch(err)
        if self.x is not None:
            self.dX.append(x - self.x)
            self.dR.append(r - self.r)
            if len(self.dX) > self.depth:
                self.dX.pop(0), self.dR.pop(0)
            if bool(restart.any()):  # forget these problems' history; plain step from here
                keep = (~restart).to(x.dtype)[:, None]
                self.dX = [d * keep for d in self.dX]
                self.dR = [d * keep for d in self.dR]
        self.x, self.r = x, r
        if not self.dX or bool(self.plain.all()):
            return fx
        dX, dR = torch.stack(self.dX, 2), torch.stack(self.dR, 2)  # [B, n, k]
        B = x.shape[0]
        # the k x k normal equations in float64 (float32 Gram matrices lose the small directions)
        A = _per_problem(B, lambda i: dR[i].T @ dR[i]).double()
        rhs = _per_problem(B, lambda i: dR[i].T @ r[i]).double().unsqueeze(2)
        lam = self.LAM * A.diagonal(dim1=1, dim2=2).amax(1).clamp_min(1e-300)
        gamma = torch.linalg.solve(A + lam[:, None, None] * torch.eye(A.shape[1], dtype=A.dtype, device=A.device),
                                   rhs).to(x.dtype)
        out = fx - _per_problem(B, lambda i: (dX[i] + dR[i]) @ gamma[i, :, 0])
        bad = ~(torch.isfinite(out).all(1) & ((out - fx).abs().amax(1) <= self.MAX_STEP)) | self.plain
        return torch.where(bad[:, None], fx, out)


class _Best:
    """The best checked iterate of each problem: ``(f, g)`` and its marginal error.

    A stage that runs out of iterations returns this, not its last (unchecked, possibly
    extrapolated) iterate, so the potentials returned are ones whose error was measured.
    """

    def __init__(self, f: torch.Tensor, g: torch.Tensor) -> None:
        self.f, self.g = f, g
        self.err = torch.full(f.shape[:1], math.inf, dtype=f.dtype, device=f.device)

    def update(self, err: torch.Tensor, potentials) -> None:
        """Keep ``potentials()`` (evaluated only if needed) where ``err`` beats the best so far."""
        better = err < self.err
        if bool(better.any()):
            f, g = potentials()
            self.f = torch.where(better[:, None], f, self.f)
            self.g = torch.where(better[:, None], g, self.g)
            self.err = torch.where(better, err, self.err)


def _stage_log(op, log_a, log_b, f, g, eps, n_steps, tol, check, symmetric, anderson=0, frozen=None):
    """Log-domain iterations at one ``eps``; always finite. Returns ``(f, g, err, steps, ok)``.

    ``op`` evaluates the two log-sum-exp reductions (dense or chunked cost). With ``check``, a
    problem whose marginal error (L1 of the row marginal; the columns are exact) is below
    ``tol`` is frozen (its potentials stop changing), so a batch gives each problem the result
    it would get alone, ``anderson > 0`` accelerates the iteration (:class:`_Anderson`), and a
    problem that does not reach ``tol`` returns its best checked iterate (:class:`_Best`).
    Problems marked ``frozen`` keep their potentials through the stage.
    """
    a = log_a.exp()
    e = eps[:, None]
    err = torch.full_like(eps, float("inf"))
    done = torch.zeros_like(eps, dtype=torch.bool) if frozen is None else frozen.clone()
    acc = _Anderson(anderson if check else 0)
    best = _Best(f, g)
    steps = 0
    for steps in range(1, n_steps + 1):
        if not symmetric:
            g = torch.where(done[:, None], g, -e * op.lse_cols(log_a + f / e, eps))  # exact column update
        lse = op.lse_rows(log_b + g / e, eps)  # [B, n]
        if check:
            # row sums of the plan (f, g) are a * exp(f/eps + lse): the error check is free
            err = torch.where(done, err, (a * (f / e + lse).exp().sub(1.0).abs()).sum(1))
            best.update(err, lambda: (f, g))
            done = err < tol
            if bool(done.all()) or steps == n_steps:  # the last iterate returned is a checked one
                break
        x = f / e
        f = torch.where(done[:, None], f, e * acc.step(x, 0.5 * (x - lse) if symmetric else -lse, err))
        if symmetric:
            g = f
    if check:
        f, g = torch.where(done[:, None], f, best.f), torch.where(done[:, None], g, best.g)
        err = torch.where(done, err, best.err)
    return f, g, err, steps, True


def _per_problem(B: int, fn) -> torch.Tensor:
    """``stack([fn(0), ..., fn(B - 1)])``: matrix products one problem at a time.

    A batched product may round differently from a single one, and Anderson's least squares
    would turn that into a different path, so a batch would no longer give each problem its
    result alone. On a CPU a loop of matrix-vector products costs the same as one batched call.
    """
    return torch.stack([fn(i) for i in range(B)])


_BLOCK_BYTES = 2**20  # elementwise passes over n x m matrices go block by block, in cache
_ABSORB = 15.0  # re-absorb the kernel scalings into the potentials once |log u| or |log v| exceeds this


def _balance_gauge(f: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f + c, g - c)`` per problem, with ``c`` minimising the larger of ``max |f + c|`` and ``max |g - c|``.

    ``L(x) = max(|x| + h_f, |S - x| + h_g)`` (``x`` the new midpoint of ``f``, ``S`` the sum of
    the midpoints, ``h`` the half-ranges) is convex and piecewise linear; its minimum is at one
    of four points. Non-finite entries are ignored; a problem without finite ones keeps ``c = 0``.
    """
    def mid_half(t):
        ok = torch.isfinite(t)
        hi = torch.where(ok, t, -math.inf).amax(1)
        lo = torch.where(ok, t, math.inf).amin(1)
        return (hi + lo) / 2, (hi - lo) / 2
    (fm, fh), (gm, gh) = mid_half(f), mid_half(g)
    S = fm + gm
    x = torch.stack([(S + gh - fh) / 2, (S - gh + fh) / 2, torch.zeros_like(S), S], 1)  # [B, 4]
    L = torch.maximum(x.abs() + fh[:, None], (S[:, None] - x).abs() + gh[:, None])
    c = x.gather(1, L.argmin(1, keepdim=True))[:, 0] - fm
    c = torch.where(torch.isfinite(c), c, 0.0)[:, None]
    return f + c, g - c


def _absorb(f, g, eps, u, v, symmetric):
    r"""The potentials ``(f + eps log u - c, g + eps log v + c)``, summed in float64, rounded once.

    The gauge ``c`` (the plan depends on ``f + g`` only) makes the largest magnitudes of the
    two potentials equal, so neither is rounded on a coarser grid than it needs: in float32 a
    potential is known to half an ulp, i.e. ``ulp(|f|) / eps`` relative in the plan, which at
    ``eps = 1e-3`` × the mean cost is an L1 marginal error of about ``1e-5`` for values in
    ``[1, 2)``, half that below 1. A symmetric problem keeps ``g = f``.
    """
    wide = torch.float64
    e = eps.to(wide)[:, None]
    f2, g2 = f.to(wide) + e * u.to(wide).log(), g.to(wide) + e * v.to(wide).log()
    if not symmetric:
        f2, g2 = _balance_gauge(f2, g2)
    return f2.to(f.dtype), g2.to(g.dtype)


def _stage_kernel(op, log_a, log_b, f, g, eps, n_steps, tol, check, symmetric, anderson=0, frozen=None):
    """Stabilised kernel iterations at one ``eps`` (matrix-vector products, no exp per step).

    The potentials are absorbed in the kernel ``K = exp((f + g - C) / eps)`` and the scalings
    ``u, v`` start at 1; they are re-absorbed when they drift, so ``K`` never overflows. The
    iterates equal the log-domain ones in exact arithmetic (Anderson acceleration included:
    it acts on ``log u``). Returns ``ok=False`` (and the entry potentials) if anything becomes
    non-finite, so the caller can redo the stage in the log domain.
    """
    a, b = log_a.exp(), log_b.exp()
    f0, g0 = f, g
    K = op.kernel(f, g, eps)  # [B, n, m]
    u, v = torch.ones_like(f), torch.ones_like(g)
    err = torch.full_like(eps, float("inf"))
    # frozen once below tol (see _stage_log), or from the start (a stage this problem skips)
    done = torch.zeros_like(eps, dtype=torch.bool) if frozen is None else frozen.clone()
    acc = _Anderson(anderson if check else 0)
    best = _Best(f, g)
    B = eps.shape[0]
    batched = B > 1
    steps = 0

    def keep(old, new):  # frozen problems keep their scalings
        return torch.where(done[:, None], old, new) if batched else new

    for steps in range(1, n_steps + 1):
        if symmetric:
            Ku = _per_problem(B, lambda i: K[i] @ (a[i] * u[i]))  # [B, n]
            row = u * Ku
        else:
            v = keep(v, 1.0 / _per_problem(B, lambda i: (a[i] * u[i]) @ K[i]))  # [B, m]: columns exact
            if not float(v.log().abs().max()) <= _KERNEL_MARGIN:  # the clamp would distort K v (or v is not finite)
                return f0, g0, err, 0, False
            Kv = _per_problem(B, lambda i: K[i] @ (b[i] * v[i]))  # [B, n]
            row = u * Kv
        if check:
            err = torch.where(done, err, (a * (row - 1.0).abs()).sum(1))
            best.update(err, lambda: (f + eps[:, None] * u.log(), g + eps[:, None] * v.log()))
            done = err < tol
            if bool(done.all()) or steps == n_steps:  # the last iterate returned is a checked one
                break
        if acc.depth:
            lu = u.log()
            u = keep(u, acc.step(lu, 0.5 * (lu - Ku.log()) if symmetric else -Kv.log(), err).exp())
        else:
            u = keep(u, torch.sqrt(u / Ku) if symmetric else 1.0 / Kv)
        if symmetric:
            v = u
        # one reduction (and one sync) checks both drift and finiteness: NaN fails `<=`
        drift = torch.cat([u, v], 1).log().abs().amax(1)  # [B]
        if not float(drift.max()) <= _ABSORB:
            if not float(drift.max()) <= _KERNEL_MARGIN:  # not finite, or the clamped entries would count
                return f0, g0, err, 0, False
            # re-absorb only the problems that drifted: the others keep their path exactly
            move = (drift > _ABSORB)[:, None]
            lu, lv = u.log() * move, v.log() * move
            f, g = f + eps[:, None] * lu, g + eps[:, None] * lv
            acc.shift(lu)
            K = op.kernel(f, g, eps, problems=move[:, 0].nonzero()[:, 0].tolist())
            u, v = torch.where(move, 1.0, u), torch.where(move, 1.0, v)
    f, g = _absorb(f, g, eps, u, v, symmetric)
    if check:
        f, g = torch.where(done[:, None], f, best.f), torch.where(done[:, None], g, best.g)
        err = torch.where(done, err, best.err)
    ok = bool(torch.isfinite(f).all() and torch.isfinite(g).all())
    return (f, g, err, steps, True) if ok else (f0, g0, err, 0, False)


#: float32 iterations stop at this fraction of ``tol`` (see :func:`_log_sinkhorn`).
_F32_AIM = 0.9


def _log_sinkhorn(op, log_a, log_b, reg, *, tol, max_iter, eps_scaling, stage_iter, symmetric=False, mode="auto",
                  init=None, anderson=8, cmax=None, plan=False):
    """Sinkhorn on a cost ``op`` (``[B,n,m]``), ``log_a [B,n]``, ``log_b [B,m]``, ``reg [B]``, with eps-scaling.

    Returns ``(f, g, ev, n_iter)`` with ``ev`` the :func:`_evaluate` report of ``(f, g)``
    (cost, mass, both marginals' error, plan if ``plan``). Each iteration updates ``g`` (column marginal exact) and
    then ``f``, and measures the L1 error of the row marginal of the plan ``(f, g)`` on the way.
    With ``symmetric=True`` (``x`` against itself, ``a == b``) the averaged update
    ``f <- (f + T(f)) / 2`` of :cite:`feydy:19` is used and ``g = f``. ``mode="auto"`` runs
    each stage with stabilised kernel iterations and redoes it in the log domain if they fail;
    ``mode="log"`` (and every chunked cost) uses the log domain throughout. ``init=(f, g)``
    warm-starts from given potentials and skips the annealing.
    """
    B, n, m = op.shape
    dtype, device = log_a.dtype, log_a.device
    if init is None:
        f = torch.zeros(B, n, dtype=dtype, device=device)
        g = torch.zeros(B, m, dtype=dtype, device=device)
        schedule = _eps_schedule(op.amax() if cmax is None else cmax, reg, eps_scaling)
    else:
        f, g = init
        schedule = [(reg, None)]
    n_iter, err = 0, torch.full((B,), float("inf"), dtype=dtype, device=device)
    # In float32 the iterations aim at 0.9 tol: the plan's own error (what is reported) differs
    # from their check by the rounding of (f + g - C) / reg, up to 6e-7 on MiniLM's 6 transitions
    # (n = 4,096, reg = 0.01 x the mean cost, tol 1e-5). Aiming at tol, 5 of the 6 missed it and
    # finished in float64 (1,412 iterations in all); at 0.9 tol none did (1,017), at 0.8 tol 1,077;
    # the pre-#15 code, which stopped on the float32 check, took 968. A miss is still caught below.
    aim = tol if dtype == torch.float64 else _F32_AIM * tol
    for k, (eps, frozen) in enumerate(schedule):
        final = k == len(schedule) - 1
        # the final stage (eps = reg) always gets at least one iteration: a plan built from
        # potentials of a larger eps but evaluated at reg would not be a coupling at all
        budget = max_iter - n_iter if final else min(stage_iter, max_iter - n_iter - 1)
        if budget <= 0:
            continue
        ok = False
        if mode == "auto" and not op.chunked:
            f, g, err, steps, ok = _stage_kernel(op, log_a, log_b, f, g, eps, budget, aim, final, symmetric, anderson,
                                                      frozen)
        if not ok:
            f, g, err, steps, ok = _stage_log(op, log_a, log_b, f, g, eps, budget, aim, final, symmetric, anderson, frozen)
        n_iter += steps
    ev = _evaluate(op, log_a, log_b, f, g, reg, plan=plan)
    # The iterations check the marginals of the kernel they use. Where every entry of a row is
    # below the kernel's clamp (a tiny reg, far-off potentials) that check passes on a plan of
    # mass 0, and in float32 the rounding of (f + g - C) / reg can move the plan's marginals by
    # about tol. Such problems go on in float64 (to tol / 2 when the potentials are rounded back
    # to a narrower dtype): kernel iterations, whose check is then the plan's own (they refuse a
    # kernel whose clamp would count), and the log domain where those fail. From potentials this
    # close a float64 kernel costs one pass and a few products (MiniLM, n = 4,096, reg = 1e-3 x
    # the mean cost: 0.2 s, against 1.0 s for six float64 log-domain iterations).
    suspect = ~(ev["err"] <= tol) & (err <= tol)
    if bool(suspect.any()) and n_iter < max_iter:
        idx, wide = suspect.nonzero()[:, 0], torch.float64
        sub = op.subset(idx, wide)
        args = (sub, log_a[idx].to(wide), log_b[idx].to(wide), f[idx].to(wide), g[idx].to(wide), reg[idx].to(wide),
                max_iter - n_iter, tol if f.dtype == wide else tol / 2, True, symmetric, anderson)
        ok = False
        if mode == "auto" and not sub.chunked:
            fs, gs, _, steps, ok = _stage_kernel(*args)
        if not ok:
            fs, gs, _, steps, _ = _stage_log(*args)
        f, g = f.index_copy(0, idx, fs.to(f.dtype)), g.index_copy(0, idx, gs.to(g.dtype))
        n_iter += steps
        ev = _evaluate(op, log_a, log_b, f, g, reg, plan=plan)
    return f, g, ev, n_iter


def sinkhorn(
    x: Any = None,
    y: Any = None,
    *,
    reg: float,
    cost: Any = None,
    a: Any = None,
    b: Any = None,
    relative_reg: bool = False,
    max_iter: int = 2000,
    tol: float | None = None,
    eps_scaling: float | None = 0.5,
    stage_iter: int = 4,
    mode: str = "auto",
    anderson: int = 8,
    return_plan: bool = False,
    init: Any = None,
    chunk_size: int | None = None,
    dtype: torch.dtype | None = None,
    device: Any = None,
    warn: bool = True,
) -> OTResult:
    r"""Entropic OT between point clouds (or for a given cost matrix), batched, in the log domain.

    Parameters
    ----------
    x : array-like, [n, d] or [B, n, d]
        Source points (a stack solves ``B`` independent problems in one call).
    y : array-like, [m, d] or [B, m, d]
        Target points.
    reg : float
        Entropic regularisation :math:`\varepsilon > 0`, in units of the cost (or of its mean
        over the problem with ``relative_reg=True``).
    cost : array-like, [n, m] or [B, n, m], optional
        A cost matrix (or a stack of them) instead of ``x`` and ``y``: any finite real costs,
        e.g. HOT's correlation distances. ``chunk_size`` does not apply.
    a, b : array-like, [n] / [m] or [B, n] / [B, m], optional
        Point weights summing to one (zeros allowed); uniform when omitted or empty.
    relative_reg : bool
        Multiply ``reg`` by the mean cost of each problem (a scale-free setting).
    max_iter : int
        Maximum number of Sinkhorn iterations, all stages included.
    tol : float, optional
        Converged means: both L1 marginal errors of the returned plan,
        :math:`\lVert P\mathbf 1 - a\rVert_1` and :math:`\lVert P^\top\mathbf 1 - b\rVert_1`,
        are at most ``tol``. Default ``1e-6`` in float64, ``1e-5`` in float32. (POT's
        ``stopThr`` bounds the L2 norm of one marginal's error; an L1 norm is at least the L2
        norm, so ``tol = stopThr`` is at least as strict.)
    eps_scaling : float or None
        Ratio of the geometric annealing of :math:`\varepsilon` from the cost's scale down to
        ``reg``, with ``stage_iter`` iterations per intermediate stage; ``None`` disables it.
    stage_iter : int
        Sinkhorn iterations at each intermediate :math:`\varepsilon` of the annealing (the final
        stage, at ``reg``, runs until ``tol`` or ``max_iter``).
    mode : {"auto", "log"}
        ``"auto"`` iterates with matrix-vector products on a stabilised kernel (the potentials
        absorbed into it, re-absorbed when the scalings drift) and falls back to log-sum-exp
        iterations for any stage where that becomes non-finite, or where the plan's own
        marginals disagree with the kernel's (a tiny ``reg`` can underflow whole rows of the
        kernel); ``"log"`` always uses the log domain. Both give the same iterates in exact
        arithmetic.
    anderson : int
        Depth of the Anderson acceleration of the final stage (:class:`_Anderson`: the last
        ``anderson`` iterates extrapolate the next one, with restarts on stalls and a
        plain-Sinkhorn fallback); ``0`` runs plain Sinkhorn. It matters when the plan is close to
        a permutation, where plain Sinkhorn's rate is close to 1: MiniLM adjacent-layer clouds
        (n = 4,096, float32, reg = 0.01 × mean cost, tol 1e-5) took 88–249 iterations per
        transition, against 1,430 to more than 10,000 with the over-relaxation this replaced.
    return_plan : bool
        Also return the coupling (``[.., n, m]``; not in chunked mode).
    init : tuple of array-like or OTResult, optional
        Warm start: potentials ``(f, g)`` (``[n]``, ``[m]`` or batched) or a previous result,
        e.g. of the same clouds at a larger ``reg`` or of a neighbouring problem. The
        iterations start from them at ``reg`` directly (no annealing).
    chunk_size : int, optional
        Chunked mode: never build the ``n × m`` cost; rebuild blocks of ``chunk_size`` rows
        (or columns) with one GEMM each time they are needed, and reduce them with log-sum-exp
        (log domain only), so memory is ``O(chunk_size × max(n, m))``. By default, a problem
        is chunked when its dense cost would exceed :data:`DENSE_BYTES` (1 GiB), and a stack
        of smaller problems is solved in groups that fit in that budget.
    dtype, device : torch.dtype, str or torch.device, optional
        Computation dtype, float32 or float64 (default: the input's; float32 for integers and
        for float16/bfloat16 inputs, whose range cannot hold the potentials) and device
        (default: the input's; ``"cuda"`` runs on a GPU).
    warn : bool
        Emit a :class:`~otlens.exceptions.ConvergenceWarning` when ``tol`` is not reached.

    Returns
    -------
    OTResult
        ``cost`` :math:`=\langle P, C\rangle`, ``objective`` :math:`=\mathrm{OT}_\varepsilon`
        (the dual value of the returned potentials), ``converged``, ``n_iter``,
        ``marginal_error``, ``potentials`` and optionally ``plan``. Every number describes the
        returned potentials and their plan: ``marginal_error`` is measured on that plan (both
        marginals) and ``converged`` is True only if it is at most ``tol`` with a finite cost.
        A problem that does not converge returns its best checked iterate.

        Gradients: when an input (``x``, ``y``, ``cost``, ``a``, ``b``) requires grad,
        ``objective`` is differentiable through the optimal potentials (the envelope theorem:
        :math:`\partial \mathrm{OT}_\varepsilon / \partial C = P`, :math:`/\partial a = f`,
        :math:`/\partial b = g`, with the dependence of ``reg`` on the costs under
        ``relative_reg``) and ``cost`` by implicit differentiation of the optimality
        conditions, without backpropagating through the iterations (dense mode only). The
        gradients are those of the exact optimum: converge tightly (small ``tol``) when they matter.

    Raises
    ------
    ValueError
        On empty, NaN/inf, mismatched or wrongly shaped inputs, non-positive ``reg``, costs
        that overflow the dtype or a ``reg`` too small for the cost scale.

    Warns
    -----
    ConvergenceWarning
        If ``tol`` was not reached within ``max_iter`` iterations.

    See Also
    --------
    sinkhorn_divergence : The debiased divergence :math:`S_\varepsilon`.
    otlens.ot.exact_ot : Unregularised OT (network simplex), the small-case reference.
    otlens.ot.hiref : A bijection between equal-size clouds in linear memory (Hierarchical Refinement).
    otlens.ot.frlc : A low-rank coupling, never forming the ``n × m`` plan (FRLC).
    otlens.ot.solve : One entry point to every solver, picked by ``method=``.
    otlens.ot.pot.sinkhorn2 : The same solver behind POT's argument names.

    Examples
    --------
    >>> import torch
    >>> from otlens.ot import sinkhorn
    >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    >>> r = sinkhorn(x, x + torch.tensor([0.0, 1.0], dtype=torch.float64), reg=0.01)
    >>> round(float(r.cost), 4), r.converged
    (1.0, True)
    """
    reg = check_positive(reg, "reg")
    opts = _solver_options(max_iter, tol, eps_scaling, stage_iter, mode, chunk_size, anderson)
    x, y, C, a, b, batched = prepare(x, y, a, b, dtype, device, cost)
    grad = _needs_grad(x, y, C, a, b)
    like = C if x is None else x
    init = _init_potentials(init, like.shape[0], like.shape[1], b.shape[1], like)
    with torch.no_grad():
        r = _entropic(*_detach(x, y, a, b), reg, C=_detach(C)[0], relative_reg=relative_reg,
                      return_plan=return_plan or grad, init=init, **opts)
    if grad:
        _attach_gradients(r, x, y, C, a, b, reg if relative_reg else None)
    converged = _check_converged(r, opts["tol"], warn, "Sinkhorn")
    out = unbatch(batched)
    return OTResult(
        cost=out(r["cost"]),
        objective=out(r["objective"]),
        n_iter=r["n_iter"],
        converged=converged,
        marginal_error=out(r["err"]),
        method="sinkhorn",
        reg=out(r["eps"]),
        potentials=(out(r["f"]), out(r["g"])),
        plan=out(r["plan"]) if return_plan else None,
    )


def _solver_options(max_iter, tol, eps_scaling, stage_iter, mode="auto", chunk_size=None, anderson=8) -> dict:
    if eps_scaling is not None and not 0.0 < float(eps_scaling) < 1.0:
        raise ValueError(f"`eps_scaling` must be in (0, 1) or None; got {eps_scaling!r}")
    return dict(
        anderson=check_int(anderson, "anderson", minimum=0),
        chunk_size=None if chunk_size is None else check_int(chunk_size, "chunk_size", minimum=1),
        max_iter=check_int(max_iter, "max_iter", minimum=1),
        tol=None if tol is None else check_positive(tol, "tol"),
        eps_scaling=eps_scaling,
        stage_iter=check_int(stage_iter, "stage_iter", minimum=0),
        mode=check_choice(mode, "mode", ("auto", "log")),
    )


def _needs_grad(*ts) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in ts)


def _detach(*ts) -> list:
    return [None if t is None else t.detach() for t in ts]


#: Dense cost matrices are used while one problem's ``n × m`` matrix takes at most this many
#: bytes (problems of a stack are solved in groups that fit); larger problems are chunked.
DENSE_BYTES = 2**30
#: Bytes of one block of rows (or columns) in chunked mode, when ``chunk_size`` is not given.
CHUNK_BYTES = 2**26


def _layout(B: int, n: int, m: int, itemsize: int, chunk_size: int | None) -> tuple[int, int | None]:
    """``(problems per group, chunk or None)``: how a stack is cut so that memory stays bounded."""
    if chunk_size is None and n * m * itemsize > DENSE_BYTES:
        chunk_size = max(1, CHUNK_BYTES // (max(n, m) * itemsize))
    if chunk_size is not None:
        return B, chunk_size
    return max(1, min(B, DENSE_BYTES // (n * m * itemsize))), None


def _entropic(x, y, a, b, reg, *, C=None, relative_reg=False, return_plan=False, symmetric=False, tol=None,
              init=None, chunk_size=None, **loop) -> dict:
    """Solve validated stacks (clouds ``x``, ``y`` or costs ``C``); return batched tensors and n_iter.

    Keys: cost, objective, f, g, err (both marginals of the returned plan), eps, plan, n_iter, tol.
    """
    like = x if C is None else C
    tol = _default_tol(like.dtype) if tol is None else tol
    B, n, m = like.shape[0], like.shape[1], b.shape[1]
    if C is not None:
        if chunk_size is not None:
            raise ValueError("`chunk_size` applies to point clouds; a cost matrix is already held in memory")
        group, chunk = max(1, min(B, DENSE_BYTES // (n * m * like.element_size()))), None
    else:
        group, chunk = _layout(B, n, m, like.element_size(), chunk_size)
    if chunk is not None and return_plan:
        raise ValueError(f"`return_plan=True` (and gradients) need the dense {n} x {m} plan; it is not available in "
                         f"chunked mode (chunk_size={chunk}). Pass `chunk_size=None` for problems that fit in memory.")
    # reg: one float for all problems, or a tensor [B] with one eps per problem
    reg = torch.as_tensor(reg, dtype=like.dtype, device=like.device).expand(B).clone()
    parts = []
    for s in range(0, B, group):
        sl = slice(s, s + group)
        if C is not None:
            op = _DenseCost(None, None, C[sl])
        else:
            op = _DenseCost(x[sl], y[sl]) if chunk is None else _ChunkedCost(x[sl], y[sl], chunk)
        eps = reg[sl]
        if relative_reg:
            mean = op.mean()
            if not bool((mean > 0).all()):
                raise ValueError(f"`relative_reg=True` needs a positive mean cost; got {float(mean.min()):g}")
            eps = eps * mean
        cmax = op.amax()
        _check_scale(cmax, eps, like.dtype)
        log_a, log_b = a[sl].log(), b[sl].log()
        start = None if init is None else (init[0][sl], init[1][sl])
        f, g, ev, n_iter = _log_sinkhorn(op, log_a, log_b, eps, tol=tol, symmetric=symmetric, init=start, cmax=cmax,
                                         plan=return_plan, **loop)
        # the dual value of (f, g): <a, f> + <b, g> - eps (mass - 1), a lower bound of OT_eps
        objective = (a[sl] * f).sum(1) + (b[sl] * g).sum(1) - eps * (ev["mass"] - 1.0)
        parts.append(dict(cost=ev["cost"], objective=objective, f=f, g=g, err=ev["err"], eps=eps, n_iter=n_iter,
                          plan=ev["plan"]))
        del op, ev
    out = {k: torch.cat([p[k] for p in parts]) for k in ("cost", "objective", "f", "g", "err", "eps")}
    out.update(n_iter=max(p["n_iter"] for p in parts), tol=tol, chunk=chunk,
               plan=torch.cat([p["plan"] for p in parts]) if return_plan else None)
    return out


def _attach_gradients(r: dict, x, y, C, a, b, rel: float | None) -> None:
    r"""Make ``r["objective"]`` (and ``r["cost"]``) differentiable in the live inputs, in place.

    Each value ``v`` becomes ``v + <G, z - z.detach()>`` summed over the inputs ``z`` with
    ``G = dv/dz`` at the optimum: its value is unchanged and its gradient is ``G``. For the
    objective (envelope theorem) ``G_C = P``, ``G_a = f``, ``G_b = g`` and
    ``dOT/d eps = KL(P | a b)``. For the cost :math:`\langle P, C\rangle` the adjoint of the
    optimality conditions :math:`P\mathbf 1 = a`, :math:`P^\top \mathbf 1 = b` is solved:
    :math:`(\operatorname{diag} b - P^\top \operatorname{diag}(1/a) P)\mu = s - P^\top (r/a)` with
    :math:`r = (P\odot C)\mathbf 1`, :math:`s = (P\odot C)^\top \mathbf 1`, then
    :math:`\lambda_i = \sum_j (P_{ij}/a_i)(C_{ij} - \mu_j)`, and
    :math:`G_C = P\odot(1 + (\lambda_i + \mu_j - C_{ij})/\varepsilon)`, :math:`G_a = \lambda`,
    :math:`G_b = \sum_i (P_{ij}/b_j)(C_{ij} - \lambda_i)`.
    """
    P, f, g, eps = r["plan"], r["f"], r["g"], r["eps"]
    C_live = sq_euclidean_cost(x, y) if C is None else C
    Cd = C_live.detach()
    e = eps[:, None, None]
    L = (f[:, :, None] + g[:, None, :] - Cd) / e  # log(P / (a b)) where the weights are positive
    dC = C_live - Cd
    da, db = a - a.detach(), b - b.detach()
    d_eps = rel * C_live.mean(dim=(1, 2)) - eps if rel is not None else None  # the live eps minus its value
    kl = torch.nan_to_num(P * L).sum(dim=(1, 2))
    obj = r["objective"] + (P * dC).sum(dim=(1, 2)) + (f * da).sum(1) + (g * db).sum(1)
    if d_eps is not None:
        obj = obj + kl * d_eps
    with torch.no_grad():
        W = P.double()
        Cw = Cd.double()
        PC = W * Cw
        rr, ss = PC.sum(2), PC.sum(1)
        ad, bd = a.detach().double(), b.detach().double()
        inv_a = torch.where(ad > 0, 1.0 / ad, torch.zeros_like(ad))
        S = torch.diag_embed(bd) - W.transpose(1, 2) @ (W * inv_a[:, :, None])
        rhs = ss - (W.transpose(1, 2) @ (rr * inv_a)[:, :, None])[:, :, 0]
        mu = (torch.linalg.pinv(S, hermitian=True) @ rhs[:, :, None])[:, :, 0]
        Q = torch.exp(L.double() + torch.log(bd)[:, None, :])  # P / a, also where a = 0
        lam = (Q * (Cw - mu[:, None, :])).sum(2)
        R = torch.exp(L.double() + torch.log(ad)[:, :, None])  # P / b
        G_b = (R * (Cw - lam[:, :, None])).sum(1)
        ed = eps.double()[:, None, None]
        G_C = W * (1.0 + (lam[:, :, None] + mu[:, None, :] - Cw) / ed)
        dcost_deps = torch.nan_to_num(W * L.double() * (lam[:, :, None] + mu[:, None, :] - Cw)).sum(dim=(1, 2)) / ed[:, 0, 0]
        G_C, lam, G_b, dcost_deps = (t.to(P.dtype) for t in (G_C, lam, G_b, dcost_deps))
    cost = r["cost"] + (G_C * dC).sum(dim=(1, 2)) + (lam * da).sum(1) + (G_b * db).sum(1)
    if d_eps is not None:
        cost = cost + dcost_deps * d_eps
    r["objective"], r["cost"] = obj, cost


def _init_potentials(init: Any, B: int, n: int, m: int, like: torch.Tensor):
    """Validate warm-start potentials ``(f, g)`` (``[n]``/``[m]`` or ``[B, n]``/``[B, m]``)."""
    if init is None:
        return None
    if isinstance(init, OTResult):
        init = init.potentials
    if not isinstance(init, (tuple, list)) or len(init) != 2:
        raise ValueError(f"`init` must be a pair of potentials (f, g) or an OTResult; got {type(init).__name__}")
    out = []
    for name, t, k in (("init[0] (f)", init[0], n), ("init[1] (g)", init[1], m)):
        t = torch.as_tensor(t).detach().to(like.detach())
        if t.ndim == 1:
            t = t.expand(B, -1)
        if t.shape != (B, k):
            raise ValueError(f"`{name}` must have shape ({k},) or ({B}, {k}); got {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"`{name}` contains NaN or infinite values")
        out.append(t.contiguous())
    return tuple(out)


def _check_converged(r: dict, tol, warn: bool, what: str) -> bool:
    """Whether every returned plan meets ``tol`` on both marginals with a finite cost; warn (once) if not."""
    tol = r["tol"] if tol is None else tol
    finite = all(bool(torch.isfinite(r[k]).all()) for k in ("f", "g", "cost"))
    converged = finite and bool((r["err"] <= tol).all())
    if warn and not converged:
        hint = ("; in float32 the potentials resolve the plan only to about (|f| + |g|) / reg x 6e-8: "
                "compute in float64 (`dtype=torch.float64`) for a small reg") if r["f"].dtype == torch.float32 else ""
        warnings.warn(
            f"{what} did not converge: marginal error {float(r['err'].max()):.3g} > tol={tol:g} after "
            f"{r['n_iter']} iterations (reg={float(r['eps'].min()):.3g}). Increase `max_iter`, `reg` or `tol`{hint}.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return converged


def sinkhorn_divergence(
    x: Any,
    y: Any,
    *,
    reg: float,
    a: Any = None,
    b: Any = None,
    relative_reg: bool = False,
    max_iter: int = 2000,
    tol: float | None = None,
    eps_scaling: float | None = 0.5,
    stage_iter: int = 4,
    mode: str = "auto",
    anderson: int = 8,
    chunk_size: int | None = None,
    dtype: torch.dtype | None = None,
    device: Any = None,
    warn: bool = True,
) -> OTResult:
    r"""Debiased Sinkhorn divergence :math:`S_\varepsilon` between point clouds.

    :math:`S_\varepsilon(a,b) = \mathrm{OT}_\varepsilon(a,b) - \tfrac12\mathrm{OT}_\varepsilon(a,a)
    - \tfrac12\mathrm{OT}_\varepsilon(b,b)` :cite:`feydy:19`, with :math:`\mathrm{OT}_\varepsilon`
    the dual value of :func:`sinkhorn`. It is non-negative, zero for identical clouds, and
    removes the entropic bias that makes :math:`\mathrm{OT}_\varepsilon(a, a) > 0`. The two
    self-transport terms use the symmetric (averaged) Sinkhorn update.

    When ``x``, ``y``, ``a`` or ``b`` require grad, :math:`S_\varepsilon` is differentiable
    through the three problems' optimal potentials (envelope theorem; dense mode only).

    Parameters
    ----------
    x : array-like, [n, d] or [B, n, d]
        Source points (a stack solves ``B`` independent problems).
    y : array-like, [m, d] or [B, m, d]
        Target points.
    reg : float
        Entropic regularisation :math:`\varepsilon > 0`; with ``relative_reg=True`` the mean
        cost of the cross problem sets :math:`\varepsilon` for all three terms.
    a, b : array-like, [n] / [m] or [B, n] / [B, m], optional
        Point weights summing to one; uniform when omitted.
    relative_reg : bool
        Multiply ``reg`` by the mean cost of the cross problem.
    max_iter, tol, eps_scaling, stage_iter, mode, anderson, chunk_size : optional
        Passed to each of the three :func:`sinkhorn` problems (see there).
    dtype, device : torch.dtype, str or torch.device, optional
        Computation dtype and device, as in :func:`sinkhorn`.
    warn : bool
        Emit a :class:`~otlens.exceptions.ConvergenceWarning` when a term misses ``tol``.

    Returns
    -------
    OTResult
        ``cost`` and ``objective`` hold :math:`S_\varepsilon` (``[B]`` or 0-d),
        ``marginal_error`` the largest error of the three plans and ``converged`` whether all
        three converged.

    See Also
    --------
    sinkhorn : The entropic OT problem each term solves.
    otlens.ot.exact_ot : Unregularised OT (network simplex).
    otlens.ot.hiref : A bijection between equal-size clouds (Hierarchical Refinement).
    otlens.ot.frlc : A low-rank coupling (FRLC).
    otlens.ot.solve : One entry point (``method="divergence"`` runs this function).
    """
    reg = check_positive(reg, "reg")
    opts = _solver_options(max_iter, tol, eps_scaling, stage_iter, mode, chunk_size, anderson)
    xs, ys, _, a_, b_, batched = prepare(x, y, a, b, dtype, device)
    grad = _needs_grad(xs, ys, a_, b_)
    with torch.no_grad():
        xd, yd, ad, bd = _detach(xs, ys, a_, b_)
        xy = _entropic(xd, yd, ad, bd, reg, relative_reg=relative_reg, return_plan=grad, **opts)
        # the self terms use the cross term's absolute eps, one per problem
        terms = [xy] + [_entropic(p, p, w, w, xy["eps"], symmetric=True, return_plan=grad, **opts)
                        for p, w in ((xd, ad), (yd, bd))]
    if grad:
        rel = reg if relative_reg else None
        _attach_gradients(xy, xs, ys, None, a_, b_, rel)
        cross_eps = reg * sq_euclidean_cost(xs, ys).mean(dim=(1, 2)) if relative_reg else None
        for t, p, w in ((terms[1], xs, a_), (terms[2], ys, b_)):
            _attach_self_gradient(t, p, w, cross_eps)
    s = xy["objective"] - 0.5 * (terms[1]["objective"] + terms[2]["objective"])
    merged = dict(
        f=torch.cat([t["f"] for t in terms], 1), g=torch.cat([t["g"] for t in terms], 1),
        cost=s.detach(), err=torch.stack([t["err"] for t in terms]).amax(0), eps=xy["eps"],
        n_iter=max(t["n_iter"] for t in terms), tol=xy["tol"],
    )
    converged = _check_converged(merged, opts["tol"], warn, "Sinkhorn divergence")
    out = unbatch(batched)
    return OTResult(
        cost=out(s), objective=out(s), n_iter=merged["n_iter"], converged=converged,
        marginal_error=out(merged["err"]), method="divergence", reg=out(xy["eps"]),
    )


def _attach_self_gradient(r: dict, p: torch.Tensor, w: torch.Tensor, live_eps: torch.Tensor | None) -> None:
    """The envelope-theorem gradient of a self term :math:`\\mathrm{OT}_\\varepsilon(w, w)` (``f = g``), in place."""
    P, f, eps = r["plan"], r["f"], r["eps"]
    C_live = sq_euclidean_cost(p, p)
    Cd = C_live.detach()
    obj = r["objective"] + (P * (C_live - Cd)).sum(dim=(1, 2)) + 2.0 * (f * (w - w.detach())).sum(1)
    if live_eps is not None:
        L = (f[:, :, None] + f[:, None, :] - Cd) / eps[:, None, None]
        obj = obj + torch.nan_to_num(P * L).sum(dim=(1, 2)) * (live_eps - eps)
    r["objective"] = obj
