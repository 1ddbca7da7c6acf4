"""AsyncKVStore's sets on the loop's own thread (``_aio_set``): a lone small set on a file commits there; a
busy database, a write queued on the thread, a large value, or a store whose commits would sync or wait send
it to the write thread, and versionstamps still increase in the order the writes were made.

The write lock is held by a plain sqlite3 connection, so "busy" is a state, never a timing.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

import kvstore._aio_set as aio_set
from kvstore import AsyncKVStore, InvalidKeyError, KVError, KVStore, SetResult

from ._aio_support import WAIT, run, submitted


def _core(kv: AsyncKVStore) -> Any:
    return kv._core


def _stamp(result: SetResult) -> str:
    assert result.versionstamp is not None
    return result.versionstamp


def _locker(path: Path) -> sqlite3.Connection:
    """A connection holding the database's write lock (until its rollback)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def test_a_lone_small_set_commits_on_the_loop(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(tmp_path / "s.db") as kv:
            core = _core(kv)
            first = await kv.set("k", {"a": [1, 2, "x"]}, metadata={"m": 1})
            made = await kv.get("k")
            assert made is not None
            assert (made.value, made.metadata) == ({"a": [1, 2, "x"]}, {"m": 1})
            again = await kv.set("k", 2)
            assert core.loop_commits == 2
            assert core.pending == 0
            assert (first.created, again.created) == (True, False)
            assert _stamp(again) > _stamp(first)
            entry = await kv.get("k")
            assert entry is not None
            assert (entry.value, entry.versionstamp) == (2, again.versionstamp)
            assert entry.created_at == made.created_at  # a replace keeps the creation time
            users = await kv.namespace("users")
            assert (await users.set("k", 3)).committed
            assert (await kv.get("k")).value == 2  # type: ignore[union-attr]
            assert core.writer._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        with KVStore(tmp_path / "s.db") as sync:
            assert sync.get("k").value == 2  # type: ignore[union-attr]
            assert sync.namespace("users").get("k").value == 3  # type: ignore[union-attr]

    run(scenario)


def test_a_busy_database_sends_the_set_to_the_thread_and_order_holds(tmp_path: Path) -> None:
    path = tmp_path / "s.db"

    async def scenario() -> None:
        async with AsyncKVStore(path) as kv:
            core = _core(kv)
            before = await kv.set("a", 0)
            locker = _locker(path)
            try:
                one = asyncio.create_task(kv.set("a", 1))
                await submitted()
                assert not one.done()
                assert core.pending == 1
                two = asyncio.create_task(kv.set("a", 2))
                await submitted()
                assert not two.done()
                assert core.pending == 2
            finally:
                locker.rollback()
                locker.close()
            first, second = await one, await two
            third = await kv.set("a", 3)
            assert core.loop_commits == 2  # "before" and "third"
            stamps = [_stamp(before), _stamp(first), _stamp(second), _stamp(third)]
            assert stamps == sorted(stamps)
            assert len(set(stamps)) == 4
            assert (await kv.get("a")).value == 3  # type: ignore[union-attr]

    run(scenario)


@pytest.mark.parametrize("value", ["x" * 5000, list(range(1000)), [[[0] * 100] * 100], b"\0" * 4097])
def test_a_large_value_is_encoded_and_written_on_the_thread(tmp_path: Path, value: Any) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(tmp_path / "s.db") as kv:
            assert (await kv.set("big", value)).committed
            assert _core(kv).loop_commits == 0
            assert (await kv.get("big")).value == value  # type: ignore[union-attr]

    run(scenario)


def test_small_walks_only_small_values() -> None:
    assert aio_set.small({"a": [1, 2.5, None, True, "s", b"b"], "n": {"x": (1, 2)}})
    assert not aio_set.small(list(range(300)))
    assert not aio_set.small({"k": "x" * 5000})
    assert not aio_set.small(bytearray(3))  # no type but the JSON ones and bytes


def test_conditional_sets_on_the_loop_and_their_failures_on_the_thread(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(tmp_path / "s.db") as kv:
            made = await kv.set("k", 1, if_not_exists=True)
            assert made.committed
            assert made.created
            refused = await kv.set("k", 2, if_not_exists=True)
            assert not refused.ok
            assert not refused.committed
            swapped = await kv.set("k", 3, if_versionstamp=made.versionstamp)
            assert swapped.committed
            assert _stamp(swapped) > _stamp(made)
            stale = await kv.set("k", 4, if_versionstamp=made.versionstamp)
            assert not stale.ok
            assert (await kv.get("k")).value == 3  # type: ignore[union-attr]

    run(scenario)


def test_bad_input_raises_on_the_loop_and_stores_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(tmp_path / "s.db") as kv:
            with pytest.raises(InvalidKeyError):
                await kv.set("bad key", 1)
            with pytest.raises(KVError):
                await kv.set("k", 1, expire_in=5)  # below the 60 s floor
            assert await kv.get("k") is None
            assert _core(kv).loop_commits == 0

    run(scenario)


def test_a_cancelled_set_that_never_ran_writes_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(tmp_path / "s.db") as kv:
            task = asyncio.create_task(kv.set("k", 1))
            task.cancel()
            assert (await asyncio.gather(task, return_exceptions=True))[0].__class__ is asyncio.CancelledError
            assert await kv.get("k") is None

    run(scenario)


def test_loop_commits_schedule_a_checkpoint_on_a_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []
    done = threading.Event()

    def checkpoint(store: KVStore) -> object:
        ran.append(threading.current_thread().name)
        done.set()
        return store.checkpoint("passive")

    monkeypatch.setattr(aio_set, "CHECKPOINT_EVERY", 3)
    monkeypatch.setattr(aio_set, "_checkpoint", checkpoint)

    async def scenario() -> None:
        async with AsyncKVStore(tmp_path / "s.db") as kv:
            for number in range(3):
                await kv.set(f"k{number}", number)
            assert await asyncio.to_thread(done.wait, WAIT)

    run(scenario)
    assert len(ran) == 1
    assert ran[0] != threading.main_thread().name


@pytest.mark.parametrize("how", ["full", "memory", "clock"])
def test_no_loop_writes_where_a_commit_would_sync_or_wait(tmp_path: Path, how: str) -> None:
    async def scenario() -> None:
        if how == "memory":
            kv = AsyncKVStore(":memory:")
        elif how == "full":
            kv = AsyncKVStore(tmp_path / "s.db", synchronous="FULL")
        else:
            kv = AsyncKVStore(tmp_path / "s.db", clock=lambda: 1_800_000_000.0)
        async with kv:
            assert _core(kv).writer is None
            assert (await kv.set("k", 1)).committed
            assert (await kv.get("k")).value == 1  # type: ignore[union-attr]

    run(scenario)
