"""AsyncKVStore's reads: they never wait behind writes, a short SQLite get never leaves the event loop, and
every read sees the writes awaited before it (read your own writes).

Whether a get left the loop is seen from the loop itself: a callback scheduled just before the get runs only
if the get waited for something.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kvstore import AsyncKVStore, Entry, InvalidKeyError, KVStore
from kvstore._backends.sqlite.loopread import LOOP_VALUE_MAX

from ._aio_support import WAIT, GateClock, run, submitted
from .conftest import store_target


@pytest.fixture(params=["file", "memory", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_target(request, request.param, tmp_path / "reads.db")


@pytest.fixture(params=["file", "memory"])
def sqlite_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_target(request, request.param, tmp_path / "reads.db")


async def read_and_see(read: Coroutine[Any, Any, Entry | None]) -> tuple[bool, Entry | None]:
    """Await ``read``: whether that let the loop run anything else (a callback scheduled just before it),
    and what it returned."""
    ran: list[bool] = []
    asyncio.get_running_loop().call_soon(ran.append, True)
    entry = await read
    return bool(ran), entry


async def held_elsewhere(lock: AbstractContextManager[object]) -> Callable[[], None]:
    """Hold ``lock`` on a thread of its own until the function returned is called."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            release.wait(WAIT)

    holder = threading.Thread(target=hold)
    holder.start()
    assert await asyncio.to_thread(held.wait, WAIT)

    def let_go() -> None:
        release.set()
        holder.join()

    return let_go


def test_a_short_get_on_sqlite_returns_without_leaving_the_loop(sqlite_target: str) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(sqlite_target) as kv:
            await kv.set("small", {"a": [1, 2, 3]}, metadata={"m": 1})
            assert await read_and_see(kv.get("missing")) == (False, None)
            left, entry = await read_and_see(kv.get("small"))
            assert not left
            assert entry is not None
            assert (entry.value, entry.metadata) == ({"a": [1, 2, 3]}, {"m": 1})
            assert entry == await asyncio.to_thread(KVStore.get, kv._core.store, "small")  # type: ignore[arg-type]

    run(scenario)


def test_a_large_value_is_read_off_the_loop_and_whole(sqlite_target: str) -> None:
    big = "x" * LOOP_VALUE_MAX
    fat_metadata = {"note": "y" * LOOP_VALUE_MAX}

    async def scenario() -> None:
        async with AsyncKVStore(sqlite_target, max_metadata_size=2 * LOOP_VALUE_MAX) as kv:
            await kv.set("big", big)
            await kv.set("fat", "small", metadata=fat_metadata)
            for _ in range(2):  # the second time, straight to a thread: the key is known to be large
                left, entry = await read_and_see(kv.get("big"))
                assert left
                assert entry is not None
                assert entry.value == big
            left, entry = await read_and_see(kv.get("fat"))
            assert left
            assert entry is not None
            assert (entry.value, entry.metadata) == ("small", fat_metadata)
            await kv.set("big", "small now")
            left, entry = await read_and_see(kv.get("big"))  # on a thread, which finds it small again
            assert left
            assert entry is not None
            assert entry.value == "small now"
            left, again = await read_and_see(kv.get("big"))
            assert not left
            assert again == entry

    run(scenario)


def test_a_get_that_refreshes_its_entry_runs_off_the_loop_and_extends_it(target: str) -> None:
    clock = GateClock()

    async def scenario() -> None:
        async with AsyncKVStore(target, clock=clock) as kv:
            first = await kv.set("session", "s", expire_in=timedelta(minutes=2), refresh_on_access=True)
            clock.now += 60
            entry = await kv.get("session")
            assert entry is not None
            assert first.expires_at is not None
            assert entry.expires_at == first.expires_at + timedelta(seconds=60)
            clock.now += 100  # past the first expiry, within the refreshed one
            assert (await kv.get("session")) is not None

    run(scenario)


def test_reads_do_not_wait_behind_a_write_in_progress(target: str) -> None:
    clock = GateClock()

    async def scenario() -> None:
        async with AsyncKVStore(target, clock=clock) as kv:
            await kv.set("a", 1)
            await kv.set("b", 2)
            gate = clock.hold()
            write = asyncio.create_task(kv.set("a", 10))
            await gate.wait_entered()  # the write thread is inside set(): it holds up every later write
            # Each read also reads the clock: hold none of them.
            assert (await kv.get("a")).value == 1  # type: ignore[union-attr]
            assert [e.value for e in await kv.get_many(["a", "b"]) if e] == [1, 2]
            assert (await kv.list()).keys == ["a", "b"]
            assert (await kv.list_keys()).keys == ["a", "b"]
            assert await kv.count() == 2
            assert (await kv.info()).entries == 2
            assert not write.done()
            gate.release.set()
            assert (await write).committed
            assert (await kv.get("a")).value == 10  # type: ignore[union-attr]

    run(scenario)


def test_a_read_in_progress_holds_up_no_other_read(target: str) -> None:
    clock = GateClock()

    async def scenario() -> None:
        async with AsyncKVStore(target, clock=clock) as kv:
            await kv.set("a", 1)
            assert await kv.count() == 1  # the read lane has a thread, now free
            gate = clock.hold()
            listing = asyncio.create_task(kv.list())
            await gate.wait_entered()  # a read thread is inside list() and stays there
            assert await kv.count() == 1  # on another read thread, started for it
            assert [e.value for e in await kv.get_many(["a"]) if e] == [1]
            assert (await kv.get("a")).value == 1  # type: ignore[union-attr]
            assert not listing.done()
            gate.release.set()
            assert (await listing).keys == ["a"]

    run(scenario)


def test_a_busy_in_memory_store_reads_on_a_thread_when_it_comes_free() -> None:
    async def scenario() -> None:
        async with AsyncKVStore(":memory:") as kv:
            await kv.set("k", "v")
            store = kv._core.store
            assert store is not None
            release = await held_elsewhere(store._backend._shared.lock)  # type: ignore[attr-defined]
            read = asyncio.create_task(kv.get("k"))
            for _ in range(20):
                await asyncio.sleep(0)  # the loop runs on: the read waits on a thread, not here
            assert not read.done()
            release()
            entry = await read
            assert entry is not None
            assert entry.value == "v"

    run(scenario)


def test_every_task_reads_its_own_writes(target: str) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(target) as kv:

            async def one(i: int) -> None:
                for round_ in range(5):
                    done = await kv.set(f"own/{i % 16}/{i}", [i, round_])
                    entry = await kv.get(f"own/{i % 16}/{i}")
                    assert entry is not None
                    assert (entry.value, entry.versionstamp) == ([i, round_], done.versionstamp)

            await asyncio.gather(*(one(i) for i in range(64)))

    run(scenario)


def test_a_loop_side_read_sees_a_commit_made_by_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"

    async def scenario() -> None:
        async with AsyncKVStore(path) as kv:
            await kv.set("k", 1)
            with KVStore(path) as other:
                for value in range(2, 6):
                    assert (await kv.get("k")).value == value - 1  # type: ignore[union-attr]
                    await asyncio.to_thread(other.set, "k", value)  # no read snapshot stays open
                assert (await kv.get("k")).value == 5  # type: ignore[union-attr]

    run(scenario)


def test_gets_read_together_each_get_their_own_entry(target: str) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(target) as kv:
            await kv.set("shared", {"list": [1]})
            await kv.set("other", "o")
            keys = ["shared", "other", "missing", "shared", "shared"]
            entries = await asyncio.gather(*(kv.get(key) for key in keys))
            assert [entry.value if entry else None for entry in entries] == [
                {"list": [1]}, "o", None, {"list": [1]}, {"list": [1]},
            ]  # fmt: skip
            shared = [entry for entry in entries if entry and entry.key == "shared"]
            assert len({id(entry.value) for entry in shared}) == 3  # values are mutable: never shared

    run(scenario)


def test_a_bad_key_fails_its_own_get_alone(target: str) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(target) as kv:
            await kv.set("good", 1)
            tasks = [asyncio.create_task(kv.get(key)) for key in ("good", "bad key", "good")]
            await submitted()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert isinstance(results[1], InvalidKeyError)
            assert [entry.value for entry in (results[0], results[2])] == [1, 1]  # type: ignore[union-attr]

    run(scenario)


def test_gets_of_many_views_at_once_read_their_own_namespaces(target: str) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(target) as kv:
            views = [kv, *[await kv.namespace(f"ns{i}") for i in range(3)]]
            for view in views:
                await view.set("k", view.name)
            entries = await asyncio.gather(*(view.get("k") for view in views * 8))
            assert [entry.value if entry else None for entry in entries] == [view.name for view in views * 8]

    run(scenario)


def test_a_get_whose_loop_connection_is_in_use_reads_on_a_thread(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(tmp_path / "busy.db") as kv:
            await kv.set("k", "v")
            reader = kv._core.reader
            assert reader is not None
            release = await held_elsewhere(reader._lock)  # another thread uses the loop's connection
            try:
                left, entry = await read_and_see(kv.get("k"))
            finally:
                release()
            assert left
            assert entry is not None
            assert entry.value == "v"
            assert await read_and_see(kv.get("k")) == (False, entry)

    run(scenario)
