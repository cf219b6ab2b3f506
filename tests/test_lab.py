"""Tests for otlens.lab: JupyterLab opens the chapters (jupytext MyST) as notebooks."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from otlens.lab import DEFAULT_VIEWERS, lab_command, main, write_lab_settings

REPO = Path(__file__).parent.parent
SETTINGS = Path("share") / "jupyter" / "lab" / "settings" / "overrides.json"
PLUGIN = "@jupyterlab/docmanager-extension:plugin"


def test_settings_make_markdown_open_as_jupytext_notebooks(tmp_path):
    path = write_lab_settings(tmp_path)
    assert path == tmp_path / SETTINGS
    assert json.loads(path.read_text()) == {PLUGIN: {"defaultViewers": {
        "markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}}}


def test_settings_keep_the_other_overrides(tmp_path):
    path = tmp_path / SETTINGS
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
                                PLUGIN: {"autosave": False, "defaultViewers": {"python": "Editor"}}}))
    settings = json.loads(write_lab_settings(tmp_path).read_text())
    assert settings["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    assert settings[PLUGIN] == {"autosave": False, "defaultViewers": {"python": "Editor", **DEFAULT_VIEWERS}}


def test_settings_refuse_to_replace_a_broken_file(tmp_path):
    path = tmp_path / SETTINGS
    path.parent.mkdir(parents=True)
    path.write_text("{oops")
    with pytest.raises(ValueError, match="overrides.json is not valid JSON"):
        write_lab_settings(tmp_path)
    assert path.read_text() == "{oops"


def test_settings_go_where_this_environments_jupyterlab_reads_them():
    commands = pytest.importorskip("jupyterlab.commands", reason="JupyterLab is not installed")
    import sys

    default = Path(sys.prefix) / SETTINGS
    if os.environ.get("JUPYTERLAB_DIR"):
        pytest.skip("JUPYTERLAB_DIR moves JupyterLab's application folder")
    assert Path(commands.get_app_dir()) / "settings" / "overrides.json" == default


def test_lab_command_serves_the_project_and_opens_the_chapters(tmp_path):
    command = lab_command(tmp_path, ["--no-browser"])
    assert command[1:3] == ["-m", "jupyterlab"] and command[-1] == "--no-browser"
    assert f"--ServerApp.root_dir={tmp_path.resolve()}" in command
    assert "--LabApp.default_url=/lab/tree/notebooks" in command


def test_main_without_jupyterlab_is_one_error_line(monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_lab(name, *args, **kwargs):
        if name == "jupyterlab":
            raise ImportError("No module named 'jupyterlab'", name="jupyterlab")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_lab)
    assert main(["--settings-only"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("otlens lab: error: jupyterlab is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_headless_lab_opens_a_chapter_as_a_notebook(tmp_path):
    """``make lab``'s server: the contents API returns chapter 1's MyST source as a notebook."""
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed (the book extra)")
    pytest.importorskip("jupytext")
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(REPO / "notebooks" / "01_ot_across_depth.md", root / "notebooks")
    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_DATA_DIR": str(home / "data"), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    port, token = _free_port(), "otlens-test"
    settings = write_lab_settings(tmp_path / "prefix").parent  # as make lab writes them into the venv
    command = lab_command(root, ["--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
                                 f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0",
                                 f"--LabApp.app_settings_dir={settings}"])
    server = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                _get(f"{base}/api/status", token)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start: {server.stderr.read().decode()[-2000:]}")
                time.sleep(0.5)
        model = _get(f"{base}/api/contents/notebooks/01_ot_across_depth.md?type=notebook&content=1", token)
        assert model["type"] == "notebook"
        cells = model["content"]["cells"]
        parameters = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
        assert len(parameters) == 1 and "heatmap_model = None" in parameters[0]["source"]
        assert sum(c["cell_type"] == "code" for c in cells) > 10
        # and a double click opens it with jupytext's notebook viewer
        plugin = _get(f"{base}/lab/api/settings/{PLUGIN}", token)
        # (an environment's overrides become the defaults of the schema, under the user's settings)
        assert plugin["schema"]["properties"]["defaultViewers"]["default"] == DEFAULT_VIEWERS
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
