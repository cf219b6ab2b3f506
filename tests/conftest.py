"""Fixtures shared by the test modules."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch


@pytest.fixture
def rng():
    """A seeded NumPy generator: every test draws the same data on every run."""
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's torch ops on one thread.

    Its problems are tiny: intra-op threads only add overhead, and on a busy machine OpenMP's
    spin-waiting makes each op wait for a time slice (50x slower measured).
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    """A fresh results folder for one test (``OTLENS_RESULTS``), so chapters' tables stay apart."""
    folder = tmp_path / "results"
    monkeypatch.setenv("OTLENS_RESULTS", str(folder))
    return folder


@pytest.fixture
def run_chapter(tmp_path, results_dir):
    """Run ``notebooks/<stem>.md`` on some parameters through the book's runner, as the book does.

    Fails on any error output; returns the executed notebook (a dict) and the chapter's results
    table (``results/<stem>.csv``).
    """
    from otlens.runner import project_root, run_notebook

    def run(stem: str, parameters: dict) -> tuple[dict, pd.DataFrame]:
        out = run_notebook(project_root() / "notebooks" / f"{stem}.md", parameters=parameters,
                           output_dir=tmp_path / "executed", progress=False)
        nb = json.loads(out.read_text())
        errors = [o for cell in nb["cells"] if cell["cell_type"] == "code" for o in cell.get("outputs", [])
                  if o["output_type"] == "error"]
        assert not errors
        return nb, pd.read_csv(results_dir / f"{stem}.csv")

    return run


def assert_matches_reference(stem: str, table: pd.DataFrame) -> None:
    """Assert that a chapter's smoke table equals its recorded reference (``tests/data/smoke``).

    Same rows and columns, numbers equal to ``smoke_params.TOLERANCE``; wall-time and memory rows
    and columns are left out on both sides (``smoke_params.deterministic``). Re-record with
    ``python tools/record_smoke.py <stem>`` when a change of numbers is intended.
    """
    from smoke_params import compare, load_reference

    problems = compare(table, load_reference(stem))
    assert not problems, (f"{stem}: the results table differs from tests/data/smoke/{stem}.csv:\n  "
                          + "\n  ".join(problems))


def glued_markdown(nb: dict, name: str) -> str:
    """The markdown a chapter glued under ``name`` (myst-nb's ``glue``), from an executed notebook."""
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            if o.get("metadata", {}).get("scrapbook", {}).get("name") == name:
                data = o.get("data", {})
                for key in ("application/papermill.record/text/markdown", "text/markdown"):
                    if key in data:
                        return "".join(data[key])
    raise KeyError(f"nothing glued as {name!r}")


def _copy_book(root):
    """Copy the repository's book into ``root`` with a tiny chapter standing in for the first one.

    ``_config.yml``, the ``book/`` pages and bibliography, and the toc keeping its plain pages and
    only the first executed chapter, whose source is ``tests/data/chapter.md`` (a parameters
    cell, a figure, a citation); a profile with no chapter sections. Returns ``root``.
    """
    import shutil
    from pathlib import Path

    import yaml

    from otlens.runner import EXECUTED_DIR

    repo = Path(__file__).resolve().parents[1]
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(repo / "_config.yml", root / "_config.yml")
    toc = yaml.safe_load((repo / "_toc.yml").read_text())
    executed = [c for c in toc["chapters"] if c.get("file", "").startswith(EXECUTED_DIR + "/")]
    toc["chapters"] = [c for c in toc["chapters"]
                       if c is executed[0] or not c.get("file", "").startswith(EXECUTED_DIR + "/")]
    (root / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    shutil.copytree(repo / "book", root / "book", ignore=shutil.ignore_patterns("executed"))
    # the instructor page refers to every chapter's exercises, which the tiny book does not have
    (root / "book" / "instructor.md").write_text("(instructor)=\n# For instructors\n\nA stub.\n")
    (root / "params").mkdir()
    (root / "params" / "quick.yml").write_text("defaults: {seed: 0}\n")
    (root / "notebooks").mkdir()
    stem = Path(executed[0]["file"]).name
    shutil.copy(repo / "tests" / "data" / "chapter.md", root / "notebooks" / f"{stem}.md")
    return root


@pytest.fixture
def book_copy(tmp_path):
    """A fresh copy of the book with the tiny stand-in chapter (see :func:`_copy_book`), not built."""
    return _copy_book(tmp_path / "book-root")


@pytest.fixture(scope="session")
def tiny_book(tmp_path_factory):
    """The book copy of :func:`_copy_book`, built once per session (strict); the HTML is in
    ``<root>/_build/html``. Used by the book-delivery and browser tests."""
    from otlens.runner import build_book

    root = _copy_book(tmp_path_factory.mktemp("tiny-book") / "root")
    build_book(root=root, progress=False)
    return root
