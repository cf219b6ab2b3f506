"""Benchmarks: otlens against reference OT libraries, ratios measured in one run.

Imports every ``benchmarks/bench_*.py`` module; each exposes ``run(profile) -> DataFrame`` with
at least the columns workload, solver, time_s, ratio_vs_otlens, n_iter, marginal_error,
cost_error, converged. The driver concatenates them, prints the table and writes
``results/benchmarks.csv``. ``ratio_vs_otlens`` is a solver's time over otlens's time on the same
workload, same inputs and same L1 marginal-error tolerance, measured in the same run (so a
busy machine slows both). The fairness rules are in ``benchmarks/common.py``.

    python benchmarks/run.py                      # full profile (about 2 hours on 2 cores)
    python benchmarks/run.py --profile quick      # a few minutes
    python benchmarks/run.py --profile target --only sinkhorn   # the issue's target workload  (~18 min)
    python benchmarks/run.py --profile target --only scale      # HiRef at 2^20, moons at 8,192 (~25 min)
    python benchmarks/run.py --device cuda        # adds otlens-on-CUDA rows
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import time
from pathlib import Path

import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import COLUMNS, machine_bound  # noqa: E402

PROFILES = ("quick", "target", "full")


def modules() -> dict[str, str]:
    """``{name: module}`` of every ``bench_<name>.py`` next to this file."""
    return {p.stem.removeprefix("bench_"): p.stem for p in sorted(HERE.glob("bench_*.py"))}


def kept_rows(out: Path, names) -> list:
    """The rows of ``out`` from benchmarks other than ``names``: ``--only`` refreshes its part of the table."""
    if not out.exists():
        return []
    old = pd.read_csv(out)
    return [old[~old["benchmark"].isin(list(names))]] if "benchmark" in old.columns else []


def ordered(tables: list) -> pd.DataFrame:
    """``tables`` concatenated, the :data:`COLUMNS` first; exits if some are missing."""
    table = pd.concat(tables, ignore_index=True)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise SystemExit(f"benchmark rows lack the columns {missing}")
    return table[COLUMNS + [c for c in table.columns if c not in COLUMNS]]


def write(out: Path, tables: list) -> None:
    """Write the concatenated ``tables`` to ``out`` atomically (temporary file, then rename)."""
    table = ordered(tables)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    table.to_csv(tmp, index=False)
    tmp.replace(out)


def main(argv=None) -> int:
    found = modules()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=PROFILES, default="full")
    parser.add_argument("--only", action="append", choices=sorted(found), help="run only this benchmark (repeatable)")
    parser.add_argument("--device", default="cpu", help="'cuda' adds otlens rows on the GPU")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", default=None, help="CSV path (default results/benchmarks.csv)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    machine = machine_bound()
    print(f"machine: {torch.get_num_threads()} torch threads, float32 exp {machine['exp_per_s'] / 1e9:.2f} G/s, "
          f"read bandwidth {machine['read_bytes_per_s'] / 1e9:.1f} GB/s", flush=True)
    if args.out:
        out = Path(args.out)
    else:
        from otlens.config import results_dir

        out = results_dir() / "benchmarks.csv"
    kept = kept_rows(out, args.only or sorted(found))
    tables = []
    for name in args.only or sorted(found):
        mod = importlib.import_module(found[name])
        if args.profile not in getattr(mod, "PROFILES", ("quick", "full")):
            print(f"[{name}] has no {args.profile!r} profile: skipped", flush=True)
            continue
        t = time.perf_counter()
        if "device" in inspect.signature(mod.run).parameters:
            df = mod.run(args.profile, device=args.device)
        else:  # a benchmark that takes only the profile
            df = mod.run(args.profile)
        print(f"[{name}] {len(df)} rows in {time.perf_counter() - t:.0f} s", flush=True)
        if len(df):
            tables.append(df.assign(benchmark=name, profile=args.profile))
            write(out, kept + tables)  # after every benchmark: a later crash loses only its own rows
    if not tables:
        print("no rows")
        return 1
    table = ordered(tables)
    shown = [c for c in COLUMNS + ["per_iter_s", "bound_fraction", "projected_ratio", "min_ratio", "note"] if c in table.columns]
    with pd.option_context("display.width", 250, "display.max_colwidth", 60, "display.max_rows", 500):
        for workload, part in table.groupby("workload", sort=False):
            print(f"\n{workload}")
            print(part[shown[1:]].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
