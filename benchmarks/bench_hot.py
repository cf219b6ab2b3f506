"""A HOT inner grid: 6 × 12 OT problems between the units of MiniLM's and MPNet's layers.

Hierarchical OT :cite:`shah:25` first solves one OT problem per (source layer, target layer)
pair between the *units* (neurons) of the two layers, each unit described by its responses to
the stimuli, with the correlation distance. Here: MiniLM's 6 blocks (384 units) against
MPNet's 12 blocks (768 units), responses = mean-pooled states over ``n_stimuli`` Shakespeare
passages, each unit z-scored over the stimuli and scaled to unit norm, so the squared
Euclidean cost is :math:`2(1 - \\rho)`; float32, ``reg = 0.01 ×`` the mean cost, L1 marginal
error 1e-5. otlens solves the 72 problems in one batched call and one at a time; the
references loop over them (``bench_sinkhorn.references``).
"""

from __future__ import annotations

import torch

import otlens
from otlens.config import cache_dir
from otlens.ot import sq_euclidean_cost

from bench_sinkhorn import MAX_ITER, TOL, references
from common import finish, otlens_reference, rel_error, timed

GRIDS = {"quick": dict(n_stimuli=128, box=20.0), "full": dict(n_stimuli=256, box=150.0)}
BASE = "otlens sinkhorn (all problems batched)"
REG = 0.01


def units(model: str, n_stimuli: int) -> torch.Tensor:
    """``[n_blocks, d_model, n_stimuli]``: each unit's z-scored, unit-norm responses."""
    acts = otlens.extract_activations(model, otlens.sample_texts(n_stimuli, seed=1), progress=False)
    pooled = acts.pooled()[1:]  # [n_blocks, n_stimuli, d] (block outputs)
    z = pooled - pooled.mean(1, keepdim=True)
    z = z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return z.transpose(1, 2).contiguous().float()


def run(profile: str = "full", device: str = "cpu"):
    import pandas as pd

    grid = GRIDS[profile]
    S = grid["n_stimuli"]
    path = cache_dir("bench") / f"hot-units-{S}.pt"
    if path.exists():
        src, tgt = torch.load(path)
    else:
        src, tgt = units("minilm-l6", S), units("mpnet-base", S)
        torch.save((src, tgt), path)
    Ls, Lt = src.shape[0], tgt.shape[0]
    x = src.repeat_interleave(Lt, 0)  # [Ls*Lt, 384, S]
    y = tgt.repeat(Ls, 1, 1)  # [Ls*Lt, 768, S]
    C = sq_euclidean_cost(x, y)
    eps = (REG * C.mean((1, 2))).double()
    ref = otlens_reference(x, y, eps)
    name = f"HOT inner grid {Ls}x{Lt} of {x.shape[1]}x{y.shape[1]} units, {S} stimuli, reg={REG:g}xmean float32"
    rows = []

    def row(solver, t, n_iter, err, costs, note="", **kw):
        ok = bool(torch.isfinite(torch.as_tensor(costs)).all()) and err <= TOL and "time-boxed" not in note
        rows.append(dict(workload=name, solver=solver, time_s=t, n_iter=n_iter, marginal_error=float(err),
                         cost_error=rel_error(costs, ref[: len(costs)]), converged=ok, n=x.shape[1], d=S,
                         L=x.shape[0], reg=REG, tol=TOL, device=kw.get("device", "cpu"),
                         note=note if ok or note else "not converged"))

    def ours(k=None, dev="cpu"):
        xs, ys = (x, y) if k is None else (x[k:k + 1], y[k:k + 1])
        return otlens.sinkhorn(xs, ys, reg=REG, relative_reg=True, tol=TOL, max_iter=MAX_ITER, warn=False, device=dev)

    res, t = timed(lambda: ours())
    row(BASE, t, res.n_iter, float(res.marginal_error.max()), res.cost.double().numpy())
    parts, t = timed(lambda: [ours(k) for k in range(x.shape[0])])
    row("otlens sinkhorn (one problem at a time)", t, max(p.n_iter for p in parts),
        float(torch.cat([p.marginal_error for p in parts]).max()), torch.cat([p.cost for p in parts]).double().numpy())
    if device == "cuda":
        res, t = timed(lambda: ours(dev="cuda"), "cuda")
        row("otlens sinkhorn (batched, CUDA)", t, res.n_iter, float(res.marginal_error.max()),
            res.cost.double().cpu().numpy(), device="cuda")
    references(x, y, C, eps, grid["box"], row)
    return pd.DataFrame(finish(rows, BASE))
