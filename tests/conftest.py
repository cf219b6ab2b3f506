"""Fixtures shared by the test modules."""

from __future__ import annotations

import numpy as np
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
