"""Parameter sweeps: one chapter over a grid of parameters, each grid point a Dask task.

    otlens sweep notebooks/01_ot_across_depth.md --grid seed=0,1,2 --grid 'models=[[minilm-l6],[mpnet-base]]'
    otlens sweep sweeps/ch1.yml --scheduler tcp://10.0.0.5:8786

A sweep is a chapter, a profile, fixed overrides and a *grid*: ``{key: [values]}``, combined as
the Cartesian product (default) or zipped (``mode="zip"``: the i-th values of every key
together). Every combination is a *point*; every key is checked against the chapter's
``parameters`` cell before anything runs (:func:`otlens.runner.load_params`).

Each point is one papermill run of the chapter (:func:`otlens.runner.run_notebook`) submitted to
a Dask cluster (:func:`otlens.cluster.dask_client`: a local cluster of single-threaded workers,
or an existing scheduler), in its own content-addressed folder::

    results/sweeps/<sweep>/
        sweep.json                 the sweep: notebook, profile, grid, mode, its points and their status
        <table>.csv                every point's rows of results/<table>.csv, once, with the grid keys
        <key>/                     one point; <key> hashes the chapter's name and resolved parameters
            manifest.json          parameters, status (running / done / failed), wall time, worker, error
            <stem>.ipynb           the executed chapter (<stem>.failed.ipynb when a cell failed)
            <table>.csv            the tables the chapter wrote (OTLENS_RESULTS points here)

Rerunning a sweep skips the points whose manifest says ``done`` and runs the others again; a
changed parameter makes a new key, hence a new point. A worker that dies running a point (killed,
out of memory) has the point rescheduled by Dask (``distributed.scheduler.allowed-failures``); a
notebook kernel that dies raises :class:`KernelDied` in the task, which Dask retries
(``retries``); past either limit the point is recorded as failed with its error and the others
go on. A cell that raises is the notebook's own error, not the machine's: the point is recorded
as failed at once, with the notebook, the cell and the exception. A task that finds its point
already ``done`` returns the manifest without running it, so no point runs twice.

:func:`sweep_reproduction_table` (also ``otlens.reproduction_table(sweep_path)``) gives every
claim's verdict per point and how many points it holds in.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
import yaml

from ._io import atomic_write
from .runner import NotebookError, ParameterError, load_params, parse_value, project_root

__all__ = [
    "KernelDied",
    "MODES",
    "SweepResult",
    "SweepSpec",
    "grid_points",
    "load_sweep",
    "merge_tables",
    "parse_grid",
    "point_key",
    "read_sweep_file",
    "run_sweep",
    "sweep_reproduction",
    "sweep_reproduction_table",
]

MODES = ("product", "zip")
SWEEP_FILE = "sweep.json"  #: the sweep's description at the root of its folder
MANIFEST = "manifest.json"  #: one point's record, in its folder
SWEEPS_DIR = "sweeps"  #: sweeps live in <results>/sweeps/<name>
DEFAULT_RETRIES = 2
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_FILE_KEYS = ("notebook", "name", "profile", "mode", "parameters", "grid", "retries")
_RUN_LOCK = threading.Lock()  # a worker with several threads runs its points one at a time (os.environ)


class KernelDied(RuntimeError):
    """The notebook's kernel died during a point (killed, out of memory): Dask retries the task."""


# ------------------------------------------------------------------------------------ the grid


def parse_grid(items: Sequence[str]) -> dict[str, list]:
    """``["seed=0,1,2", "models=[[a], [b]]"]`` → ``{"seed": [0, 1, 2], "models": [["a"], ["b"]]}``.

    ``VALUES`` is a YAML list (``[0, 1]``, ``[[a], [b]]``) or comma-separated YAML scalars
    (``0,1,2``; ``1e-3,1e-2``); a single value makes a one-point axis.

    Parameters
    ----------
    items : sequence of str
        ``KEY=VALUES`` items (the command line's ``--grid``).

    Returns
    -------
    dict of str to list
        Key -> values.

    Raises
    ------
    ParameterError
        If an item is not ``KEY=VALUES``, a key repeats, or the values are empty.
    """
    grid: dict[str, list] = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key.isidentifier() or not text:
            raise ParameterError(f"--grid expects KEY=VALUES (e.g. seed=0,1,2 or 'models=[[a],[b]]'); got {item!r}.")
        if key in grid:
            raise ParameterError(f"--grid gives {key!r} twice.")
        if text.startswith("["):
            values = parse_value(text)
            if not isinstance(values, list):
                raise ParameterError(f"--grid {key}: {text!r} is not a YAML list.")
        else:
            values = [parse_value(v.strip()) for v in text.split(",")]
        grid[key] = _check_values(key, values)
    return grid


def _check_values(key: str, values: Any) -> list:
    if not isinstance(values, list) or not values:
        raise ParameterError(f"Grid key {key!r} must have a non-empty list of values; got {values!r}.")
    return values


def grid_points(grid: Mapping[str, Sequence], mode: str = "product") -> list[dict[str, Any]]:
    """The grid's points, in order.

    ``mode="product"`` gives every combination (the last key varies fastest); ``"zip"`` pairs
    the i-th values of every key, which then need the same number of values.

    Parameters
    ----------
    grid : mapping of str to sequence
        Key -> values.
    mode : {"product", "zip"}
        How the values combine.

    Returns
    -------
    list of dict
        ``[{key: value}, ...]``.
    """
    if mode not in MODES:
        raise ParameterError(f"Sweep mode must be one of {MODES}; got {mode!r}.")
    if not grid:
        raise ParameterError("The grid is empty: give at least one --grid KEY=VALUES.")
    keys = list(grid)
    lists = [_check_values(k, list(grid[k]) if isinstance(grid[k], (list, tuple)) else grid[k]) for k in keys]
    if mode == "zip":
        lengths = {k: len(v) for k, v in zip(keys, lists)}
        if len(set(lengths.values())) != 1:
            raise ParameterError(f"mode 'zip' needs the same number of values for every key; got {lengths}.")
        combos = zip(*lists)
    else:
        combos = itertools.product(*lists)
    return [dict(zip(keys, combo)) for combo in combos]


def point_key(notebook: str | os.PathLike, parameters: Mapping[str, Any]) -> str:
    """The point's folder name: 12 hex digits of SHA-256 over the chapter's name and resolved parameters.

    Two runs of the same chapter with the same parameters (profile values included) share a key;
    any changed value gives another. The chapter's source text is not hashed (it is recorded in
    the manifest), so editing prose does not invalidate finished points.

    Parameters
    ----------
    notebook : str or os.PathLike
        The chapter.
    parameters : mapping of str to Any
        The point's resolved parameters.

    Returns
    -------
    str
        The key.
    """
    payload = json.dumps({"notebook": Path(notebook).stem, "parameters": dict(parameters)},
                         sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _label(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_text(v)}" for k, v in values.items())


def _text(value: Any) -> Any:
    """A grid value as a table cell: scalars as they are, lists and mappings as compact JSON."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return value


# ------------------------------------------------------------------------------------ the spec


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: the chapter, its points (resolved parameters and keys) and where they go.

    Parameters
    ----------
    notebook : pathlib.Path
        The chapter's source.
    name : str
        The sweep's name (its folder under ``results/sweeps``).
    grid : dict
        Grid key -> values.
    mode : {"product", "zip"}
        How the grid's values combine (see :func:`grid_points`).
    profile : str
        The parameter profile every point starts from.
    """

    notebook: Path
    name: str
    grid: dict
    mode: str
    profile: str
    parameters: dict  #: fixed overrides applied to every point
    folder: Path  #: results/sweeps/<name>
    points: tuple  #: ({"key", "values", "parameters"}, ...) in grid order

    @property
    def keys(self) -> list[str]:
        """The grid's keys, in order."""
        return list(self.grid)


def read_sweep_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML sweep file.

    It holds ``notebook``, ``grid`` and optional ``name``, ``profile``, ``mode``, ``parameters``,
    ``retries``. ``notebook`` is relative to the current folder, else to the file's.

    Parameters
    ----------
    path : str or os.PathLike
        The YAML file.

    Returns
    -------
    dict of str to Any
        The sweep's settings (``notebook`` resolved to a path).

    Raises
    ------
    ParameterError
        If the file is not a mapping, has unknown keys or no grid.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Sweep file not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ParameterError(f"{path} must be a mapping with `notebook` and `grid`; got {type(data).__name__}.")
    unknown = sorted(set(data) - set(_FILE_KEYS))
    if unknown:
        raise ParameterError(f"Unknown key(s) {unknown} in {path}; valid keys: {', '.join(_FILE_KEYS)}.")
    if not isinstance(data.get("grid"), dict) or not data["grid"]:
        raise ParameterError(f"{path} needs a `grid` mapping each parameter to a list of values.")
    if data.get("parameters") is not None and not isinstance(data["parameters"], dict):
        raise ParameterError(f"`parameters` in {path} must be a mapping; got {data['parameters']!r}.")
    out = dict(data)
    out.setdefault("name", path.stem)
    if out.get("notebook"):
        nb = Path(out["notebook"])
        if not nb.is_absolute() and not nb.is_file() and (path.parent / nb).is_file():
            out["notebook"] = path.parent / nb
    return out


def plan_sweep(notebook: str | os.PathLike, grid: Mapping[str, Sequence], *, mode: str = "product",
               profile: str | os.PathLike = "quick", parameters: Mapping[str, Any] | None = None,
               name: str | None = None, results: str | os.PathLike | None = None) -> SweepSpec:
    """Validate a sweep and resolve its points, without running anything.

    Raises
    ------
    ParameterError
        If a grid key or fixed parameter is not a parameter of the chapter (the message lists
        the valid ones), a key is both fixed and swept, two points resolve to the same
        parameters, or the name is not a folder name.
    FileNotFoundError
        If the chapter or the profile does not exist.
    """
    notebook = Path(notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"Notebook not found: {notebook}")
    notebook = notebook.resolve()
    fixed = dict(parameters or {})
    grid = {str(k): list(v) if isinstance(v, (list, tuple)) else v for k, v in dict(grid).items()}
    both = sorted(set(fixed) & set(grid))
    if both:
        raise ParameterError(f"{both} are both fixed (-p) and swept (--grid); give each key once.")
    combos = grid_points(grid, mode)
    # unknown keys fail here, listing the chapter's parameters, before any cluster starts
    load_params(notebook, profile=profile, overrides={**fixed, **{k: grid[k][0] for k in grid}})
    name = name or notebook.stem
    if not _NAME.fullmatch(name):
        raise ParameterError(f"Sweep name {name!r} must be a folder name (letters, digits, _ . -).")
    root = Path(results) if results else Path(os.environ.get("OTLENS_RESULTS") or project_root(notebook.parent) / "results")
    points, seen = [], {}
    for values in combos:
        resolved = load_params(notebook, profile=profile, overrides={**fixed, **values})
        key = point_key(notebook, resolved)
        if key in seen:
            raise ParameterError(f"Points {_label(seen[key])} and {_label(values)} resolve to the same parameters.")
        seen[key] = values
        points.append({"key": key, "values": values, "parameters": resolved})
    return SweepSpec(notebook=notebook, name=name, grid=grid, mode=mode, profile=str(profile), parameters=fixed,
                     folder=(root / SWEEPS_DIR / name).resolve(), points=tuple(points))


# ------------------------------------------------------------------------------- one point (task)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _write_json(path: Path, data: Mapping) -> Path:
    text = json.dumps(data, indent=2, default=str, sort_keys=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def _is_done(folder: Path, key: str) -> dict | None:
    manifest = _read_json(folder / MANIFEST)
    if manifest and manifest.get("key") == key and manifest.get("status") == "done" \
            and (folder / manifest.get("executed", "")).is_file():
        return manifest
    return None


def _worker_identity() -> dict[str, Any]:
    try:
        from distributed import get_worker

        address = get_worker().address
    except (ImportError, ValueError):  # not on a Dask worker
        address = None
    return {"worker": address, "host": socket.gethostname(), "pid": os.getpid()}


def _run_point(task: Mapping[str, Any]) -> dict[str, Any]:
    """Run one point on a worker and return its manifest (the Dask task).

    A point already ``done`` is returned as it is. A cell error is recorded as ``failed``; a dead
    kernel raises :class:`KernelDied`, so that Dask retries the task.
    """
    from nbclient.exceptions import DeadKernelError

    from .runner import _environ, run_notebook

    folder = Path(task["folder"])
    done = _is_done(folder, task["key"])
    if done is not None:
        return done
    previous = _read_json(folder / MANIFEST) or {}
    attempts = int(previous.get("attempts", 0)) + 1 if previous.get("key") == task["key"] else 1
    source = Path(task["notebook"])
    manifest = {
        "key": task["key"], "sweep": task["sweep"], "notebook": task["notebook_display"], "profile": task["profile"],
        "values": task["values"], "parameters": task["parameters"], "status": "running", "started": _now(),
        "finished": None, "wall_s": None, **_worker_identity(), "attempts": attempts, "error": None,
        "executed": f"{source.stem}.ipynb", "tables": [],
        "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.csv"):  # tables of an earlier, unfinished try: this run writes its own
        stale.unlink()
    _write_json(folder / MANIFEST, manifest)
    t0 = time.perf_counter()
    with _RUN_LOCK, _environ({"OTLENS_RESULTS": str(folder)}):
        try:
            run_notebook(source, profile=task["profile"], parameters=task["parameters"], output_dir=folder,
                         progress=False)
        except NotebookError as exc:
            manifest.update(wall_s=time.perf_counter() - t0, finished=_now(), error=str(exc))
            if exc.ename == "DeadKernelError" or isinstance(exc.__cause__, DeadKernelError):
                _write_json(folder / MANIFEST, {**manifest, "status": "lost"})
                raise KernelDied(f"the kernel died running point {task['key']} ({_label(task['values'])}) "
                                 f"on {manifest['worker'] or manifest['host']}: {exc}") from None
            manifest["status"] = "failed"
            _write_json(folder / MANIFEST, manifest)
            return manifest
    manifest.update(status="done", wall_s=time.perf_counter() - t0, finished=_now(),
                    tables=sorted(p.stem for p in folder.glob("*.csv")))
    _write_json(folder / MANIFEST, manifest)
    return manifest


def _record_failure(task: Mapping[str, Any], exc: BaseException) -> dict[str, Any]:
    """Client side: a point Dask gave up on (its worker died too often, or its kernel did)."""
    folder = Path(task["folder"])
    previous = _read_json(folder / MANIFEST) or {}
    if previous.get("key") != task["key"]:
        previous = {}
    error = f"{type(exc).__name__}: {exc}"
    if type(exc).__name__ == "KilledWorker":
        error += " (the worker running this point died each time it was tried)"
    manifest = {
        "key": task["key"], "sweep": task["sweep"], "notebook": task["notebook_display"], "profile": task["profile"],
        "values": task["values"], "parameters": task["parameters"], "status": "failed",
        "started": previous.get("started"), "finished": _now(), "wall_s": previous.get("wall_s"),
        "worker": previous.get("worker"), "host": previous.get("host"), "pid": previous.get("pid"),
        "attempts": previous.get("attempts", 0), "error": error, "executed": previous.get("executed"), "tables": [],
        "source_sha256": previous.get("source_sha256"),
    }
    _write_json(folder / MANIFEST, manifest)
    return manifest


# ------------------------------------------------------------------------------------ the sweep


@dataclass(frozen=True)
class SweepResult:
    """What :func:`run_sweep` did.

    Attributes
    ----------
    folder : Path
        ``results/sweeps/<name>``.
    points : pandas.DataFrame
        One row per point: ``key``, the grid keys, ``status`` (done / failed), ``ran`` (executed
        by this call, not resumed), ``wall_s``, ``worker``, ``attempts``, ``error``.
    tables : dict
        ``{table name: merged CSV path}``.
    wall_s : float
        Seconds this call took, cluster start included.
    n_workers : int
        Workers of the cluster when the sweep started.
    dashboard : str or None
        The Dask dashboard's address, when the cluster serves one.
    """

    folder: Path
    points: pd.DataFrame
    tables: dict = field(default_factory=dict)
    wall_s: float = 0.0
    n_workers: int = 0
    dashboard: str | None = None

    @property
    def failed(self) -> pd.DataFrame:
        """The rows of :attr:`points` that failed."""
        return self.points[self.points.status != "done"]

    @property
    def ok(self) -> bool:
        """Whether every point finished (no failed point)."""
        return self.failed.empty

    def describe_failures(self) -> str:
        """One line per failed point: key, grid values, error.

        Returns
        -------
        str
            The lines (empty when nothing failed).
        """
        return "\n".join(f"  {r.key} ({_label(r.values)}): {r.error}" for r in self.failed.itertuples())


def _tasks(spec: SweepSpec) -> list[dict[str, Any]]:
    root = project_root(spec.notebook.parent)
    try:
        display = spec.notebook.relative_to(root).as_posix()
    except ValueError:
        display = str(spec.notebook)
    return [{"key": p["key"], "sweep": spec.name, "values": p["values"], "parameters": p["parameters"],
             "notebook": str(spec.notebook), "notebook_display": display, "profile": spec.profile,
             "folder": str(spec.folder / p["key"])} for p in spec.points]


def _write_spec(spec: SweepSpec, manifests: Mapping[str, Mapping] | None = None) -> None:
    manifests = manifests or {}
    points = []
    for p in spec.points:
        m = manifests.get(p["key"], {})
        points.append({"key": p["key"], "values": p["values"], "status": m.get("status", "pending"),
                       "wall_s": m.get("wall_s"), "worker": m.get("worker"), "error": m.get("error")})
    root = project_root(spec.notebook.parent)
    try:
        notebook = spec.notebook.relative_to(root).as_posix()
    except ValueError:
        notebook = str(spec.notebook)
    _write_json(spec.folder / SWEEP_FILE, {"name": spec.name, "notebook": notebook, "profile": spec.profile,
                                            "mode": spec.mode, "grid": spec.grid, "parameters": spec.parameters,
                                            "keys": spec.keys, "points": points})


def run_sweep(notebook: str | os.PathLike, grid: Mapping[str, Sequence], *, mode: str = "product",
              profile: str | os.PathLike = "quick", parameters: Mapping[str, Any] | None = None,
              name: str | None = None, results: str | os.PathLike | None = None,
              scheduler: str | None = None, client: Any = None, n_workers: int | None = None,
              retries: int = DEFAULT_RETRIES, connect_timeout: float | None = None,
              progress: bool = True, dashboard: bool = True) -> SweepResult:
    """Run a chapter over a grid of parameters, one Dask task per point, and merge the tables.

    Parameters
    ----------
    notebook : path
        The chapter, e.g. ``notebooks/01_ot_across_depth.md``.
    grid : mapping
        ``{parameter: [values]}`` (see :func:`parse_grid` for command-line strings).
    mode : {"product", "zip"}
        Every combination, or the i-th values of all keys together.
    profile, parameters :
        The profile and fixed overrides every point starts from (:func:`otlens.runner.load_params`).
    name : str, optional
        The sweep's folder under ``<results>/sweeps/`` (default: the chapter's stem).
    results : path, optional
        The results folder (default ``$OTLENS_RESULTS``, else ``results/`` under the project root).
    scheduler : str, optional
        A Dask scheduler address (default ``$DASK_SCHEDULER_ADDRESS``); without one a local
        cluster of ``n_workers`` single-threaded workers (default: one per core) is started.
    n_workers : int, optional
        Workers of the local cluster (default: one per core).
    client : distributed.Client, optional
        Use this client instead (``scheduler`` and ``n_workers`` are then ignored).
    retries : int
        How many more times a point whose kernel or worker died is tried.
    connect_timeout : float, optional
        Seconds to reach ``scheduler`` (default :data:`otlens.cluster.DEFAULT_CONNECT_TIMEOUT`).
    progress : bool
        One tqdm bar over the points (done / running / failed); prints the dashboard's address.
    dashboard : bool
        Local cluster only: serve the Dask dashboard (when ``bokeh`` is installed).

    Returns
    -------
    SweepResult
        The points and their status; failed points do not raise (see :attr:`SweepResult.failed`).

    Raises
    ------
    ParameterError
        On an unknown grid key (listing the chapter's parameters) or a malformed grid, before
        any cluster starts.
    otlens.cluster.ClusterError
        If the scheduler cannot be reached.
    """
    from .cluster import DEFAULT_CONNECT_TIMEOUT, dask_client

    t0 = time.perf_counter()
    retries = int(retries)
    if retries < 0:
        raise ParameterError(f"`retries` must be >= 0; got {retries}")
    spec = plan_sweep(notebook, grid, mode=mode, profile=profile, parameters=parameters, name=name, results=results)
    spec.folder.mkdir(parents=True, exist_ok=True)
    tasks = _tasks(spec)
    manifests: dict[str, dict] = {}
    resumed = set()
    for task in tasks:
        done = _is_done(Path(task["folder"]), task["key"])
        if done is not None:
            manifests[task["key"]] = done
            resumed.add(task["key"])
    _write_spec(spec, manifests)
    todo = [t for t in tasks if t["key"] not in resumed]
    n_workers_seen, link = 0, None
    if todo:
        if client is not None:
            ctx = _nullcontext(client)
        else:
            ctx = dask_client(scheduler, n_workers=n_workers, dashboard=dashboard, allowed_failures=retries,
                              connect_timeout=DEFAULT_CONNECT_TIMEOUT if connect_timeout is None else connect_timeout)
        with ctx as c:
            n_workers_seen, link = _run_tasks(c, spec, todo, manifests, retries=retries, progress=progress,
                                              n_resumed=len(resumed))
    _write_spec(spec, manifests)
    tables = merge_tables(spec.folder)
    rows = []
    for p in spec.points:
        m = manifests[p["key"]]
        rows.append({"key": p["key"], **{k: _text(v) for k, v in p["values"].items()}, "values": p["values"],
                     "status": m["status"], "ran": p["key"] not in resumed, "wall_s": m.get("wall_s"),
                     "worker": m.get("worker"), "attempts": m.get("attempts"), "error": m.get("error")})
    return SweepResult(folder=spec.folder, points=pd.DataFrame(rows), tables=tables,
                       wall_s=time.perf_counter() - t0, n_workers=n_workers_seen, dashboard=link)


class _nullcontext:
    def __init__(self, value):
        self.value = value

    def __enter__(self):
        return self.value

    def __exit__(self, *exc):
        return False


def _run_tasks(client: Any, spec: SweepSpec, todo: list[dict], manifests: dict, *, retries: int,
               progress: bool, n_resumed: int) -> tuple[int, str | None]:
    from distributed import as_completed
    from tqdm.auto import tqdm

    from .cluster import dashboard_link

    n_workers = len(client.scheduler_info().get("workers", {}))
    link = dashboard_link(client)
    if progress:
        where = f"{n_workers} worker{'s' * (n_workers != 1)}"
        tqdm.write(f"sweep {spec.name}: {len(spec.points)} points ({n_resumed} already done), {where}"
                   + (f"; dashboard {link}" if link else ""))
    futures = {client.submit(_run_point, t, key=f"otlens-sweep-{spec.name}-{t['key']}", retries=retries,
                             pure=False): t for t in todo}
    counts = {"done": n_resumed, "failed": 0}
    bar = tqdm(total=len(spec.points), initial=n_resumed, desc=f"sweep {spec.name}", unit="point",
               disable=not progress)
    ours = {f.key for f in futures}

    def postfix(refresh: bool = True):
        try:  # assigned to a worker; a single-threaded worker runs one at a time
            running = sum(min(len(set(keys) & ours), 1) for keys in client.processing().values())
        except Exception:  # the scheduler is busy or gone: not worth failing the bar
            running = 0
        bar.set_postfix(done=counts["done"], running=running, failed=counts["failed"], refresh=refresh)

    postfix()
    try:
        for future in as_completed(futures, loop=client.loop):
            task = futures[future]
            try:
                manifest = future.result()
            except Exception as exc:  # Dask gave up: KilledWorker, KernelDied after the retries
                manifest = _record_failure(task, exc)
            manifests[task["key"]] = manifest
            counts["done" if manifest["status"] == "done" else "failed"] += 1
            ours.discard(future.key)
            postfix(refresh=False)
            bar.update(1)
            _write_spec(spec, manifests)
    finally:
        bar.close()
        for future in futures:
            future.release()
    return n_workers, link


# ------------------------------------------------------------------------------------ reading


def load_sweep(folder: str | os.PathLike) -> tuple[dict, pd.DataFrame]:
    """Read a sweep folder: its description (``sweep.json``) and one row per point from the manifests.

    Parameters
    ----------
    folder : str or os.PathLike
        The sweep's folder.

    Returns
    -------
    description : dict
        The content of ``sweep.json``.
    points : pandas.DataFrame
        Rows with ``key``, one column per grid key (lists as JSON text), ``values`` (the grid
        values as a dict), ``status``, ``wall_s``, ``worker``, ``attempts``, ``error``,
        ``started``, ``finished``, ``folder``.
    """
    folder = Path(folder)
    spec = _read_json(folder / SWEEP_FILE)
    if spec is None:
        raise FileNotFoundError(f"{folder} is not a sweep folder: no {SWEEP_FILE} (run `otlens sweep` first)")
    rows = []
    for p in spec["points"]:
        m = _read_json(folder / p["key"] / MANIFEST) or {}
        if m.get("key") != p["key"]:
            m = {}
        rows.append({"key": p["key"], **{k: _text(p["values"].get(k)) for k in spec["keys"]}, "values": p["values"],
                     "status": m.get("status", "pending"), "wall_s": m.get("wall_s"), "worker": m.get("worker"),
                     "attempts": m.get("attempts"), "error": m.get("error"), "started": m.get("started"),
                     "finished": m.get("finished"), "folder": folder / p["key"]})
    return spec, pd.DataFrame(rows)


def merge_tables(folder: str | os.PathLike) -> dict[str, Path]:
    """Write ``<folder>/<table>.csv`` for every table the finished points wrote.

    Each point's rows appear once, after a ``point`` column (its key) and one column per grid
    key, named after the key, or ``grid_<key>`` when the chapter's table already has a column of
    that name (chapter 1 has ``seed``, the token-sample seed, beside the ``seed`` parameter that
    draws its passages). Only the points of the sweep's current grid are merged.

    Parameters
    ----------
    folder : str or os.PathLike
        The sweep's folder.

    Returns
    -------
    dict of str to pathlib.Path
        ``{table: path}`` of the merged tables.
    """
    folder = Path(folder)
    spec, points = load_sweep(folder)
    done = points[points.status == "done"]
    by_table: dict[str, list[pd.DataFrame]] = {}
    for point in done.itertuples():
        for csv in sorted(Path(point.folder).glob("*.csv")):
            df = pd.read_csv(csv)
            extra = {"point": point.key}
            for k in spec["keys"]:
                extra[f"grid_{k}" if k in df.columns or k == "point" else k] = _text(point.values.get(k))
            front = pd.DataFrame({c: [v] * len(df) for c, v in extra.items()}, index=df.index)
            by_table.setdefault(csv.stem, []).append(pd.concat([front, df], axis=1))
    written = {}
    for table, parts in by_table.items():
        merged = pd.concat(parts, ignore_index=True)
        written[table] = atomic_write(folder / f"{table}.csv", lambda tmp, m=merged: m.to_csv(tmp, index=False))
    return written


# ------------------------------------------------------------------------------ reproduction


def sweep_reproduction(folder: str | os.PathLike, *, benchmarks: str | os.PathLike | None = "auto",
                       claims: tuple | None = None) -> pd.DataFrame:
    """Every claim's verdict at every finished point of a sweep, one row per (point, claim).

    The verdicts are :func:`otlens.reproduction.reproduction_table`'s, computed from each
    point's own tables; only the claims decided by a chapter the sweep ran are kept.

    Parameters
    ----------
    folder : str or os.PathLike
        The sweep's folder (``results/sweeps/<name>``).
    benchmarks : str, os.PathLike, "auto" or None
        The benchmark table, as for :func:`otlens.reproduction.reproduction_table`.
    claims : tuple of ClaimInfo, optional
        The claims to decide (default: every claim).

    Returns
    -------
    pandas.DataFrame
        ``point``, the grid keys, then the reproduction table's columns.
    """
    from . import reproduction

    folder = Path(folder)
    spec, points = load_sweep(folder)
    done = points[points.status == "done"]
    claims = tuple(claims or reproduction.CLAIMS)
    chapters = {Path(spec["notebook"]).stem} | {t for f in done.folder for t in (p.stem for p in Path(f).glob("*.csv"))}
    claims = tuple(c for c in claims if c.chapter in chapters)
    if not claims:
        raise ValueError(f"No claim of the reproduction table is decided by {spec['notebook']}; nothing to tabulate.")
    parts = []
    for point in done.itertuples():
        table = reproduction.reproduction_table(point.folder, benchmarks=benchmarks, claims=claims)
        front = {"point": point.key, **{k: _text(point.values.get(k)) for k in spec["keys"]}}
        parts.append(pd.concat([pd.DataFrame({c: [v] * len(table) for c, v in front.items()}), table], axis=1))
    if not parts:
        raise ValueError(f"No point of the sweep {folder} has finished; nothing to tabulate.")
    return pd.concat(parts, ignore_index=True)


def _breaks(frame: pd.DataFrame, keys: list[str]) -> str:
    """The grid values under which a claim never holds while it holds elsewhere, or the failing points."""
    if frame.holds.all():
        return "—"
    if not frame.holds.any():
        return "every run"
    found = []
    for k in keys:
        for value, g in frame.groupby(k, sort=False):
            if not g.holds.any() and frame[frame[k] != value].holds.any():
                found.append(f"{k}={value}")
    if found:
        return ", ".join(found)
    return "; ".join(_label({k: r[k] for k in keys}) for _, r in frame[~frame.holds].iterrows())


def sweep_reproduction_table(folder: str | os.PathLike, *, benchmarks: str | os.PathLike | None = "auto",
                             claims: tuple | None = None) -> pd.DataFrame:
    """The reproduction table over a sweep: each claim's verdict per point and where it holds.

    A claim *holds* at a point when its verdict there is ``reproduced``. The summary verdict is
    ``reproduced`` when it holds at every finished point, ``data not available here`` when no
    point has the data, ``not reproduced`` when some point's rule says not reproduced, and
    ``inconclusive (underpowered)`` otherwise.

    Parameters
    ----------
    folder : str or os.PathLike
        The sweep's folder (``results/sweeps/<name>``).
    benchmarks : str, os.PathLike, "auto" or None
        The benchmark table, as for :func:`otlens.reproduction.reproduction_table`.
    claims : tuple of ClaimInfo, optional
        The claims to decide (default: every claim).

    Returns
    -------
    pandas.DataFrame
        One row per claim with the reproduction table's columns (``detail`` says "holds in k of
        N runs" and which grid values break it; the per-point rows are in
        :func:`sweep_reproduction`), then ``holds`` (k), ``runs`` (N), ``breaks`` (the grid
        values under which it never holds while holding elsewhere, or the failing points), and
        one column per point (``key=value, ...``) with its verdict. Usable wherever
        :func:`otlens.reproduction.reproduction_table` is.
    """
    from .reproduction import TABLE_COLUMNS
    from .verdicts import INCONCLUSIVE, MISSING, NOT_REPRODUCED, REPRODUCED

    spec, points = load_sweep(folder)
    keys = list(spec["keys"])
    long = sweep_reproduction(folder, benchmarks=benchmarks, claims=claims)
    n_failed = int((points.status != "done").sum())
    labels = {r.key: _label(r.values) for r in points.itertuples()}
    rows = []
    for claim, g in long.groupby("claim", sort=False):
        g = g.assign(holds=g.verdict == REPRODUCED)
        k, n = int(g.holds.sum()), len(g)
        verdicts = g.verdict.value_counts()
        if k == n:
            verdict = REPRODUCED
        elif (g.verdict == MISSING).all():
            verdict = MISSING
        elif (g.verdict == NOT_REPRODUCED).any():
            verdict = NOT_REPRODUCED
        else:
            verdict = INCONCLUSIVE
        breaks = _breaks(g, keys)
        first = g.iloc[0]
        summary = f"holds in {k} of {n} runs (" + ", ".join(f"{int(c)} {v}" for v, c in verdicts.items()) + ")"
        if breaks not in ("—", "every run"):
            summary += f"; does not hold with {breaks}"
        if n_failed:
            summary += f"; {n_failed} run{'s' * (n_failed != 1)} failed"
        row = {c: first[c] for c in TABLE_COLUMNS}
        row.update(effect=float("nan"), ci_low=float("nan"), ci_high=float("nan"), effect_text=summary,
                   detail=summary, n=n, unit="runs", verdict=verdict, holds=k, runs=n, breaks=breaks)
        row.update({labels[r.point]: r.verdict for r in g.itertuples()})
        rows.append(row)
    table = pd.DataFrame(rows)
    return table[TABLE_COLUMNS + [c for c in table.columns if c not in TABLE_COLUMNS]]


def is_sweep(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a sweep's folder (holds ``sweep.json``)."""
    return (Path(folder) / SWEEP_FILE).is_file()
