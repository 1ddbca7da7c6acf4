"""Concurrency: compare-and-set from many threads and processes, fork safety, and a held write lock.

Synchronisation is by barriers, events, queues and pipes; nothing here sleeps to wait for another party.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import TypeAlias

import pytest

from kvstore import (
    ForkedStoreError,
    KVError,
    KVStore,
    Namespace,
    StoreBusyError,
    StoreClosedError,
)
from kvstore._migrate import HEAD

from .conftest import Stores, sqlite_connection
from .reliability._support import Forked

KEY = "counter"
THREADS = 8
INCREMENTS_PER_THREAD = 25
PROCESSES = 4
INCREMENTS_PER_PROCESS = 100
WAIT = 120.0  # seconds: a bound on waiting for a peer that only a hung test reaches
LONG_BUSY_TIMEOUT = 60.0  # contention here must make writers wait, never fail
VERSIONSTAMP = re.compile(r"[0-9a-f]{20}")

Commit: TypeAlias = tuple[str, int]
"""One committed increment: (versionstamp, value written)."""
WriterLog: TypeAlias = tuple[list[Commit], int]
"""What one writer did: its committed increments in order, and how many of its CAS attempts failed."""
Report: TypeAlias = tuple[int, list[Commit], int, str | None]
"""What a child process sends back: writer index, commits, conflicts, and an error description or None."""

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="this platform has no os.fork")


def _increment(kv: Namespace, times: int) -> WriterLog:
    """Add 1 to KEY ``times`` times by compare-and-set, retrying each lost race."""
    commits: list[Commit] = []
    conflicts = 0
    while len(commits) < times:
        entry = kv.get(KEY)
        assert entry is not None
        assert type(entry.value) is int
        result = kv.set(KEY, entry.value + 1, if_versionstamp=entry.versionstamp)
        if result.committed:
            assert result.ok
            assert result.versionstamp is not None
            assert result.versionstamp > entry.versionstamp
            commits.append((result.versionstamp, entry.value + 1))
        else:
            # Another writer won: a failed condition is a result carrying the newer live versionstamp.
            assert not result.ok
            assert result.versionstamp is not None
            assert result.versionstamp > entry.versionstamp
            conflicts += 1
    return commits, conflicts


def _check_history(logs: Sequence[WriterLog], initial_stamp: str, final_stamp: str, final_value: object) -> None:
    """The count equals the committed writes, and the versionstamps tell one serial history."""
    planned = sum(len(commits) for commits, _ in logs)
    stamps = [stamp for commits, _ in logs for stamp, _ in commits]
    assert final_value == planned
    assert len(stamps) == planned
    assert all(VERSIONSTAMP.fullmatch(stamp) for stamp in stamps)
    assert len(set(stamps)) == len(stamps), "two committed writes share a versionstamp"
    for commits, _ in logs:
        own = [stamp for stamp, _ in commits]
        assert all(a < b for a, b in pairwise(own)), "a writer's versionstamps went backwards"
    assert min(stamps) > initial_stamp
    assert max(stamps) == final_stamp
    # In versionstamp order the committed writes wrote 1, 2, ..., planned: every increment saw the one before.
    in_order = sorted(commit for commits, _ in logs for commit in commits)
    assert [value for _, value in in_order] == list(range(1, planned + 1))


def _start(kv: KVStore) -> str:
    result = kv.set(KEY, 0)
    assert result.committed
    assert result.versionstamp is not None
    return result.versionstamp


def _final(kv: KVStore) -> tuple[str, object]:
    entry = kv.get(KEY)
    assert entry is not None
    return entry.versionstamp, entry.value


# -- threads -----------------------------------------------------------------------------------------------


def _run_threads(work: Callable[[int], WriterLog], count: int) -> list[WriterLog]:
    """Run ``work(i)`` in ``count`` threads at once and return their logs; a thread's failure fails the test."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(work, index) for index in range(count)]
        return [future.result(timeout=WAIT) for future in futures]


def test_threads_sharing_one_store_count_every_committed_increment(stores: Stores) -> None:
    with stores.open(busy_timeout=LONG_BUSY_TIMEOUT) as kv:
        initial = _start(kv)
        start = threading.Barrier(THREADS)

        def work(_: int) -> WriterLog:
            start.wait(timeout=WAIT)
            return _increment(kv, INCREMENTS_PER_THREAD)

        logs = _run_threads(work, THREADS)
        assert sum(len(commits) for commits, _ in logs) == THREADS * INCREMENTS_PER_THREAD
        _check_history(logs, initial, *_final(kv))


def test_threads_each_with_its_own_store_on_one_database(shared_target: str) -> None:
    with KVStore(shared_target) as kv:
        initial = _start(kv)
    start = threading.Barrier(THREADS)

    def work(_: int) -> WriterLog:
        with KVStore(shared_target, busy_timeout=LONG_BUSY_TIMEOUT) as own:
            start.wait(timeout=WAIT)
            return _increment(own, INCREMENTS_PER_THREAD)

    logs = _run_threads(work, THREADS)
    with KVStore(shared_target) as kv:
        assert sum(len(commits) for commits, _ in logs) == THREADS * INCREMENTS_PER_THREAD
        _check_history(logs, initial, *_final(kv))


def test_namespaces_count_independently_under_threads(shared_target: str) -> None:
    with KVStore(shared_target, busy_timeout=LONG_BUSY_TIMEOUT) as kv:
        names = ["alpha", "beta"]
        initial = {name: kv.namespace(name).set(KEY, 0).versionstamp for name in names}
        start = threading.Barrier(THREADS)

        def work(index: int) -> WriterLog:
            start.wait(timeout=WAIT)
            return _increment(kv.namespace(names[index % 2]), INCREMENTS_PER_THREAD)

        logs = _run_threads(work, THREADS)
        for offset, name in enumerate(names):
            entry = kv.namespace(name).get(KEY)
            assert entry is not None
            stamp = initial[name]
            assert stamp is not None
            _check_history(logs[offset::2], stamp, entry.versionstamp, entry.value)
        assert kv.get(KEY) is None  # the default namespace was never written
        # One versionstamp sequence per database: no two commits anywhere share one.
        every = [stamp for commits, _ in logs for stamp, _ in commits]
        assert len(set(every)) == len(every)


def test_a_reader_that_sees_a_commit_sees_every_earlier_one(shared_target: str) -> None:
    """Versionstamps follow commit order across keys: any snapshot holds a prefix of the commit history.

    Writers set distinct keys; a reader takes snapshots of all of them. Within a snapshot, every write with
    a versionstamp below the newest one it shows must be visible too (else a later commit was visible
    before an earlier one, or two commits were numbered out of their real order).
    """
    keys = [f"w{writer}/{step:03d}" for writer in range(4) for step in range(40)]
    with KVStore(shared_target, busy_timeout=LONG_BUSY_TIMEOUT) as kv:
        start = threading.Barrier(5)
        stamps: dict[str, str] = {}
        lock = threading.Lock()

        def write(writer: int) -> None:
            start.wait(timeout=WAIT)
            for step in range(40):
                key = f"w{writer}/{step:03d}"
                result = kv.set(key, step)
                assert result.versionstamp is not None
                with lock:
                    stamps[key] = result.versionstamp

        def read() -> list[dict[str, str]]:
            start.wait(timeout=WAIT)
            return [{e.key: e.versionstamp for e in kv.get_many(keys) if e is not None} for _ in range(60)]

        with ThreadPoolExecutor(max_workers=5) as pool:
            reader = pool.submit(read)
            writers = [pool.submit(write, writer) for writer in range(4)]
            snapshots = reader.result(timeout=WAIT)
            for writer in writers:
                writer.result(timeout=WAIT)
        assert len(set(stamps.values())) == len(keys)
        for snapshot in snapshots:
            assert all(stamps[key] == stamp for key, stamp in snapshot.items())
            if snapshot:
                newest = max(snapshot.values())
                assert {key for key, stamp in stamps.items() if stamp <= newest} == set(snapshot)


# -- processes ---------------------------------------------------------------------------------------------


def _process_writer(path: str, index: int, times: int, start: Barrier, reports: Queue[Report]) -> None:
    """A spawned child: open its own store, wait for the others, increment, and report back."""
    try:
        with KVStore(path, busy_timeout=LONG_BUSY_TIMEOUT) as kv:
            start.wait(timeout=WAIT)
            commits, conflicts = _increment(kv, times)
        reports.put((index, commits, conflicts, None))
    except BaseException as exc:
        start.abort()
        reports.put((index, [], 0, f"{type(exc).__name__}: {exc}"))
        raise


def _process_opener(path: str, index: int, times: int, start: Barrier, reports: Queue[Report]) -> None:
    """A spawned child: open a store on a file that may not exist yet, all children at once."""
    try:
        start.wait(timeout=WAIT)
        with KVStore(path, busy_timeout=LONG_BUSY_TIMEOUT) as kv:
            first = kv.set(KEY, 0, if_not_exists=True)
            commits = [(first.versionstamp, 0)] if first.committed and first.versionstamp else []
            more, conflicts = _increment(kv, times)
        reports.put((index, commits + more, conflicts, None))
    except BaseException as exc:
        start.abort()
        reports.put((index, [], 0, f"{type(exc).__name__}: {exc}"))
        raise


def _process_count(target: str) -> int:
    """How many processes race on ``target``: 8 on PostgreSQL (a server takes more writers than a file)."""
    return 8 if target.startswith("postgresql") else PROCESSES


def _run_processes(target: Callable[[str, int, int, Barrier, Queue[Report]], None], path: str) -> list[Report]:
    """Spawn children running ``target`` and collect their reports, in writer order."""
    processes = _process_count(path)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(processes)
    reports: Queue[Report] = ctx.Queue()
    children = [
        ctx.Process(target=target, args=(path, index, INCREMENTS_PER_PROCESS, start, reports), daemon=True)
        for index in range(processes)
    ]
    for child in children:
        child.start()
    try:
        # Drain the queue before joining: a child cannot exit while its report is unread in the pipe.
        collected = sorted(reports.get(timeout=WAIT) for _ in children)
    finally:
        for child in children:
            child.join(timeout=WAIT)
            if child.is_alive():
                child.kill()
                child.join()
    errors = [error for _, _, _, error in collected if error is not None]
    assert not errors, errors
    assert [child.exitcode for child in children] == [0] * processes
    assert [index for index, _, _, _ in collected] == list(range(processes))
    return collected


@pytest.mark.slow
def test_processes_count_every_committed_increment(shared_target: str) -> None:
    with KVStore(shared_target) as kv:
        initial = _start(kv)
    reports = _run_processes(_process_writer, shared_target)
    logs = [(commits, conflicts) for _, commits, conflicts, _ in reports]
    committed = sum(len(commits) for commits, _ in logs)
    assert committed == _process_count(shared_target) * INCREMENTS_PER_PROCESS
    with KVStore(shared_target) as kv:
        _check_history(logs, initial, *_final(kv))
    _assert_intact(shared_target)


@pytest.mark.slow
def test_processes_opening_a_new_database_at_once_migrate_it_once(shared_target: str) -> None:
    reports = _run_processes(_process_opener, shared_target)
    logs = [(commits, conflicts) for _, commits, conflicts, _ in reports]
    # Exactly one child created the counter (value 0); the increments then count from it.
    creators = [commits[0] for commits, _ in logs if commits and commits[0][1] == 0]
    assert len(creators) == 1
    initial = creators[0][0]
    increments = [([c for c in commits if c[1] != 0], conflicts) for commits, conflicts in logs]
    assert sum(len(commits) for commits, _ in increments) == _process_count(shared_target) * INCREMENTS_PER_PROCESS
    with KVStore(shared_target) as kv:
        _check_history(increments, initial, *_final(kv))
        assert kv.info().schema_revision == HEAD  # one row in the version table: migrated once
    _assert_intact(shared_target)


# -- fork --------------------------------------------------------------------------------------------------


def _assert_intact(target: str) -> None:
    """SQLite's integrity check passes on a file (PostgreSQL keeps its own integrity)."""
    if target.startswith("postgresql"):
        return
    raw = sqlite3.connect(target)
    try:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        raw.close()


def _refused_after_fork(call: Callable[[], object]) -> str:
    """What a child's use of a database open in its parent at the fork comes to."""
    try:
        call()
    except ForkedStoreError as exc:
        return "refused" if "fork" in str(exc) else f"other: {exc}"
    return "worked"


@needs_fork
def test_a_store_inherited_through_fork_fails_clearly_and_the_parent_keeps_working(db_path: Path) -> None:
    """SQLite's lock bookkeeping is per process and inherited by a child, whose connections to that file
    would then take no locks: it could write into a WAL its parent deletes. So the child is refused."""
    with KVStore(str(db_path)) as kv:
        before = kv.set(KEY, 1)
        inherited = sqlite_connection(kv)  # white-box: the parent's connection, never used in the child

        def child() -> object:
            outcomes = [
                _refused_after_fork(lambda: kv.get(KEY)),
                _refused_after_fork(lambda: kv.set(KEY, 2)),
                _refused_after_fork(lambda: KVStore(str(db_path))),  # a fresh store on the same file too
            ]
            with KVStore(str(db_path.parent / "child.db")) as other:  # another file is fine
                other.set("k", "child")
                entry = other.get("k")
                outcomes.append("other file works" if entry is not None and entry.value == "child" else "broken")
            return outcomes

        assert Forked(child).join() == ["refused", "refused", "refused", "other file works"]
        entry = kv.get(KEY)
        assert entry is not None
        assert (entry.value, entry.versionstamp) == (1, before.versionstamp)
        assert before.versionstamp is not None
        after = kv.set(KEY, 3, if_versionstamp=before.versionstamp)
        assert after.committed
        assert sqlite_connection(kv) is inherited
    _assert_intact(str(db_path))


@needs_fork
# Python 3.12+ warns that forking a multi-threaded process may deadlock; this test forks one on purpose.
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_fork_while_another_thread_holds_a_connection(db_path: Path) -> None:
    """The parent's other threads keep their connections across the fork; the child is refused the file."""
    with KVStore(str(db_path), busy_timeout=LONG_BUSY_TIMEOUT) as kv:
        kv.set(KEY, 0)
        ready, forked = threading.Event(), threading.Event()

        def other_thread() -> WriterLog:
            log = _increment(kv, 1)  # opens this thread's own connection
            ready.set()
            assert forked.wait(timeout=WAIT)
            commits, conflicts = _increment(kv, 5)  # and uses it again after the fork
            return log[0] + commits, log[1] + conflicts

        with ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(other_thread)
            assert ready.wait(timeout=WAIT)
            try:
                child_outcome = Forked(lambda: _refused_after_fork(lambda: _increment(kv, 1))).join()
            finally:
                forked.set()
            thread_commits, _ = future.result(timeout=WAIT)
        main_commits, _ = _increment(kv, 5)
        assert child_outcome == "refused"
        final = kv.get(KEY)
        assert final is not None
        assert final.value == 1 + 5 + 5
        every = [stamp for stamp, _ in thread_commits + main_commits]
        assert len(set(every)) == len(every)
        assert final.versionstamp == max(every)
    _assert_intact(str(db_path))


@needs_fork
def test_forked_child_gets_a_private_copy_of_an_in_memory_store() -> None:
    with KVStore(":memory:") as kv:
        kv.set(KEY, 1)

        def child() -> object:
            entry = kv.get(KEY)
            assert entry is not None
            assert entry.value == 1
            assert kv.set(KEY, 2, if_versionstamp=entry.versionstamp).committed
            written = kv.get(KEY)
            assert written is not None
            return written.value

        assert Forked(child).join() == 2
        entry = kv.get(KEY)
        assert entry is not None
        assert entry.value == 1  # the child's copy was its own
        assert kv.set(KEY, 5, if_versionstamp=entry.versionstamp).committed


# -- a held write lock -------------------------------------------------------------------------------------


@pytest.fixture
def locked(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A store with KEY=0 on ``db_path``, and a raw connection holding its write lock (BEGIN IMMEDIATE)."""
    with KVStore(str(db_path)) as kv:
        kv.set(KEY, 0)
        kv.set("other", "x")
    raw = sqlite3.connect(db_path, isolation_level=None)
    raw.execute("BEGIN IMMEDIATE")
    try:
        yield raw
    finally:
        if raw.in_transaction:
            raw.execute("ROLLBACK")
        raw.close()


def test_opening_a_new_file_waits_for_the_lock_up_to_the_busy_timeout(db_path: Path) -> None:
    """An opener that must create the schema while another connection writes waits, then fails cleanly."""
    raw = sqlite3.connect(db_path, isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("CREATE TABLE app (x)")  # a new file, still in rollback-journal mode, being written
        began = time.monotonic()
        with pytest.raises(StoreBusyError):
            KVStore(str(db_path), busy_timeout=0.5)
        # It waited for the lock as long as it was told to, rather than giving up at once.
        assert time.monotonic() - began >= 0.4
        raw.execute("COMMIT")
    finally:
        raw.close()
    with KVStore(str(db_path)) as kv:
        assert kv.set(KEY, 1).committed
    with sqlite3.connect(db_path) as check:
        assert check.execute("SELECT name FROM sqlite_master WHERE name = 'app'").fetchall() == [("app",)]
    _assert_intact(str(db_path))


def test_writer_that_cannot_get_the_lock_raises_store_busy(db_path: Path, locked: sqlite3.Connection) -> None:
    with KVStore(str(db_path), busy_timeout=0.1) as kv:
        entry = kv.get(KEY)
        assert entry is not None
        attempts: list[Callable[[], object]] = [
            lambda: kv.set(KEY, 1),
            lambda: kv.set(KEY, 1, if_versionstamp=entry.versionstamp),
            lambda: kv.set("new", 1, if_not_exists=True),
            lambda: kv.delete("other"),
            lambda: kv.namespace("elsewhere").set(KEY, 1),
            kv.purge_expired,
        ]
        for attempt in attempts:
            began = time.monotonic()
            with pytest.raises(StoreBusyError) as caught:
                attempt()
            # busy_timeout=0.1 was honoured, not the 5 s default.
            assert time.monotonic() - began < 4.0
            assert isinstance(caught.value, KVError)
            assert not isinstance(caught.value, sqlite3.Error)
            assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
            assert caught.value.to_problem()["status"] == 503

        # Reads never need the write lock.
        again = kv.get(KEY)
        assert again is not None
        assert (again.value, again.versionstamp) == (0, entry.versionstamp)
        assert [e.key if e else None for e in kv.get_many([KEY, "other", "new"])] == [KEY, "other", None]
        assert kv.list().keys == [KEY, "other"]

        # Once the lock is released the same store writes, and nothing from the failed attempts was written.
        locked.execute("ROLLBACK")
        result = kv.set(KEY, 1, if_versionstamp=entry.versionstamp)
        assert result.committed
        assert kv.get("new") is None
        assert kv.namespace("elsewhere").get(KEY) is None
    _assert_intact(str(db_path))


@pytest.mark.parametrize("target", ["file", "memory"])
def test_closing_a_store_while_threads_use_it_ends_them_cleanly(tmp_path: Path, target: str) -> None:
    """close() waits for each connection's operation in flight: sqlite3 crashes if a busy connection closes."""
    kv = KVStore(str(tmp_path / "kv.db") if target == "file" else ":memory:")
    kv.set("k", 0)
    barrier = threading.Barrier(5)
    outcomes: list[str] = []

    def hammer() -> None:
        barrier.wait()
        try:
            while True:
                kv.get("k")
                kv.set("k", 1)
                kv.list()
        except StoreClosedError:
            outcomes.append("closed")

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    barrier.wait()
    kv.close()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert outcomes == ["closed"] * 4
