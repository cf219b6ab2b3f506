r"""Chapter 4's study: optimal transport at scale.

Three pieces, each returning a tidy table or a small result the chapter glues:

- :func:`bijection_benchmark`: Hierarchical Refinement (:func:`otlens.ot.hiref`) on the
  2-D half moons → S-curve benchmark, against exact OT with the Euclidean cost.
- :func:`scaling_table` and :func:`scaling_slopes`: time (minimum of repeats) and *measured*
  peak memory of exact OT, Sinkhorn, HiRef and FRLC against the number of points ``n``
  (:func:`measure_peak`), and the log-log slopes of both in ``n`` with their intervals, read
  against the growth rates 1, :math:`n`, :math:`n \log n` and :math:`n^2`.
- :func:`hiref_depth_profile` and :func:`sample_size_table`: the unregularised adjacent-layer
  profile of a model at growing token-cloud sizes, and what the sample size changes in it.

Every solver is called through :func:`otlens.ot.solve`.
"""

from __future__ import annotations

import ctypes
import gc
import math
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ._validation import check_choice, check_int, check_positive
from .depth import get_method, prepare_transition, sample_tokens
from .ot import METHODS, solve

__all__ = [
    "SCALING_SOLVERS", "BijectionBenchmark", "bijection_benchmark", "measure_peak", "scaling_clouds",
    "scaling_table", "scaling_results", "loglog_slope", "scaling_slopes", "growth_slopes", "hiref_depth_profile",
    "sample_size_table",
]

#: The solvers of the time / memory comparison and the options they run with (``solve``'s keywords).
SCALING_SOLVERS: dict[str, dict] = {
    "exact": {},  # POT's network simplex on the dense n x n cost, float64
    "sinkhorn": dict(reg=0.005, relative_reg=True, tol=1e-4, max_iter=2000, warn=False),
    "hiref": dict(progress=False, warn=False),
    "frlc": dict(rank=32, max_iter=200, tol=1e-5, warn=False),
}
#: Largest ``n`` each solver runs at by default in :func:`scaling_table` (the dense ones hold n x n).
SCALING_LIMITS: dict[str, int] = {"exact": 8192, "sinkhorn": 16384, "frlc": 16384, "hiref": 2**30}
_PAGE = 4096  # bytes: the resolution of a resident-memory measurement


# ----------------------------------------------------------------------------- the 2-D benchmark
@dataclass(frozen=True)
class BijectionBenchmark:
    """HiRef on the half moons → S-curve benchmark (:func:`bijection_benchmark`).

    Attributes
    ----------
    x, y : torch.Tensor, [n, 2]
        The source (half moons) and target (S-curve seen from the side) clouds.
    result : otlens.ot.HiRefResult
        HiRef's bijection with its default split for the Euclidean cost (``"coarse"``).
    exact_cost : float
        Exact OT cost (Euclidean ground cost, uniform weights).
    gap, gap_lowrank : float
        Relative excess of HiRef's cost over ``exact_cost``, with the default split and with
        the published rank-2 (``split="lowrank"``) splits.
    time_s : float
        Wall time of the default HiRef run (seconds).
    """

    x: torch.Tensor
    y: torch.Tensor
    result: Any
    exact_cost: float
    gap: float
    gap_lowrank: float
    time_s: float

    @property
    def n(self) -> int:
        """Points per cloud."""
        return int(self.x.shape[0])

    def to_frame(self, *, seed: int = 0) -> pd.DataFrame:
        """One tidy result row: experiment ``moons_scurve``, method ``hiref``, metric ``gap_to_exact``.

        Parameters
        ----------
        seed : int, default 0
            Written in the row's ``seed`` column.

        Returns
        -------
        pandas.DataFrame
            One row in the columns of :data:`otlens.results.RESULT_COLUMNS` plus ``n_samples``.
        """
        return pd.DataFrame([dict(experiment="moons_scurve", model=None, trained=None, method="hiref", layer=-1,
                                  seed=seed, metric="gap_to_exact", value=self.gap, n_samples=self.n)])

    @property
    def levels(self) -> int:
        """Levels of splits above the leaves."""
        return len(self.result.schedule) - 1

    @property
    def leaf(self) -> int:
        """Largest block solved exactly."""
        return int(self.result.schedule[-1])


def bijection_benchmark(n: int, *, seed: int = 0, clusters: int = 128, device: Any = None,
                        n_threads: int | None = None) -> BijectionBenchmark:
    """HiRef from half moons (noise 0.05) to an S-curve, against exact OT, Euclidean cost.

    Parameters
    ----------
    n : int
        Points per cloud (the exact plan is dense ``[n, n]``: a few thousand on a CPU).
    seed : int, default 0
        HiRef's random seed (the clouds are drawn with ``random_state=0``).
    clusters : int, default 128
        Clusters of the coarse exact plan that splits each block (``hiref``'s ``clusters``).
    device : str or torch.device, optional
        Where HiRef runs.
    n_threads : int, optional
        torch's intra-op threads meanwhile (restored after; None leaves them as they are).

    Returns
    -------
    BijectionBenchmark
        The clouds, HiRef's bijection, the exact cost, both gaps and the time.
    """
    from sklearn.datasets import make_moons, make_s_curve  # scikit-learn: only the benchmark's clouds

    n = check_int(n, "n", minimum=2)
    x = torch.tensor(make_moons(n, noise=0.05, random_state=0)[0], dtype=torch.float32)
    y = torch.tensor(make_s_curve(n, random_state=0)[0][:, [0, 2]], dtype=torch.float32)
    with _torch_threads(n_threads):
        t = time.perf_counter()
        res = solve(x, y, method="hiref", cost="euclidean", clusters=clusters, seed=seed, device=device,
                    progress=False)
        secs = time.perf_counter() - t
        exact = float(solve(method="exact", cost=torch.cdist(x.double(), y.double())).cost)
        lowrank = solve(x, y, method="hiref", cost="euclidean", split="lowrank", seed=seed, device=device,
                        progress=False)
    return BijectionBenchmark(x, y, res, exact, float(res.cost) / exact - 1, float(lowrank.cost) / exact - 1, secs)


# ----------------------------------------------------------------------------- memory
def _status_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {key}")


def _reset_peak_rss() -> bool:
    """Release free heap memory and reset the process's resident high-water mark (Linux >= 4.0)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)  # glibc: freed pages would otherwise be reused unseen
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure_peak(fn: Callable[[], Any], *, device: Any = None) -> tuple[Any, int, int | None]:
    """Run ``fn()`` and measure how far it raised the process's peak memory.

    On the host: the growth of the peak resident set size (Linux's ``VmHWM``) above the resident
    size before the call, after returning free heap pages to the system (``malloc_trim``) and
    resetting the high-water mark (``/proc/self/clear_refs``). It counts every allocation that is
    touched, whoever makes it (NumPy, torch's CPU allocator, POT's C++ solver), to a page (4 KiB);
    :mod:`tracemalloc` would miss torch's and POT's. On a CUDA ``device``, also the peak of
    torch's allocated GPU memory above the level before the call.

    Parameters
    ----------
    fn : callable
        Called with no argument; what it returns is kept alive until the measurement is taken.
    device : str or torch.device, optional
        ``"cuda..."`` adds the GPU measurement.

    Returns
    -------
    result : object
        What ``fn`` returned.
    host_bytes : int
        Peak resident growth in bytes.
    gpu_bytes : int or None
        Peak GPU allocation growth in bytes (None off CUDA).

    Raises
    ------
    OSError
        Where the resident high-water mark cannot be reset (not Linux, or ``/proc`` read-only).
    """
    if not callable(fn):
        raise TypeError(f"`fn` must be callable; got {type(fn).__name__}")
    cuda = device is not None and torch.device(device).type == "cuda"
    gc.collect()
    if not _reset_peak_rss():
        raise OSError("cannot reset the peak resident memory (/proc/self/clear_refs): measure_peak needs Linux")
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        gpu_base = torch.cuda.memory_allocated(device)
    base = _status_bytes("VmRSS")
    out = fn()
    if cuda:
        torch.cuda.synchronize(device)
    host = max(_status_bytes("VmHWM") - base, 0)
    gpu = torch.cuda.max_memory_allocated(device) - gpu_base if cuda else None
    return out, host, gpu


# ----------------------------------------------------------------------------- time and memory against n
def scaling_clouds(n: int, d: int, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard Gaussian points against uniform ones on ``[-1.5, 2.5]^d`` (float32), as in ``bench_scale``.

    Parameters
    ----------
    n : int
        Points per cloud.
    d : int
        Dimension.
    seed : int, default 0
        Seed of the generator of both clouds.

    Returns
    -------
    x, y : torch.Tensor, [n, d]
        The Gaussian source and the uniform target.
    """
    n, d = check_int(n, "n", minimum=1), check_int(d, "d", minimum=1)
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(n, d, generator=g), torch.rand(n, d, generator=g) * 4 - 1.5


def _runner(solver: Any, name: str, device: Any, options: Mapping[str, Any]) -> Callable:
    if callable(solver):
        return solver
    opts = {**SCALING_SOLVERS.get(name, {}), **options}
    if device is not None and name != "exact":
        opts["device"] = device
    return lambda x, y: solve(x, y, method=name, **opts)


@contextmanager
def _torch_threads(n_threads: int | None):
    """torch's intra-op threads set to ``n_threads`` inside the block (None: unchanged), restored after."""
    before = torch.get_num_threads()
    if n_threads is not None:
        torch.set_num_threads(check_int(n_threads, "n_threads", minimum=1))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _timed(fn: Callable, x: torch.Tensor, y: torch.Tensor) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn(x, y)
    return out, time.perf_counter() - t


def scaling_table(
    sizes: Sequence[int],
    *,
    d: int = 64,
    solvers: Sequence[str] | Mapping[str, Callable] = tuple(SCALING_SOLVERS),
    repeats: int = 3,
    seed: int = 0,
    limits: Mapping[str, int] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    n_threads: int | None = 1,
    device: Any = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Time and peak memory of OT solvers against ``n``, the minimum time of ``repeats`` runs.

    Each solver first runs once untimed at the smallest size (imports, thread pools and lazy
    set-up are not charged to a size); then every solver and size is run ``repeats`` times, the
    rounds interleaved (a busy spell of the machine slows one run of each, not all runs of one),
    each run timed and its peak memory measured by :func:`measure_peak`. Clouds:
    :func:`scaling_clouds`. By default torch runs on one thread meanwhile: POT's network simplex
    is single-threaded, so the solvers compete on equal terms, and on a shared machine
    OpenMP's spin-waiting across threads can slow a run tens of times at random.

    Parameters
    ----------
    sizes : sequence of int
        Points per cloud, at least one; each ``>= 2``.
    d : int, default 64
        Dimension of the clouds.
    solvers : sequence of str or mapping, default all of :data:`SCALING_SOLVERS`
        Names of ``solve`` methods (run with the options in :data:`SCALING_SOLVERS`), or a
        mapping ``name -> fn(x, y)`` returning an :class:`~otlens.ot.OTResult` (or anything
        with a ``cost``, or a number).
    repeats : int, default 3
        Timed runs per solver and size.
    seed : int, default 0
        Seed of the clouds.
    limits : mapping, optional
        Largest ``n`` per solver (default :data:`SCALING_LIMITS`); larger sizes are skipped.
    n_threads : int or None, default 1
        torch's intra-op threads during the runs (restored after); None leaves them as they are.
    options : mapping, optional
        Keywords that replace or add to a named solver's :data:`SCALING_SOLVERS` options, e.g.
        ``{"frlc": {"rank": 8}}``.
    device : str or torch.device, optional
        Where ``sinkhorn``, ``hiref`` and ``frlc`` run (exact OT runs on the CPU).
    progress : bool, default False
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per solver and size: ``solver``, ``n``, ``d``, ``repeats``, ``time_s`` (minimum),
        ``time_median_s``, ``solver_mem_mb`` (the solver's own peak memory: median over the runs of
        the peak resident growth, MiB), ``mem_max_mb``,
        ``gpu_mem_mb`` (median, NaN off CUDA), ``dense_mb`` (one ``[n, n]`` float64 matrix, for
        scale), ``cost``, ``converged`` (every run), ``n_iter`` (median) and ``gap_to_exact``
        (relative to ``exact`` at the same ``n``, where it ran).

    Raises
    ------
    ValueError
        For an empty or invalid ``sizes``, an unknown solver name, or ``repeats < 1``.
    """
    if isinstance(sizes, (int, np.integer)) or not len(sizes):
        raise ValueError(f"`sizes` must be a non-empty list of ints; got {sizes!r}")
    sizes = sorted({check_int(n, "sizes", minimum=2) for n in sizes})
    d, repeats = check_int(d, "d", minimum=1), check_int(repeats, "repeats", minimum=1)
    if isinstance(solvers, str):
        raise ValueError(f"`solvers` must be a list of names or a mapping; got the string {solvers!r}")
    named = dict(solvers) if isinstance(solvers, Mapping) else {s: None for s in solvers}
    if not named:
        raise ValueError("`solvers` is empty")
    for name, fn in named.items():
        if fn is None:
            check_choice(name, "solvers", [m for m in METHODS if m in SCALING_SOLVERS])
        elif not callable(fn):
            raise ValueError(f"`solvers[{name!r}]` must be callable; got {type(fn).__name__}")
    options = dict(options or {})
    unknown = sorted(set(options) - set(named))
    if unknown:
        raise ValueError(f"`options` names solver(s) {unknown} that are not in `solvers` {sorted(named)}")
    limit = {**SCALING_LIMITS, **dict(limits or {})}
    runs = {name: _runner(fn, name, device, options.get(name, {})) for name, fn in named.items()}
    jobs = [(n, s) for n in sizes for s in named if n <= limit.get(s, math.inf)]
    runs_by_job: dict = {job: [] for job in jobs}
    with _torch_threads(n_threads):
        for name in named:  # warm-up: imports, thread pools, lazy set-up
            runs[name](*scaling_clouds(sizes[0], d, seed=seed))
        clouds = {n: scaling_clouds(n, d, seed=seed) for n in sizes}
        order = [job for _ in range(repeats) for job in jobs]  # repeats interleaved: a busy spell hits one of each
        for n, name in tqdm(order, desc="scaling", disable=not progress, leave=False):
            x, y = clouds[n]
            (out, secs), host, gpu = measure_peak(lambda: _timed(runs[name], x, y), device=device)
            runs_by_job[n, name].append(dict(time=secs, mem=host / 2**20, gpu=math.nan if gpu is None else gpu / 2**20,
                                             cost=float(getattr(out, "cost", out)),
                                             converged=bool(getattr(out, "converged", True)),
                                             n_iter=getattr(out, "n_iter", math.nan)))
            del out
    rows = []
    for (n, name), r in runs_by_job.items():
        t, m = [v["time"] for v in r], [v["mem"] for v in r]
        rows.append(dict(solver=name, n=n, d=d, repeats=repeats, time_s=min(t), time_median_s=statistics.median(t),
                         solver_mem_mb=statistics.median(m), mem_max_mb=max(m),
                         gpu_mem_mb=statistics.median(v["gpu"] for v in r), dense_mb=8 * n * n / 2**20,
                         cost=r[-1]["cost"], converged=all(v["converged"] for v in r),
                         n_iter=statistics.median(v["n_iter"] for v in r)))
    table = pd.DataFrame(rows)
    exact = table[table.solver == "exact"].set_index("n").cost if "exact" in named else pd.Series(dtype=float)
    table["gap_to_exact"] = table.cost / table.n.map(exact) - 1
    return table


def loglog_slope(n: Any, values: Any, *, level: float = 0.95) -> tuple[float, float, float]:
    """Slope of ``log(values)`` on ``log(n)`` by least squares, with its Student-t interval.

    Parameters
    ----------
    n, values : array-like, [k]
        Sizes and positive values (one per size, or several per size).
    level : float, default 0.95
        Confidence level of the interval.

    Returns
    -------
    slope, lo, hi : float
        The interval is NaN with fewer than three distinct sizes (no residual degree of freedom
        for a line); the slope is NaN with fewer than two.

    Raises
    ------
    ValueError
        If the shapes differ or a value is not positive and finite.
    """
    from scipy.stats import t as student  # scipy: optional heavy import, used here only

    n, v = np.asarray(n, dtype=float).ravel(), np.asarray(values, dtype=float).ravel()
    if n.shape != v.shape:
        raise ValueError(f"`n` and `values` must have the same length; got {n.size} and {v.size}")
    if not (np.isfinite(v).all() and (v > 0).all() and np.isfinite(n).all() and (n > 0).all()):
        raise ValueError("`n` and `values` must be positive and finite to take logs")
    if not 0 < level < 1:
        raise ValueError(f"`level` must be in (0, 1); got {level}")
    x, y = np.log(n), np.log(v)
    if len(np.unique(x)) < 2:
        return math.nan, math.nan, math.nan
    b, a = np.polyfit(x, y, 1)
    if len(np.unique(x)) < 3 or len(x) < 3:
        return float(b), math.nan, math.nan
    res = y - (a + b * x)
    se = math.sqrt(float(res @ res) / (len(x) - 2) / float(((x - x.mean()) ** 2).sum()))
    half = float(student.ppf(0.5 + level / 2, len(x) - 2)) * se
    return float(b), float(b - half), float(b + half)


def growth_slopes(sizes: Sequence[int]) -> dict[str, float]:
    """Log-log slopes over ``sizes`` of the growth rates 1, :math:`n`, :math:`n \\log n` and :math:`n^2`.

    A curve :math:`n \\log n` is not a line on log-log axes; its least-squares slope over the
    sizes measured (about :math:`1 + 1/\\ln n`) is what a log-linear solver's slope is compared with.

    Parameters
    ----------
    sizes : sequence of int
        The sizes ``n`` (at least two distinct, each at least 2).

    Returns
    -------
    dict
        ``{"1": 0.0, "n": 1.0, "n log n": ..., "n^2": 2.0}`` (``"1"``: no growth).
    """
    n = np.asarray(sorted(set(int(s) for s in sizes)), dtype=float)
    if n.size < 2 or (n < 2).any():
        raise ValueError(f"`sizes` needs two distinct sizes >= 2; got {list(sizes)}")
    return {"1": 0.0, "n": 1.0, "n log n": loglog_slope(n, n * np.log(n))[0], "n^2": 2.0}


def scaling_slopes(table: pd.DataFrame, *, metrics: Sequence[str] = ("time_s", "solver_mem_mb"),
                   level: float = 0.95, tolerance: float = 0.1) -> pd.DataFrame:
    """Log-log slopes in ``n`` of each solver's time and memory (from :func:`scaling_table`).

    Memory below one page (4 KiB) is floored there before the log. ``consistent_with`` lists the
    growth rates of :func:`growth_slopes` whose slope over the solver's sizes lies inside the
    interval (widened by ``tolerance``, since a growth rate is itself approximate over a short
    range of ``n``); "none" when none does, "undetermined" with fewer than three sizes.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`scaling_table`'s output (columns ``solver``, ``n`` and the ``metrics``).
    metrics : sequence of str, default ("time_s", "solver_mem_mb")
        The columns to fit.
    level : float, default 0.95
        Confidence level of the intervals.
    tolerance : float, default 0.1
        Margin around the interval when naming consistent growth rates.

    Returns
    -------
    pandas.DataFrame
        One row per solver and metric: ``solver``, ``metric``, ``slope``, ``lo``, ``hi``,
        ``n_sizes``, ``n_min``, ``n_max``, ``nlogn_slope`` (the reference over the same sizes),
        ``consistent_with`` and ``text`` (``"1.02 [0.91, 1.13]"``).
    """
    missing = {"solver", "n", *metrics} - set(getattr(table, "columns", ()))
    if missing:
        raise ValueError(f"`table` lacks column(s) {sorted(missing)}: pass scaling_table()'s output")
    check_positive(tolerance, "tolerance", allow_zero=True)
    rows = []
    for (solver, metric), g in ((k, table[table.solver == k[0]]) for k in
                                ((s, m) for s in dict.fromkeys(table.solver) for m in metrics)):
        g = g.dropna(subset=[metric]).sort_values("n")
        v = g[metric].to_numpy(float)
        if metric.startswith("mem") or metric.endswith("_mb"):
            v = np.clip(v, _PAGE / 2**20, None)
        if len(g) == 0:
            continue
        b, lo, hi = loglog_slope(g.n, v, level=level) if g.n.nunique() >= 2 else (math.nan,) * 3
        refs = growth_slopes(g.n) if g.n.nunique() >= 2 else {}
        if math.isnan(lo):
            within = "undetermined"
        else:
            within = ", ".join(k for k, s in refs.items() if lo - tolerance <= s <= hi + tolerance) or "none"
        text = f"{b:.2f} [{lo:.2f}, {hi:.2f}]" if not math.isnan(lo) else f"{b:.2f} (no interval: under 3 sizes)"
        rows.append(dict(solver=solver, metric=metric, slope=b, lo=lo, hi=hi, n_sizes=int(g.n.nunique()),
                         n_min=int(g.n.min()), n_max=int(g.n.max()), nlogn_slope=refs.get("n log n", math.nan),
                         consistent_with=within, text=text))
    return pd.DataFrame(rows, columns=["solver", "metric", "slope", "lo", "hi", "n_sizes", "n_min", "n_max",
                                       "nlogn_slope", "consistent_with", "text"])


def scaling_results(table: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """:func:`scaling_table` as tidy result rows (experiment ``scaling``, one row per solver, size and metric).

    Metrics ``time_s`` (minimum of the repeats), ``solver_mem_mb`` and ``gap_to_exact``; the
    ``method`` is the solver, ``layer`` is -1, and the size is in column ``n``.

    Parameters
    ----------
    table : pandas.DataFrame
        A table of :func:`scaling_table`.
    seed : int, default 0
        Written in the rows' ``seed`` column.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`otlens.results.RESULT_COLUMNS` plus ``n``, ``d`` and ``repeats``.
    """
    need = {"solver", "n", "d", "repeats", "time_s", "solver_mem_mb", "gap_to_exact"}
    if not need <= set(getattr(table, "columns", ())):
        raise ValueError(f"`table` lacks column(s) {sorted(need - set(table.columns))}: pass scaling_table()'s output")
    long = table.melt(id_vars=["solver", "n", "d", "repeats"], value_vars=["time_s", "solver_mem_mb", "gap_to_exact"],
                      var_name="metric")
    return long.assign(experiment="scaling", model=None, trained=None, method=long.solver, layer=-1, seed=seed)[
        ["experiment", "model", "trained", "method", "layer", "seed", "metric", "value", "n", "d", "repeats"]]


# ----------------------------------------------------------------------------- depth profile at scale
def hiref_depth_profile(
    states: Any,
    *,
    sizes: list[int],
    seeds: list[int] = (0,),
    exact_max: int = 2048,
    sinkhorn_max: int = 4096,
    reg: float = 0.01,
    model: str | None = None,
    device: Any = None,
    n_threads: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    r"""Unregularised adjacent-layer OT profile by HiRef, next to Sinkhorn and exact OT where they run.

    Each transition :math:`\ell \to \ell+1` compares ``n`` tokens sampled (by seed, the same
    tokens in both layers) from the unit-normalised, full-dimension states (the ``corrected``
    preparation of :mod:`otlens.depth`). Methods: ``hiref`` (:math:`W_2^2` of the HiRef
    bijection, every ``n``), ``exact`` (POT, ``n <= exact_max``) and ``sinkhorn``
    (:math:`\langle P, C\rangle` at ``reg`` times the mean cost, ``n <= sinkhorn_max``).

    Parameters
    ----------
    states : Activations or array-like, [n_layers, n_tokens, d_model]
        The token states of every layer.
    sizes : list of int
        Tokens per cloud; each at most ``n_tokens``.
    seeds : list of int, default (0,)
        Token samples (and HiRef's seed).
    exact_max, sinkhorn_max : int
        Largest ``n`` solved exactly and with Sinkhorn.
    reg : float, default 0.01
        Sinkhorn's regularisation, relative to the mean cost.
    model : str, optional
        Written in the ``model`` column.
    device : str or torch.device, optional
        Where HiRef and Sinkhorn run.
    n_threads : int, optional
        torch's intra-op threads during the run (restored after; None leaves them as they are).
        On a shared CPU, 1 avoids OpenMP's spin-waiting: MiniLM's six transitions at n = 500 took
        2.5 s on one thread and 83 s on two, measured on 2 cores shared with other jobs.
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        Tidy rows (experiment ``depth_at_scale``, metric ``w2_squared``) with columns
        ``n_samples``, ``time_s`` and ``gap_to_exact`` (where exact OT ran).
    """
    states = states.states if hasattr(states, "states") else torch.as_tensor(states)
    n_tokens = states.shape[1]
    method = get_method("corrected")
    rows = []
    jobs = [(n, s, layer) for n in sizes for s in seeds for layer in range(states.shape[0] - 1)]
    too_many = [n for n in sizes if n > n_tokens]
    if too_many:
        raise ValueError(f"`sizes` asks for {too_many[0]} tokens; the states hold {n_tokens}")
    with _torch_threads(n_threads):
        for n, s, layer in tqdm(jobs, desc="transitions", disable=not progress, leave=False):
            rows += _profile_rows(states, n, s, layer, method, exact_max, sinkhorn_max, reg, model, device)
    return pd.DataFrame(rows)


def _profile_rows(states, n, s, layer, method, exact_max, sinkhorn_max, reg, model, device) -> list[dict]:
    """One transition of :func:`hiref_depth_profile`: HiRef, and exact OT and Sinkhorn where they run."""
    x, y = prepare_transition(states, layer, sample_tokens(states.shape[1], n, s), method)
    calls = {"hiref": dict(method="hiref", seed=s, device=device, progress=False, warn=False)}
    if n <= exact_max:
        calls["exact"] = dict(method="exact", warn=False)
    if n <= sinkhorn_max:
        calls["sinkhorn"] = dict(method="sinkhorn", reg=reg, relative_reg=True, tol=1e-4, max_iter=2000,
                                 device=device, warn=False)
    found = {}
    for m, kwargs in calls.items():
        r, secs = _timed(lambda a, b, kw=kwargs: solve(a, b, **kw), x, y)
        found[m] = (float(r.cost), secs)
    exact = found.get("exact", (None,))[0]
    return [dict(experiment="depth_at_scale", model=model, trained=True, method=m, layer=layer, seed=s,
                 metric="w2_squared", value=value, n_samples=n, time_s=secs,
                 gap_to_exact=(value / exact - 1) if exact else float("nan"))
            for m, (value, secs) in found.items()]


def sample_size_table(profile: pd.DataFrame, *, method: str = "hiref") -> pd.DataFrame:
    """What the cloud size changes in a depth profile (from :func:`hiref_depth_profile`).

    Parameters
    ----------
    profile : pandas.DataFrame
        :func:`hiref_depth_profile`'s rows (columns ``method``, ``n_samples``, ``layer``, ``value``).
    method : str, default "hiref"
        Whose profile to read.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``n_samples`` (ascending): ``shape_corr`` (Pearson correlation over
        transitions with the profile at the largest size; NaN with fewer than two transitions),
        ``mean_w2`` (mean over transitions and seeds), ``level_ratio`` (``mean_w2`` over the
        largest size's) and ``gap_to_exact`` (mean, where exact OT ran).
    """
    need = {"method", "n_samples", "layer", "value"}
    if not need <= set(getattr(profile, "columns", ())):
        raise ValueError(f"`profile` lacks column(s) {sorted(need - set(profile.columns))}: "
                         "pass hiref_depth_profile()'s output")
    p = profile[profile.method == method]
    if p.empty:
        raise ValueError(f"`profile` has no rows of method {method!r}; has {sorted(set(profile.method))}")
    by = p.groupby(["n_samples", "layer"]).value.mean().unstack("layer").sort_index()
    ref = by.iloc[-1]
    corr = [float(np.corrcoef(row, ref)[0, 1]) if by.shape[1] >= 2 else math.nan
            for _, row in by.iterrows()]
    level = by.mean(axis=1)
    gap = (p.groupby("n_samples").gap_to_exact.mean() if "gap_to_exact" in p
           else pd.Series(math.nan, index=by.index))
    return pd.DataFrame({"shape_corr": corr, "mean_w2": level, "level_ratio": level / level.iloc[-1],
                         "gap_to_exact": gap.reindex(by.index)}, index=by.index.rename("n_samples"))
