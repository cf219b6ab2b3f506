"""Two editions of one book: the quick edition executed here, the paper edition built from recorded runs.

``make book`` executes every chapter on the quick profile (the students' edition). The paper
edition is never executed by the build: each chapter is run once at the study's scale (``otlens
run ... --profile paper``, on a GPU machine or over several CPU sessions), then recorded with
:func:`record_chapter` into ``paper/<stem>/`` of the repository:

- ``chapter.ipynb``: the executed chapter (stderr dropped, as in the quick edition),
- ``results.csv``: its results table,
- ``manifest.json``: where it comes from (:func:`chapter_manifest`: the otlens commit, the
  profile and the sha256 of the parameters it injected, the device, the library versions, the
  date and the wall time).

:func:`build_edition` stages the book with the recorded chapters in ``_build/editions/<edition>/``
and builds it there with jupyter-book. Every chapter page of either edition starts with a
provenance note (:func:`provenance_markdown`) written from its manifest. A chapter the paper
edition has no recording of is taken from the quick edition and its note says so in words: the
edition never shrinks silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import nbformat

from ._io import atomic_write
from .runner import EXECUTED_DIR, notebooks_in_toc, project_root, run_jupyter_book

__all__ = [
    "EDITIONS", "RECORDED_DIR", "MANIFEST_FIELDS", "SIZE_BUDGET_MB", "chapter_manifest", "parameters_digest",
    "read_manifest", "write_manifest", "manifest_path", "provenance_markdown", "add_provenance",
    "record_chapter", "recorded_chapters", "recorded_size_mb", "stage_edition", "build_edition",
]

#: The editions: ``quick`` (executed by ``make book``) and ``paper`` (built from ``paper/``).
EDITIONS = ("quick", "paper")
#: Where recorded paper-scale runs live, relative to the project root.
RECORDED_DIR = "paper"
#: What every manifest holds.
MANIFEST_FIELDS = ("chapter", "edition", "profile", "parameters_sha256", "parameters", "commit", "dirty",
                   "device", "cpu_count", "versions", "date", "wall_s")
#: The recorded runs' size budget in MB (figures at screen resolution), checked by the tests.
SIZE_BUDGET_MB = 25.0
_PROVENANCE_TAG = "otlens-provenance"
_VERSIONED = ("otlens", "torch", "transformers", "numpy", "pot", "pandas")


def parameters_digest(parameters: Mapping[str, Any]) -> str:
    """sha256 of the parameters a chapter ran with, as canonical JSON (sorted keys)."""
    text = json.dumps(dict(parameters), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def _device_text(device: Any) -> str:
    """``"cpu: <processor>"`` or ``"cuda: <GPU name>"`` for the device a chapter ran on."""
    device = str(device or "cpu")
    if device.startswith("cuda"):
        try:
            import torch

            return f"cuda: {torch.cuda.get_device_name(torch.device(device))}"
        except Exception:  # no torch, no CUDA: say what was asked
            return device
    return f"cpu: {platform.processor() or platform.machine()}"


def chapter_manifest(stem: str, *, profile: str | os.PathLike, parameters: Mapping[str, Any], wall_s: float,
                     root: str | os.PathLike, edition: str | None = None) -> dict[str, Any]:
    """Where one executed chapter comes from.

    Parameters
    ----------
    stem : str
        The chapter, e.g. ``"01_ot_across_depth"``.
    profile : str or path
        The profile it ran with (``"quick"``, ``"paper"``, a YAML path).
    parameters : mapping
        The parameters injected into it (the profile with the overrides applied).
    wall_s : float
        Its execution wall time in seconds.
    root : path
        The project root (its git commit is recorded).
    edition : str, optional
        ``"quick"`` or ``"paper"``; default: ``"quick"`` for the quick profile, else ``"paper"``.

    Returns
    -------
    dict
        The fields of :data:`MANIFEST_FIELDS`.
    """
    root = Path(root)
    profile = Path(profile).stem if str(profile).endswith((".yml", ".yaml")) else str(profile)
    commit = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {
        "chapter": stem,
        "edition": edition or ("quick" if profile == "quick" else "paper"),
        "profile": profile,
        "parameters_sha256": parameters_digest(parameters),
        "parameters": json.loads(json.dumps(dict(parameters), default=str)),
        "commit": commit,
        "dirty": bool(status) if status is not None else None,
        "device": _device_text(parameters.get("device")),
        "cpu_count": os.cpu_count(),
        "versions": _versions(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_s": round(float(wall_s), 1),
    }


def manifest_path(executed: str | os.PathLike) -> Path:
    """The manifest beside an executed chapter: ``<stem>.manifest.json``."""
    executed = Path(executed)
    return executed.with_name(f"{executed.stem}.manifest.json")


def write_manifest(executed: str | os.PathLike, manifest: Mapping[str, Any]) -> Path:
    """Write ``manifest`` beside the executed chapter (atomically); returns its path."""
    missing = [f for f in MANIFEST_FIELDS if f not in manifest]
    if missing:
        raise ValueError(f"the manifest lacks {missing}")
    path = manifest_path(executed)
    text = json.dumps(dict(manifest), indent=1, sort_keys=True)
    atomic_write(path, lambda tmp: tmp.write_text(text + "\n"))
    return path


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """A manifest, checked for every field of :data:`MANIFEST_FIELDS`."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path} is not a JSON manifest: {exc}") from None
    missing = [f for f in MANIFEST_FIELDS if f not in manifest]
    if missing:
        raise ValueError(f"{path} lacks {missing}")
    return manifest


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m} min" if h else (f"{m} min {s} s" if m else f"{s} s")


def provenance_markdown(manifest: Mapping[str, Any], *, edition: str, note: str | None = None) -> str:
    """The note at the top of a chapter page: which edition and profile produced it, where and when."""
    commit = (manifest.get("commit") or "unknown")[:10] + (" (with local changes)" if manifest.get("dirty") else "")
    versions = manifest.get("versions", {})
    libs = ", ".join(f"{k} {versions[k]}" for k in ("torch", "transformers", "pot") if k in versions)
    title = f"{edition.capitalize()} edition"
    lines = [
        f":::{{admonition}} {title}: profile `{manifest['profile']}`",
        ":class: note",
        "",
        f"This page was executed with the `{manifest['profile']}` profile (parameters sha256 "
        f"`{manifest['parameters_sha256'][:12]}`) on {manifest['device']} ({manifest.get('cpu_count')} cores) "
        f"in {_duration(manifest['wall_s'])}, on {manifest['date'][:10]}, by otlens at commit `{commit}`"
        + (f" ({libs})." if libs else "."),
    ]
    if note:
        lines += ["", note]
    lines.append(":::")
    return "\n".join(lines)


def add_provenance(nb, manifest: Mapping[str, Any], *, edition: str, note: str | None = None):
    """Insert (or replace) the provenance note after the chapter's title cell; returns ``nb``."""
    nb.cells = [c for c in nb.cells if _PROVENANCE_TAG not in c.get("metadata", {}).get("tags", [])]
    cell = nbformat.v4.new_markdown_cell(provenance_markdown(manifest, edition=edition, note=note))
    cell.metadata["tags"] = [_PROVENANCE_TAG]
    cell["id"] = f"{manifest['chapter'][:40]}-provenance"
    first_md = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), -1)
    nb.cells.insert(first_md + 1, cell)
    return nb


def record_chapter(executed: str | os.PathLike, results: str | os.PathLike, *,
                   root: str | os.PathLike) -> Path:
    """Copy an executed chapter, its results table and its manifest into ``paper/<stem>/``.

    Parameters
    ----------
    executed : path
        The executed chapter (``book/executed/<stem>.ipynb``), with its manifest beside it
        (written by the runner).
    results : path
        Its results table (``results/<stem>.csv``).
    root : path
        The project root.

    Returns
    -------
    Path
        The folder ``<root>/paper/<stem>``.

    Raises
    ------
    FileNotFoundError
        If the chapter, its manifest or its results table is missing.
    ValueError
        If the manifest says the chapter ran with the quick profile (that is the quick edition).
    """
    executed, results = Path(executed), Path(results)
    for path in (executed, manifest_path(executed), results):
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; run the chapter first (`otlens run ... --profile paper`)")
    manifest = read_manifest(manifest_path(executed))
    if manifest["profile"] == "quick":
        raise ValueError(f"{executed.name} ran with the quick profile: record a paper-scale run")
    dest = Path(root) / RECORDED_DIR / executed.stem
    dest.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(executed, as_version=4)
    nb.cells = [c for c in nb.cells if _PROVENANCE_TAG not in c.get("metadata", {}).get("tags", [])]
    atomic_write(dest / "chapter.ipynb", lambda tmp: nbformat.write(nb, str(tmp)))
    atomic_write(dest / "results.csv", lambda tmp: shutil.copyfile(results, tmp))
    atomic_write(dest / "manifest.json",
                 lambda tmp: tmp.write_text(json.dumps({**manifest, "edition": "paper"}, indent=1, sort_keys=True) + "\n"))
    return dest


def recorded_chapters(root: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """``{stem: manifest}`` of every chapter recorded under ``<root>/paper/``."""
    base = Path(root) / RECORDED_DIR
    return {p.parent.name: read_manifest(p) for p in sorted(base.glob("*/manifest.json"))}


def recorded_size_mb(root: str | os.PathLike) -> float:
    """Size of the recorded runs (``paper/``) in MB."""
    base = Path(root) / RECORDED_DIR
    return sum(p.stat().st_size for p in base.rglob("*") if p.is_file()) / 1e6 if base.is_dir() else 0.0


_STAGED = ("_config.yml", "_toc.yml", "book", "notebooks", "params")


def stage_edition(edition: str, root: str | os.PathLike | None = None, *, out: str | os.PathLike | None = None) -> Path:
    """Lay out an edition's book sources in ``out`` (default ``<root>/_build/editions/<edition>``).

    The quick edition takes the chapters executed in ``book/executed/``; the paper edition the
    recorded ones of ``paper/``, and, for a chapter not recorded, the quick one with a note that
    says so. Every chapter gets its provenance note from its manifest. Nothing is executed.

    Returns
    -------
    Path
        The staged project root (build it with :func:`otlens.runner.run_jupyter_book`).

    Raises
    ------
    ValueError
        For an unknown edition.
    FileNotFoundError
        If a chapter has neither a recording nor an executed quick run.
    """
    if edition not in EDITIONS:
        raise ValueError(f"`edition` must be one of {list(EDITIONS)}; got {edition!r}")
    root = Path(root).resolve() if root else project_root()
    out = Path(out) if out else root / "_build" / "editions" / edition
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in _STAGED:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, out / name, ignore=shutil.ignore_patterns("executed", "__pycache__", ".*"))
        elif src.is_file():
            shutil.copy2(src, out / name)
    executed = out / EXECUTED_DIR
    executed.mkdir(parents=True, exist_ok=True)
    recorded = recorded_chapters(root) if edition == "paper" else {}
    for chapter in notebooks_in_toc(root / "_toc.yml"):
        stem = chapter.stem
        note = None
        if stem in recorded:
            nb_path, manifest = root / RECORDED_DIR / stem / "chapter.ipynb", recorded[stem]
        else:
            nb_path = root / EXECUTED_DIR / f"{stem}.ipynb"
            if not nb_path.is_file():
                raise FileNotFoundError(f"{stem}: no recorded run in {RECORDED_DIR}/{stem}/ and no executed chapter "
                                        f"{EXECUTED_DIR}/{stem}.ipynb; run `make book` or record the chapter")
            mpath = manifest_path(nb_path)
            manifest = read_manifest(mpath) if mpath.is_file() else None
            if edition == "paper":
                note = ("**No paper-scale run of this chapter is recorded yet:** this page is the quick "
                        "edition's, at the quick profile's scale.")
        nb = nbformat.read(nb_path, as_version=4)
        if manifest is not None:
            shown = edition if stem in recorded or edition == "quick" else "quick"
            add_provenance(nb, manifest, edition=shown, note=note)
        nbformat.write(nb, str(executed / f"{stem}.ipynb"))
    return out


def build_edition(edition: str, root: str | os.PathLike | None = None, *, strict: bool = True) -> Path:
    """Stage an edition (:func:`stage_edition`) and build its HTML; returns its ``index.html``.

    The paper edition is ``_build/editions/paper/_build/html``; nothing is executed.
    """
    staged = stage_edition(edition, root)
    run_jupyter_book(staged, builder="html", strict=strict)
    return staged / "_build" / "html" / "index.html"
