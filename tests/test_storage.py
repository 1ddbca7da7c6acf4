"""Opening a database and failing well: schema checks, foreign files, pragmas, error translation, purging.

Whatever goes wrong underneath, the caller sees a KVError (with the driver's error as its cause), and a
database that kvstore refuses is left byte-for-byte as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kvstore import (
    ConfigurationError,
    KVStore,
    NotADatabaseError,
    ReadOnlyStoreError,
    SchemaVersionError,
    StorageFullError,
    StoreBusyError,
    StoreClosedError,
    StoreUnavailableError,
)
from kvstore._codec import parse_versionstamp
from kvstore._migrate import HEAD, VERSION_TABLE

from .conftest import FakeClock, sqlite_connection

MIN_TTL_MS = 60_000
FIRST_VERSIONSTAMP = "00000000000000010000"


def _raw(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path, isolation_level=None))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def _count(path: Path, where: str = "1") -> int:
    with _raw(path) as conn:
        count: int = conn.execute(f"SELECT count(*) FROM kvstore_entries WHERE {where}").fetchone()[0]
    return count


def _revisions(path: Path) -> list[str]:
    with _raw(path) as conn:
        return [row[0] for row in conn.execute(f"SELECT version_num FROM {VERSION_TABLE}")]


def _version(path: Path) -> int:
    """The versionstamp counter: the end of the last block of versionstamps reserved, so at least every one
    handed out."""
    with _raw(path) as conn:
        rows = conn.execute("SELECT id, version FROM kvstore_versionstamp").fetchall()
    assert len(rows) == 1
    assert rows[0][0] == 1
    version: int = rows[0][1]
    return version


def _pragma(kv: KVStore, name: str) -> object:
    value: object = sqlite_connection(kv).execute(f"PRAGMA {name}").fetchone()[0]
    return value


def _forbid_migration(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_migration(conn: sqlite3.Connection, translate: object) -> None:
        raise AssertionError("the store migrated a database that was already at head")

    monkeypatch.setattr("kvstore._backends.sqlite.backend.migrate", no_migration)


# -- refusing a database -------------------------------------------------------------------------------------


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
@pytest.mark.parametrize("revisions", [["9999"], [HEAD, "9999"]])
def test_unknown_revision_is_refused_and_left_untouched(
    tmp_path: Path, journal_mode: str, revisions: list[str]
) -> None:
    path = tmp_path / "newer.db"
    with KVStore(path) as kv:
        kv.set("k", "v")
    with _raw(path) as conn:
        conn.execute(f"PRAGMA journal_mode = {journal_mode}")
        conn.execute(f"DELETE FROM {VERSION_TABLE}")
        conn.executemany(f"INSERT INTO {VERSION_TABLE} VALUES (?)", [(rev,) for rev in revisions])
    before, files = _digest(path), _siblings(path)
    assert files == ["newer.db"]

    with pytest.raises(SchemaVersionError, match="9999") as caught:
        KVStore(path)
    assert caught.value.error_code == 2005

    assert _digest(path) == before
    assert _siblings(path) == files  # no -wal or -shm left behind
    with _raw(path) as conn:  # the journal mode was not switched either
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == journal_mode


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(random.Random(2).randbytes(8192), id="random-8k"),
        pytest.param(b"name,value\nalpha,1\n", id="csv"),
        pytest.param(b"\x00" * 4096, id="zeros"),
        pytest.param(b"SQLite format 3\x00" + b"\xff" * 84, id="bad-header"),
        pytest.param(b"{", id="one-byte"),
    ],
)
def test_file_that_is_not_sqlite_is_refused_and_left_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content)

    with pytest.raises(NotADatabaseError) as caught:
        KVStore(path)
    assert caught.value.error_code == 2004

    assert path.read_bytes() == content
    assert _siblings(path) == ["notes.txt"]


def test_foreign_tables_and_data_survive(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with _raw(path) as conn:
        conn.executescript(
            """
            CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, data BLOB);
            CREATE INDEX ix_users_name ON users (name);
            CREATE VIEW user_names AS SELECT name FROM users;
            CREATE TABLE audit (n INTEGER);
            CREATE TRIGGER users_audit AFTER INSERT ON users BEGIN INSERT INTO audit VALUES (new.id); END;
            INSERT INTO users (name, data) VALUES ('ada', x'00ff'), ('bob', NULL);
            """
        )

    def snapshot() -> tuple[list[tuple[Any, ...]], ...]:
        with _raw(path) as conn:
            schema = conn.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'kvstore%'"
                " AND tbl_name NOT LIKE 'kvstore%' ORDER BY name"
            ).fetchall()
            users = conn.execute("SELECT * FROM users ORDER BY id").fetchall()
            audit = conn.execute("SELECT * FROM audit ORDER BY n").fetchall()
        return schema, users, audit

    before = snapshot()
    with KVStore(path) as kv:
        for i in range(50):
            kv.set(f"k/{i}", {"i": i}, expire_in=MIN_TTL_MS if i % 2 else None)
        kv.delete("k/0")
        kv.purge_expired()
        assert len(kv.list("k/")) == 49
    with KVStore(path) as kv:
        assert kv.get("k/1") is not None
    assert snapshot() == before
    assert _revisions(path) == [HEAD]


_READ_AND_CLOSE = (
    "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); print(c.execute(sys.argv[2]).fetchall()); c.close()"
)


def _in_another_process(path: Path, sql: str) -> str:
    """Run one query on ``path`` from a fresh process (which closes its connection, and so may checkpoint)."""
    result = subprocess.run(
        [sys.executable, "-c", _READ_AND_CLOSE, str(path), sql], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_opening_a_second_store_keeps_the_first_stores_locks(db_path: Path) -> None:
    """Opening must not open and close the file behind SQLite's back.

    Closing any descriptor of a file drops every POSIX lock this process holds on it. Another process
    closing its connection would then think itself the last one, checkpoint and delete the WAL, and the
    first store's later commits would go to an unlinked file: lost.
    """
    first = KVStore(db_path)
    try:
        first.set("a", 1)
        KVStore(db_path).close()  # a second store on the same file, in the same process
        KVStore(str(db_path)).close()
        _in_another_process(db_path, "SELECT count(*) FROM kvstore_entries")
        # The first store's shared lock held: the other process did not take the WAL away.
        assert (db_path.parent / f"{db_path.name}-wal").exists()
        first.set("b", 2)
        assert _in_another_process(db_path, "SELECT key FROM kvstore_entries ORDER BY key") == "[('a',), ('b',)]"
    finally:
        first.close()


# -- creating and upgrading the schema --------------------------------------------------------------------------


def test_fresh_file_is_created_and_migrated(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with KVStore(path) as kv:
        assert kv.set("k", 1).versionstamp == FIRST_VERSIONSTAMP
    assert _revisions(path) == [HEAD]
    assert _version(path) >= 1


def test_empty_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with KVStore(path) as kv:
        assert kv.set("k", 1).versionstamp == FIRST_VERSIONSTAMP
    assert _revisions(path) == [HEAD]


def test_database_at_base_revision_is_upgraded_and_its_other_tables_kept(tmp_path: Path) -> None:
    """A database whose kvstore tables were dropped (alembic's base) is brought to head on open."""
    path = tmp_path / "old.db"
    with KVStore(path) as kv:
        kv.set("k", 1)
    with _raw(path) as conn:
        conn.executescript(
            f"""
            CREATE TABLE app (x INTEGER);
            INSERT INTO app VALUES (42);
            DROP TABLE kvstore_entries;
            DROP TABLE kvstore_versionstamp;
            DELETE FROM {VERSION_TABLE};
            """
        )

    with KVStore(path) as kv:
        assert kv.get("k") is None
        assert kv.set("k", 2).versionstamp == FIRST_VERSIONSTAMP
    assert _revisions(path) == [HEAD]
    with _raw(path) as conn:
        assert conn.execute("SELECT x FROM app").fetchall() == [(42,)]


def test_database_at_head_opens_without_migrating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "kv.db"
    KVStore(path).close()
    _forbid_migration(monkeypatch)
    with KVStore(path) as kv:
        assert kv.set("k", 1).committed


def test_threads_opening_one_fresh_file_all_succeed(tmp_path: Path) -> None:
    threads = 8
    for attempt in range(5):
        path = tmp_path / f"race{attempt}.db"
        barrier = threading.Barrier(threads)

        def open_and_write(i: int, path: Path = path, barrier: threading.Barrier = barrier) -> str | None:
            barrier.wait()
            with KVStore(path, busy_timeout=30) as kv:
                return kv.set(f"t{i}", i).versionstamp

        with ThreadPoolExecutor(threads) as pool:
            stamps = list(pool.map(open_and_write, range(threads)))

        numbers = [int(stamp[:16], 16) for stamp in stamps if stamp is not None]
        assert len(set(numbers)) == threads
        assert _revisions(path) == [HEAD]  # migrated exactly once
        assert _version(path) >= max(numbers)
        assert _count(path) == threads


_OPENER = textwrap.dedent(
    """
    import sys

    import alembic.command  # imported up front so that the processes race on the database, not on imports
    import sqlalchemy

    from kvstore import KVError, KVStore

    print("ready", flush=True)
    for path in sys.argv[2:]:
        sys.stdin.readline()  # every process opens this file at once
        try:
            with KVStore(path, busy_timeout=30) as kv:
                print(kv.set(sys.argv[1], 1).versionstamp, flush=True)
        except KVError as exc:
            print(f"{type(exc).__name__}: {exc} ({exc.__cause__!r})", flush=True)
    """
)


def _kill_running(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()


def test_processes_opening_one_fresh_file_all_succeed(tmp_path: Path) -> None:
    """Several processes open a new file at the same moment: one migrates, all of them write."""
    paths = [tmp_path / f"race{i}.db" for i in range(10)]
    with contextlib.ExitStack() as stack:
        processes = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, "-c", _OPENER, f"p{i}", *map(str, paths)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
            for i in range(4)
        ]
        stack.callback(_kill_running, processes)  # on any failure below, before the pipes are closed
        pipes = []
        for process in processes:
            assert process.stdin is not None
            assert process.stdout is not None
            pipes.append((process.stdin, process.stdout))
        for _, stdout in pipes:
            assert stdout.readline() == "ready\n"
        outcomes: list[list[str]] = []
        for _ in paths:  # a barrier per file: all processes are waiting before any of them opens it
            for stdin, _ in pipes:
                stdin.write("go\n")
                stdin.flush()
            outcomes.append([stdout.readline().strip() for _, stdout in pipes])
        for process in processes:
            process.communicate(timeout=60)

    assert [process.returncode for process in processes] == [0] * len(processes)
    for path, stamps in zip(paths, outcomes, strict=True):
        numbers = {int(stamp[:16], 16) for stamp in stamps if re.fullmatch("[0-9a-f]{16}0000", stamp)}
        assert len(numbers) == len(processes), (path.name, stamps)
        assert _revisions(path) == [HEAD]
        assert _version(path) >= max(numbers)


# -- pragmas -------------------------------------------------------------------------------------------------


def test_file_store_uses_wal_and_normal_synchronous(db_path: Path) -> None:
    with KVStore(db_path) as kv:
        assert _pragma(kv, "journal_mode") == "wal"
        assert _pragma(kv, "synchronous") == 1  # NORMAL
    with _raw(db_path) as conn:  # WAL persists in the file
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("value", ["FULL", "full", "Full"])
def test_synchronous_full_on_every_connection(db_path: Path, value: str) -> None:
    with KVStore(db_path, synchronous=value) as kv:
        assert _pragma(kv, "synchronous") == 2  # FULL
        with ThreadPoolExecutor(1) as pool:  # another thread gets its own connection, configured alike
            assert pool.submit(_pragma, kv, "synchronous").result() == 2


def test_memory_store_has_no_wal() -> None:
    with KVStore(":memory:") as kv:
        assert _pragma(kv, "journal_mode") == "memory"


@pytest.mark.parametrize("value", ["OFF", "EXTRA", "NORMAL; DROP TABLE x", "", 1, None])
def test_bad_synchronous_is_a_configuration_error(db_path: Path, value: Any) -> None:
    with pytest.raises(ConfigurationError, match="synchronous"):
        KVStore(db_path, synchronous=value)
    assert not db_path.exists()


# -- error translation ----------------------------------------------------------------------------------------


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

    digests = {name: _digest(path) for name, path in paths.items()}
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

    assert {name: _digest(path) for name, path in paths.items()} == digests


def test_busy_database_raises_store_busy_error(db_path: Path) -> None:
    with KVStore(db_path, busy_timeout=0) as kv, _raw(db_path) as other:
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
    with _raw(db_path) as other:
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
    with pytest.raises(StoreUnavailableError) as caught:
        KVStore(path)
    assert caught.value.status == 503
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    assert not path.parent.exists()


def test_directory_as_database_is_store_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError):
        KVStore(tmp_path)
    assert list(tmp_path.iterdir()) == []


# -- targets and configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "mysql://",
        "postgresql+psycopg2://user:pw@host/db",
        "postgresql+asyncpg://user@host/db",
        "sqlite+aiosqlite:///kv.db",
        "sqlite:///kv.db?mode=ro",
        "bad url://x",
    ],
)
def test_unsupported_url_is_a_configuration_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError):
        KVStore(target)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("target", [b"kv.db", 42, None, "", "kv\x00.db", "sqlite:///kv\x00.db"])
def test_target_that_is_not_a_path_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError):
        KVStore(target)
    assert list(tmp_path.iterdir()) == []


class _PathLike:
    """An os.PathLike that is not a pathlib.Path."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __fspath__(self) -> str:
        return str(self._path)


_TARGETS: dict[str, Callable[[Path], str | os.PathLike[str]]] = {
    "str": str,
    "pathlib": lambda p: p,
    "pathlike": _PathLike,
    "sqlite-url": lambda p: f"sqlite:///{p}",
    "sqlite+pysqlite-url": lambda p: f"sqlite+pysqlite:///{p}",
    "relative-url": lambda p: f"sqlite:///{p.name}",
    "relative-path": lambda p: p.name,
}


@pytest.mark.parametrize("kind", sorted(_TARGETS))
def test_file_targets_open_the_same_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "kv.db"
    with KVStore(_TARGETS[kind](path)) as kv:
        assert kv.set("k", kind).committed
        assert _pragma(kv, "journal_mode") == "wal"
    assert _count(path) == 1
    with KVStore(str(path)) as kv:
        entry = kv.get("k")
        assert entry is not None
        assert entry.value == kind


@pytest.mark.parametrize("target", [":memory:", "sqlite://", "sqlite:///:memory:"])
def test_memory_targets_are_private_and_leave_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with KVStore(target) as one, KVStore(target) as two:
        one.set("k", 1)
        assert one.get("k") is not None
        assert two.get("k") is None
        assert _pragma(one, "journal_mode") == "memory"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "options",
    [
        {"busy_timeout": -1},
        {"busy_timeout": float("nan")},
        {"busy_timeout": float("inf")},
        {"busy_timeout": "5"},
        {"busy_timeout": True},
        {"max_value_size": 0},
        {"max_value_size": -5},
        {"max_value_size": 1.5},
        {"max_value_size": True},
        {"max_metadata_size": 0},
        {"purge_batch_size": 0},
        {"purge_batch_size": None},
        {"auto_purge_every": -1},
        {"auto_purge_every": 2.0},
        {"clock": "x"},
        {"clock": None},
        {"clock": 1_800_000_000.0},
        {"pool_size": 0},
        {"pool_size": 2.0},
        {"pool_timeout": 0},
        {"pool_timeout": float("nan")},
        {"pool_timeout": True},
        {"connect_timeout": -1},
        {"connect_timeout": "10"},
    ],
    ids=repr,
)
def test_bad_constructor_arguments_are_configuration_errors(db_path: Path, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        KVStore(db_path, **options)
    assert caught.value.status == 400
    assert not db_path.exists()  # refused before touching the file system


_CLOCK_OPERATIONS: dict[str, Callable[[KVStore], object]] = {
    "set": lambda kv: kv.set("new", 1),
    "get": lambda kv: kv.get("k"),
    "get_many": lambda kv: kv.get_many(["k"]),
    "delete": lambda kv: kv.delete("k"),
    "list": lambda kv: kv.list(),
    "purge_expired": lambda kv: kv.purge_expired(),
}


class _SwitchableClock:
    """A sane clock until told to return something else."""

    def __init__(self) -> None:
        self.value: Any = 1_800_000_000.0

    def __call__(self) -> float:
        result: float = self.value
        return result


@pytest.mark.parametrize("operation", sorted(_CLOCK_OPERATIONS))
@pytest.mark.parametrize("value", ["1800000000", None, [], float("nan"), float("inf"), object()], ids=repr)
def test_clock_returning_a_non_number_is_a_configuration_error(db_path: Path, operation: str, value: Any) -> None:
    clock = _SwitchableClock()
    with KVStore(db_path, clock=clock) as kv:
        kv.set("k", 1)
        counter = _version(db_path)
        clock.value = value
        with pytest.raises(ConfigurationError, match="clock"):
            _CLOCK_OPERATIONS[operation](kv)
        clock.value = 1_800_000_000.0
        assert kv.set("next", 2).versionstamp == f"{2:016x}0000"  # no versionstamp was drawn
    assert _count(db_path) == 2
    assert _version(db_path) == counter


@pytest.mark.parametrize("value", [1e13, 1e12], ids=["beyond-sqlite-int64", "beyond-datetime"])
def test_clock_out_of_range_is_a_configuration_error(db_path: Path, value: float) -> None:
    """A "now" that SQLite's 64-bit integers or a datetime cannot hold must not escape as OverflowError."""
    clock = _SwitchableClock()
    with KVStore(db_path, clock=clock) as kv:
        kv.set("k", 1)
        counter = _version(db_path)
        clock.value = value
        for operation, call in _CLOCK_OPERATIONS.items():
            with pytest.raises(ConfigurationError, match="clock"):
                call(kv)
            assert _count(db_path) == 1, operation  # nothing was written at a time no reader can decode
            assert _version(db_path) == counter, operation
        clock.value = 1_800_000_000.0
        assert kv.set("next", 2).versionstamp == f"{2:016x}0000"  # and no versionstamp was drawn


# -- purging ---------------------------------------------------------------------------------------------------


def test_purge_expired_deletes_in_bounded_batches(
    db_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with KVStore(db_path, clock=clock, purge_batch_size=10, auto_purge_every=0) as kv:
        for i in range(35):
            ns = kv if i % 2 else kv.namespace("other")
            ns.set(f"gone/{i}", i, expire_in=MIN_TTL_MS)
        for i in range(7):
            kv.set(f"live/{i}", i)
            kv.set(f"later/{i}", i, expire_in=10 * MIN_TTL_MS)
        clock.advance(61)

        batches: list[int] = []
        purge_batch = kv._backend.purge_batch

        def recording(now_us: int, limit: int) -> int:
            assert limit == 10
            deleted = purge_batch(now_us, limit)
            batches.append(deleted)
            return deleted

        monkeypatch.setattr(kv._backend, "purge_batch", recording)
        assert kv.purge_expired() == 35
        assert batches == [10, 10, 10, 5]
        assert _count(db_path, f"expires_us <= {round(clock.now * 1_000_000)}") == 0
        assert _count(db_path) == 14
        assert kv.list("live/").keys == [f"live/{i}" for i in range(7)]
        assert len(kv.list("later/")) == 7

        batches.clear()
        assert kv.purge_expired() == 0
        assert batches == [0]


def test_purge_of_an_exact_multiple_of_the_batch(db_path: Path, clock: FakeClock) -> None:
    with KVStore(db_path, clock=clock, purge_batch_size=10, auto_purge_every=0) as kv:
        for i in range(30):
            kv.set(f"gone/{i}", i, expire_in=MIN_TTL_MS)
        clock.advance(60)  # expiry is exclusive: at exactly now + TTL the entry is gone
        assert kv.purge_expired() == 30
    assert _count(db_path) == 0


def test_auto_purge_removes_expired_rows_as_writes_go_on(db_path: Path, clock: FakeClock) -> None:
    with KVStore(db_path, clock=clock, auto_purge_every=5, purge_batch_size=3) as kv:
        for i in range(10):  # writes 1-10: two purges run, but nothing has expired yet
            kv.set(f"gone/{i}", i, expire_in=MIN_TTL_MS)
        assert _count(db_path) == 10
        clock.advance(61)

        remaining = []
        for i in range(20):  # writes 11-30: a purge of at most 3 rows after every fifth
            kv.set(f"live/{i}", i)
            remaining.append(_count(db_path, "key LIKE 'gone/%'"))
        assert remaining == [10] * 4 + [7] * 5 + [4] * 5 + [1] * 5 + [0]
        assert len(kv.list("live/")) == 20


def test_auto_purge_off_leaves_rows_for_purge_expired(db_path: Path, clock: FakeClock) -> None:
    with KVStore(db_path, clock=clock, auto_purge_every=0, purge_batch_size=1) as kv:
        for i in range(5):
            kv.set(f"gone/{i}", i, expire_in=MIN_TTL_MS)
        clock.advance(61)
        for i in range(50):
            kv.set(f"live/{i}", i)
        assert _count(db_path, "key LIKE 'gone/%'") == 5
        assert kv.purge_expired() == 5
        assert _count(db_path, "key LIKE 'gone/%'") == 0
