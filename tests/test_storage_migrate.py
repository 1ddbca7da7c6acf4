"""Creating and upgrading the schema on open, once, with threads and processes racing to a new file."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kvstore import KVStore
from kvstore._migrate import HEAD, VERSION_TABLE

from ._storage_support import FIRST_VERSIONSTAMP, count_entries, raw, recorded_revisions, versionstamp_counter


def _forbid_migration(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_migration(conn: sqlite3.Connection, translate: object) -> None:
        raise AssertionError("the store migrated a database that was already at head")

    monkeypatch.setattr("kvstore._backends.sqlite.backend.migrate", no_migration)


def test_fresh_file_is_created_and_migrated(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with KVStore(path) as kv:
        assert kv.set("k", 1).versionstamp == FIRST_VERSIONSTAMP
    assert recorded_revisions(path) == [HEAD]
    assert versionstamp_counter(path) >= 1


def test_empty_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with KVStore(path) as kv:
        assert kv.set("k", 1).versionstamp == FIRST_VERSIONSTAMP
    assert recorded_revisions(path) == [HEAD]


def test_database_at_base_revision_is_upgraded_and_its_other_tables_kept(tmp_path: Path) -> None:
    """A database whose kvstore tables were dropped (alembic's base) is brought to head on open."""
    path = tmp_path / "old.db"
    with KVStore(path) as kv:
        kv.set("k", 1)
    with raw(path) as conn:
        conn.executescript(
            f"""
            CREATE TABLE app (x INTEGER);
            INSERT INTO app VALUES (42);
            DROP TABLE kvstore_entries;
            DROP TABLE kvstore_versionstamp;
            DROP TABLE kvstore_queue;
            DELETE FROM {VERSION_TABLE};
            """
        )

    with KVStore(path) as kv:
        assert kv.get("k") is None
        assert kv.set("k", 2).versionstamp == FIRST_VERSIONSTAMP
    assert recorded_revisions(path) == [HEAD]
    with raw(path) as conn:
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
        assert recorded_revisions(path) == [HEAD]  # migrated exactly once
        assert versionstamp_counter(path) >= max(numbers)
        assert count_entries(path) == threads


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
        assert recorded_revisions(path) == [HEAD]
        assert versionstamp_counter(path) >= max(numbers)
