"""One GPU row: MiniLM's adjacent-layer profile at n = 16,384 on CUDA against the CPU.

Run on a machine with a GPU (``PYTHONPATH=src python benchmarks/gpu_profile.py DATA``), where
DATA holds MiniLM's 7 residual states at the 16,384 sampled tokens (int8 with per-token scales,
written from ``common.profile_clouds(16384)``: the GPU machine has no model packages). Prints
one line per measurement (JSON) and a large-n chunked-mode memory check.
"""

from __future__ import annotations

import json
import sys
import time

import torch

import otlens.ot.entropic as T
from otlens.ot import sinkhorn


def timed(fn, sync=True):
    torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return out, time.perf_counter() - t


def main(path: str, reg: float = 0.01, tol: float = 1e-5) -> None:
    blob = torch.load(path)
    states = blob["q"].float() * blob["scale"].float()
    states = states / states.norm(dim=-1, keepdim=True)
    x, y = states[:-1].contiguous(), states[1:].contiguous()  # [6, n, d]
    L, n, d = x.shape
    kw = dict(reg=reg, relative_reg=True, tol=tol, max_iter=10_000, warn=False)
    sinkhorn(x[:1, :512], y[:1, :512], device="cuda", **kw)  # warm up CUDA
    T.DENSE_BYTES = 8 * 2**30  # the GPU holds all 6 transitions at once
    torch.cuda.reset_peak_memory_stats()
    r, t = timed(lambda: sinkhorn(x, y, device="cuda", **kw))
    out = dict(row="otlens batched CUDA dense", n=n, d=d, L=L, reg=reg, time_s=t, n_iter=r.n_iter,
               converged=r.converged, marginal_error=float(r.marginal_error.max()),
               peak_gib=torch.cuda.max_memory_allocated() / 2**30, costs=r.cost.cpu().tolist())
    print(json.dumps(out), flush=True)
    ref_cost = r.cost.cpu().double()
    torch.cuda.reset_peak_memory_stats()
    r, t = timed(lambda: sinkhorn(x, y, device="cuda", chunk_size=2048, **{**kw, "max_iter": 50}))
    print(json.dumps(dict(row="otlens batched CUDA chunked (2048), 50 iterations", time_s=t, n_iter=r.n_iter,
                          per_iter_s=t / r.n_iter, peak_gib=torch.cuda.max_memory_allocated() / 2**30)), flush=True)
    del ref_cost
    # CPU (this machine's cores, threads as given): one transition, a fixed number of iterations
    for threads in (2, torch.get_num_threads()):
        torch.set_num_threads(threads)
        k_iter = 40
        t0 = time.perf_counter()
        rc = sinkhorn(x[0], y[0], **{**kw, "max_iter": k_iter})
        t_cpu = time.perf_counter() - t0
        print(json.dumps(dict(row=f"otlens CPU {threads} threads, transition 0, {rc.n_iter} iterations", time_s=t_cpu,
                              per_iter_s=t_cpu / rc.n_iter)), flush=True)
    # per-iteration time on CUDA, same transition, same count
    rg, tg = timed(lambda: sinkhorn(x[0], y[0], device="cuda", **{**kw, "max_iter": 40}))
    print(json.dumps(dict(row="otlens CUDA transition 0, 40 iterations", time_s=tg, per_iter_s=tg / rg.n_iter)),
          flush=True)
    # large n: the automatic chunked mode (dense float32 cost would be 16 GiB)
    big = 65_536
    g = torch.Generator(device="cuda").manual_seed(0)
    xb = torch.nn.functional.normalize(torch.randn(big, d, device="cuda", generator=g), dim=-1)
    yb = torch.nn.functional.normalize(xb + 0.05 * torch.randn(big, d, device="cuda", generator=g), dim=-1)
    T.DENSE_BYTES = 2**30
    torch.cuda.reset_peak_memory_stats()
    rb, tb = timed(lambda: sinkhorn(xb, yb, reg=0.1, relative_reg=True, max_iter=20, warn=False))
    print(json.dumps(dict(row=f"otlens CUDA chunked n={big} d={d}, 20 iterations", time_s=tb,
                          per_iter_s=tb / max(rb.n_iter, 1), peak_gib=torch.cuda.max_memory_allocated() / 2**30,
                          dense_cost_gib=big * big * 4 / 2**30, finite=bool(torch.isfinite(rb.cost)))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
