r"""A transformer with fixed weights that solves entropic optimal transport, one layer per step.

The construction (after :cite:t:`daneshmand:24`, rebuilt here from the dual problem) runs
gradient ascent on the dual of entropy-regularised OT between a list ``x`` (``n`` points with
weights ``a``) and a target ``y`` (``m`` points with weights ``b``), with cost
:math:`C_{ij} = \lVert x_i - y_j \rVert^2`:

.. math::

    D(f, g) = \langle a, f \rangle + \langle b, g \rangle
        - \varepsilon \sum_{ij} a_i b_j \big(e^{(f_i + g_j - C_{ij})/\varepsilon} - 1\big),
    \qquad P_{ij} = a_i b_j\, e^{(f_i + g_j - C_{ij})/\varepsilon}.

With :math:`r_j = \sum_i a_i e^{(f_i + g_j - C_{ij})/\varepsilon}` (column mass of :math:`P`
over :math:`b_j`) and :math:`q_i` the same for rows, :math:`\partial D / \partial g_j = b_j(1 -
r_j)`. **One attention layer performs the step**

.. math::

    g_j \leftarrow g_j + \eta\,\varepsilon\,\frac{1 - r_j}{1 + r_j}
        = g_j + \underbrace{\frac{\eta\,\varepsilon}{b_j (1 + r_j)}}_{\text{adaptive step}}
          \frac{\partial D}{\partial g_j},
    \qquad f_i \leftarrow f_i + \eta\,\varepsilon\,\frac{1 - q_i}{1 + q_i},

for all tokens at once. Why softmax attention can do this: the score of a target token ``j``
(query) on a source token ``i`` (key) is the bilinear form

.. math::

    s_{ji} = \underbrace{2\langle y_j, x_i\rangle/\varepsilon}_{\text{query-key}}
        + \underbrace{(f_i - \lVert x_i\rVert^2)/\varepsilon + \log a_i}_{\text{key bias}}
        + \underbrace{(g_j - \lVert y_j\rVert^2)/\varepsilon}_{\text{query bias}}
        = \log a_i + (f_i + g_j - C_{ij})/\varepsilon,

and the engineered prompt adds a **sink** token :math:`z^+` whose score is 0 for every query
and whose value is :math:`+1` (source and target tokens have value :math:`-1`). The softmax
weight on the sink is then :math:`1 / (1 + r_j)`, and the attention output is
:math:`(1 - r_j)/(1 + r_j)`: the un-normalised column mass that a softmax alone cannot
produce. A second sink :math:`z^-` (value :math:`-1`, invisible to source and target
tokens) lets the two sinks attend to each other only, so their own update is exactly zero.
Same-type tokens are masked by a bilinear flag term of size ``mask_scale``.

Every token is a vector ``[p (d), ‖p‖², log w, φ, L, S, T, Z+, Z-]``: its point, squared norm,
log-weight, potential (``f`` on sources, ``g`` on targets), and flags (live, source, target,
the two sinks). The weights ``W_Q, W_K, W_V, W_O`` depend on ``d``, ``reg``, ``step`` and
``mask_scale`` only, **not on n or m**: the same module transports lists of any length.

For sorting, the target is the grid :math:`y_j = (j - \tfrac12)/n` and the permutation is read
off the final plan, :math:`\hat\sigma(i) = \arg\max_j P_{ij}`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ._validation import as_points, check_choice, check_int, check_positive, check_probability
from .ot import solve

__all__ = [
    "DualOTTransformer",
    "TransformerOTResult",
    "dual_step",
    "entropic_plan",
    "sinkhorn_iterates",
    "sort_prompt",
    "transformer_sort",
    "sorting_study",
    "depth_to",
    "SortingSummary",
    "sorting_summary",
    "layer_vs_step",
    "sort_examples",
    "PROMPTS",
]

#: Prompt variants of :meth:`DualOTTransformer.encode`: the engineered prompt, and without its sinks.
PROMPTS = ("engineered", "no-sink")

# token layout after the d point coordinates
_S2, _LOGW, _PHI, _LIVE, _SRC, _TGT, _ZP, _ZN = range(8)
_EXTRA = 8


def _weights(w: Any, name: str, n: int, like: torch.Tensor) -> torch.Tensor:
    if w is None:
        return torch.full((n,), 1.0 / n, dtype=like.dtype)
    t = torch.as_tensor(np.asarray(w) if not isinstance(w, torch.Tensor) else w).to(like.dtype).reshape(-1)
    check_probability(t, name, n, tol=1e-6)
    if bool((t <= 0).any()):
        raise ValueError(f"`{name}` must be strictly positive (its log is a token coordinate); got min {float(t.min()):g}")
    return t


def _cost(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)  # [n, m]


def entropic_plan(f: torch.Tensor, g: torch.Tensor, x: torch.Tensor, y: torch.Tensor, a: torch.Tensor,
                  b: torch.Tensor, reg: float) -> torch.Tensor:
    r"""The plan :math:`P_{ij} = a_i b_j e^{(f_i + g_j - C_{ij})/\varepsilon}` of dual potentials ``(f, g)``.

    Parameters
    ----------
    f : torch.Tensor, [n]
        Source potentials.
    g : torch.Tensor, [m]
        Target potentials.
    x : torch.Tensor, [n, d]
        Source points.
    y : torch.Tensor, [m, d]
        Target points (squared Euclidean cost :math:`C`).
    a : torch.Tensor, [n]
        Positive source weights.
    b : torch.Tensor, [m]
        Positive target weights.
    reg : float
        :math:`\varepsilon > 0`.

    Returns
    -------
    torch.Tensor, [n, m]
        The plan :math:`P`.
    """
    C = _cost(x, y)  # [n, m]
    return torch.exp(a.log()[:, None] + b.log()[None, :] + (f[:, None] + g[None, :] - C) / reg)


def dual_step(f: torch.Tensor, g: torch.Tensor, x: Any, y: Any, *, reg: float, a: Any = None, b: Any = None,
              step: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One explicit adaptive-step dual gradient step (the reference the attention layer must equal).

    .. math::

        f_i \leftarrow f_i + \eta\varepsilon \frac{1 - q_i}{1 + q_i}, \quad
        g_j \leftarrow g_j + \eta\varepsilon \frac{1 - r_j}{1 + r_j}, \quad
        q_i = \frac{(P\mathbf 1)_i}{a_i}, \ r_j = \frac{(P^\top \mathbf 1)_j}{b_j},

    with :math:`P` from :func:`entropic_plan`. The step on ``g_j`` is the gradient
    :math:`\partial D/\partial g_j = b_j (1 - r_j)` times the adaptive step size
    :math:`\eta\varepsilon / (b_j (1 + r_j))`.

    Parameters
    ----------
    f, g : torch.Tensor, [n] and [m]
        Current potentials.
    x, y : array-like, [n, d] and [m, d]
        Source and target points.
    reg : float
        :math:`\varepsilon > 0`.
    a, b : array-like, optional
        Positive weights summing to one (uniform by default).
    step : float
        :math:`\eta > 0`.

    Returns
    -------
    f, g : torch.Tensor, [n] and [m]
        The potentials after the step.
    """
    reg = check_positive(reg, "reg")
    step = check_positive(step, "step")
    x = as_points(x, "x", dtype=f.dtype)
    y = as_points(y, "y", dtype=f.dtype)
    a, b = _weights(a, "a", x.shape[0], x), _weights(b, "b", y.shape[0], x)
    P = entropic_plan(f, g, x, y, a, b, reg)  # [n, m]
    q, r = P.sum(1) / a, P.sum(0) / b  # [n], [m]
    return f + step * reg * (1 - q) / (1 + q), g + step * reg * (1 - r) / (1 + r)


@dataclass(frozen=True)
class TransformerOTResult:
    """What :meth:`DualOTTransformer.solve` returns.

    Attributes
    ----------
    plan : torch.Tensor, [n, m]
        :math:`P_{ij} = a_i b_j e^{(f_i + g_j - C_{ij})/\\varepsilon}` from the final tokens.
    f, g : torch.Tensor
        Potentials read off the final tokens.
    depth : int
        Number of layers run.
    marginal_error : float
        L1 error of both marginals of ``plan``.
    history : list of torch.Tensor or None
        The plan after each depth in ``record`` (when given).
    attention : torch.Tensor or None
        Last layer's attention weights ``[N, N]`` (tokens in prompt order) when requested.
    """

    plan: torch.Tensor
    f: torch.Tensor
    g: torch.Tensor
    depth: int
    marginal_error: float
    history: dict[int, torch.Tensor] | None = None
    attention: torch.Tensor | None = None


class DualOTTransformer(torch.nn.Module):
    r"""Attention-only transformer whose every layer is one entropic-OT dual gradient step.

    One head, a residual connection, no MLP, no normalisation: layer :math:`\ell` maps the
    tokens :math:`H \in \mathbb R^{N \times D}` to

    .. math::

        H \leftarrow H + \operatorname{softmax}\!\big(H W_Q^\top (H W_K^\top)^\top\big)\, H W_V^\top W_O^\top,

    with the explicit weights built in ``__init__`` (see the module docstring); the same
    weights are used at every layer, so depth is the number of steps.

    Parameters
    ----------
    dim : int
        Dimension ``d`` of the points.
    reg : float
        Entropic regularisation :math:`\varepsilon`.
    step : float, default 1.0
        :math:`\eta`; each potential moves by less than :math:`\eta\varepsilon` per layer.
        :math:`\eta \le 1` converges; :math:`\eta = 2` oscillates.
    mask_scale : float, default 1e6
        Size of the bilinear flag term that hides same-type tokens.
    dtype : torch.dtype, default torch.float64
        Dtype of the weights (and of the prompts :meth:`encode` builds).
    """

    def __init__(self, dim: int, *, reg: float, step: float = 1.0, mask_scale: float = 1e6,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim", minimum=1)
        self.reg = check_positive(reg, "reg")
        self.step = check_positive(step, "step")
        self.mask_scale = check_positive(mask_scale, "mask_scale")
        d, D, M, e = self.dim, self.dim + _EXTRA, self.mask_scale, self.reg
        c = lambda k: d + k  # noqa: E731 - column of an extra coordinate
        n_qk = d + 7
        Wq = torch.zeros(n_qk, D, dtype=dtype)  # [d + 7, D], D = d + 8
        Wk = torch.zeros(n_qk, D, dtype=dtype)  # [d + 7, D]
        # 2<p_q, p_k>/eps
        Wq[:d, :d] = torch.eye(d) * (2.0 / e)
        Wk[:d, :d] = torch.eye(d)
        # live query reads the key bias (phi_k - |p_k|^2)/eps + log w_k
        Wq[d, c(_LIVE)] = 1.0
        Wk[d, c(_PHI)], Wk[d, c(_S2)], Wk[d, c(_LOGW)] = 1.0 / e, -1.0 / e, 1.0
        # query bias (phi_q - |p_q|^2)/eps, on live keys only
        Wq[d + 1, c(_PHI)], Wq[d + 1, c(_S2)] = 1.0 / e, -1.0 / e
        Wk[d + 1, c(_LIVE)] = 1.0
        # masks: same type, sink queries on live keys, live queries on the negative sink
        for row, (qi, ki) in enumerate([(_SRC, _SRC), (_TGT, _TGT), (_ZP, _LIVE), (_ZN, _LIVE), (_LIVE, _ZN)]):
            Wq[d + 2 + row, c(qi)] = -M
            Wk[d + 2 + row, c(ki)] = 1.0
        Wv = torch.zeros(1, D, dtype=dtype)  # [1, D]: one value coordinate
        Wv[0, c(_ZP)], Wv[0, c(_ZN)], Wv[0, c(_LIVE)] = 1.0, -1.0, -1.0
        Wo = torch.zeros(D, 1, dtype=dtype)  # [D, 1]: writes into the potential column
        Wo[c(_PHI), 0] = self.step * e
        for name, w in (("W_Q", Wq), ("W_K", Wk), ("W_V", Wv), ("W_O", Wo)):
            self.register_buffer(name, w)

    # ----------------------------------------------------------------------------- prompt
    def encode(self, x: Any, y: Any, *, a: Any = None, b: Any = None, f: Any = None, g: Any = None,
               prompt: str = "engineered") -> torch.Tensor:
        """The prompt: ``n`` source tokens, ``m`` target tokens, then the sinks ``z+, z-``.

        Parameters
        ----------
        x, y : array-like, [n, d] and [m, d]
            Source and target points (``d`` the module's ``dim``).
        a, b : array-like, optional
            Positive weights (uniform by default).
        f, g : array-like, optional
            Initial potentials (zeros by default).
        prompt : {"engineered", "no-sink"}
            ``"no-sink"`` leaves out the two sink tokens (the ablation).

        Returns
        -------
        torch.Tensor, [n + m (+ 2), d + 8]
            One token per row: sources, targets, then the sinks; columns are the point, then the
            extra coordinates (squared norm, log weight, potential, live flag, type flags).
        """
        check_choice(prompt, "prompt", PROMPTS)
        dt = self.W_Q.dtype
        x = as_points(x, "x", dtype=dt)
        y = as_points(y, "y", dtype=dt)
        for name, t in (("x", x), ("y", y)):
            if t.shape[1] != self.dim:
                raise ValueError(f"`{name}` must have dimension {self.dim} (the module's `dim`); got shape {tuple(t.shape)}")
        n, m, d = x.shape[0], y.shape[0], self.dim
        a, b = _weights(a, "a", n, x), _weights(b, "b", m, x)
        f = torch.zeros(n, dtype=dt) if f is None else torch.as_tensor(f, dtype=dt).reshape(n)  # [n]
        g = torch.zeros(m, dtype=dt) if g is None else torch.as_tensor(g, dtype=dt).reshape(m)  # [m]
        n_sink = 2 if prompt == "engineered" else 0
        H = torch.zeros(n + m + n_sink, d + _EXTRA, dtype=dt)  # [N, D], N = n + m (+ 2)
        for rows, pts, w, phi, flag in ((slice(0, n), x, a, f, _SRC), (slice(n, n + m), y, b, g, _TGT)):
            H[rows, :d] = pts
            H[rows, d + _S2] = (pts * pts).sum(1)
            H[rows, d + _LOGW] = w.log()
            H[rows, d + _PHI] = phi
            H[rows, d + _LIVE] = 1.0
            H[rows, d + flag] = 1.0
        if n_sink:
            H[n + m, d + _ZP] = 1.0
            H[n + m + 1, d + _ZN] = 1.0
        return H

    # ----------------------------------------------------------------------------- layers
    def attention(self, H: torch.Tensor) -> torch.Tensor:
        """Attention weights ``[.., N, N]`` of one layer on tokens ``H`` ``[.., N, D]``.

        Parameters
        ----------
        H : torch.Tensor, [.., N, D]
            Tokens (``D = d + 8``), e.g. from :meth:`encode`.

        Returns
        -------
        torch.Tensor, [.., N, N]
            Row-stochastic attention weights (query rows, key columns).
        """
        scores = (H @ self.W_Q.T) @ (H @ self.W_K.T).transpose(-1, -2)  # [.., N, N]
        return torch.softmax(scores, dim=-1)

    def layer(self, H: torch.Tensor, *, return_attention: bool = False):
        """One layer: ``H + softmax(Q K^T) V W_O^T``; optionally also the attention weights.

        Parameters
        ----------
        H : torch.Tensor, [.., N, D]
            Tokens.
        return_attention : bool
            Also return the layer's attention weights.

        Returns
        -------
        torch.Tensor or tuple of torch.Tensor
            The tokens after the layer ``[.., N, D]``; with ``return_attention``, ``(tokens,
            attention)`` with the attention ``[.., N, N]``.
        """
        A = self.attention(H)  # [.., N, N]
        out = H + (A @ (H @ self.W_V.T)) @ self.W_O.T  # [.., N, D]
        return (out, A) if return_attention else out

    def forward(self, H: torch.Tensor, depth: int = 1) -> torch.Tensor:
        """Run ``depth`` layers (the same weights each time).

        Parameters
        ----------
        H : torch.Tensor, [.., N, D]
            Tokens.
        depth : int
            Number of layers, ``>= 0``.

        Returns
        -------
        torch.Tensor, [.., N, D]
            The tokens after ``depth`` layers.
        """
        depth = check_int(depth, "depth", minimum=0)
        for _ in range(depth):
            H = self.layer(H)
        return H

    def read(self, H: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Potentials ``(f, g)`` of the first ``n`` (source) and the following target tokens.

        Parameters
        ----------
        H : torch.Tensor, [N, D]
            Tokens (sinks, if any, are skipped: they are not live).
        n : int
            Number of source tokens.

        Returns
        -------
        f : torch.Tensor, [n]
            Source potentials.
        g : torch.Tensor, [m]
            Target potentials.
        """
        d = self.dim
        live = H[:, d + _LIVE] > 0.5  # [N], False on the sinks
        phi = H[live, d + _PHI]  # [n + m]
        return phi[:n], phi[n:]

    def solve(self, x: Any, y: Any, *, depth: int, a: Any = None, b: Any = None, prompt: str = "engineered",
              record: Any = None, return_attention: bool = False) -> TransformerOTResult:
        """Encode the prompt, run ``depth`` layers and read the plan off the final tokens.

        Parameters
        ----------
        x : array-like, [n, d]
            Source points.
        y : array-like, [m, d]
            Target points.
        depth : int
            Number of layers, ``>= 0``.
        a, b : array-like, [n] / [m], optional
            Positive weights (uniform by default).
        prompt : {"engineered", "no-sink"}
            ``"no-sink"`` leaves out the two sink tokens (the ablation).
        record : collection of int, optional
            Depths after which the plan is kept (``history``).
        return_attention : bool
            Also keep the last layer's attention weights.

        Returns
        -------
        TransformerOTResult
            The plan ``[n, m]`` read off the final tokens, its potentials and marginal error.
        """
        depth = check_int(depth, "depth", minimum=0)
        record = set() if record is None else {check_int(k, "record", minimum=0) for k in record}
        H = self.encode(x, y, a=a, b=b, prompt=prompt)
        dt = H.dtype
        xs, ys = as_points(x, "x", dtype=dt), as_points(y, "y", dtype=dt)
        aw, bw = _weights(a, "a", xs.shape[0], xs), _weights(b, "b", ys.shape[0], xs)
        n = xs.shape[0]
        history: dict[int, torch.Tensor] = {}
        A = None
        if 0 in record:
            history[0] = entropic_plan(*self.read(H, n), xs, ys, aw, bw, self.reg)
        with torch.no_grad():
            for k in range(1, depth + 1):
                H, A = self.layer(H, return_attention=True)
                if k in record:
                    history[k] = entropic_plan(*self.read(H, n), xs, ys, aw, bw, self.reg)
        f, g = self.read(H, n)
        P = entropic_plan(f, g, xs, ys, aw, bw, self.reg)
        err = float((P.sum(1) - aw).abs().sum() + (P.sum(0) - bw).abs().sum())
        return TransformerOTResult(plan=P, f=f, g=g, depth=depth, marginal_error=err,
                                   history=history if record else None,
                                   attention=A if return_attention else None)


def sinkhorn_iterates(x: Any, y: Any, *, reg: float, n_iter: int, a: Any = None, b: Any = None,
                      record: Any = None, dtype: torch.dtype = torch.float64) -> dict[int, torch.Tensor]:
    r"""Plain log-domain Sinkhorn from zero potentials; the plan after each iteration in ``record``.

    One iteration is :math:`g \leftarrow -\varepsilon \log \sum_i a_i e^{(f_i - C_{ij})/\varepsilon}`
    then :math:`f \leftarrow -\varepsilon \log \sum_j b_j e^{(g_j - C_{ij})/\varepsilon}`: the
    baseline the transformer's depth is compared with, iteration for layer.

    Parameters
    ----------
    x : array-like, [n, d]
        Source points.
    y : array-like, [m, d]
        Target points.
    reg : float
        :math:`\varepsilon > 0`.
    n_iter : int
        Number of iterations, ``>= 0``.
    a, b : array-like, [n] / [m], optional
        Positive weights (uniform by default).
    record : collection of int, optional
        Iterations after which the plan is kept (default: every one, ``0..n_iter``).
    dtype : torch.dtype
        Computation dtype.

    Returns
    -------
    dict of int to torch.Tensor
        Iteration ``k`` -> the plan ``[n, m]`` after ``k`` iterations.
    """
    reg = check_positive(reg, "reg")
    n_iter = check_int(n_iter, "n_iter", minimum=0)
    x, y = as_points(x, "x", dtype=dtype), as_points(y, "y", dtype=dtype)
    a, b = _weights(a, "a", x.shape[0], x), _weights(b, "b", y.shape[0], x)
    record = set(range(n_iter + 1)) if record is None else set(record)
    C = _cost(x, y)  # [n, m]
    la, lb = a.log(), b.log()
    f, g = torch.zeros(x.shape[0], dtype=dtype), torch.zeros(y.shape[0], dtype=dtype)  # [n], [m]
    out = {}
    for k in range(n_iter + 1):
        if k:
            g = -reg * torch.logsumexp(la[:, None] + (f[:, None] - C) / reg, dim=0)  # [m]
            f = -reg * torch.logsumexp(lb[None, :] + (g[None, :] - C) / reg, dim=1)  # [n]
        if k in record:
            out[k] = entropic_plan(f, g, x, y, a, b, reg)
    return out


# --------------------------------------------------------------------------------- sorting
def sort_prompt(values: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Source and target points for sorting a list: the values, and the grid ``(j - 1/2)/n``.

    Values are mapped affinely to [0, 1] (min to 0, max to 1) so one ``reg`` fits every list.

    Parameters
    ----------
    values : array-like, [n]
        The list, at least 2 finite numbers.

    Returns
    -------
    x : torch.Tensor, [n, 1]
        The rescaled values (float64).
    y : torch.Tensor, [n, 1]
        The grid :math:`(j - 1/2)/n`.
    """
    v = torch.as_tensor(np.asarray(values, dtype=np.float64)).reshape(-1)  # [n]
    if v.numel() < 2:
        raise ValueError(f"`values` must hold at least 2 numbers to sort; got {v.numel()}")
    if not bool(torch.isfinite(v).all()):
        raise ValueError("`values` contains NaN or infinite values")
    span = float(v.max() - v.min())
    x = (v - v.min()) / span if span > 0 else torch.full_like(v, 0.5)
    n = v.numel()
    y = (torch.arange(n, dtype=torch.float64) + 0.5) / n  # [n]
    return x[:, None], y[:, None]  # [n, 1], [n, 1]


def transformer_sort(values: Any, model: DualOTTransformer, *, depth: int) -> tuple[np.ndarray, torch.Tensor]:
    """Sort a list with the fixed-weight transformer.

    ``values[np.argsort(rank)]`` is the sorted list when the transformer is right.

    Parameters
    ----------
    values : array-like, [n]
        The list.
    model : DualOTTransformer
        A module with ``dim=1``.
    depth : int
        Number of layers.

    Returns
    -------
    rank : numpy.ndarray of int, [n]
        ``rank[i] = argmax_j P_ij``: the position (0-based) the transformer gives element ``i``.
    plan : torch.Tensor, [n, n]
        The plan read off the final tokens.
    """
    if model.dim != 1:
        raise ValueError(f"sorting needs a DualOTTransformer with dim=1; got dim={model.dim}")
    x, y = sort_prompt(values)
    res = model.solve(x, y, depth=depth)
    return res.plan.argmax(1).numpy(), res.plan


def _random_list(n: int, rng: np.random.Generator, kind: str) -> np.ndarray:
    if kind == "uniform":
        return rng.random(n)
    # a shuffled grid with jitter: distinct values at least half a grid step apart
    return (rng.permutation(n) + rng.uniform(-0.25, 0.25, n)) / n


def sorting_study(lengths: Any, depths: Any, *, reg: float = 0.01, seeds: Any = (0,), step: float = 1.0,
                  lists: str = "uniform", progress: bool = True) -> pd.DataFrame:
    r"""Error against depth of the transformer, next to plain Sinkhorn iterations, per list length.

    For every length ``n``, seed and depth ``L`` (the same module for all ``n``), records

    - ``plan_error``: :math:`\lVert P_L - P^\star_\varepsilon \rVert_1`, the L1 distance to the
      entropic optimum (Sinkhorn run to convergence);
    - ``marginal_error``: L1 error of both marginals of :math:`P_L`;
    - ``sort_accuracy``: fraction of elements whose readout position
      :math:`\arg\max_j (P_L)_{ij}` is their true rank;
    - ``sorted``: 1.0 if the whole list is sorted correctly.

    ``method`` is ``"transformer"``, ``"transformer-no-sink"`` (the ablation prompt) or
    ``"sinkhorn"`` (iteration ``L`` in place of layer ``L``).

    Parameters
    ----------
    lengths, depths : sequences of int
        List lengths (>= 2) and depths (>= 0).
    reg : float
        :math:`\varepsilon` (a weight of the module), for values scaled to [0, 1].
    seeds : sequence of int
        One random list per (length, seed).
    lists : {"uniform", "spaced"}
        Uniform random values, or a shuffled grid with jitter (distinct values >= 1/(2n) apart).
    step : float
        :math:`\eta` of the :class:`DualOTTransformer`.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        Tidy: ``experiment="sorting"``, model, trained, method, layer (the depth), seed, metric,
        value, n.
    """
    lengths = [check_int(n, "lengths", minimum=2) for n in lengths]
    depths = sorted({check_int(k, "depths", minimum=0) for k in depths})
    seeds = [check_int(s, "seeds", minimum=0) for s in seeds]
    check_choice(lists, "lists", ("uniform", "spaced"))
    if not lengths or not depths or not seeds:
        raise ValueError("`lengths`, `depths` and `seeds` must be non-empty")
    model = DualOTTransformer(1, reg=reg, step=step)
    rows = []
    jobs = [(n, s) for n in lengths for s in seeds]
    for n, seed in tqdm(jobs, desc="sorting study", disable=not progress):
        values = _random_list(n, np.random.default_rng(seed), lists)
        x, y = sort_prompt(values)
        rank = np.argsort(np.argsort(values))
        ref = solve(x, y, method="sinkhorn", reg=reg, tol=1e-9, max_iter=5_000, return_plan=True, warn=False,
                    dtype=torch.float64).plan
        runs = {
            "transformer": model.solve(x, y, depth=max(depths), record=depths).history,
            "transformer-no-sink": model.solve(x, y, depth=max(depths), record=depths, prompt="no-sink").history,
            "sinkhorn": sinkhorn_iterates(x, y, reg=reg, n_iter=max(depths), record=depths),
        }
        for method, hist in runs.items():
            for k in depths:
                P = hist[k]
                hit = P.argmax(1).numpy() == rank
                vals = {
                    "plan_error": float((P - ref).abs().sum()),
                    "marginal_error": float((P.sum(1) - 1 / n).abs().sum() + (P.sum(0) - 1 / n).abs().sum()),
                    "sort_accuracy": float(hit.mean()),
                    "sorted": float(hit.all()),
                }
                rows += [dict(experiment="sorting", model=f"dual-ot-transformer(reg={reg:g})", trained=False,
                              method=method, layer=k, seed=seed, metric=m, value=v, n=n) for m, v in vals.items()]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------- reading the study
_SORTING_COLUMNS = {"method", "n", "metric", "layer", "value"}


def _check_sorting(sorting: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(sorting, pd.DataFrame):
        raise ValueError(f"`sorting` must be the DataFrame of sorting_study(); got {type(sorting).__name__}")
    missing = _SORTING_COLUMNS - set(sorting.columns)
    if missing:
        raise ValueError(f"`sorting` lacks the columns {sorted(missing)} (expected the table of sorting_study())")
    if sorting.empty:
        raise ValueError("`sorting` has no rows")
    return sorting


def depth_to(sorting: pd.DataFrame, *, metric: str, method: str, n: int, threshold: float,
             below: bool = True) -> int | None:
    """Smallest depth at which the mean over lists of ``metric`` reaches ``threshold``.

    Parameters
    ----------
    sorting : pandas.DataFrame
        The table of :func:`sorting_study`.
    metric, method : str
        Which rows (e.g. ``"plan_error"``, ``"transformer"``).
    n : int
        The list length.
    threshold : float
        The level to reach: ``mean <= threshold`` when ``below``, ``mean >= threshold`` otherwise.
    below : bool
        Whether ``metric`` must fall to ``threshold`` (an error) or rise to it (an accuracy).

    Returns
    -------
    int or None
        The smallest recorded depth (``layer``) at which the mean over seeds reaches the level,
        or None when no recorded depth does. The first crossing counts even if a deeper layer
        goes back over the threshold.
    """
    s = _check_sorting(sorting)
    s = s[(s.method == method) & (s.n == n) & (s.metric == metric)]
    if s.empty:
        raise ValueError(f"`sorting` has no rows for method={method!r}, n={n}, metric={metric!r}")
    if not np.isfinite(threshold):
        raise ValueError(f"`threshold` must be a finite number; got {threshold!r}")
    mean = s.groupby("layer").value.mean()
    ok = mean[mean <= threshold] if below else mean[mean >= threshold]
    return int(ok.index.min()) if len(ok) else None


@dataclass(frozen=True)
class SortingSummary:
    """What part A of chapter 3 reports from :func:`sorting_study`, by :func:`sorting_summary`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per list length: depth (transformer) and iterations (Sinkhorn) to a plan error
        below ``threshold`` (None when never reached), and at the deepest depth the transformer's
        sort accuracy, the fraction of lists fully sorted and the no-sink prompt's plan error.
    deepest : int
        The deepest recorded depth.
    threshold : float
        The plan-error level of the table's first two columns.
    depth_ratio : float
        Median over lengths of (transformer depth / Sinkhorn iterations) to reach ``threshold``,
        over the lengths where both reach it; nan when none does.
    no_sink_error : float
        The smallest plan error of the no-sink prompt at the deepest depth, over lengths.
    sorted_up_to : int or None
        The largest length ``L`` such that every list of every length ``<= L`` is fully sorted at
        the deepest depth (None when the shortest length is not).
    largest_n : int
        The longest list length.
    acc_largest : float
        The transformer's sort accuracy at the deepest depth on lists of length ``largest_n``.
    """

    table: pd.DataFrame
    deepest: int
    threshold: float
    depth_ratio: float
    no_sink_error: float
    sorted_up_to: int | None
    largest_n: int
    acc_largest: float

    def texts(self) -> dict[str, str]:
        """The numbers as the chapter shows them (``glue`` name -> text).

        Returns
        -------
        dict of str to str
            Each ``glue`` name and its text.
        """
        return {
            "deepest": str(self.deepest),
            "plan_threshold": f"{self.threshold:g}",
            "depth_ratio": "n/a" if not np.isfinite(self.depth_ratio) else f"{self.depth_ratio:.0f}",
            "no_sink_error": f"{self.no_sink_error:.2f}",
            "sorted_up_to": "none" if self.sorted_up_to is None else str(self.sorted_up_to),
            "largest_n": str(self.largest_n),
            "acc_largest": f"{self.acc_largest:.0%}",
        }


def sorting_summary(sorting: pd.DataFrame, *, threshold: float = 0.01) -> SortingSummary:
    """Depth needed, accuracy reached and the no-sink ablation, per list length (chapter 3, part A).

    Parameters
    ----------
    sorting : pandas.DataFrame
        The table of :func:`sorting_study`, with the methods ``"transformer"``,
        ``"transformer-no-sink"`` and ``"sinkhorn"``.
    threshold : float, default 0.01
        The L1 plan error to reach (see :func:`depth_to`).

    Returns
    -------
    SortingSummary
        The summary table and its numbers as text (:meth:`SortingSummary.texts`).
    """
    s = _check_sorting(sorting)
    threshold = check_positive(threshold, "threshold")
    needed = {"transformer", "transformer-no-sink", "sinkhorn"} - set(s.method)
    if needed:
        raise ValueError(f"`sorting` lacks the methods {sorted(needed)} (expected the table of sorting_study())")
    deepest = int(s.layer.max())
    lengths = sorted(int(n) for n in s.n.unique())
    final = s[s.layer == deepest].groupby(["method", "n", "metric"]).value.mean()
    t_col = f"transformer: depth to plan error < {threshold:g}"
    s_col = f"Sinkhorn: iterations to plan error < {threshold:g}"
    rows = []
    for n in lengths:
        rows.append({
            "n": n,
            t_col: depth_to(s, metric="plan_error", method="transformer", n=n, threshold=threshold),
            s_col: depth_to(s, metric="plan_error", method="sinkhorn", n=n, threshold=threshold),
            f"transformer: sort accuracy at depth {deepest}": final["transformer", n, "sort_accuracy"],
            f"fraction of lists fully sorted at depth {deepest}": final["transformer", n, "sorted"],
            f"no-sink: plan error at depth {deepest}": final["transformer-no-sink", n, "plan_error"],
        })
    table = pd.DataFrame(rows)
    # a ratio needs both depths, and a positive Sinkhorn count (0 iterations: the start is already there)
    ratios = [r[t_col] / r[s_col] for r in rows if r[t_col] is not None and r[s_col]]
    sorted_up_to = None
    for n in lengths:
        if final["transformer", n, "sorted"] < 1.0:
            break
        sorted_up_to = n
    return SortingSummary(
        table=table, deepest=deepest, threshold=threshold,
        depth_ratio=float(np.median(ratios)) if ratios else math.nan,
        no_sink_error=float(min(final["transformer-no-sink", n, "plan_error"] for n in lengths)),
        sorted_up_to=sorted_up_to, largest_n=lengths[-1],
        acc_largest=float(final["transformer", lengths[-1], "sort_accuracy"]),
    )


def layer_vs_step(model: DualOTTransformer, *, n: int = 7, m: int = 5, seed: int = 0) -> float:
    """Largest difference between one layer of ``model`` and one explicit :func:`dual_step`.

    On a random problem (``n`` sources, ``m`` targets in ``[0, 1]^dim``, small random initial
    potentials, uniform weights, drawn from ``seed``), the potentials after ``model.layer`` and
    after :func:`dual_step` with the module's ``reg`` and ``step`` are compared.

    Parameters
    ----------
    model : DualOTTransformer
        The module to check.
    n, m : int
        Numbers of source and target points.
    seed : int
        Seed of the random problem.

    Returns
    -------
    float
        The max absolute difference over both potentials (rounding error when the
        construction is right).
    """
    if not isinstance(model, DualOTTransformer):
        raise ValueError(f"`model` must be a DualOTTransformer; got {type(model).__name__}")
    n, m = check_int(n, "n", minimum=1), check_int(m, "m", minimum=1)
    gen = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
    dt = model.W_Q.dtype
    x = torch.rand(n, model.dim, generator=gen, dtype=dt)
    y = torch.rand(m, model.dim, generator=gen, dtype=dt)
    f0 = torch.randn(n, generator=gen, dtype=dt) * 0.01
    g0 = torch.randn(m, generator=gen, dtype=dt) * 0.01
    with torch.no_grad():
        layer_f, layer_g = model.read(model.layer(model.encode(x, y, f=f0, g=g0)), n)
    step_f, step_g = dual_step(f0, g0, x, y, reg=model.reg, step=model.step)
    return max(float((layer_f - step_f).abs().max()), float((layer_g - step_g).abs().max()))


def sort_examples(lengths: Any, model: DualOTTransformer, *, depth: int,
                  seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random lists and the positions the transformer gives their elements, for a figure.

    Parameters
    ----------
    lengths : sequence of int
        List lengths; list ``k`` has ``lengths[k]`` uniform values drawn with seed
        ``seed + lengths[k]``.
    model : DualOTTransformer
        A module with ``dim=1``.
    depth : int
        Number of layers.
    seed : int
        Base seed of the lists.

    Returns
    -------
    list of tuple of numpy.ndarray
        ``[(values, rank), ...]`` with ``rank`` from :func:`transformer_sort` at ``depth``.
    """
    lengths = [check_int(n, "lengths", minimum=2) for n in lengths]
    seed = check_int(seed, "seed", minimum=0)
    out = []
    for n in lengths:
        values = np.random.default_rng(seed + n).random(n)
        rank, _ = transformer_sort(values, model, depth=depth)
        out.append((values, rank))
    return out
