"""Tests for otlens.launch: the install cell that the executed chapters start with (Colab)."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

from otlens.launch import INSTALL_TAG, TORCH_CPU_INDEX, install_cell, install_source, repository

REPO = Path(__file__).parent.parent


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "_config.yml").write_text(
        "title: t\nrepository:\n  url: https://github.com/someone/otlens-fork/\n  branch: teach\n")
    (tmp_path / "requirements-models.txt").write_text("# comment\nmodel-a==1.0  # data\n\nmodel-b==2.0\n")
    return tmp_path


def _run(source: str, *, colab: bool, monkeypatch) -> list[list[str]]:
    """Execute the cell's source with subprocess.check_call recorded, on Colab or not."""
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "check_call", lambda command, **kw: calls.append(list(command)))
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(source, "install-cell", "exec"), {})
    return calls


def test_repository_is_read_from_the_one_place(project):
    assert repository(project) == ("https://github.com/someone/otlens-fork", "teach")
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert repository(REPO) == (config["repository"]["url"].rstrip("/"), config["repository"]["branch"])


def test_install_cell_installs_cpu_torch_the_package_and_the_models_on_colab(project, monkeypatch):
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    assert _run(install_source(project), colab=True, monkeypatch=monkeypatch) == [
        [*pip, "torch==2.13.0", "--extra-index-url", TORCH_CPU_INDEX],
        [*pip, "otlens @ git+https://github.com/someone/otlens-fork@teach", "myst-nb"],
        [*pip, "--no-deps", "model-a==1.0", "model-b==2.0"],
    ]


def test_install_cell_does_nothing_elsewhere(project, monkeypatch):
    assert _run(install_source(project), colab=False, monkeypatch=monkeypatch) == []


def test_install_cell_pins_the_torch_of_pyproject():
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"torch==2.13.0"' in pyproject and "torch==2.13.0" in install_source(REPO)


def test_install_cell_is_hidden_from_the_page(project):
    cell = install_cell(project)
    assert cell.cell_type == "code" and cell.metadata["tags"] == ["remove-cell", INSTALL_TAG]
    assert cell.outputs == [] and cell.execution_count is None


def test_no_repository_no_cell(tmp_path):
    assert install_cell(tmp_path) is None  # no _config.yml
    (tmp_path / "_config.yml").write_text("title: t\n")
    assert install_cell(tmp_path) is None
    (tmp_path / "_config.yml").write_text("repository: {branch: main}\n")
    with pytest.raises(ValueError, match="`repository` in .*_config.yml must have a `url`"):
        install_cell(tmp_path)


def test_environment_yml_installs_a_cpu_torch():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert f"--extra-index-url {TORCH_CPU_INDEX}" in pip
    assert "torch==2.13.0" in pip
    assert pip.index("torch==2.13.0") < pip.index("-e .[book,dev]")  # before the package pulls torch
