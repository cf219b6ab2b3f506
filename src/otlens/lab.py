"""JupyterLab on the book's chapters: ``make lab`` (``python -m otlens.lab``).

The chapters are jupytext MyST files (``notebooks/NN_<name>.md``). With jupytext installed beside
JupyterLab (both in the ``book`` extra), its server extension reads and saves them as notebooks;
:func:`write_lab_settings` makes a double click open them as notebooks rather than as text, in
the JupyterLab of this environment only (``<sys.prefix>/share/jupyter/lab/settings/overrides.json``,
JupyterLab's place for an environment's default settings; a user's own settings still win).

:func:`main` writes those settings and starts ``jupyter lab`` in the project root, on the
``notebooks/`` folder, with ``OTLENS_RESULTS`` set to ``<root>/results`` (a kernel starts in the
notebook's folder, where the chapters' relative ``results/`` would land otherwise). Start from a
profile's values with ``otlens notebook NN --profile quick``.

    python -m otlens.lab                    # JupyterLab on http://localhost:8888/lab/tree/notebooks
    python -m otlens.lab --no-browser --port 8899
    python -m otlens.lab --settings-only    # only write the settings (Binder's postBuild)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from otlens._io import atomic_write

__all__ = ["DEFAULT_VIEWERS", "lab_command", "main", "write_lab_settings"]

#: JupyterLab document type → viewer: MyST/Markdown files open as notebooks (jupytext's viewer).
DEFAULT_VIEWERS = {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}
_DOCMANAGER = "@jupyterlab/docmanager-extension:plugin"


def write_lab_settings(prefix: str | os.PathLike | None = None) -> Path:
    """Make Markdown/MyST files open as notebooks in the JupyterLab installed under ``prefix``.

    Merges :data:`DEFAULT_VIEWERS` into ``<prefix>/share/jupyter/lab/settings/overrides.json``,
    keeping any other setting there.

    Parameters
    ----------
    prefix : str or os.PathLike, optional
        The environment's prefix (default ``sys.prefix``, this environment).

    Returns
    -------
    pathlib.Path
        The overrides file.

    Raises
    ------
    ValueError
        If an existing overrides file is not a JSON object (it is left as it was).
    """
    path = Path(prefix or sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    settings = {}
    if path.is_file():
        try:
            settings = json.loads(path.read_text() or "{}")
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc}); fix or remove it") from exc
        if not isinstance(settings, dict):
            raise ValueError(f"{path} must hold a JSON object; got {type(settings).__name__}")
    plugin = settings.setdefault(_DOCMANAGER, {})
    plugin["defaultViewers"] = {**plugin.get("defaultViewers", {}), **DEFAULT_VIEWERS}
    text = json.dumps(settings, indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def lab_command(root: str | os.PathLike, args: Sequence[str] = ()) -> list[str]:
    """``jupyter lab`` run by this interpreter, serving ``root`` and opening its ``notebooks/``.

    As root (a container), ``--allow-root``: Jupyter refuses to start as root otherwise.

    Parameters
    ----------
    root : str or os.PathLike
        The project folder.
    args : sequence of str
        More arguments for ``jupyter lab``.

    Returns
    -------
    list of str
        The command line.
    """
    root_user = hasattr(os, "geteuid") and os.geteuid() == 0
    return [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={Path(root).resolve()}",
            "--LabApp.default_url=/lab/tree/notebooks", *(["--allow-root"] if root_user else []), *args]


def main(argv: Sequence[str] | None = None) -> int:
    """Write the settings, then run JupyterLab in the project root until it exits.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments passed on to ``jupyter lab`` (default: ``sys.argv[1:]``); ``--settings-only``
        writes the settings and returns without starting JupyterLab.

    Returns
    -------
    int
        The exit code (JupyterLab's, or non-zero when it is not installed).
    """
    from otlens.runner import project_root

    args = list(sys.argv[1:] if argv is None else argv)
    settings_only = "--settings-only" in args
    args = [a for a in args if a != "--settings-only"]
    try:
        import jupyterlab  # noqa: F401
        import jupytext  # noqa: F401
    except ImportError as exc:
        print(f"otlens lab: error: {exc.name} is not installed in {sys.prefix}; "
              "install the book extra: pip install -e '.[book]' (or make install)", file=sys.stderr)
        return 1
    try:
        path = write_lab_settings()
    except (OSError, ValueError) as exc:
        print(f"otlens lab: error: {exc}", file=sys.stderr)
        return 1
    print(f"Markdown chapters open as notebooks ({path})", flush=True)
    if settings_only:
        return 0
    root = project_root()
    env = {**os.environ, "OTLENS_RESULTS": os.environ.get("OTLENS_RESULTS") or str(root / "results")}
    try:
        return subprocess.run(lab_command(root, args), cwd=root, env=env).returncode
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
