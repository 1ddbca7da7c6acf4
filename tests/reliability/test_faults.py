"""Faults: a full disk or page limit, a file-size limit mid-purge, a newer schema, and fork.

tests/test_storage_errors.py, tests/test_storage_open.py and tests/test_concurrency.py already prove the
basic cases (StorageFullError when the page limit is reached and writes after raising it, read-only files,
newer schemas refused byte for byte, a forked child using fresh connections); docs/guarantees.md lists
them. This module adds what they leave out: freeing space by deleting and purging inside the limit,
repeated fill/free cycles, an I/O error in the middle of a multi-batch purge, a genuinely full file
system, a newer schema whose WAL a crash left behind, revision strings that try to be paths or SQL, and
forks at awkward moments.
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import msgpack
import pytest

from kvstore import KVError, KVStore, SchemaVersionError, StorageFullError
from kvstore._checksum import checksum
from kvstore._codec import CONTENT_TYPE_JSON as JSON
from kvstore._migrate import VERSION_TABLE

from ..conftest import sqlite_connection
from ._support import HERE, WAIT, Child, Forked, child_env, counter, dump, integrity, raw, stamp_number

pytestmark = pytest.mark.reliability

OK: Final = [("ok",)]
MIN_TTL_MS: Final = 60_000
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="this platform has no os.fork")


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _limit_pages(kv: KVStore, extra: int) -> None:
    """Cap the database at its current size plus ``extra`` pages (this thread's connection)."""
    conn = sqlite_connection(kv)
    pages: int = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + extra}")


def _fill(kv: KVStore, prefix: str, rng: random.Random, *, expiring: bool) -> dict[str, str]:
    """Write until StorageFullError; return what was acknowledged."""
    acked: dict[str, str] = {}
    for n in range(100_000):
        key = f"{prefix}/{n}"
        space = kv if n % 2 else kv.namespace("other")
        try:
            result = space.set(key, rng.randbytes(rng.randrange(100, 6000)), expire_in=MIN_TTL_MS if expiring else None)
        except StorageFullError:
            return acked
        assert result.versionstamp is not None
        acked[f"{space.name}:{key}"] = result.versionstamp
    raise AssertionError("the page limit was never reached")


def _assert_present(kv: KVStore, acked: dict[str, str]) -> None:
    for slot, stamp in acked.items():
        ns, key = slot.split(":")
        entry = kv.namespace(ns).get(key)
        assert entry is not None, f"{slot} lost"
        assert entry.versionstamp == stamp


def test_full_store_frees_space_by_deleting_and_purging_within_the_limit(tmp_path: Path) -> None:
    """At the page limit reads go on, delete and purge_expired still work, and their space is reused."""
    path = tmp_path / "full.db"
    clock = _Clock()
    rng = random.Random(1)
    with KVStore(path, clock=clock, auto_purge_every=0, purge_batch_size=20) as kv:
        _limit_pages(kv, 150)
        permanent = _fill(kv, "keep", rng, expiring=False)
        assert permanent
        _limit_pages(kv, 150)
        expiring = _fill(kv, "ttl", rng, expiring=True)
        assert len(expiring) > 40  # several purge batches' worth
        _limit_pages(kv, 0)
        with pytest.raises(StorageFullError):
            kv.set("one-more", rng.randbytes(6000))
        _assert_present(kv, permanent | expiring)  # still readable, nothing lost

        # Deleting needs no new pages, so it works at the limit; the freed pages take new writes.
        doomed = sorted(permanent)[: len(permanent) // 2]
        for slot in doomed:
            ns, key = slot.split(":")
            assert kv.namespace(ns).delete(key)
            del permanent[slot]
        refilled = _fill(kv, "refill", rng, expiring=False)
        assert refilled, "the space freed by deletes was not reused"

        clock.now += 61
        assert kv.purge_expired() == len(expiring)  # a multi-batch purge at the limit
        again = _fill(kv, "after-purge", rng, expiring=False)
        assert again, "the space freed by the purge was not reused"
        _assert_present(kv, permanent | refilled | again)
    assert integrity(path) == OK


def test_repeated_fill_and_free_cycles_keep_the_file_sound(tmp_path: Path) -> None:
    path = tmp_path / "cycles.db"
    clock = _Clock()
    rng = random.Random(2)
    kept: dict[str, str] = {}
    with KVStore(path, clock=clock, auto_purge_every=0, purge_batch_size=7) as kv:
        _limit_pages(kv, 120)
        for cycle in range(8):
            expiring = _fill(kv, f"ttl{cycle}", rng, expiring=True)
            assert expiring, f"cycle {cycle}: no room was freed by the previous cycle"
            _limit_pages(kv, 40)
            permanent = _fill(kv, f"keep{cycle}", rng, expiring=False)
            _assert_present(kv, kept | expiring | permanent)
            assert integrity(path) == OK, f"cycle {cycle}, full"
            # Free: the expiring half by purging, a third of the permanent entries by deleting.
            clock.now += 61
            assert kv.purge_expired() == len(expiring)
            for slot in sorted(permanent)[::3]:
                ns, key = slot.split(":")
                assert kv.namespace(ns).delete(key)
                del permanent[slot]
            kept |= permanent
            _assert_present(kv, kept)
            assert integrity(path) == OK, f"cycle {cycle}, freed"
            _limit_pages(kv, 0)  # later cycles live in the space this one freed
    with KVStore(path) as kv:
        _assert_present(kv, kept)


def test_io_error_midway_through_a_multi_batch_purge(tmp_path: Path) -> None:
    """RLIMIT_FSIZE stops the WAL growing mid-purge: a StorageError, whole batches, and a clean recovery."""
    path = tmp_path / "limited.db"
    with KVStore(path, auto_purge_every=0) as kv:
        kv.set("keep", "kept")
        for n in range(3000):
            kv.set(f"gone/{n}", n, expire_in=MIN_TTL_MS)
    child = subprocess.run(
        [sys.executable, str(HERE / "_fault_child.py"), "file-limit", str(path)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=WAIT,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    report: dict[str, Any] = json.loads(child.stdout)
    assert report["error"] in ("StorageError", "StorageFullError"), report["error"]
    assert report["storage_error"]
    batches = report["batches"]
    assert all(n == 100 for n in batches), batches  # the batch that failed raised instead of returning
    assert 0 < sum(batches) < report["before"]
    # Committed batches stayed committed, the failing one left no trace.
    assert report["after_failure"] == report["before"] - sum(batches)
    assert report["readable"]
    assert report["purged_later"] == report["after_failure"]
    assert report["written_later"]
    assert integrity(path) == OK
    with KVStore(path) as kv:
        keep = kv.get("keep")
        assert keep is not None
        assert keep.value == "kept"


def _tiny_filesystem_available() -> str | None:
    """Why a 2 MiB tmpfs cannot be mounted in a private namespace here, or None when it can."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return "needs Linux and unshare(1)"
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d"'],
        capture_output=True,
        check=False,
    )
    return None if probe.returncode == 0 else f"cannot mount a tmpfs in a user namespace: {probe.stderr!r}"


def test_a_genuinely_full_file_system(tmp_path: Path) -> None:
    """ENOSPC from a real (tiny tmpfs) file system: StorageFullError, readable, writable once space is freed."""
    reason = _tiny_filesystem_available()
    if reason is not None:
        pytest.skip(reason)
    mount = tmp_path / "tiny"
    mount.mkdir()
    out = tmp_path / "copy.db"
    script = 'mount -t tmpfs -o size=2m tmpfs "$1" && shift && exec "$@"'
    command = [sys.executable, str(HERE / "_fault_child.py"), "tiny-disk", str(mount), str(out)]
    child = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(mount), *command],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=WAIT,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    report: dict[str, Any] = json.loads(child.stdout)
    assert report["full"] == "StorageFullError"
    assert len(report["acked"]) > 50
    assert report["readable"]
    assert report["delete_when_full"] in (True, "StorageFullError")
    assert report["written_after_freeing"]
    assert report["purged"] == "StorageFullError" or report["purged"] > 0
    assert report["readable_at_end"]
    assert stamp_number(report["after_versionstamp"]) > max(map(stamp_number, report["acked"].values()))
    assert integrity(out) == OK
    with KVStore(out) as kv:
        for key, stamp in report["acked"].items():
            if key == "fill/0" and report["delete_when_full"] is True:
                continue
            entry = kv.get(key)
            if entry is None:  # the odd keys expired (and may have been purged)
                assert int(key.split("/")[1]) % 2 == 1, key
            else:
                assert entry.versionstamp == stamp
        after = kv.get("after")
        assert after is not None
        assert after.versionstamp == report["after_versionstamp"]


# -- newer schemas ----------------------------------------------------------------------------------------

_NEWER_WRITER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode = WAL")
conn.execute("PRAGMA wal_autocheckpoint = 0")  # keep everything in the WAL
conn.execute("BEGIN IMMEDIATE")
conn.execute("CREATE TABLE kvstore_future (x)")
conn.execute("INSERT INTO kvstore_future VALUES ('from a newer kvstore')")
conn.execute("UPDATE kvstore_alembic_version SET version_num = '0099'")
conn.execute("COMMIT")
print("committed", flush=True)
sys.stdin.readline()
"""


def test_newer_schema_left_in_a_wal_by_a_crashed_writer_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    with KVStore(path) as kv:
        kv.set("k", "v")
    with subprocess.Popen(
        [sys.executable, "-c", _NEWER_WRITER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as writer:
        assert writer.stdout is not None
        assert writer.stdout.readline() == "committed\n"
        writer.kill()  # the newer kvstore crashes: its commit lives only in the WAL
        writer.wait(WAIT)
    wal = path.with_name(path.name + "-wal")
    assert wal.stat().st_size > 0
    with raw(path) as conn:
        before = dump(conn)
    with pytest.raises(SchemaVersionError, match="0099"):
        KVStore(path)
    with raw(path) as conn:
        assert dump(conn) == before
        assert conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [("0099",)]
    assert integrity(path) == OK


@pytest.mark.parametrize(
    "revision",
    ["head", "base", "", " 0001", "0001 ", "../../../../etc/passwd", "0001'; DROP TABLE kvstore_entries; --", "heads"],
)
def test_revision_strings_that_look_like_paths_sql_or_alembic_words_are_refused(tmp_path: Path, revision: str) -> None:
    path = tmp_path / "odd.db"
    with KVStore(path) as kv:
        kv.set("k", "v")
    with raw(path) as conn:
        conn.execute(f"UPDATE {VERSION_TABLE} SET version_num = ?", (revision,))
        before = dump(conn)
    with pytest.raises(SchemaVersionError):
        KVStore(path)
    with raw(path) as conn:
        assert dump(conn) == before


# -- fork -------------------------------------------------------------------------------------------------


@needs_fork
def test_fork_while_the_stores_connection_is_inside_a_write_transaction(tmp_path: Path) -> None:
    """The child neither sees nor disturbs the parent's open transaction; its own write waits for it.

    Once the parent has committed, the child's write must commit, or fail at once with a clear error.
    A StoreBusyError is wrong: nobody holds the lock any more.
    """
    path = tmp_path / "fork.db"
    with KVStore(path, busy_timeout=5) as kv:
        first = kv.set("k", 0)
        assert first.versionstamp is not None
        conn = sqlite_connection(kv)  # white-box: kvstore's own connection, in a transaction at the fork
        conn.execute("BEGIN IMMEDIATE")
        one = msgpack.packb(1)
        conn.execute(
            "UPDATE kvstore_entries SET value = ?, checksum = ? WHERE key = 'k'", (one, checksum(one, JSON, None))
        )
        read_done, read_done_w = os.pipe()

        def child() -> object:
            try:
                entry = kv.get("k")
            except KVError as exc:  # failing clearly is allowed
                return {"error": type(exc).__name__}
            finally:
                os.write(read_done_w, b"x")
            assert entry is not None
            try:
                result = kv.set("from-child", "hello")  # waits for the parent's commit
            except KVError as exc:
                return {"seen": entry.value, "error": type(exc).__name__}
            return {"seen": entry.value, "stamp": result.versionstamp}

        forked = Forked(child)
        try:
            ready, _, _ = select.select([read_done], [], [], WAIT)
            assert ready, "the child never read"
            assert os.read(read_done, 1) == b"x"
        finally:
            conn.execute("COMMIT")
            os.close(read_done)
            os.close(read_done_w)
        report = forked.join()
        entry = kv.get("k")
        assert entry is not None
        assert entry.value == 1
        assert kv.set("k", 2).committed  # the parent's store still works
        assert report.get("error") != "StoreBusyError", "the child waited out its busy timeout on a free lock"
        if "seen" in report:
            assert report["seen"] == 0  # the uncommitted update was invisible to the child
        if "error" not in report:
            assert report["stamp"] > first.versionstamp
            from_child = kv.get("from-child")
            assert from_child is not None
            assert from_child.versionstamp == report["stamp"]
    assert integrity(path) == OK


@needs_fork
@pytest.mark.parametrize("which", ["inherited", "fresh"])
def test_forked_child_writing_after_its_parent_closed_the_store_loses_nothing(tmp_path: Path, which: str) -> None:
    """A pre-fork server shuts down its store while a worker still writes; then the worker crashes.

    The worker's writes must either be refused with a clear KVError or be durable: every one it saw
    acknowledged is in the file after the SIGKILL.
    """
    path = tmp_path / "shutdown.db"
    child = Child("_fault_child.py", "fork-parent-closes", str(path), which)
    acks: list[list[str]] = []
    try:
        worker = int(child.expect("forked")[1])
        refused = None
        while len(acks) < 110:
            line = child.readline()
            assert line is not None, child.stderr()
            word, *fields = line.split()
            if word == "refused":
                refused = fields[0]
                break
            if word == "ack":
                acks.append(fields)
        os.kill(worker, signal.SIGKILL)  # the worker crashes
        child.proc.wait(WAIT)
        acks += [line.split()[1:] for line in child.rest() if line.startswith("ack")]
        assert refused in (None, "ForkedStoreError", "StoreUnavailableError", "StorageError", "ConfigurationError"), (
            refused
        )
    finally:
        child.close()
    assert integrity(path) == OK
    with KVStore(path) as kv:
        assert kv.get("before-fork") is not None
        lost = [key for key, stamp in acks if (entry := kv.get(key)) is None or entry.versionstamp != stamp]
    assert lost == [], f"{len(lost)} of {len(acks)} acknowledged writes lost, first {lost[:3]}"


@needs_fork
def test_child_forked_with_an_open_store_exits_normally_and_the_parent_stays_durable(tmp_path: Path) -> None:
    """The forked child frees its inherited connections at exit; the parent's later commits all survive.

    If freeing an inherited connection checkpointed and removed the WAL under the parent, the parent's
    later commits would go to an unlinked file and vanish when it is killed.
    """
    path = tmp_path / "forkexit.db"
    child = Child("_fault_child.py", "fork-exit", str(path))
    try:
        status = child.expect("child")[1]
        assert status in ("0", "3"), status  # the child wrote, or was refused with a KVError
        acks = [child.expect("ack")[1:] for _ in range(200)]
        child.kill()
        acks += [line.split()[1:] for line in child.rest()]
    finally:
        child.close()
    assert integrity(path) == OK
    with KVStore(path) as kv:
        assert kv.get("before-fork") is not None
        assert (kv.get("from-child") is not None) == (status == "0")
        for key, stamp in acks:
            entry = kv.get(key)
            assert entry is not None, f"{key} was acknowledged and lost"
            assert entry.versionstamp == stamp
    with raw(path) as conn:
        assert counter(conn) >= max(stamp_number(stamp) for _, stamp in acks)
