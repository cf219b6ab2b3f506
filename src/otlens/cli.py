"""The ``otlens`` command line.

    otlens run notebooks/01_ot_across_depth.md -p model gemma3-270m -p n_texts 256
    otlens notebook 01 --profile quick     # notebooks/01_ot_across_depth.quick.ipynb, to run in JupyterLab
    otlens book --profile quick            # run every chapter (in parallel on a local Dask cluster), build the book
    otlens run notebooks/01_ot_across_depth.md --profile paper && otlens record 01   # a paper-scale run, recorded
    otlens book --edition paper            # the paper edition, from the recorded runs (nothing executed)
    otlens sweep notebooks/01_ot_across_depth.md --grid seed=0,1 --grid 'models=[[minilm-l6],[mpnet-base]]'
    otlens models                          # the offline model registry
    otlens pdf                             # the whole book as one PDF (headless Chromium)

User errors (bad parameters, a failing notebook, a failed build) print one message and exit 1;
usage errors exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otlens", description="Transformers through optimal transport: run chapters, build the book."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="execute one chapter into book/executed/<stem>.ipynb",
                              description="Execute one chapter with papermill.")
    run.add_argument("notebook", type=Path, help="chapter source, e.g. notebooks/01_ot_across_depth.md")
    _add_profile(run)
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                     metavar=("KEY", "VALUE"), dest="parameters",
                     help="override a parameter; VALUE is parsed as YAML (256 → int, true → bool, [a, b] → list)")
    run.add_argument("--out", default="book/executed",
                     help="output folder, relative to the project root (default: %(default)s)")
    run.add_argument("--kernel", default=None,
                     help="Jupyter kernel name (default: a python3 kernel running this interpreter)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    notebook = commands.add_parser(
        "notebook", help="write a chapter with a profile's values in its parameters cell, to run in JupyterLab",
        description="Write a copy of a chapter whose parameters cell holds the values of a profile (and -p "
                    "overrides), as `otlens run` would inject them, to open and run cell by cell (make lab).")
    notebook.add_argument("chapter", help="chapter number (1, 01), stem or source path")
    _add_profile(notebook)
    notebook.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                          metavar=("KEY", "VALUE"), dest="parameters",
                          help="override a parameter; VALUE is parsed as YAML, as for `otlens run`")
    notebook.add_argument("--out", type=Path, default=None,
                          help="the copy to write, .ipynb or .md (default: notebooks/<stem>.<profile>.ipynb)")
    notebook.add_argument("--force", action="store_true", help="replace an existing copy")

    book = commands.add_parser("book", help="run every chapter in _toc.yml, then build the HTML book",
                               description="Run the chapters and build the book with jupyter-book.")
    _add_profile(book)
    book.add_argument("--edition", choices=("quick", "paper"), default="quick",
                      help="quick: run the chapters (profile) and build; paper: build from the recorded runs in "
                           "paper/ without executing anything, into _build/editions/paper/ (default: %(default)s)")
    book.add_argument("--no-execute", action="store_true",
                      help="build from the notebooks already in book/executed")
    book.add_argument("--no-strict", action="store_true",
                      help="do not turn Sphinx warnings into errors")
    book.add_argument("--no-solutions", action="store_true",
                      help="leave the exercises' solutions out of the pages (a students' copy)")
    book.add_argument("--serial", action="store_true",
                      help="run the chapters one after another in this process (default: in parallel on Dask)")
    _add_cluster(book)

    sweep = commands.add_parser(
        "sweep", help="run one chapter over a grid of parameters on Dask (results/sweeps/<name>/)",
        description="Run a chapter over a grid of parameters, one Dask task per grid point, each in "
                    "results/sweeps/<name>/<key>/; rerunning resumes. Exits 1 if a point failed.")
    sweep.add_argument("target", type=Path,
                       help="chapter source (notebooks/NN_<name>.md) or a YAML sweep file (.yml)")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=VALUES",
                       help="a swept parameter: KEY=0,1,2 or KEY='[[a],[b]]' (YAML); repeatable")
    sweep.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                       dest="parameters", help="a fixed override for every point (VALUE parsed as YAML)")
    sweep.add_argument("--zip", action="store_true",
                       help="pair the i-th values of every key instead of taking every combination")
    sweep.add_argument("--profile", default=None,
                       help="parameter profile: quick, paper, or a YAML path (default: the sweep file's, else quick)")
    sweep.add_argument("--name", default=None,
                       help="sweep folder name under results/sweeps/ (default: the sweep file's or chapter's stem)")
    sweep.add_argument("--retries", type=int, default=None,
                       help="extra tries of a point whose worker or kernel died (default: 2)")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_cluster(sweep)

    record = commands.add_parser(
        "record", help="record an executed paper-scale chapter into paper/<stem>/ (the paper edition)",
        description="Copy book/executed/<stem>.ipynb, its run record and results/<stem>.csv into paper/<stem>/, "
                    "from which `otlens book --edition paper` builds the paper edition.")
    record.add_argument("chapter", help="chapter number (1, 01), stem or source path")

    commands.add_parser("models", help="list the model registry", description="List the model registry.")

    pdf = commands.add_parser("pdf", help="print the whole book to one PDF with headless Chromium",
                              description="Build the single-page HTML book from the executed "
                                          "chapters and print it with headless Chromium.")
    pdf.add_argument("--out", type=Path, default=None,
                     help="the PDF to write (default: _build/pdf/otlens.pdf)")
    pdf.add_argument("--no-strict", action="store_true",
                     help="do not turn Sphinx warnings into errors")
    return parser


def _add_profile(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="quick",
                        help="parameter profile: quick, paper, or a path to a YAML file (default: %(default)s)")


def _add_cluster(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="Dask scheduler, e.g. tcp://HOST:8786 (default: $DASK_SCHEDULER_ADDRESS, "
                             "else a local cluster on 127.0.0.1)")
    parser.add_argument("--workers", type=int, default=None,
                        help="local cluster: single-threaded workers (default: one per core)")


def _run(args: argparse.Namespace) -> int:
    from otlens.runner import parse_value, run_notebook

    overrides = {key: parse_value(value) for key, value in args.parameters}
    path = run_notebook(args.notebook, profile=args.profile, parameters=overrides,
                        output_dir=args.out, kernel_name=args.kernel, progress=not args.no_progress)
    print(f"Wrote {_relative(path)}")
    return 0


def _notebook(args: argparse.Namespace) -> int:
    from otlens.runner import find_chapter, parameterised_copy, parse_value

    overrides = {key: parse_value(value) for key, value in args.parameters}
    path = parameterised_copy(find_chapter(args.chapter), args.out, profile=args.profile,
                              parameters=overrides, overwrite=args.force)
    print(f"Wrote {_relative(path)} (parameters: profile {args.profile}"
          + (f", {', '.join(k for k, _ in args.parameters)} from -p" if args.parameters else "") + ")")
    return 0


def _book(args: argparse.Namespace) -> int:
    from otlens.runner import build_book

    if args.edition == "paper":
        from otlens.editions import build_edition

        index = build_edition("paper", strict=not args.no_strict)
        print(f"Open {index.resolve().as_uri()}")
        return 0
    index = build_book(profile=args.profile, execute=not args.no_execute, strict=not args.no_strict,
                       parallel=not args.serial, scheduler=args.scheduler, n_workers=args.workers,
                       solutions=not args.no_solutions)
    print(f"Open {index.resolve().as_uri()}")
    return 0


def _record(args: argparse.Namespace) -> int:
    from otlens.config import results_dir
    from otlens.editions import record_chapter
    from otlens.runner import EXECUTED_DIR, find_chapter, project_root

    root = project_root()
    stem = find_chapter(args.chapter, root).stem
    dest = record_chapter(root / EXECUTED_DIR / f"{stem}.ipynb", results_dir() / f"{stem}.csv", root=root)
    print(f"Recorded {_relative(dest)}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from otlens.runner import parse_value
    from otlens.sweep import DEFAULT_RETRIES, parse_grid, read_sweep_file, run_sweep

    spec: dict = {}
    if args.target.suffix in (".yml", ".yaml"):
        spec = read_sweep_file(args.target)
        if not spec.get("notebook"):
            raise FileNotFoundError(f"{args.target} names no `notebook`")
        notebook = Path(spec["notebook"])
    else:
        notebook = args.target
    grid = {**(spec.get("grid") or {}), **parse_grid(args.grid)}
    parameters = {**(spec.get("parameters") or {}), **{k: parse_value(v) for k, v in args.parameters}}
    retries = args.retries if args.retries is not None else spec.get("retries", DEFAULT_RETRIES)
    result = run_sweep(notebook, grid, mode="zip" if args.zip else spec.get("mode", "product"),
                       profile=args.profile or spec.get("profile", "quick"), parameters=parameters,
                       name=args.name or (spec.get("name") if spec else None), scheduler=args.scheduler,
                       n_workers=args.workers, retries=retries, progress=not args.no_progress)
    n, ran = len(result.points), int(result.points.ran.sum())
    print(f"Sweep {result.folder.name}: {n - len(result.failed)} of {n} points done ({ran} run now, "
          f"{n - ran} resumed) in {result.wall_s:.1f} s on {result.n_workers or 'no'} workers; "
          f"{_relative(result.folder)}")
    for table, path in result.tables.items():
        print(f"Wrote {_relative(path)}")
    if not result.ok:
        print(f"otlens sweep: {len(result.failed)} point(s) failed:\n{result.describe_failures()}", file=sys.stderr)
        return 1
    return 0


def _models(args: argparse.Namespace) -> int:
    from otlens.models import list_models

    print(list_models().to_string(index=False, max_colwidth=60))
    return 0


def _pdf(args: argparse.Namespace) -> int:
    from otlens.book import build_pdf

    print(f"Wrote {_relative(build_pdf(output=args.out, strict=not args.no_strict))}")
    return 0


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``otlens`` console script.

    Parameters
    ----------
    argv : sequence of str, optional
        The command line after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code.
    """
    from otlens.cluster import ClusterError
    from otlens.runner import BookBuildError, NotebookError, ParameterError

    args = _parser().parse_args(argv)
    handler = {"run": _run, "notebook": _notebook, "book": _book, "models": _models, "pdf": _pdf,
               "sweep": _sweep, "record": _record}[args.command]
    try:
        return handler(args)
    except (NotebookError, ParameterError, BookBuildError, ClusterError, FileNotFoundError,
            FileExistsError) as exc:
        print(f"otlens {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"otlens {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
