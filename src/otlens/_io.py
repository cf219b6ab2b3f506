"""Atomic file writes: a reader never sees a half-written cache entry, table or model folder.

Every temporary file or folder made here is named ``.<final name>.pid<pid>@<host>.<random>.tmp``
next to its destination, so that a later process can tell whose it was:
:func:`sweep_temporaries` removes those whose writer is dead (same host, no such process) or
that are older than a grace period (any host, any name ending in ``.tmp`` and starting with a
dot, including the untagged ones written before this naming).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["atomic_path", "atomic_write", "atomic_write_bytes", "publish_folder", "temp_folder",
           "sweep_temporaries", "TEMP_GRACE_S"]

#: Temporaries older than this (seconds) are swept even when their writer may be alive.
TEMP_GRACE_S = 24 * 3600.0
_TAG = re.compile(r"\.pid(\d+)@([A-Za-z0-9-]*)\.[^.]*\.tmp$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40]


def _writer_tag() -> str:
    """``pid<pid>@<host>``: who is writing a temporary (read back by :func:`sweep_temporaries`)."""
    return f"pid{os.getpid()}@{_host()}"


def _temp_prefix(name: str) -> str:
    return f".{name}.{_writer_tag()}."


def temp_folder(final: str | os.PathLike) -> Path:
    """A fresh temporary folder next to ``final``, tagged with this process (see :func:`publish_folder`)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=final.parent, prefix=_temp_prefix(final.name), suffix=".tmp"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True  # cannot tell: keep the file (the grace period still applies)
    return True


def sweep_temporaries(folder: str | os.PathLike, *, grace_s: float = TEMP_GRACE_S,
                      now: float | None = None) -> list[Path]:
    """Remove the temporaries a killed writer left in ``folder`` (not recursive); return them.

    A temporary is an entry whose name starts with ``.`` and ends with ``.tmp`` (files and
    folders). It is removed when its name carries a writer tag of this host whose process no
    longer exists, or when it was last modified more than ``grace_s`` seconds ago (untagged
    temporaries, other hosts' writers, or a process id reused since). A live writer's fresh
    temporary is left alone.
    """
    folder = Path(folder)
    now = time.time() if now is None else now
    host, removed = _host(), []
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        tag = _TAG.search(name)
        dead = tag is not None and tag.group(2) == host and int(tag.group(1)) != os.getpid() \
            and not _pid_alive(int(tag.group(1)))
        try:
            old = now - entry.lstat().st_mtime > grace_s
        except FileNotFoundError:
            continue
        if not (dead or old):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:
            continue
        except OSError:
            continue  # not ours to remove (permissions): leave it
        removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed over ``path``.

    The rename is atomic on POSIX, so a crash leaves either the old file or the new one,
    never a partial file. On error the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path.name), suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write(path: str | os.PathLike, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def publish_folder(tmp: Path, final: Path) -> None:
    """Move a finished folder ``tmp`` to ``final`` (replacing an empty or stale one)."""
    try:
        os.replace(tmp, final)  # atomic; succeeds when `final` is missing or an empty folder
        return
    except OSError:
        pass
    old = final.with_name(f"{_temp_prefix(final.name)}old{time.monotonic_ns()}.tmp")
    os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
