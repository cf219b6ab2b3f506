"""The floors of docs/architecture.md hold: import-linter's contracts in pyproject.toml are kept.

Every module of ``otlens`` sits on one floor, so a new module has to be placed before it is
checked; and a forbidden import (a solver importing a model) does break a contract, so the
check is not vacuous.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("importlinter", reason="import-linter (the dev extra) is not installed")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
PACKAGE = ROOT / "src" / "otlens"


def _lint(config: Path, src: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(src))
    code = ("import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename={str(config)!r}, no_cache=True, no_logo=True))")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _contracts() -> list[dict]:
    return tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]


def test_contracts_are_kept():
    run = _lint(PYPROJECT, ROOT / "src", ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(_contracts())} kept, 0 broken" in run.stdout


def test_no_import_is_ignored_and_every_module_is_on_a_floor():
    contracts = _contracts()
    assert {c["id"] for c in contracts} == {"solvers", "floors", "one-solve"}
    assert not any("ignore_imports" in c for c in contracts)
    (floors,) = [c for c in contracts if c["id"] == "floors"]
    placed = {m.strip() for layer in floors["layers"] for m in layer.replace("|", ":").split(":")}
    modules = {f"otlens.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    modules |= {f"otlens.{p.parent.name}" for p in PACKAGE.glob("*/__init__.py")}  # subpackages: otlens.ot
    assert modules == placed, f"not on a floor: {sorted(modules - placed)}; no such module: {sorted(placed - modules)}"


def test_upward_imports_break_the_contracts(tmp_path):
    """A solver importing a model breaks "solvers"; a measure importing a study breaks "floors"; a study
    calling a solver module (not ``otlens.ot.solve``) or POT breaks "one-solve"."""
    shutil.copytree(PACKAGE, tmp_path / "src" / "otlens", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PYPROJECT, tmp_path / "pyproject.toml")
    for module, line in [("ot/entropic", "from ..models import load_model"), ("entropy", "from .depth import shape_table"),
                         ("depth", "import ot")]:
        path = tmp_path / "src" / "otlens" / f"{module}.py"
        path.write_text(path.read_text() + f"\n\ndef _upward():\n    {line}  # hidden in a function body\n")
    run = _lint(tmp_path / "pyproject.toml", tmp_path / "src", tmp_path)
    assert run.returncode != 0
    assert "Contracts: 0 kept, 3 broken" in run.stdout, run.stdout
    assert "otlens.ot.entropic -> otlens.models" in run.stdout and "otlens.entropy -> otlens.depth" in run.stdout
    assert "otlens.depth -> ot" in run.stdout


@pytest.mark.parametrize("old, new", [("otlens.transport", "otlens.ot"), ("otlens.lowrank", "otlens.ot.lowrank"),
                                      ("otlens.pot", "otlens.ot.pot"), ("otlens.hot_solver", "otlens.ot.hot"),
                                      ("otlens.ot_result", "otlens.ot.result")])
def test_old_module_paths_re_export_the_moved_names_with_a_warning(old, new):
    import importlib
    import sys

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"`{old}` has moved to `{new}`"):
        module = importlib.import_module(old)
    target = importlib.import_module(new)
    assert module.__all__ and all(getattr(module, name) is getattr(target, name) for name in module.__all__)
