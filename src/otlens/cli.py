"""The ``otlens`` command line.

    otlens run notebooks/01_ot_across_depth.md -p model gemma3-270m -p n_texts 256
    otlens book --profile quick            # run every chapter, then build the HTML book
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

    book = commands.add_parser("book", help="run every chapter in _toc.yml, then build the HTML book",
                               description="Run the chapters and build the book with jupyter-book.")
    _add_profile(book)
    book.add_argument("--no-execute", action="store_true",
                      help="build from the notebooks already in book/executed")
    book.add_argument("--no-strict", action="store_true",
                      help="do not turn Sphinx warnings into errors")

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


def _run(args: argparse.Namespace) -> int:
    from otlens.runner import parse_value, run_notebook

    overrides = {key: parse_value(value) for key, value in args.parameters}
    path = run_notebook(args.notebook, profile=args.profile, parameters=overrides,
                        output_dir=args.out, kernel_name=args.kernel, progress=not args.no_progress)
    print(f"Wrote {_relative(path)}")
    return 0


def _book(args: argparse.Namespace) -> int:
    from otlens.runner import build_book

    index = build_book(profile=args.profile, execute=not args.no_execute, strict=not args.no_strict)
    print(f"Open {index.resolve().as_uri()}")
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
    """Entry point of the ``otlens`` console script; returns the exit code."""
    from otlens.runner import BookBuildError, NotebookError, ParameterError

    args = _parser().parse_args(argv)
    handler = {"run": _run, "book": _book, "models": _models, "pdf": _pdf}[args.command]
    try:
        return handler(args)
    except (NotebookError, ParameterError, BookBuildError, FileNotFoundError) as exc:
        print(f"otlens {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"otlens {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
