"""OT at scale: time, peak memory and cost of HiRef, FRLC, Sinkhorn and exact OT against n.

Every (workload, solver, n) runs in a fresh subprocess, so that its peak resident memory
(``resource.getrusage(...).ru_maxrss``: the inputs, the solver and the interpreter with torch)
is its own; ``solver_mem_mb`` is how far the solver raised it above the level reached before
it started (interpreter, libraries and inputs loaded), i.e. the solver's own peak. ``cost_error`` is the relative gap to exact OT (POT's ``emd``) where it runs
(``n <= 16384``); ``ratio_vs_otlens`` is the time over HiRef's on the same workload and n, in
the same run. Timings on a shared machine are inflated: compare ratios.

    python benchmarks/bench_scale.py --profile quick
    python benchmarks/run.py --profile target --only scale   # the issue's targets, into results/benchmarks.csv
    python benchmarks/bench_scale.py --workloads gaussian-d384 moons-scurve --only-n 1048576 --solvers hiref
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

import pandas as pd

COLUMNS = ["workload", "solver", "time_s", "ratio_vs_otlens", "n_iter", "marginal_error", "cost_error", "converged",
           "n", "d", "peak_mem_mb", "solver_mem_mb", "input_mb", "cost"]

# (workload, d, cost) -> sizes per profile; exact and dense Sinkhorn only up to their limits
WORKLOADS = {
    "gaussian": dict(d=64, cost="sqeuclidean"),
    "gaussian-d384": dict(d=384, cost="sqeuclidean"),
    "moons-scurve": dict(d=2, cost="euclidean"),
}
PROFILES = {
    "quick": [("gaussian", [1024, 4096]), ("moons-scurve", [2048])],
    # the targets: 2^20 x 384 (time, memory), moons within 1% of exact at 8,192, the public
    # code's case (n = 4,096, d = 64) and the 2-D benchmark at 2^14 and 2^20 (~25 min on 2 cores)
    "target": [("gaussian", [2**12], ["hiref", "frlc", "otlens-sinkhorn", "pot-emd"]),
               ("moons-scurve", [2**13, 2**14], ["hiref", "pot-emd"]),
               ("moons-scurve", [2**20], ["hiref"]),
               ("gaussian-d384", [2**20], ["hiref"])],
    "full": [("gaussian", [2**10, 2**12, 2**13, 2**14, 2**16, 2**18, 2**20]),
             ("gaussian-d384", [2**10, 2**13, 2**16, 2**20]),
             ("moons-scurve", [2**13, 2**14, 2**20])],
}
LIMITS = {"pot-emd": 16384, "pot-sinkhorn": 2048, "otlens-sinkhorn": 16384, "frlc": 2**14, "hiref": 2**30}  # FRLC: 49 s at 4,096 (d = 64)
SOLVERS = ["hiref", "frlc", "otlens-sinkhorn", "pot-sinkhorn", "pot-emd"]
SQEUCLIDEAN_ONLY = {"frlc", "otlens-sinkhorn"}

_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time, warnings
    import numpy as np, torch
    spec = json.loads(sys.argv[1])
    n, d, solver, cost, workload = spec["n"], spec["d"], spec["solver"], spec["cost"], spec["workload"]
    torch.manual_seed(0)
    if workload == "moons-scurve":
        from sklearn.datasets import make_moons, make_s_curve
        x = torch.tensor(make_moons(n, noise=0.05, random_state=0)[0], dtype=torch.float32)
        y = torch.tensor(make_s_curve(n, random_state=0)[0][:, [0, 2]], dtype=torch.float32)
    else:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, d, generator=g)
        y = torch.rand(n, d, generator=g) * 4 - 1.5
    warnings.simplefilter("ignore")
    import ot, otlens.ot  # imported before the baseline
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # interpreter, libraries, inputs
    out = dict(n_iter=0, converged=True, marginal_error=0.0)
    t = time.perf_counter()
    if solver == "hiref":
        from otlens.ot import hiref
        r = hiref(x, y, cost=cost, progress=False)
        out.update(cost=float(r.cost), n_iter=r.n_iter, converged=r.converged)
    elif solver == "frlc":
        from otlens.ot.lowrank import frlc
        r = frlc(x, y, rank=32, max_iter=200, tol=1e-5)
        out.update(cost=float(r.cost), n_iter=r.n_iter, converged=r.converged, marginal_error=float(r.marginal_error))
    elif solver == "otlens-sinkhorn":
        from otlens.ot import sinkhorn
        r = sinkhorn(x, y, reg=0.005, relative_reg=True, tol=1e-4, max_iter=2000)
        out.update(cost=float(r.cost), n_iter=r.n_iter, converged=r.converged, marginal_error=float(r.marginal_error))
    else:
        import ot
        M = ot.dist(x.double().numpy(), y.double().numpy(), metric=cost)
        a = np.full(n, 1.0 / n)
        if solver == "pot-emd":
            P = ot.emd(a, a, M, numItermax=10**8)
        else:
            P = ot.sinkhorn(a, a, M, 0.005 * M.mean(), method="sinkhorn_log", numItermax=2000, stopThr=1e-4 / n**0.5)
        out.update(cost=float((P * M).sum()), marginal_error=float(abs(P.sum(1) - a).sum() + abs(P.sum(0) - a).sum()))
    out["time_s"] = time.perf_counter() - t
    out["peak_mem_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["solver_mem_mb"] = out["peak_mem_mb"] - base_mb  # the solver's own rise of the high-water mark
    out["input_mb"] = (x.numel() + y.numel()) * 4 / 2**20
    print("RESULT " + json.dumps(out))
    """
)


def measure(workload: str, solver: str, n: int, *, timeout: float = 1800) -> dict:
    """Run one solver on one workload in a fresh interpreter; return its measurements."""
    spec = dict(workload=workload, solver=solver, n=n, **WORKLOADS[workload])
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(spec)], capture_output=True, text=True,
                          timeout=timeout, env=env)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        return dict(error=(proc.stderr.strip().splitlines() or ["failed"])[-1][:200])
    return json.loads(line[-1][len("RESULT "):])


def run(profile: str = "quick", *, workloads=None, sizes=None, solvers=None) -> pd.DataFrame:
    """Benchmark table for ``profile`` ("quick", "target" or "full"); columns :data:`COLUMNS`.

    ``workloads`` / ``solvers`` keep only those; ``sizes`` replaces the profile's sizes (e.g. HiRef
    alone at n = 2^20: ``workloads=["gaussian-d384"], sizes=[2**20], solvers=["hiref"]``).
    """
    if profile not in PROFILES:
        raise ValueError(f"`profile` must be one of {sorted(PROFILES)}; got {profile!r}")
    for name, given, known in (("workloads", workloads, WORKLOADS), ("solvers", solvers, SOLVERS)):
        bad = sorted(set(given or ()) - set(known))
        if bad:
            raise ValueError(f"unknown {name} {bad}; expected some of {sorted(known)}")
    plan = [(e[0], e[1], e[2] if len(e) > 2 else SOLVERS) for e in PROFILES[profile]
            if not workloads or e[0] in workloads]
    plan += [(w, [], SOLVERS) for w in (workloads or ()) if w not in {p[0] for p in plan}]
    if sizes:  # the given sizes replace the profile's: each workload once, with all its profile solvers
        merged: dict = {}
        for w, _, ss in plan:
            merged.setdefault(w, [])
            merged[w] += [s for s in ss if s not in merged[w]]
        plan = [(w, [], [s for s in SOLVERS if s in ss]) for w, ss in merged.items()]
    rows = []
    for workload, profile_sizes, profile_solvers in plan:
        spec = WORKLOADS[workload]
        for n in (sizes or profile_sizes):
            block = []
            for solver in (solvers or profile_solvers):
                if n > LIMITS[solver] or (spec["cost"] != "sqeuclidean" and solver in SQEUCLIDEAN_ONLY):
                    continue
                m = measure(workload, solver, n)
                if "error" in m:
                    print(f"{workload} n={n} {solver}: {m['error']}", file=sys.stderr)
                    continue
                print(f"[scale] {workload} n={n} {solver}: {m['time_s']:.1f} s, peak {m['peak_mem_mb']:.0f} MiB",
                      flush=True)
                block.append(dict(workload=f"{workload} d={spec['d']} {spec['cost']}", solver=solver, n=n,
                                  d=spec["d"], **m))
            exact = next((r["cost"] for r in block if r["solver"] == "pot-emd"), None)
            base = next((r["time_s"] for r in block if r["solver"] == "hiref"), None)
            for r in block:
                r["cost_error"] = (r["cost"] / exact - 1) if exact else float("nan")
                r["ratio_vs_otlens"] = r["time_s"] / base if base else float("nan")
            rows += block
    return pd.DataFrame(rows, columns=COLUMNS)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    parser.add_argument("--out", default=None, help="also write the table to this CSV")
    parser.add_argument("--workloads", nargs="+", default=None, choices=sorted(WORKLOADS),
                        help="only these workloads (default: the profile's)")
    parser.add_argument("--only-n", nargs="+", type=int, default=None, help="these sizes instead of the profile's")
    parser.add_argument("--solvers", nargs="+", default=None, choices=SOLVERS, help="only these solvers")
    args = parser.parse_args(argv)
    table = run(args.profile, workloads=args.workloads, sizes=args.only_n, solvers=args.solvers)
    with pd.option_context("display.width", 220, "display.max_colwidth", 40):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        table.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
