"""The adjacent-layer profile of a model: otlens against POT and GeomLoss.

Workload: every transition of a model's residual stream (MiniLM, d = 384, L = 6, or MPNet,
d = 768, L = 12; embedding transition included), ``n`` unit-norm tokens per cloud, float32,
``reg`` a multiple of each transition's mean cost, L1 marginal error ``tol = 1e-5``. otlens
solves the transitions one at a time (what ``otlens.depth`` does on a CPU) and batched; the
references loop over the transitions. See ``common.py`` for the fairness rules (same inputs,
same L1 tolerance, errors recomputed in float64, time boxes).

Profiles: ``quick`` (n = 1,024, d = 384, reg = 0.01 and 0.001; a few minutes), ``target`` (the
issue's target workload: n = 4,096, d = 384, L = 6, reg = 0.01 and 0.001) and ``full`` (n in
{1,024, 4,096} × d in {384, 768} × reg in {0.1, 0.01, 0.001}, plus n = 16,384 at reg = 0.1
against the large-n POT solvers only).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

import otlens
from otlens.ot import sq_euclidean_cost

from common import (
    finish,
    iteration_cap,
    kernel_iteration_bound,
    machine_bound,
    otlens_reference,
    plan_errors,
    profile_clouds,
    rel_error,
    timeboxed_loop,
    timed,
)

PROFILES = ("quick", "target", "full")
TOL = 1e-5
MAX_ITER = 10_000
GRIDS = {
    "quick": dict(cases=[(1024, 384, r) for r in (0.01, 0.001)], box=30.0, batched=True),
    # the target drops the batched CPU row: a batch runs until its slowest problem converges, and
    # on a 2-core CPU it is slower than one problem at a time (what otlens.depth does on a CPU)
    "target": dict(cases=[(4096, 384, r) for r in (0.01, 0.001)], box=90.0, batched=False),
    "full": dict(cases=[(n, d, r) for n in (1024, 4096) for d in (384, 768) for r in (0.1, 0.01, 0.001)]
                 + [(16384, 384, 0.1)], box=150.0, batched=True),
}
BASE = "otlens sinkhorn (one transition at a time)"


def run(profile: str = "full", device: str = "cpu") -> "pd.DataFrame":
    import pandas as pd

    grid = GRIDS[profile]
    machine = machine_bound(device)
    rows = []
    for n, d, reg in grid["cases"]:
        rows += workload(n, d, reg, box=grid["box"], machine=machine, device=device, batched=grid["batched"])
    return pd.DataFrame(rows)


def workload(n: int, d: int, reg: float, *, box: float, machine: dict, device: str = "cpu",
             batched: bool = True) -> list[dict]:
    x, y = profile_clouds(n, d)
    L = x.shape[0]
    name = f"adjacent profile n={n} d={d} L={L} reg={reg:g}xmean float32"
    big = n > 4096
    C = None if big else sq_euclidean_cost(x, y)  # [L, n, n] float32, the references' input
    mean = torch.stack([sq_euclidean_cost(x[k:k + 1], y[k:k + 1]).mean() for k in range(L)]) if big else C.mean((1, 2))
    eps = (reg * mean).double()  # one absolute eps per transition, shared by every solver
    ref = None if big else otlens_reference(x, y, eps)
    rows = []

    def row(solver, t, n_iter, err, costs, note="", **kw):
        err = float(err)
        ok = (bool(np.all(np.isfinite(costs))) and math.isfinite(err) and err <= TOL
              and "time-boxed" not in note and "not run" not in note)
        rows.append(dict(workload=name, solver=solver, time_s=t, n_iter=n_iter, marginal_error=err,
                         cost_error=rel_error(costs, None if ref is None else ref[: len(costs)]), converged=ok, n=n, d=d, L=L, reg=reg, tol=TOL,
                         device=kw.get("device", "cpu"), note=note if ok or note else "not converged", **{
                             k: v for k, v in kw.items() if k != "device"}))

    # --- otlens: one transition at a time, then all batched
    def ours(k=None, dev="cpu"):
        xs, ys = (x, y) if k is None else (x[k:k + 1], y[k:k + 1])
        return otlens.sinkhorn(xs, ys, reg=reg, relative_reg=True, tol=TOL, max_iter=MAX_ITER, warn=False, device=dev)

    parts, t = timed(lambda: [ours(k) for k in range(L)])
    iters = sum(p.n_iter for p in parts)
    per_iter = iteration_time(x[:1], y[:1], reg, parts[0]) if not big else t / max(iters, 1)
    bound = kernel_iteration_bound(n, n, machine)
    row(BASE, t, max(p.n_iter for p in parts), float(torch.cat([p.marginal_error for p in parts]).max()),
        torch.cat([p.cost for p in parts]).double().numpy(), per_iter_s=per_iter, bound_fraction=bound / per_iter,
        total_iter=iters, setup_fraction=1.0 - per_iter * iters / t)
    if batched:
        res, t = timed(lambda: ours())
        row("otlens sinkhorn (all transitions batched)", t, res.n_iter, float(res.marginal_error.max()),
            res.cost.double().numpy())
    if device == "cuda":
        res, t = timed(lambda: ours(dev="cuda"), "cuda")
        row("otlens sinkhorn (batched, CUDA)", t, res.n_iter, float(res.marginal_error.max()),
            res.cost.double().cpu().numpy(), device="cuda")

    if big:
        _large_n_references(x, y, eps, box, row)
        return finish(rows, BASE)

    references(x, y, C, eps, box, row)
    return finish(rows, BASE)


def iteration_time(x, y, reg: float, warm, k: int = 200) -> float:
    """Seconds per final-stage iteration alone (no annealing, cost build or plan): the difference
    of two warm-started solves of ``k + 1`` and 1 iterations (a tolerance that is never met), over ``k``."""
    def solve(it):
        return otlens.sinkhorn(x, y, reg=reg, relative_reg=True, init=warm, tol=1e-30, max_iter=it, warn=False)

    solve(1)
    return (min(timed(lambda: solve(k + 1))[1] for _ in range(2)) - min(timed(lambda: solve(1))[1] for _ in range(2))) / k


def references(x, y, C, eps, box, row) -> None:
    """POT's Sinkhorn solvers (numpy f64, torch f32), POT's exact solver and GeomLoss on ``C [L, n, m]``."""
    import ot

    L, n, m = C.shape
    a_np, b_np = np.full(n, 1.0 / n), np.full(m, 1.0 / m)
    C64 = C.double().numpy()
    # numpy float64 first: their iteration counts give the float32 twins'
    twin: dict[str, list[int]] = {}
    for method in ("sinkhorn_log", "sinkhorn", "sinkhorn_stabilized"):
        for backend in ("numpy", "torch"):
            if backend == "torch" and method == "sinkhorn_stabilized":
                continue
            label = f"POT {method} ({'numpy f64' if backend == 'numpy' else 'torch f32'})"

            def solve_one(k, left, method=method, backend=backend):
                if backend == "numpy":
                    M, a, b = C64[k], a_np, b_np
                else:
                    M, a, b = C[k], torch.full((n,), 1.0 / n), torch.full((m,), 1.0 / m)
                if backend == "torch" and method in twin and k < len(twin[method]):
                    stop, cap = 0.0, max(1, twin[method][k])  # f32 cannot meet the L2 threshold: same iterations as f64
                else:
                    stop, cap = TOL / math.sqrt(max(n, m)), MAX_ITER

                def go(k_iter):
                    return ot.sinkhorn(a, b, M, float(eps[k]), method=method, numItermax=k_iter, stopThr=stop,
                                       log=True, warn=False)

                cap = min(cap, iteration_cap(go, left, MAX_ITER))
                (P, log), t_solve = timed(lambda: go(cap))  # the solve alone, without the probe
                P = np.asarray(P.numpy() if isinstance(P, torch.Tensor) else P, dtype=np.float64)
                it = int(log.get("niter", cap))
                return dict(cost=float((P * C64[k]).sum()), err=plan_errors(P, a_np, b_np), n_iter=it,
                            capped=stop > 0 and it >= cap and cap < MAX_ITER, t_solve=t_solve)

            res, t, note = timeboxed_loop(list(range(L)), solve_one, box)
            if backend == "numpy":
                twin[method] = [r["n_iter"] for r in res]
            if not res:
                row(label, float("nan"), 0, float("nan"), [np.nan], note=note)
                continue
            scaled = " (time scaled to all problems)" if len(res) < L else ""
            total = sum(r["n_iter"] for r in res)
            row(label, t * L / max(len(res), 1), max(r["n_iter"] for r in res), max(r["err"] for r in res),
                [r["cost"] for r in res], note=note + scaled, spent_s=t,
                per_iter_s=sum(r["t_solve"] for r in res) / total if total else float("nan"))

    # exact OT: a different objective, so its cost_error is the entropic bias
    def emd_one(k, left):
        P = ot.emd(a_np, b_np, C64[k], numItermax=10_000_000)
        return dict(cost=float((P * C64[k]).sum()), err=plan_errors(P, a_np, b_np), n_iter=0)

    res, t, note = timeboxed_loop(list(range(L)), emd_one, box)
    res = res or [dict(cost=np.nan, err=np.nan, n_iter=0)]
    row("POT emd2 (exact, numpy f64)", t * L / max(len(res), 1), 0, max(r["err"] for r in res),
        [r["cost"] for r in res], note=(note + "; " if note else "") + "exact OT: cost_error is the entropic bias")
    _geomloss(x, y, eps, C, box, row)


def _geomloss(x, y, eps, C, box, row) -> None:
    """GeomLoss ``SamplesLoss("sinkhorn")``, tensorized: its own eps-scaling, no tolerance to set."""
    try:
        from geomloss import SamplesLoss
    except ImportError:
        row("GeomLoss SamplesLoss sinkhorn (tensorized)", float("nan"), 0, float("nan"), [np.nan],
            note="not run: geomloss not installed (pip install geomloss)")
        return
    L, n, m = C.shape
    a_np, b_np = np.full(n, 1.0 / n), np.full(m, 1.0 / m)

    def solve_one(k, left):
        # GeomLoss uses the cost |x - y|^2 / 2 and eps = blur^2 for p = 2: the same plan as
        # (C, eps) when blur = sqrt(eps / 2)
        loss = SamplesLoss("sinkhorn", p=2, blur=math.sqrt(float(eps[k]) / 2), scaling=0.9, debias=False,
                           potentials=True, backend="tensorized")
        F, G = (t.reshape(-1) for t in loss(x[k], y[k]))
        e2 = float(eps[k]) / 2
        Ck = C[k].double()
        P = torch.exp((F.double()[:, None] + G.double()[None, :] - Ck / 2) / e2) / (n * m)
        return dict(cost=float((P * Ck).sum()), err=plan_errors(P.numpy(), a_np, b_np), n_iter=0)

    res, t, note = timeboxed_loop(list(range(L)), solve_one, box)
    res = res or [dict(cost=np.nan, err=np.nan, n_iter=0)]
    row("GeomLoss SamplesLoss sinkhorn (tensorized, scaling=0.9)", t * L / max(len(res), 1), 0,
        max(r["err"] for r in res), [r["cost"] for r in res], note=note, spent_s=t)


def _large_n_references(x, y, eps, box, row) -> None:
    """POT's solvers for large n: BSP-OT (a bijection) and low-rank Sinkhorn, on the first transition."""
    import ot

    xs, ys = x[0].double().numpy(), y[0].double().numpy()
    n = xs.shape[0]
    u = np.full(n, 1.0 / n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r, t = timed(lambda: ot.solve_sample(xs, ys, method="bsp"))
    row("POT solve_sample bsp (first transition only)", t * x.shape[0], 0, 0.0, [np.nan],
        note="bijection, no entropic cost: time scaled to all transitions")
    rank = 64

    def lowrank(k_iter):
        return ot.lowrank_sinkhorn(xs, ys, reg=float(eps[0]), rank=rank, numItermax=k_iter, stopThr=1e-7, warn=False)

    cap = iteration_cap(lowrank, box, 2000, probe=5)
    (Q, R, g), t = timed(lambda: lowrank(cap))
    err = float(np.abs(Q.sum(1) - u).sum() + np.abs(R.sum(1) - u).sum())
    row(f"POT lowrank_sinkhorn rank={rank} (first transition only)", t * x.shape[0], cap, err, [np.nan],
        note="low rank: a different problem; time scaled to all transitions")
