"""Tests for the ``otlens`` command line: exit codes, messages, parameter parsing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from otlens.cli import main

DATA = Path(__file__).parent / "data"


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / "params").mkdir()
    (tmp_path / "notebooks").mkdir()
    for name in ("tiny", "failing"):
        shutil.copy(DATA / f"{name}.md", tmp_path / "notebooks" / f"{name}.md")
    (tmp_path / "params" / "quick.yml").write_text("defaults: {seed: 0}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_bad_parameter_syntax_is_a_usage_error(project, capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "notebooks/tiny.md", "-p", "n_items"])
    assert info.value.code == 2


def test_unknown_parameter_exits_1_with_message(project, capsys):
    assert main(["run", "notebooks/tiny.md", "-p", "n_texts", "4", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "otlens run: error: Unknown parameter(s) 'n_texts'" in err
    assert "Valid parameters: n_items, label, scale" in err
    assert "Traceback" not in err


def test_missing_notebook_exits_1(project, capsys):
    assert main(["run", "notebooks/nope.md"]) == 1
    assert "Notebook not found: notebooks/nope.md" in capsys.readouterr().err


def test_missing_profile_exits_1(project, capsys):
    assert main(["run", "notebooks/tiny.md", "--profile", "paper"]) == 1
    assert "Profile 'paper' not found" in capsys.readouterr().err


def _one_error_line(err: str, command: str = "run") -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"otlens {command}: error: "), err
    return lines[0]


def test_wrong_type_exits_1_before_running(project, capsys):
    assert main(["run", "notebooks/tiny.md", "-p", "n_items", "many", "--no-progress"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "Parameter 'n_items' (overrides) must be an integer (its default is 3); got 'many' (str)" in line
    assert main(["run", "notebooks/tiny.md", "-p", "label", "[a, b]", "--no-progress"]) == 1
    assert "'label' (overrides) must be a string" in _one_error_line(capsys.readouterr().err)
    assert not (project / "book").exists()  # nothing ran


def test_malformed_profile_exits_1_with_one_line(project, capsys):
    (project / "params" / "quick.yml").write_text("defaults: {seed: 0\n")
    assert main(["run", "notebooks/tiny.md", "--no-progress"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "params/quick.yml is not valid YAML" in line and "line 2, column 1" in line


def test_unreadable_notebook_exits_1_with_one_line(project, capsys):
    (project / "notebooks" / "broken.ipynb").write_text("{not json")
    assert main(["run", "notebooks/broken.ipynb", "--no-progress"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "Cannot read notebook " in line and "notebooks/broken.ipynb: NotJSONError" in line


@pytest.mark.slow
def test_run_parses_values_and_writes_notebook(project, capsys):
    code = main(["run", "notebooks/tiny.md", "-p", "n_items", "4", "-p", "label", "'[a, b]'",
                 "-p", "scale", "1e-1", "--no-progress"])
    assert code == 0
    assert "Wrote book/executed/tiny.ipynb" in capsys.readouterr().out
    nb = nbformat.read(project / "book" / "executed" / "tiny.ipynb", as_version=4)
    assert nb.metadata.papermill.parameters == {"n_items": 4, "label": "[a, b]", "scale": 0.1}


@pytest.mark.slow
def test_run_with_out_folder(project, capsys):
    assert main(["run", "notebooks/tiny.md", "--out", "elsewhere", "--no-progress"]) == 0
    assert (project / "elsewhere" / "tiny.ipynb").is_file()


@pytest.mark.slow
def test_failing_notebook_exits_1_naming_notebook_and_cell(project, capsys):
    assert main(["run", "notebooks/failing.md", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "otlens run: error: notebooks/failing.md, cell 4" in err
    assert "ZeroDivisionError: division by zero" in err
    assert "> ratio = numerator / divisor" in err
    assert "failing.failed.ipynb" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_console_script_runs(project):
    """The installed ``otlens`` entry point (same interpreter) reports errors without a traceback."""
    otlens = Path(sys.executable).parent / "otlens"
    if not otlens.is_file():
        pytest.skip("the otlens console script is not installed next to this interpreter")
    done = subprocess.run([str(otlens), "run", "notebooks/failing.md", "--no-progress"],
                          capture_output=True, text=True, cwd=project)
    assert done.returncode == 1
    assert "cell 4" in done.stderr and "Traceback" not in done.stderr


def test_models_prints_the_registry(capsys):
    models = pytest.importorskip("otlens.models")
    if not hasattr(models, "list_models"):
        pytest.skip("otlens.models.list_models is not there yet")
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "alias" in out and "minilm-l6" in out


def _parameters_cell(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1 and not [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    return cells[0].source


def test_notebook_writes_a_copy_with_the_profile_values(project, capsys):
    shutil.copy(project / "notebooks" / "tiny.md", project / "notebooks" / "07_tiny.md")
    (project / "params" / "quick.yml").write_text("defaults: {label: from-profile}\n07_tiny: {n_items: 2}\n")
    assert main(["notebook", "7", "-p", "scale", "3"]) == 0
    out = project / "notebooks" / "07_tiny.quick.ipynb"
    assert f"Wrote {out.relative_to(project)}" in capsys.readouterr().out
    assert _parameters_cell(out) == (
        'n_items = 2  # how many squares to print\nlabel = "from-profile"\nscale = 3.0')
    # the rest of the chapter is unchanged
    source = nbformat.read(out, as_version=4)
    assert "total = sum(i for i in tqdm(range(200_000)" in source.cells[-2].source
    # an existing copy (perhaps edited) is kept unless --force
    assert main(["notebook", "07_tiny"]) == 1
    assert "07_tiny.quick.ipynb exists" in _one_error_line(capsys.readouterr().err, "notebook")
    assert main(["notebook", "notebooks/07_tiny.md", "--force"]) == 0
    assert "scale = 1.0" in _parameters_cell(out)


def test_notebook_md_copy_and_errors(project, capsys):
    assert main(["notebook", "tiny", "--out", "copy.md", "-p", "n_items", "[1]"]) == 1  # type-checked
    assert "'n_items' (overrides) must be an integer" in _one_error_line(capsys.readouterr().err, "notebook")
    assert main(["notebook", "tiny", "--out", "copy.md", "-p", "n_items", "6"]) == 0
    import jupytext

    nb = jupytext.read(project / "copy.md")
    assert [c.source for c in nb.cells if "parameters" in c.metadata.get("tags", [])] == [
        'n_items = 6  # how many squares to print\nlabel = "squares"\nscale = 1.0']
    assert main(["notebook", "9"]) == 1
    line = _one_error_line(capsys.readouterr().err, "notebook")
    assert "No chapter '9'" in line and "chapters: failing, tiny." in line
