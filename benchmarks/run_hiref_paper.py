"""Record otlens's costs on HiRef's half-moon → S-curve experiment (:mod:`otlens.published`).

Runs :func:`otlens.published.run_halfmoon_scurve` and merges its rows into
``benchmarks/recorded_hiref_paper.csv`` (a row of the same ``n`` and method is replaced), each row
with its provenance (commit, date, machine) in columns.

    python benchmarks/run_hiref_paper.py --sizes 1024 2048 4096 8192 16384
    nice python benchmarks/run_hiref_paper.py --sizes 65536 1048576 --sinkhorn-max 0 --exact-max 0
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
from pathlib import Path

import pandas as pd
import torch

from otlens.published import run_halfmoon_scurve

OUT = Path(__file__).resolve().parent / "recorded_hiref_paper.csv"


def provenance() -> dict:
    """Commit (with ``+dirty`` when the tree has changes), UTC date, machine, torch version."""
    root = Path(__file__).resolve().parents[1]
    git = lambda *a: subprocess.run(["git", *a], cwd=root, capture_output=True, text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain", "--", "src") else "")
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return dict(commit=commit, date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
                machine=f"{cpu}, {os.cpu_count()} cores (shared)", torch=torch.__version__)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", required=True)
    ap.add_argument("--sinkhorn-max", type=int, default=8192)
    ap.add_argument("--exact-max", type=int, default=4096)
    args = ap.parse_args(argv)
    rows = run_halfmoon_scurve(args.sizes, sinkhorn_max=args.sinkhorn_max, exact_max=args.exact_max, progress=True)
    for k, v in provenance().items():
        rows[k] = v
    if OUT.exists():
        old = pd.read_csv(OUT)
        keep = ~old.set_index(["n", "method"]).index.isin(rows.set_index(["n", "method"]).index)
        rows = pd.concat([old[keep], rows], ignore_index=True)
    rows.sort_values(["n", "method"]).to_csv(OUT, index=False)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
