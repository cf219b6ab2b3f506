"""Two editions of one book: the quick edition executed here, the paper edition built from recorded runs.

``make book`` executes every chapter on the quick profile (the students' edition). The paper
edition is never executed by the build: each chapter is run once at the study's scale (``otlens
run ... --profile paper``, on a GPU machine or over several CPU sessions), then recorded with
:func:`record_chapter` into ``paper/<stem>/`` of the repository:

- ``chapter.ipynb``: the executed chapter (stderr dropped, as in the quick edition),
- ``results.csv.gz``: its results table, gzipped (per-verse tables at paper scale are tens of MB
  as text; pandas reads it as it is),
- ``run.json``: where it comes from: the run record that :func:`otlens.runner.run_notebook`
  writes beside every executed chapter (the otlens commit, the profile and the sha256 of the
  parameters it injected, the device, the library versions, the date and the wall time).

:func:`build_edition` stages the book with the recorded chapters in ``_build/editions/<edition>/``
and builds it there with jupyter-book. Every chapter page of either edition starts with a
provenance note (:func:`provenance_markdown`) written from its run record. A chapter the paper
edition has no recording of is taken from the quick edition and its note says so in words: the
edition never shrinks silently.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

import nbformat

from ._io import atomic_write
from .runner import EXECUTED_DIR, RUN_RECORD_SUFFIX, notebooks_in_toc, project_root, read_run_record, run_jupyter_book

__all__ = [
    "EDITIONS", "RECORDED_DIR", "RECORD_FIELDS", "SIZE_BUDGET_MB", "read_record", "provenance_markdown",
    "add_provenance", "record_chapter", "recorded_chapters", "recorded_results", "recorded_size_mb", "paper_differences",
    "differences_text", "reduction_note", "stage_edition", "build_edition",
]

#: The editions: ``quick`` (executed by ``make book``) and ``paper`` (built from ``paper/``).
EDITIONS = ("quick", "paper")
#: Where recorded paper-scale runs live, relative to the project root.
RECORDED_DIR = "paper"
#: What a run record must hold to be a chapter's provenance.
RECORD_FIELDS = ("notebook", "profile", "parameters_sha256", "parameters", "commit", "dirty", "device", "cpu_count",
                 "versions", "finished", "wall_time_s")
#: The results table's name in a recorded chapter's folder.
RESULTS_FILE = "results.csv.gz"
#: The recorded runs' size budget in MB (figures at screen resolution), checked by the tests.
SIZE_BUDGET_MB = 25.0
_PROVENANCE_TAG = "otlens-provenance"


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """A run record (``run.json``) checked for every field of :data:`RECORD_FIELDS`.

    Parameters
    ----------
    path : path
        The record, or the executed notebook it sits beside.

    Returns
    -------
    dict
        The record's fields, every one of :data:`RECORD_FIELDS` among them.

    Raises
    ------
    FileNotFoundError
        If there is no record.
    ValueError
        If it is not JSON or lacks a field (e.g. written before records held provenance).
    """
    path = Path(path)
    if path.suffix == ".ipynb":
        record = read_run_record(path)
        where = path.with_name(path.stem + RUN_RECORD_SUFFIX)
    else:
        where = path
        try:
            record = json.loads(path.read_text())
        except ValueError as exc:
            raise ValueError(f"{path} is not a JSON run record: {exc}") from None
    if record is None:
        raise FileNotFoundError(f"{where} does not exist; run the chapter with `otlens run` first")
    missing = [f for f in RECORD_FIELDS if f not in record]
    if missing:
        raise ValueError(f"{where} lacks {missing} (rerun the chapter to record its provenance)")
    return record


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m} min" if h else (f"{m} min {s} s" if m else f"{s} s")


def provenance_markdown(record: Mapping[str, Any], *, edition: str, note: str | None = None) -> str:
    """The note at the top of a chapter page: which edition and profile produced it, where and when.

    Parameters
    ----------
    record : mapping
        The chapter's run record (:func:`read_record`).
    edition : str
        The edition the page belongs to.
    note : str, optional
        A paragraph added to the note.

    Returns
    -------
    str
        A MyST admonition.
    """
    manifest = record
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
        f"in {_duration(manifest['wall_time_s'])}, on {manifest['finished'][:10]}, by otlens at commit `{commit}`"
        + (f" ({libs})." if libs else "."),
    ]
    overrides = manifest.get("overrides") or []
    if overrides:
        given = manifest.get("parameters", {})
        values = ", ".join(f"`{k} = {given.get(k, '?')}`" for k in overrides)
        lines += ["", f"Set on the command line over the profile's values (`-p`): {values}."]
    if note:
        lines += ["", note]
    lines.append(":::")
    return "\n".join(lines)


def add_provenance(nb, record: Mapping[str, Any], *, edition: str, note: str | None = None):
    """Insert (or replace) the provenance note after the chapter's title cell.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The executed chapter.
    record : mapping
        Its run record.
    edition : str
        The edition the page belongs to.
    note : str, optional
        A paragraph added to the note.

    Returns
    -------
    nbformat.NotebookNode
        ``nb``, changed in place.
    """
    manifest = record
    nb.cells = [c for c in nb.cells if _PROVENANCE_TAG not in c.get("metadata", {}).get("tags", [])]
    cell = nbformat.v4.new_markdown_cell(provenance_markdown(manifest, edition=edition, note=note))
    cell.metadata["tags"] = [_PROVENANCE_TAG]
    cell["id"] = f"{manifest['notebook'][:40]}-provenance"
    first_md = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), -1)
    nb.cells.insert(first_md + 1, cell)
    return nb


def record_chapter(executed: str | os.PathLike, results: str | os.PathLike, *,
                   root: str | os.PathLike) -> Path:
    """Copy an executed chapter, its results table and its run record into ``paper/<stem>/``.

    Parameters
    ----------
    executed : path
        The executed chapter (``book/executed/<stem>.ipynb``), with its run record beside it
        (``<stem>.run.json``, written by :func:`otlens.runner.run_notebook`).
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
        If the chapter, its run record or its results table is missing.
    ValueError
        If the record says the chapter ran with the quick profile (that is the quick edition).
    """
    executed, results = Path(executed), Path(results)
    for path in (executed, results):
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; run the chapter first (`otlens run ... --profile paper`)")
    manifest = read_record(executed)
    if manifest["profile"] == "quick":
        raise ValueError(f"{executed.name} ran with the quick profile: record a paper-scale run")
    dest = Path(root) / RECORDED_DIR / executed.stem
    dest.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(executed, as_version=4)
    nb.cells = [c for c in nb.cells if _PROVENANCE_TAG not in c.get("metadata", {}).get("tags", [])]
    atomic_write(dest / "chapter.ipynb", lambda tmp: nbformat.write(nb, str(tmp)))
    atomic_write(dest / RESULTS_FILE, lambda tmp: _gzip(results, tmp))
    (dest / "results.csv").unlink(missing_ok=True)  # an older, uncompressed recording
    atomic_write(dest / "run.json", lambda tmp: tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n"))
    return dest


def _gzip(src: Path, dest: Path) -> None:
    """``src`` gzipped into ``dest``, with no time stamp in the header (same table, same bytes)."""
    with open(src, "rb") as fin, open(dest, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                                        filename="") as fout:
        shutil.copyfileobj(fin, fout)


def recorded_results(root: str | os.PathLike, stem: str) -> Path | None:
    """The recorded results table of chapter ``stem`` (``results.csv.gz``, or an older ``results.csv``).

    Parameters
    ----------
    root : path
        The project root.
    stem : str
        The chapter's notebook stem.

    Returns
    -------
    Path or None
        The file (read it with :func:`pandas.read_csv`), or None where nothing is recorded.
    """
    folder = Path(root) / RECORDED_DIR / stem
    for name in (RESULTS_FILE, "results.csv"):
        if (folder / name).is_file():
            return folder / name
    return None


def recorded_chapters(root: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """``{stem: run record}`` of every chapter recorded under ``<root>/paper/``.

    Parameters
    ----------
    root : path
        The project root.

    Returns
    -------
    dict
        Chapter stem (its folder's name) -> its :func:`read_record`, in stem order; empty when
        nothing is recorded.
    """
    base = Path(root) / RECORDED_DIR
    return {p.parent.name: read_record(p) for p in sorted(base.glob("*/run.json"))}


def paper_differences(record: Mapping[str, Any], root: str | os.PathLike) -> dict[str, tuple[Any, Any]]:
    """``{parameter: (value run, paper profile's value)}`` where a recorded run left the paper profile.

    A run on a reduced profile (``paper-cpu``) or with ``-p`` overrides differs from the study's
    scale; this names how, from the record's injected parameters and ``params/paper.yml``.

    Parameters
    ----------
    record : mapping
        The chapter's run record (:func:`read_record`).
    root : path
        The project root (its ``notebooks/<stem>.md`` and ``params/paper.yml`` are read).

    Returns
    -------
    dict
        Empty for a run at the paper profile's values (or a chapter with no paper section).
    """
    from .runner import load_params

    notebook = Path(root) / "notebooks" / f"{record['notebook']}.md"
    paper = load_params(notebook, profile="paper")
    given = record.get("parameters", {})
    return {k: (given[k], paper[k]) for k in given if k in paper and given[k] != paper[k]}


def differences_text(diff: Mapping[str, tuple[Any, Any]]) -> str:
    """The values of :func:`paper_differences` as text, each beside the paper profile's.

    Parameters
    ----------
    diff : mapping
        ``{parameter: (value run, paper value)}``; a paper value of None is left out.

    Returns
    -------
    str
        ``"`n_texts = 10000` (paper: `36000`), …"``.
    """
    return ", ".join(f"`{k} = {ours}`" + (f" (paper: `{paper}`)" if paper is not None else "")
                     for k, (ours, paper) in diff.items())


def reduction_note(record: Mapping[str, Any], root: str | os.PathLike) -> str | None:
    """A sentence naming every value a recorded run changed from the paper profile, or None.

    Parameters
    ----------
    record : mapping
        The chapter's run record.
    root : path
        The project root.

    Returns
    -------
    str or None
        ``"**Reduced from the paper profile** to finish on this hardware: `n_texts = 10000` (paper: 36000), …"``.
    """
    diff = paper_differences(record, root)
    if not diff:
        return None
    values = differences_text(diff)
    return (f"**Reduced from the paper profile** to finish on this hardware ({record['device']}, "
            f"{record.get('cpu_count')} cores): {values}. Every other parameter is the paper profile's.")


def recorded_size_mb(root: str | os.PathLike) -> float:
    """Size of the recorded runs (``paper/``) in MB.

    Parameters
    ----------
    root : path
        The project root.

    Returns
    -------
    float
        The total size of the files under ``<root>/paper/``, in MB (10⁶ bytes); 0 when the
        folder does not exist.
    """
    base = Path(root) / RECORDED_DIR
    return sum(p.stat().st_size for p in base.rglob("*") if p.is_file()) / 1e6 if base.is_dir() else 0.0


_STAGED = ("_config.yml", "_toc.yml", "book", "notebooks", "params")


def stage_edition(edition: str, root: str | os.PathLike | None = None, *, out: str | os.PathLike | None = None) -> Path:
    """Lay out an edition's book sources in ``out`` (default ``<root>/_build/editions/<edition>``).

    The quick edition takes the chapters executed in ``book/executed/``; the paper edition the
    recorded ones of ``paper/``, and, for a chapter not recorded, the quick one with a note that
    says so. Every chapter gets its provenance note from its manifest. Nothing is executed.

    Parameters
    ----------
    edition : str
        ``"quick"`` or ``"paper"``.
    root : path, optional
        The project root (found from the working directory by default).
    out : path, optional
        Where to stage it.

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
            if (root / "params" / "paper.yml").is_file():  # the paper profile to compare with
                note = reduction_note(manifest, root)
        else:
            nb_path = root / EXECUTED_DIR / f"{stem}.ipynb"
            if not nb_path.is_file():
                raise FileNotFoundError(f"{stem}: no recorded run in {RECORDED_DIR}/{stem}/ and no executed chapter "
                                        f"{EXECUTED_DIR}/{stem}.ipynb; run `make book` or record the chapter")
            try:
                manifest = read_record(nb_path)
            except (FileNotFoundError, ValueError):  # run before records held provenance: no note
                manifest = None
            if edition == "paper":
                note = ("**No paper-scale run of this chapter is recorded yet:** this page is the quick "
                        "edition's, at the quick profile's scale.")
        nb = nbformat.read(nb_path, as_version=4)
        if manifest is not None:
            shown = edition if stem in recorded or edition == "quick" else "quick"
            add_provenance(nb, manifest, edition=shown, note=note)
        nbformat.write(nb, str(executed / f"{stem}.ipynb"))
        record = nb_path.with_name(nb_path.stem + RUN_RECORD_SUFFIX) if stem not in recorded else nb_path.with_name("run.json")
        if record.is_file():  # the {chapter-time} role reads it beside the page
            shutil.copyfile(record, executed / f"{stem}{RUN_RECORD_SUFFIX}")
    return out


def build_edition(edition: str, root: str | os.PathLike | None = None, *, strict: bool = True) -> Path:
    """Stage an edition (:func:`stage_edition`) and build its HTML; returns its ``index.html``.

    The paper edition is ``_build/editions/paper/_build/html``; nothing is executed.

    Parameters
    ----------
    edition : str
        ``"quick"`` or ``"paper"``.
    root : path, optional
        The project root (found from the working directory by default).
    strict : bool, default True
        Fail on any Sphinx warning (:func:`otlens.runner.run_jupyter_book`).

    Returns
    -------
    pathlib.Path
        The built edition's ``index.html``.

    Raises
    ------
    ValueError
        For an unknown edition.
    FileNotFoundError
        If a chapter has neither a recording nor an executed quick run.
    """
    staged = stage_edition(edition, root)
    run_jupyter_book(staged, builder="html", strict=strict)
    return staged / "_build" / "html" / "index.html"
