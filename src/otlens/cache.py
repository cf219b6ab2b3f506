"""The one on-disk cache: content-hashed entries, atomic writes, verified on every read.

An entry of a :class:`Cache` is one payload file ``<folder>/<key><suffix>`` plus its checksum
``<folder>/<key><suffix>.sha256`` (the sha256 and the size of the payload's bytes, as JSON).
Both are written atomically (:func:`otlens._io.atomic_path`): the payload is written to a
temporary, hashed, its checksum published, then the payload renamed into place. A read hashes
the payload and compares it with the checksum before the reader sees a byte; an entry that
fails (flipped byte, truncated, unreadable, or a reader that raises on it) is reported with a
:class:`CorruptCacheWarning` naming the entry, deleted, and treated as a miss, so it is
rebuilt and never returned. A payload without a checksum (an entry written before this cache,
or by a writer killed between the two renames) is a miss: it is rebuilt and overwritten, not
adopted.

Opening a cache (constructing :class:`Cache`) sweeps its folder of the temporaries that a
killed writer left behind (:func:`otlens._io.sweep_temporaries`: writer process dead, or older
than :data:`otlens._io.TEMP_GRACE_S`).

Folders (the converted models) are verified the same way through a manifest of per-file
checksums written when the folder is built: :func:`folder_digests` and :func:`check_folder`.

Keys are built by :func:`make_key` from a dict of everything that changes the stored numbers;
each user documents what its key holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable, TypeVar

from ._io import TEMP_GRACE_S, atomic_path, atomic_write_bytes, sweep_temporaries
from .config import cache_dir

__all__ = ["Cache", "CorruptCacheWarning", "make_key", "file_digest", "folder_digests", "check_folder"]

T = TypeVar("T")
_CHUNK = 1 << 20


class CorruptCacheWarning(UserWarning):
    """A cache entry was unreadable or failed its checksum; it was deleted and recomputed."""


def make_key(fields: dict[str, Any]) -> str:
    """sha256 (hex) of ``fields`` as canonical JSON (sorted keys): the name of a cache entry.

    Parameters
    ----------
    fields : dict
        Everything that changes the entry's numbers (JSON-serialisable).

    Returns
    -------
    str
        The hex digest.
    """
    text = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB chunks.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    str
        The hex digest.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _warn(entry: str, reason: str, stacklevel: int) -> None:
    warnings.warn(f"cache entry {entry} is corrupt or unreadable ({reason}); deleting it and recomputing",
                  CorruptCacheWarning, stacklevel=stacklevel + 1)


class Cache:
    """A folder of verified entries under :func:`otlens.config.cache_dir`.

    Parameters
    ----------
    *parts : str
        The folder, as for :func:`~otlens.config.cache_dir` (e.g. ``"activations"``).
    suffix : str, default ".safetensors"
        File name ending of the payloads.
    grace_s : float, default :data:`otlens._io.TEMP_GRACE_S`
        Temporaries older than this are swept when the cache is opened (those of a dead
        writer on this host at once).
    """

    def __init__(self, *parts: str, suffix: str = ".safetensors", grace_s: float = TEMP_GRACE_S) -> None:
        self.name = "/".join(parts)
        self.folder = cache_dir(*parts)
        self.suffix = suffix
        self.swept = sweep_temporaries(self.folder, grace_s=grace_s)

    def path(self, key: str) -> Path:
        """The payload file of entry ``key``.

        Parameters
        ----------
        key : str
            The entry's key (a hex digest, :func:`make_key`).

        Returns
        -------
        pathlib.Path
            ``<folder>/<key><suffix>`` (it may not exist).
        """
        return self.folder / f"{key}{self.suffix}"

    def _sum_path(self, key: str) -> Path:
        return self.folder / f"{key}{self.suffix}.sha256"

    def entry(self, key: str) -> str:
        """How warnings name the entry: ``<cache>/<key><suffix>``.

        Parameters
        ----------
        key : str
            The entry's key.

        Returns
        -------
        str
            The name.
        """
        return f"{self.name}/{key}{self.suffix}"

    def discard(self, key: str) -> None:
        """Delete entry ``key`` (payload and checksum), if present.

        Parameters
        ----------
        key : str
            The entry's key.
        """
        self.path(key).unlink(missing_ok=True)
        self._sum_path(key).unlink(missing_ok=True)

    def get(self, key: str, reader: Callable[[Path], T], *, stacklevel: int = 1) -> T | None:
        """``reader(path)`` of a verified entry, or None on a miss.

        A corrupt entry (checksum or size mismatch, unreadable checksum, ``reader`` raising) is
        warned about (:class:`CorruptCacheWarning`, naming the entry), deleted, and a miss.

        Parameters
        ----------
        key : str
            The entry's key.
        reader : callable
            Reads the payload file and returns the value.
        stacklevel : int
            Extra stack levels for the warning, so that it points at the caller's caller.

        Returns
        -------
        object or None
            The value, or None on a miss.
        """
        path, sums = self.path(key), self._sum_path(key)
        if not path.exists() or not sums.exists():
            return None  # a miss; a payload without checksum is rebuilt and overwritten
        try:
            expected = json.loads(sums.read_text())
            size = path.stat().st_size
            if size != expected["size"]:
                raise ValueError(f"{size} bytes, {expected['size']} written")
            if file_digest(path) != expected["sha256"]:
                raise ValueError("sha256 of the stored bytes does not match the one written")
            return reader(path)
        except FileNotFoundError:
            return None  # removed meanwhile (another process rebuilding): a miss
        except Exception as exc:  # noqa: BLE001 - any failure means: do not trust the entry
            _warn(self.entry(key), f"{type(exc).__name__}: {exc}", stacklevel + 1)
            self.discard(key)
            return None

    def put(self, key: str, writer: Callable[[Path], None]) -> Path:
        """Write entry ``key`` with ``writer(tmp_path)``, atomically, with its checksum.

        Parameters
        ----------
        key : str
            The entry's key.
        writer : callable
            Writes the payload to the temporary path it is given.

        Returns
        -------
        pathlib.Path
            The entry's payload file.
        """
        path = self.path(key)
        with atomic_path(path) as tmp:
            writer(tmp)
            record = {"sha256": file_digest(tmp), "size": tmp.stat().st_size}
            atomic_write_bytes(self._sum_path(key), json.dumps(record).encode())
        return path

    def fetch(self, key: str, compute: Callable[[], T], writer: Callable[[T, Path], None],
              reader: Callable[[Path], T], *, enabled: bool = True, stacklevel: int = 1) -> T:
        """The verified entry ``key``, or ``compute()`` stored with ``writer(value, tmp_path)``.

        Parameters
        ----------
        key : str
            The entry's key.
        compute : callable
            Computes the value on a miss.
        writer : callable
            ``writer(value, tmp_path)`` writes the value.
        reader : callable
            ``reader(path)`` reads it back.
        enabled : bool
            False computes without reading or writing.
        stacklevel : int
            Extra stack levels for a :class:`CorruptCacheWarning`.

        Returns
        -------
        object
            The cached or computed value.
        """
        if enabled and (hit := self.get(key, reader, stacklevel=stacklevel + 1)) is not None:
            return hit
        value = compute()
        if enabled:
            self.put(key, lambda tmp: writer(value, tmp))
        return value


# --------------------------------------------------------------------------------------------
# Folders (converted models): a manifest of per-file checksums

_verified: dict[tuple, bool] = {}  # (folder, manifest, stat of every file) -> verified in this process
_SETTLED_NS = 3_000_000_000  # files modified more recently than this are not remembered as verified


def folder_digests(folder: str | os.PathLike, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder`` (names in ``skip`` left out).

    Parameters
    ----------
    folder : str or os.PathLike
        The folder.
    skip : tuple of str
        File names to leave out.

    Returns
    -------
    dict of str to str
        Relative path -> hex digest.
    """
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): file_digest(p)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.relative_to(folder).as_posix() not in skip}


def check_folder(folder: str | os.PathLike, digests: dict[str, str]) -> str | None:
    """None when every file of the manifest ``digests`` is in ``folder`` with its checksum, else why not.

    Files are hashed once per process while their size, modification time and inode stay the
    same (a rewrite, even of one byte, changes the modification time); files modified in the
    last few seconds are hashed every time (a rewrite within the file system's clock tick would
    keep the modification time).

    Parameters
    ----------
    folder : str or os.PathLike
        The folder.
    digests : dict of str to str
        The manifest: relative path -> hex digest (:func:`folder_digests`).

    Returns
    -------
    str or None
        None when the folder matches, else the first mismatch in words.
    """
    folder = Path(folder)
    try:
        stats = tuple((name, *_stat(folder / name)) for name in sorted(digests))
    except FileNotFoundError as exc:
        return f"missing file {Path(exc.filename).name if exc.filename else exc}"
    memo = (str(folder), tuple(sorted(digests.items())), stats)
    if _verified.get(memo):
        return None
    for name in sorted(digests):
        if file_digest(folder / name) != digests[name]:
            return f"sha256 of {name} does not match the one written at conversion"
    if all(time.time_ns() - mtime > _SETTLED_NS for _, _, mtime, _ in stats):
        _verified[memo] = True
    return None


def _stat(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino

