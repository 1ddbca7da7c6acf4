"""How failures reach the caller: full, read-only, busy, closed and unavailable stores, each as its KVError."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kvstore import (
    KVStore,
    ReadOnlyStoreError,
    StorageFullError,
    StoreBusyError,
    StoreClosedError,
    StoreUnavailableError,
)
from kvstore._codec import parse_versionstamp

from ._storage_support import FIRST_VERSIONSTAMP, MIN_TTL_MS, digest, raw
from .conftest import FakeClock, sqlite_connection


def test_disk_full_is_storage_full_and_recoverable(sqlite_kv: KVStore) -> None:
    kv = sqlite_kv
    kv.set("small", "kept")
    conn = sqlite_connection(kv)
    pages: int = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 20}")
    blob = random.Random(1).randbytes(20_000)

    last_ok = kv.get("small")
    assert last_ok is not None
    stamp = last_ok.versionstamp
    written: list[str] = []
    with pytest.raises(StorageFullError) as caught:  # noqa: PT012
        for i in range(100):
            stamp = kv.set(f"big/{i}", blob).versionstamp or stamp
            written.append(f"big/{i}")
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    assert caught.value.status == 507
    failed_key = f"big/{len(written)}"

    # Still readable, and the failed write left nothing behind.
    small = kv.get("small")
    assert small is not None
    assert small.value == "kept"
    assert kv.list("big/").keys == written
    assert kv.get(failed_key) is None

    conn.execute("PRAGMA max_page_count = 1000000")
    result = kv.set(failed_key, blob)
    assert result.committed
    assert result.versionstamp is not None
    assert parse_versionstamp(result.versionstamp) == parse_versionstamp(stamp) + 1  # the failed write drew none
    entry = kv.get(failed_key)
    assert entry is not None
    assert entry.value == blob


def test_query_only_connection_is_read_only(sqlite_kv: KVStore, clock: FakeClock) -> None:
    kv = sqlite_kv
    kv.set("k", 1, expire_in=MIN_TTL_MS)
    conn = sqlite_connection(kv)
    conn.execute("PRAGMA query_only = ON")
    clock.advance(30)
    with pytest.raises(ReadOnlyStoreError) as caught:
        kv.set("k", 2)
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    with pytest.raises(ReadOnlyStoreError):
        kv.delete("k")
    entry = kv.get("k")
    assert entry is not None
    assert entry.value == 1
    clock.advance(60)
    with pytest.raises(ReadOnlyStoreError):
        kv.purge_expired()

    conn.execute("PRAGMA query_only = OFF")
    assert kv.set("k", 3).committed
    assert kv.purge_expired() == 0


def test_a_read_only_database_serves_refresh_on_access_entries_unrefreshed(
    sqlite_kv: KVStore, clock: FakeClock
) -> None:
    kv = sqlite_kv
    written = kv.set("r", "v", expire_in=MIN_TTL_MS, refresh_on_access=True)
    conn = sqlite_connection(kv)
    conn.execute("PRAGMA query_only = ON")
    clock.advance(30)
    entry = kv.get("r")  # the refresh cannot be written; the read still succeeds
    assert entry is not None
    assert entry.value == "v"
    assert entry.expires_at == written.expires_at
    assert [e.value if e else None for e in kv.get_many(["r"])] == ["v"]
    conn.execute("PRAGMA query_only = OFF")
    refreshed = kv.get("r")
    assert refreshed is not None
    assert written.expires_at is not None
    assert refreshed.expires_at == written.expires_at + timedelta(seconds=30)


_READ_ONLY_CHILD = textwrap.dedent(
    """
    import ctypes
    import json
    import os
    import sys


    def drop_permission_override():
        # Root ignores file modes (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH); give them up for this process.
        if os.geteuid() != 0:
            return

        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        class Data(ctypes.Structure):
            _fields_ = [
                ("effective", ctypes.c_uint32),
                ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32),
            ]

        libc = ctypes.CDLL(None, use_errno=True)
        header = Header(0x20080522, 0)
        data = (Data * 2)()
        if libc.capget(ctypes.byref(header), data) != 0:
            return
        keep = ~((1 << 1) | (1 << 2)) & 0xFFFFFFFF
        data[0].effective &= keep
        data[0].permitted &= keep
        data[0].inheritable &= keep
        libc.capset(ctypes.byref(header), data)


    drop_permission_override()

    from kvstore import KVError, KVStore


    def attempt(call):
        try:
            return ["ok", call()]
        except KVError as exc:
            return ["error", type(exc).__name__, type(exc.__cause__).__module__]


    results = {}
    for name, path in json.loads(sys.argv[1]).items():
        try:
            with open(path, "r+b"):
                pass
            writable = True
        except PermissionError:
            writable = False
        result = {"writable": writable}
        opened = attempt(lambda: KVStore(path))
        if opened[0] == "ok":
            kv = opened[1]
            result["open"] = ["ok"]
            result["get"] = attempt(lambda: kv.get("k").value)
            result["set"] = attempt(lambda: kv.set("k", "changed").committed)
            result["delete"] = attempt(lambda: kv.delete("k"))
            result["after"] = attempt(lambda: kv.get("k").value)
            kv.close()
        else:
            result["open"] = opened
        results[name] = result
    print(json.dumps(results))
    """
)


def test_read_only_file_raises_read_only_store_error(tmp_path: Path) -> None:
    """A database file the process may not write (root is made subject to file modes first)."""
    if sys.platform != "linux" and os.geteuid() == 0:
        pytest.skip("dropping root's file-permission override needs Linux capabilities")
    paths: dict[str, Path] = {}

    # A store at head whose file is read-only; its directory stays writable (so -wal and -shm can be made).
    paths["file"] = tmp_path / "ro-file" / "kv.db"
    # The same, in a read-only directory.
    paths["dir"] = tmp_path / "ro-dir" / "kv.db"
    for path in (paths["file"], paths["dir"]):
        path.parent.mkdir()
        with KVStore(path) as kv:
            kv.set("k", "original")
    # An empty file that would need migrating.
    paths["fresh"] = tmp_path / "ro-fresh" / "kv.db"
    paths["fresh"].parent.mkdir()
    paths["fresh"].touch()

    digests = {name: digest(path) for name, path in paths.items()}
    for path in paths.values():
        path.chmod(0o444)
    paths["dir"].parent.chmod(0o555)
    try:
        child = subprocess.run(
            [sys.executable, "-c", _READ_ONLY_CHILD, json.dumps({name: str(p) for name, p in paths.items()})],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    finally:
        paths["dir"].parent.chmod(0o755)
    assert child.returncode == 0, child.stderr
    results: dict[str, dict[str, Any]] = json.loads(child.stdout)
    if any(result["writable"] for result in results.values()):
        pytest.skip("this process cannot be denied write access to a file (no capability control)")

    denied = ["error", "ReadOnlyStoreError", "sqlite3"]
    assert results["file"]["open"] == ["ok"]
    assert results["file"]["get"] == ["ok", "original"]
    assert results["file"]["set"] == denied
    assert results["file"]["delete"] == denied
    assert results["file"]["after"] == ["ok", "original"]

    # In a read-only directory there is nowhere for the WAL index: refusing to open is as good as reading.
    if results["dir"]["open"] == ["ok"]:
        assert results["dir"]["get"] == ["ok", "original"]
        assert results["dir"]["set"] == denied
    else:
        assert results["dir"]["open"] == denied

    assert results["fresh"]["open"][:2] == ["error", "ReadOnlyStoreError"]

    assert {name: digest(path) for name, path in paths.items()} == digests


def test_busy_database_raises_store_busy_error(db_path: Path) -> None:
    with KVStore(db_path, busy_timeout=0) as kv, raw(db_path) as other:
        kv.set("k", 1)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreBusyError) as caught:
            kv.set("k", 2)
        assert caught.value.status == 503
        with pytest.raises(StoreBusyError):
            kv.delete("k")
        entry = kv.get("k")  # WAL: reads go on while another connection holds the write lock
        assert entry is not None
        assert entry.value == 1
        other.execute("ROLLBACK")
        assert kv.set("k", 3).committed


def test_opening_a_fresh_file_under_a_held_write_lock_is_busy(db_path: Path) -> None:
    with raw(db_path) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreBusyError):
            KVStore(db_path, busy_timeout=0)
        other.execute("ROLLBACK")
    with KVStore(db_path, busy_timeout=0) as kv:
        assert kv.set("k", 1).versionstamp == FIRST_VERSIONSTAMP


_CLOSED_OPERATIONS: dict[str, Callable[[KVStore], object]] = {
    "get": lambda kv: kv.get("k"),
    "get_many": lambda kv: kv.get_many(["k", "j"]),
    "set": lambda kv: kv.set("k", 2),
    "delete": lambda kv: kv.delete("k"),
    "list": lambda kv: kv.list(),
    "purge_expired": lambda kv: kv.purge_expired(),
    "namespace.get": lambda kv: kv.namespace("other").get("k"),
    "namespace.set": lambda kv: kv.namespace("other").set("k", 1),
}


@pytest.mark.parametrize("operation", sorted(_CLOSED_OPERATIONS))
def test_closed_store_raises_store_closed_error(kv: KVStore, operation: str) -> None:
    call = _CLOSED_OPERATIONS[operation]
    kv.set("k", 1)
    kv.close()
    assert kv.closed
    with pytest.raises(StoreClosedError):
        call(kv)
    with ThreadPoolExecutor(1) as pool, pytest.raises(StoreClosedError):  # a thread that never had a connection
        pool.submit(call, kv).result()
    kv.close()  # closing twice is harmless
    with pytest.raises(StoreClosedError):
        call(kv)


def test_closed_file_store_keeps_its_data(db_path: Path) -> None:
    kv = KVStore(db_path)
    kv.set("k", "v")
    kv.close()
    with pytest.raises(StoreClosedError):
        kv.get("k")
    with KVStore(db_path) as again:
        entry = again.get("k")
        assert entry is not None
        assert entry.value == "v"


def test_missing_directory_is_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "kv.db"
    with pytest.raises(StoreUnavailableError, match=r"directory .* is missing") as caught:
        KVStore(path)
    assert caught.value.status == 503
    assert not path.parent.exists()


def test_directory_as_database_is_store_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError):
        KVStore(tmp_path)
    assert list(tmp_path.iterdir()) == []
