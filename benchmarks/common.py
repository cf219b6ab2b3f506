"""Shared pieces of the benchmarks: workloads' data, timing, time-boxed references, accuracy.

Every ``bench_*.py`` module returns rows with :data:`COLUMNS` (and extra columns). The rules
that make the ratios fair:

- every solver gets the same inputs (the same float32 cost matrix, or the points it is built
  from) and must reach the same **L1 marginal error** ``tol``; the error of the plan each one
  returns is recomputed here in float64 (``marginal_error``: rows + columns);
- POT stops on the L2 norm of its column-marginal error, so it gets ``stopThr = tol / sqrt(n)``,
  the L2 threshold that guarantees L1 ≤ ``tol``. Float32 cannot reach that threshold at
  n ≥ 4,096, so POT's float32 (torch) runs get the iteration count of their float64 twin
  (the same iterates in exact arithmetic) and no threshold;
- ``cost_error`` is the relative error of ``<P, C>`` against a float64 otlens solve (Anderson-accelerated,
  ``tol = 1e-7``, converged: see :func:`otlens_reference`); a solver is ``converged``
  only if it returned finite values with ``marginal_error <= tol`` (its own flag is not trusted);
- references are **time-boxed**: a probe of a few iterations gives the time per iteration and
  the iteration cap is set to fit the box; a run cut by the box is reported unconverged with
  ``note="time-boxed"``, and a reference skipped altogether says why in ``note``.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, Callable

import numpy as np
import torch

COLUMNS = ["workload", "solver", "time_s", "ratio_vs_otlens", "n_iter", "marginal_error", "cost_error", "converged"]
EXTRA = ["n", "d", "L", "reg", "tol", "device", "note"]


def timed(fn: Callable[[], Any], device: str = "cpu") -> tuple[Any, float]:
    """Run ``fn`` once and return ``(result, wall seconds)`` (CUDA synchronised)."""
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t


# --------------------------------------------------------------------------- data
_MODELS = {384: "minilm-l6", 768: "mpnet-base"}


def profile_clouds(n: int, d: int = 384, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The adjacent-layer cloud pairs of a model, ``x, y: [L, n, d]`` float32.

    MiniLM (d = 384, 6 blocks) or MPNet (d = 768, 12 blocks) on Shakespeare passages; every
    transition of the residual stream (embedding included), the same ``n`` sampled tokens in
    both layers, unit-norm tokens (the ``corrected`` profile method of chapter 1). Cached in
    ``cache_dir("bench")``.
    """
    import otlens
    from otlens.config import cache_dir
    from otlens.depth import _sample, get_method, prepare_transition

    path = cache_dir("bench") / f"profile-{_MODELS[d]}-n{n}-s{seed}.pt"
    if path.exists():
        x, y = torch.load(path)
        return x, y
    n_texts = max(64, int(n / 24) + 64)  # about 30 tokens per passage
    acts = otlens.extract_activations(_MODELS[d], otlens.sample_texts(n_texts, seed=seed), progress=False)
    if acts.n_tokens < n:
        raise RuntimeError(f"only {acts.n_tokens} tokens for n={n}")
    idx = _sample(acts.n_tokens, n, seed)
    pairs = [prepare_transition(acts.states, s, idx, get_method("corrected")) for s in range(acts.n_layers)]
    x, y = torch.stack([p[0] for p in pairs]).contiguous(), torch.stack([p[1] for p in pairs]).contiguous()
    torch.save((x, y), path)
    return x, y


# --------------------------------------------------------------------------- accuracy
def plan_errors(P: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """L1 error of both marginals of a plan, in float64."""
    P = np.asarray(P, dtype=np.float64)
    return float(np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum())


def otlens_reference(x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor, tol: float = 1e-7,
                     max_iter: int = 10_000) -> torch.Tensor:
    """Float64 transport costs ``[L]`` at absolute ``eps [L]``, L1 marginal error ``tol``.

    Adjacent layers hold nearly the same cloud, so the plan is nearly a permutation and plain
    Sinkhorn converges slowly at small ``eps`` (at n = 1,024, reg = 0.01: 40,000 iterations
    still left a marginal error of 4e-6 in float64). The reference is Anderson-accelerated
    otlens, which reaches 1e-7 there in 527-2,000 iterations. It must *converge*: an accelerated
    iterate stopped early can have a small marginal error and a cost off by 1e-4 (measured:
    1.5e-4 at error 1.8e-7 after a 1,500-iteration cap), so a reference that misses ``tol``
    raises instead of silently skewing every ``cost_error``.
    """
    import otlens

    out = []
    for k in range(x.shape[0]):
        r = otlens.sinkhorn(x[k].double(), y[k].double(), reg=float(eps[k]), tol=tol, max_iter=max_iter,
                            warn=False)
        if not r.converged:
            raise RuntimeError(f"float64 reference did not converge on problem {k}: marginal error "
                               f"{float(r.marginal_error):.2g} > {tol:g} after {r.n_iter} iterations")
        out.append(float(r.cost))
    return torch.tensor(out, dtype=torch.float64)


def rel_error(costs, ref) -> float:
    costs = np.asarray(costs, dtype=np.float64)
    if ref is None or not np.all(np.isfinite(costs)):
        return float("nan") if ref is None else float("inf")
    return float(np.max(np.abs(costs / np.asarray(ref) - 1)))


# --------------------------------------------------------------------------- machine bound
def machine_bound(device: str = "cpu", size: int = 1 << 24) -> dict:
    """Measured float32 ``exp`` throughput (elements/s) and read bandwidth (bytes/s) of ``device``."""
    t = torch.rand(size, device=device)
    out = torch.empty_like(t)

    def best(fn, reps=5):
        fn()
        return min(timed(fn, device)[1] for _ in range(reps))

    t_exp = best(lambda: torch.exp(t, out=out))
    t_sum = best(lambda: t.sum())
    return dict(exp_per_s=size / t_exp, read_bytes_per_s=size * 4 / t_sum)


def kernel_iteration_bound(n: int, m: int, machine: dict, itemsize: int = 4) -> float:
    """Seconds per Sinkhorn iteration at the memory bound: two passes over an ``n × m`` kernel."""
    return 2 * n * m * itemsize / machine["read_bytes_per_s"]


# --------------------------------------------------------------------------- references
def timeboxed_loop(problems: list, solve_one: Callable, box_s: float) -> tuple[list, float, str]:
    """Solve ``problems`` one by one until ``box_s`` seconds are spent.

    ``solve_one(problem, seconds_left)`` returns a dict (cost, err, n_iter, capped). Returns the
    results, the total time and a note (``""``, ``"time-boxed"``, or ``"failed: <error>"`` when a
    solve raised: the loop stops there).
    """
    results, total, note = [], 0.0, ""
    for p in problems:
        left = box_s - total
        if left <= 0:
            note = f"time-boxed ({len(results)}/{len(problems)} problems)"
            break
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                r, t = timed(lambda: solve_one(p, left))
            except Exception as exc:  # a reference that crashes (e.g. after an overflow) is reported, not fatal
                note = f"failed: {type(exc).__name__}: {exc}"[:160]
                break
        total += t
        results.append(r)
        if r.get("capped"):
            note = "time-boxed"
    return results, total, note


def iteration_cap(run_k: Callable[[int], Any], seconds: float, max_iter: int, probe: int = 20) -> int:
    """Iterations that fit in ``seconds`` (from a ``probe``-iteration run), at most ``max_iter``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, t = timed(lambda: run_k(probe))
    per_iter = max(t / probe, 1e-9)
    return int(max(probe, min(max_iter, seconds / per_iter)))


def finish(rows: list[dict], base_solver: str) -> list[dict]:
    """Add ``ratio_vs_otlens`` (time / the ``base_solver`` row's time) to rows of one workload.

    A reference stopped early (time-boxed or capped) has a time that is not a time to the
    tolerance, so its ratio says little. Such rows (iterative ones with ``per_iter_s``) also get
    ``projected_s``: their time per iteration times the iterations otlens needed, a *lower
    bound* on their time to the tolerance whenever they need at least as many iterations as
    otlens (plain Sinkhorn, without eps-scaling or acceleration, needs more), and
    ``projected_ratio`` = ``projected_s`` over otlens's time. A reference that ran ``spent_s``
    seconds without reaching the tolerance (while otlens did) gets ``min_ratio`` =
    ``spent_s`` over otlens's time: a measured lower bound on its ratio, with no assumption.
    """
    base_row = next((r for r in rows if r["solver"] == base_solver), None)
    base = base_row["time_s"] if base_row else float("nan")
    for r in rows:
        r["ratio_vs_otlens"] = r["time_s"] / base if base and math.isfinite(r["time_s"]) else float("nan")
        per_iter = r.get("per_iter_s", float("nan"))
        if base_row and r is not base_row and not r["converged"] and math.isfinite(per_iter) and per_iter > 0:
            r["projected_s"] = per_iter * base_row["total_iter"]
            r["projected_ratio"] = r["projected_s"] / base
        if base_row and r is not base_row and not r["converged"] and "spent_s" in r and base_row["converged"]:
            r["min_ratio"] = r["spent_s"] / base
    return rows
