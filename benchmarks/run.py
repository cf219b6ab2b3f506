"""Benchmarks: otlens against reference OT libraries, ratios measured in one run.

Workload so far (issue #7 adds the others): the adjacent-layer profile of MiniLM — its 6
transitions (embedding included), unit-norm tokens, n tokens per cloud, float32, reg =
{0.1, 0.01} × the mean cost — solved by otlens in one batched call and by POT one transition
at a time (otlens also batched, the GPU path). Every solver stops on its own criterion set to the same L1 marginal error ``tol``:
POT checks the L2 norm of the column-marginal error, so it gets ``stopThr = tol / sqrt(n)``
(the L2 threshold that guarantees L1 ≤ tol). Each row reports the time, the ratio to otlens,
the iterations, the L1 marginal error of the returned plan, the relative cost error against a
float64 reference and whether the solver reached ``tol``.

Run ``make bench`` (or ``python benchmarks/run.py --n 1024 4096``; a few minutes on 2 cores:
POT's log-domain solver is slow at small reg); the table is printed and written to
``results/benchmarks.csv``. Ratios are against otlens one transition at a time.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import torch

import otlens
from otlens.depth import _sample, get_method, prepare_transition
from otlens.transport import sq_euclidean_cost

COLUMNS = ["workload", "solver", "time_s", "ratio_vs_otlens", "n_iter", "marginal_error", "cost_error", "converged"]


def profile_clouds(n: int, n_texts: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The 6 adjacent-layer cloud pairs of MiniLM on Shakespeare, ``[6, n, 384]`` each."""
    acts = otlens.extract_activations("minilm-l6", otlens.sample_texts(n_texts, seed=seed), progress=False)
    if acts.n_tokens < n:
        raise SystemExit(f"only {acts.n_tokens} tokens for n={n}: raise --texts")
    idx = _sample(acts.n_tokens, n, seed)
    pairs = [prepare_transition(acts.states, s, idx, get_method("corrected")) for s in range(acts.n_layers)]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def plan_stats(P: np.ndarray, C: np.ndarray) -> tuple[float, float]:
    n, m = P.shape
    err = np.abs(P.sum(1) - 1 / n).sum() + np.abs(P.sum(0) - 1 / m).sum()
    return float((P * C).sum()), float(err)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def run_profile(n: int, rel_reg: float, tol: float, max_iter: int) -> list[dict]:
    x, y = profile_clouds(n)
    C = sq_euclidean_cost(x, y)  # [6, n, n] float32
    eps = (rel_reg * C.mean(dim=(1, 2))).double()  # one absolute eps per transition
    workload = f"adjacent profile minilm n={n} d={x.shape[-1]} L={x.shape[0]} reg={rel_reg:g}xmean float32"
    ref = otlens.sinkhorn(x.double(), y.double(), reg=rel_reg, relative_reg=True, tol=1e-9, max_iter=50_000,
                          warn=False)
    rows = []

    def solve(k=None):
        xs, ys = (x, y) if k is None else (x[k : k + 1], y[k : k + 1])
        return otlens.sinkhorn(xs, ys, reg=rel_reg, relative_reg=True, tol=tol, max_iter=max_iter, warn=False)

    # one transition at a time is what the depth profiles do on a CPU (kernels stay in cache)
    parts, t = timed(lambda: [solve(k) for k in range(x.shape[0])])
    cost = torch.cat([p.cost for p in parts]).double()
    rows.append(dict(solver="otlens sinkhorn (one transition at a time)", time_s=t, n_iter=max(p.n_iter for p in parts),
                     marginal_error=float(torch.cat([p.marginal_error for p in parts]).max()),
                     cost_error=float(((cost - ref.cost) / ref.cost).abs().max()),
                     converged=all(p.converged for p in parts)))
    res, t = timed(solve)
    rows.append(dict(solver="otlens sinkhorn (all transitions batched)", time_s=t, n_iter=res.n_iter,
                     marginal_error=float(res.marginal_error.max()),
                     cost_error=float(((res.cost.double() - ref.cost) / ref.cost).abs().max()),
                     converged=res.converged))

    import ot

    for label, method, backend in [("POT sinkhorn_log (numpy f64)", "sinkhorn_log", "numpy"),
                                   ("POT sinkhorn_log (torch f32)", "sinkhorn_log", "torch"),
                                   ("POT sinkhorn (numpy f64)", "sinkhorn", "numpy")]:
        costs, errs, iters, total = [], [], [], 0.0
        for k in range(x.shape[0]):
            if backend == "numpy":
                M = C[k].double().numpy()
                a = np.full(n, 1 / n)
            else:
                M = C[k]
                a = torch.full((n,), 1 / n)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                (P, log), t = timed(lambda: ot.sinkhorn(a, a, M, float(eps[k]), method=method, numItermax=max_iter,
                                                         stopThr=tol / np.sqrt(n), log=True))
            total += t
            P = np.asarray(P.numpy() if isinstance(P, torch.Tensor) else P, dtype=np.float64)
            cost, err = plan_stats(P, C[k].double().numpy())
            costs.append(cost)
            errs.append(err)
            iters.append(int(log.get("niter", max_iter)))
        ok = all(np.isfinite(costs)) and max(errs) <= tol
        rows.append(dict(solver=label, time_s=total, n_iter=max(iters), marginal_error=max(errs),
                         cost_error=float(np.max(np.abs(np.array(costs) / ref.cost.numpy() - 1))), converged=ok))
    base = rows[0]["time_s"]
    for r in rows:
        r.update(workload=workload, ratio_vs_otlens=r["time_s"] / base)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1024], help="tokens per cloud")
    parser.add_argument("--reg", type=float, nargs="+", default=[0.1, 0.01], help="reg as a multiple of the mean cost")
    parser.add_argument("--tol", type=float, default=1e-5, help="L1 marginal error every solver must reach")
    parser.add_argument("--max-iter", type=int, default=3000)
    parser.add_argument("--out", default=None, help="CSV path (default results/benchmarks.csv)")
    args = parser.parse_args(argv)
    rows = [r for n in args.n for reg in args.reg for r in run_profile(n, reg, args.tol, args.max_iter)]
    table = pd.DataFrame(rows)[COLUMNS]
    out = args.out or otlens.config.results_dir() / "benchmarks.csv"
    table.to_csv(out, index=False)
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
