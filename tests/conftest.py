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
