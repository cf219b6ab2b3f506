"""Benchmark: HOT's grid of *exact* inner OT problems, otlens against a plain loop of POT ``emd``.

(``bench_hot.py`` times the same grid with entropic solvers.) Workloads — stimuli: 400
Shakespeare passages, mean-pooled block outputs, 320 for training:

- ``hot-exact minilm>mpnet``: 6 × 12 layer pairs of 384 × 768 units (the chapter's grid);
- ``hot-exact minilm>minilm-untrained`` (full profile): 6 × 6 pairs of 384 × 384 units.

The reference is what a user would write: for every pair ``ot.dist(..., metric="correlation")``
then ``ot.emd`` with uniform marginals, then ``ot.emd`` for the layer coupling.
:func:`otlens.hot.hot_align` builds every correlation matrix with one matrix product and solves
equal or 1:2 widths as assignment problems (:func:`otlens.hot.uniform_ot`). Both are exact:
``cost_error`` is the largest relative difference of the inner costs, ``marginal_error`` the
largest L1 marginal error of any ``Q``. Costs differ only where a unit is constant over the
training stimuli (MiniLM's last layer has two): SciPy's correlation distance turns their
rounding noise into correlations as large as 0.54, otlens counts them as uncorrelated (cost 1).
Timings are interleaved, best of two, so a busy machine slows both sides alike.

With ``workers`` (default 2; 0 skips it) ``hot_align(..., client=...)`` also runs with its
inner problems as Dask tasks on a local cluster of that many single-threaded workers, started
(and warmed up on a small grid) before the timings; ``pot_loop_ratio`` is the POT loop's time
over each row's time (above 1: faster than the loop).

Run ``python benchmarks/bench_hot_exact.py --profile quick`` or through ``benchmarks/run.py``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

PROFILES = ("quick", "full")


def _layers(model: str, n_texts: int, trained: bool = True) -> list[np.ndarray]:
    import otlens
    from otlens.hot import pooled_states

    texts = otlens.sample_texts(n_texts, seed=0)
    return list(pooled_states(model, texts, trained=trained, max_length=64, progress=False).double().numpy())


def _pot_loop(src: list[np.ndarray], tgt: list[np.ndarray]) -> tuple[np.ndarray, float]:
    import ot

    cost = np.zeros((len(src), len(tgt)))
    err = 0.0
    for i, x in enumerate(src):
        a = np.full(x.shape[1], 1.0 / x.shape[1])
        for j, y in enumerate(tgt):
            b = np.full(y.shape[1], 1.0 / y.shape[1])
            C = ot.dist(x.T, y.T, metric="correlation")
            Q = ot.emd(a, b, C, numItermax=10_000_000)
            cost[i, j] = float((Q * C).sum())
            err = max(err, float(np.abs(Q.sum(1) - a).sum() + np.abs(Q.sum(0) - b).sum()))
    ot.emd(np.full(len(src), 1.0 / len(src)), np.full(len(tgt), 1.0 / len(tgt)), cost)
    return cost, err


def _q_error(al) -> float:
    return max(float(np.abs(q.sum(1) - 1 / q.shape[0]).sum() + np.abs(q.sum(0) - 1 / q.shape[1]).sum())
               for row in al.Q for q in row)


def _grid(name: str, src: list[np.ndarray], tgt: list[np.ndarray], train: np.ndarray, repeats: int = 2,
          client=None) -> list[dict]:
    from otlens.hot import hot_align

    xs, ys = [x[train] for x in src], [y[train] for y in tgt]
    t_ours, t_ref, t_dask = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        al = hot_align(xs, ys, progress=False)
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref_cost, ref_err = _pot_loop(xs, ys)
        t_ref.append(time.perf_counter() - t0)
        if client is not None:
            t0 = time.perf_counter()
            al_dask = hot_align(xs, ys, progress=False, client=client)
            t_dask.append(time.perf_counter() - t0)
    t_ours, t_ref = min(t_ours), min(t_ref)
    rel = float(np.max(np.abs(al.cost - ref_cost) / np.abs(ref_cost)))
    extra = dict(n_pairs=len(src) * len(tgt), n=src[0].shape[1], m=tgt[0].shape[1])
    rows = [
        dict(workload=name, solver="otlens hot_align (one GEMM + assignment/simplex)", time_s=t_ours,
             ratio_vs_otlens=1.0, n_iter=np.nan, marginal_error=_q_error(al), cost_error=rel, converged=True,
             pot_loop_ratio=t_ref / t_ours, **extra),
        dict(workload=name, solver="POT loop: ot.dist(correlation) + ot.emd per pair", time_s=t_ref,
             ratio_vs_otlens=t_ref / t_ours, n_iter=np.nan, marginal_error=ref_err, cost_error=0.0,
             converged=True, pot_loop_ratio=1.0, **extra),
    ]
    if client is not None:
        t_dask = min(t_dask)
        n_workers = len(client.scheduler_info()["workers"])
        rows.append(dict(workload=name, solver=f"otlens hot_align, inner problems on Dask ({n_workers} local workers)",
                         time_s=t_dask, ratio_vs_otlens=t_dask / t_ours, n_iter=np.nan,
                         marginal_error=_q_error(al_dask),
                         cost_error=float(np.max(np.abs(al_dask.cost - ref_cost) / np.abs(ref_cost))),
                         converged=True, pot_loop_ratio=t_ref / t_dask, **extra))
    return rows


def run(profile: str = "full", workers: int = 2) -> pd.DataFrame:
    """The exact HOT grids (``profile`` "quick": MiniLM → MPNet only), with ``workers`` Dask workers (0: none)."""
    import contextlib

    from otlens.cluster import dask_client
    from otlens.hot import hot_align, split_stimuli

    if profile not in PROFILES:
        raise ValueError(f"`profile` must be one of {PROFILES}; got {profile!r}")
    n_texts = 400
    train, _ = split_stimuli(n_texts, seed=0)
    minilm = _layers("minilm-l6", n_texts)
    mpnet = _layers("mpnet-base", n_texts)
    cluster = dask_client(n_workers=workers, dashboard=False) if workers else contextlib.nullcontext()
    with cluster as client:
        if client is not None:  # the workers' imports (POT's takes seconds) before timing
            client.run(__import__, "ot")
            hot_align([x[train][:, :8] for x in minilm[:2]], [y[train][:, :12] for y in mpnet[:2]],
                      progress=False, client=client)
        rows = _grid("hot-exact minilm>mpnet (6x12, 384x768)", minilm, mpnet, train, client=client)
        if profile == "full":
            rows += _grid("hot-exact minilm>minilm-untrained (6x6, 384x384)", minilm,
                          _layers("minilm-l6", n_texts, trained=False), train, client=client)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=PROFILES, default="full")
    parser.add_argument("--workers", type=int, default=2, help="local Dask workers for the distributed row (0: none)")
    args = parser.parse_args()
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(run(args.profile, workers=args.workers).to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
