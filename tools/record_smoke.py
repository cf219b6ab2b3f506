"""Record the chapters' smoke results as the reference the smoke tests compare with.

Runs each chapter notebook on its smoke test's tiny parameters (``tests/smoke_params.py``),
through the book's runner exactly as the ``run_chapter`` fixture does, and writes the
deterministic part of its results table to ``tests/data/smoke/<stem>.csv``.

Usage: python tools/record_smoke.py [stem ...] [--out FOLDER] [--check]
    (no stem: every chapter; --check: compare with the recorded reference instead of writing it)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import smoke_params  # noqa: E402
from otlens.runner import run_notebook  # noqa: E402


def run_smoke(stem: str, workdir: Path) -> pd.DataFrame:
    """Run ``stem`` on its smoke parameters in ``workdir``; return its results table."""
    params, env = smoke_params.chapter_setup(stem, workdir)
    results = workdir / "results"
    with mock.patch.dict(os.environ, {"OTLENS_RESULTS": str(results), **env}):  # restored on exit
        run_notebook(ROOT / "notebooks" / f"{stem}.md", parameters=params,
                     output_dir=workdir / "executed", progress=False)
    return pd.read_csv(results / f"{stem}.csv")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stems", nargs="*", default=list(smoke_params.SMOKE))
    ap.add_argument("--out", type=Path, default=smoke_params.REFERENCE_DIR)
    ap.add_argument("--check", action="store_true", help="compare with the reference in --out")
    args = ap.parse_args(argv)
    unknown = [s for s in args.stems if s not in smoke_params.SMOKE]
    if unknown:
        ap.error(f"unknown chapter(s) {unknown}; choose from {list(smoke_params.SMOKE)}")
    failed = 0
    for stem in args.stems:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"smoke-{stem}-") as tmp:
            table = run_smoke(stem, Path(tmp))
        secs = time.perf_counter() - t0
        if args.check:
            problems = smoke_params.compare(table, smoke_params.load_reference(stem, args.out))
            failed += bool(problems)
            print(f"{stem}: {'matches' if not problems else 'DIFFERS'} ({secs:.0f} s)")
            for p in problems:
                print("  " + p)
        else:
            path = smoke_params.save_reference(stem, table, args.out)
            print(f"{stem}: {len(smoke_params.deterministic(table))} of {len(table)} rows -> {path} ({secs:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
