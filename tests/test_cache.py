"""Tests for the one cache: verified entries, atomic writes, temporaries of killed writers swept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from otlens import _io
from otlens.cache import Cache, CorruptCacheWarning, check_folder, folder_digests, make_key


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("OTLENS_CACHE", str(tmp_path / "cache"))


def _writer(payload: bytes):
    return lambda tmp: tmp.write_bytes(payload)


def _counting(calls, payload=b"computed payload " * 100):
    def compute():
        calls.append(1)
        return payload
    return compute


def _fetch(cache, key, calls):
    return cache.fetch(key, _counting(calls), lambda value, tmp: tmp.write_bytes(value), lambda p: p.read_bytes())


def test_make_key_is_canonical_and_sensitive():
    assert make_key({"a": 1, "b": [1, 2]}) == make_key({"b": [1, 2], "a": 1})
    assert make_key({"a": 1, "b": [1, 2]}) != make_key({"a": 1, "b": [2, 1]})
    assert make_key({"batch_size": 16}) != make_key({"batch_size": 8})


def test_entry_is_written_with_its_checksum_and_reused():
    cache, calls = Cache("things", suffix=".bin"), []
    first = _fetch(cache, "k", calls)
    again = _fetch(cache, "k", calls)
    assert first == again and len(calls) == 1
    record = json.loads((cache.folder / "k.bin.sha256").read_text())
    assert record["size"] == len(first) and len(record["sha256"]) == 64
    assert not [p for p in cache.folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("damage", ["flip", "truncate", "checksum-garbage"])
def test_corrupt_entry_is_warned_deleted_and_rebuilt(damage):
    cache, calls = Cache("things", suffix=".bin"), []
    fresh = _fetch(cache, "entry-key", calls)
    path = cache.path("entry-key")
    if damage == "flip":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01  # one bit: same size, only the checksum sees it
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:-7])
    else:
        (cache.folder / "entry-key.bin.sha256").write_text("{not json")
    read = []
    with pytest.warns(CorruptCacheWarning, match=r"things/entry-key\.bin.*recomputing"):
        again = cache.fetch("entry-key", _counting(calls), lambda v, tmp: tmp.write_bytes(v),
                            lambda p: read.append(1) or p.read_bytes())
    assert again == fresh and len(calls) == 2 and not read  # recomputed; the corrupt bytes never reached the reader
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptCacheWarning)
        assert _fetch(cache, "entry-key", calls) == fresh and len(calls) == 2  # the rebuilt entry is valid


def test_a_reader_that_fails_is_a_corrupt_entry():
    cache, calls = Cache("things", suffix=".bin"), []
    _fetch(cache, "k", calls)

    def bad_reader(path):
        raise ValueError("foreign file")

    with pytest.warns(CorruptCacheWarning, match="things/k.bin.*foreign file"):
        assert cache.get("k", bad_reader) is None
    assert not cache.path("k").exists()


def test_payload_without_checksum_is_a_miss_and_overwritten():
    cache, calls = Cache("things", suffix=".bin"), []
    cache.path("old").write_bytes(b"written before checksums")  # a legacy entry
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptCacheWarning)
        value = _fetch(cache, "old", calls)
    assert len(calls) == 1 and value == cache.path("old").read_bytes() != b"written before checksums"


def test_disabled_cache_reads_and_writes_nothing():
    cache, calls = Cache("things", suffix=".bin"), []
    cache.fetch("k", _counting(calls), lambda v, tmp: tmp.write_bytes(v), lambda p: p.read_bytes(), enabled=False)
    assert calls and not cache.path("k").exists()


# ------------------------------------------------------------------------------- temporaries


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _tagged(folder: Path, name: str, pid: int) -> Path:
    path = folder / f".{name}.pid{pid}@{_io._host()}.abc123_x.tmp"
    path.write_bytes(b"x" * 1000)
    return path


def test_sweep_removes_dead_writers_and_old_temporaries_only(tmp_path):
    folder = Cache("things").folder
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = _tagged(folder, "a.safetensors", _dead_pid())
        alive = _tagged(folder, "b.safetensors", live.pid)
        own = _tagged(folder, "c.safetensors", os.getpid())
        other_host = folder / f".d.safetensors.pid{_dead_pid()}@some-other-host.abc.tmp"
        other_host.write_bytes(b"x")
        fresh_untagged = folder / ".e.safetensors.k2j3h4.tmp"  # the naming before writer tags
        fresh_untagged.write_bytes(b"x")
        old_untagged = folder / ".f.safetensors.q8w7e6.tmp"
        old_untagged.write_bytes(b"x")
        two_days = time.time() - 2 * 24 * 3600
        os.utime(old_untagged, (two_days, two_days))
        old_dir = folder / ".model.pid1@some-other-host.zz.tmp"
        (old_dir / "sub").mkdir(parents=True)
        (old_dir / "sub" / "w.bin").write_bytes(b"x")
        os.utime(old_dir, (two_days, two_days))
        entry = folder / "k.safetensors"
        entry.write_bytes(b"an entry, not a temporary")

        cache = Cache("things")
        assert set(cache.swept) == {dead, old_untagged, old_dir}
        for kept in (alive, own, other_host, fresh_untagged, entry):
            assert kept.exists()
        for gone in (dead, old_untagged, old_dir):
            assert not gone.exists()
    finally:
        live.kill()
        live.wait()


def test_temporary_of_a_killed_writer_is_swept_when_the_cache_opens():
    """A writer killed (SIGKILL) in the middle of an atomic write leaves its temporary; the next open removes it."""
    folder = Cache("things").folder
    code = ("import sys, time; from otlens._io import atomic_path\n"
            f"with atomic_path({str(folder / 'big.safetensors')!r}) as tmp:\n"
            "    tmp.write_bytes(b'\\0' * (4 << 20)); print('written', flush=True); time.sleep(60)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "written"
        left = [p for p in folder.iterdir() if p.name.endswith(".tmp")]
        assert len(left) == 1 and left[0].stat().st_size == 4 << 20
        assert Cache("things").swept == []  # the writer is alive: its temporary stays
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert left[0].exists()  # nothing cleans up after SIGKILL...
        assert Cache("things").swept == left  # ...until the cache is opened again
        assert not left[0].exists() and not (folder / "big.safetensors").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------------- folders


def test_folder_manifest_detects_a_flipped_byte_and_a_missing_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "w.bin").write_bytes(bytes(range(256)) * 10)
    (tmp_path / "sub" / "c.json").write_text("{}")
    (tmp_path / "marker.json").write_text("{}")
    digests = folder_digests(tmp_path, skip=("marker.json",))
    assert set(digests) == {"w.bin", "sub/c.json"}
    assert check_folder(tmp_path, digests) is None
    data = bytearray((tmp_path / "w.bin").read_bytes())
    data[100] ^= 0x80
    (tmp_path / "w.bin").write_bytes(bytes(data))
    assert "w.bin" in check_folder(tmp_path, digests)
    (tmp_path / "w.bin").unlink()
    assert "w.bin" in check_folder(tmp_path, digests)
