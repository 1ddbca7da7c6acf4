"""AsyncKVStore: the KVStore API as coroutines, its lifecycle, and what a cancelled call leaves behind.

Each test runs its own event loop with ``asyncio.run``. A ``GateClock`` (``_aio_support``) lets a test hold
a store call on its thread (every call reads the clock), so "the loop stays free" and "cancelled mid-call"
are shown by events, never by sleeping. Reads are in test_aio_reads.py, group commit in test_aio_writes.py,
the loop under a held write lock in test_aio_loop.py.
"""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kvstore import (
    AsyncAtomicOperation,
    AsyncKVStore,
    AsyncWatch,
    AtomicOperation,
    ConfigurationError,
    Entry,
    FailedCheck,
    ForkedStoreError,
    InvalidKeyError,
    InvalidNamespaceError,
    InvalidOptionsError,
    KVStore,
    Namespace,
    NotADatabaseError,
    StoreClosedError,
    ValueTooLargeError,
)

from ._aio_support import GateClock, run, submitted
from .conftest import START, store_target
from .reliability._support import Forked


@pytest.fixture(params=["file", "memory", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_target(request, request.param, tmp_path / "async.db")


def test_the_whole_api_as_coroutines(target: str) -> None:
    clock = GateClock()

    async def scenario() -> None:
        async with AsyncKVStore(target, clock=clock) as kv:
            first = await kv.set("products/1", {"stock": 3}, metadata={"v": 1})
            assert first.committed
            assert first.created
            entry = await kv.get("products/1")
            assert entry is not None
            assert entry.value == {"stock": 3}
            assert entry.metadata == {"v": 1}
            stale = await kv.set("products/1", 0, if_versionstamp="0" * 20)
            assert not stale.ok
            assert stale.versionstamp == first.versionstamp
            swapped = await kv.set("products/1", {"stock": 2}, if_versionstamp=first.versionstamp)
            assert swapped.committed
            assert swapped.versionstamp is not None
            assert first.versionstamp is not None
            assert swapped.versionstamp > first.versionstamp
            await kv.set("products/2", b"\x00\xff", expire_in=60_000)
            many = await kv.get_many(["products/2", "missing", "products/1"])
            assert [e.value if e else None for e in many] == [b"\x00\xff", None, {"stock": 2}]
            assert (await kv.list("products/")).keys == ["products/1", "products/2"]

            sessions = await kv.namespace("sessions")
            await sessions.set("products/1", "other namespace")
            assert (await sessions.get("products/1")).value == "other namespace"  # type: ignore[union-attr]
            assert (await kv.get("products/1")).value == {"stock": 2}  # type: ignore[union-attr]

            clock.now += 61
            assert await kv.get("products/2") is None
            assert await kv.purge_expired() == 1
            info = await kv.info()
            assert (info.entries, info.expired, info.namespaces) == (2, 0, 2)
            assert await kv.delete("products/1", if_versionstamp=swapped.versionstamp)
            assert not await kv.delete("products/1")

    run(scenario)


def test_every_store_method_has_an_async_twin_with_the_same_signature() -> None:
    names = ["set", "get", "get_many", "delete", "list", "list_keys", "count", "delete_prefix"]
    names += ["namespace", "purge_expired", "info", "close"]
    for name in names:
        method = getattr(AsyncKVStore, name)
        assert inspect.iscoroutinefunction(method), name
        if name not in ("namespace", "close"):
            expected = inspect.signature(getattr(KVStore, name)).parameters
            assert inspect.signature(method).parameters == expected, name
    assert issubclass(KVStore, Namespace)


def test_the_store_takes_the_options_of_kvstore_and_passes_them_through() -> None:
    assert inspect.signature(AsyncKVStore.__init__) == inspect.signature(KVStore.__init__)
    for name in ("check", "set", "delete", "sum", "min", "max"):
        expected = inspect.signature(getattr(AtomicOperation, name)).parameters
        assert inspect.signature(getattr(AsyncAtomicOperation, name)).parameters == expected, name

    async def scenario() -> None:
        async with AsyncKVStore(":memory:", max_value_size=64, max_metadata_size=16) as kv:
            assert (await kv.set("small", "x" * 10)).committed
            with pytest.raises(ValueTooLargeError):
                await kv.set("big", "x" * 100)
            with pytest.raises(ValueTooLargeError):
                await kv.atomic().set("meta", 1, metadata={"note": "x" * 100}).commit()
        with pytest.raises(ConfigurationError, match="busy_timeout"):
            async with AsyncKVStore(":memory:", busy_timeout=-1):
                pass

    run(scenario)


def test_name_and_closed_as_on_kvstore(target: str) -> None:
    async def scenario() -> None:
        kv = AsyncKVStore(target)
        assert kv.name == "default"
        assert not kv.closed
        async with kv:
            users = await kv.namespace("users")
            assert users.name == "users"
            assert not kv.closed
        assert kv.closed
        with pytest.raises(StoreClosedError):
            await kv.get("k")

    run(scenario)
    with KVStore(":memory:") as sync:
        assert (sync.name, sync.namespace("users").name) == ("default", "users")
    assert sync.closed


def test_errors_are_the_store_errors_and_the_store_keeps_working(target: str) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(target) as kv:
            with pytest.raises(InvalidKeyError):
                await kv.set("bad key", 1)
            with pytest.raises(InvalidNamespaceError):
                await kv.namespace("no spaces")
            assert (await kv.set("good", 1)).committed

    run(scenario)


def test_the_loop_runs_while_a_write_is_busy(target: str) -> None:
    clock = GateClock()

    async def scenario() -> None:
        async with AsyncKVStore(target, clock=clock) as kv:
            gate = clock.hold()
            write = asyncio.create_task(kv.set("k", 1))
            await gate.wait_entered()  # the write thread is inside set() and stays there
            ticks = 0
            for _ in range(50):
                await asyncio.sleep(0)  # a yield, not a wait: the loop is free to run us
                ticks += 1
            assert ticks == 50
            assert not write.done()
            gate.release.set()
            assert (await write).committed

    run(scenario)


def test_cancelling_a_running_write_leaves_it_whole_and_the_store_usable(target: str) -> None:
    clock = GateClock()

    async def scenario() -> None:
        async with AsyncKVStore(target, clock=clock) as kv:
            gate = clock.hold()
            write = asyncio.create_task(kv.set("k", {"a": 1}, metadata={"m": True}, expire_in=120_000))
            await gate.wait_entered()
            write.cancel()
            with pytest.raises(asyncio.CancelledError):
                await write  # returns at once, while the write thread is still inside set()
            gate.release.set()
            # Writes apply in the order they were called: once a later one returned, the cancelled one has
            # run, and a read sees all of it.
            assert (await kv.set("later", 1)).committed
            entry = await kv.get("k")
            assert entry is not None
            assert (entry.value, entry.metadata) == ({"a": 1}, {"m": True})
            assert entry.expires_at == datetime.fromtimestamp(START + 120, UTC)
            assert (await kv.set("k", 2, if_versionstamp=entry.versionstamp)).committed

    run(scenario)


def test_cancelling_a_queued_call_means_it_never_runs(target: str) -> None:
    clock = GateClock()

    async def scenario() -> None:
        async with AsyncKVStore(target, clock=clock) as kv:
            gate = clock.hold()
            first = asyncio.create_task(kv.set("first", 1))
            await gate.wait_entered()
            queued = asyncio.create_task(kv.set("queued", 1))
            await submitted()  # it queued its call behind the held one
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
            gate.release.set()
            assert (await first).committed
            assert await kv.get("queued") is None
            assert (await kv.get("first")) is not None

    run(scenario)


def test_a_thousand_concurrent_tasks_all_complete_in_order(target: str) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(target) as kv:

            async def one(i: int) -> str:
                result = await kv.set(f"task/{i:04d}", i)
                entry = await kv.get(f"task/{i:04d}")
                assert entry is not None
                assert entry.value == i
                assert result.versionstamp is not None
                return result.versionstamp

            stamps = await asyncio.gather(*(one(i) for i in range(1000)))
            assert len(set(stamps)) == 1000
            assert stamps == sorted(stamps)  # writes apply in the order they were called
            assert len(await kv.list("task/")) == 1000

    run(scenario)


def test_compare_and_set_from_two_async_stores_on_one_file(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")

    async def scenario() -> None:
        async with AsyncKVStore(path) as a, AsyncKVStore(path) as b:
            await a.set("counter", 0)

            async def increment(kv: AsyncKVStore) -> int:
                commits = 0
                for _ in range(20):
                    entry = await kv.get("counter")
                    assert entry is not None
                    assert isinstance(entry.value, int)
                    done = await kv.set("counter", entry.value + 1, if_versionstamp=entry.versionstamp)
                    commits += done.committed
                return commits

            commits = await asyncio.gather(*(increment(kv) for kv in (a, b, a, b)))
            final = await a.get("counter")
            assert final is not None
            assert final.value == sum(commits) > 0

    run(scenario)


def test_iterate_walks_a_listing_page_by_page(target: str) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(target) as kv:
            for i in range(7):
                await kv.set(f"p/{i}", i)
            await kv.set("q", "not under the prefix")
            seen = [entry async for entry in kv.iterate("p/", page_size=3)]
            assert [e.key for e in seen] == [f"p/{i}" for i in range(7)]
            assert all(isinstance(e, Entry) for e in seen)
            backwards = [e.key async for e in kv.iterate("p/", reverse=True, page_size=2)]
            assert backwards == [f"p/{i}" for i in reversed(range(7))]
            other = await kv.namespace("other")
            assert [e async for e in other.iterate()] == []

    run(scenario)


def test_close_finishes_queued_calls_then_refuses_new_ones(target: str) -> None:
    async def scenario() -> None:
        before = set(threading.enumerate())
        kv = await AsyncKVStore(target).open()
        pending = [asyncio.create_task(kv.set(f"k{i}", i)) for i in range(20)]
        reads = [asyncio.create_task(call) for call in (kv.get_many(["k0"]), kv.list(), kv.count())]
        await submitted()
        threads = set(threading.enumerate()) - before  # the write thread and the read threads
        closing = [asyncio.create_task(kv.close()) for _ in range(2)]  # a second close waits for the first
        await asyncio.gather(*closing)
        assert all(task.result().committed for task in pending)
        assert all(task.done() for task in reads)
        assert threads
        assert not any(thread.is_alive() for thread in threads)
        assert kv.closed
        with pytest.raises(StoreClosedError):
            await kv.get("k0")
        with pytest.raises(StoreClosedError):
            await kv.namespace("x")
        await kv.close()  # twice is harmless

    run(scenario)


def test_a_store_inherited_by_a_forked_child_refuses_every_call_there(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(tmp_path / "forked.db") as kv:
            await kv.set("k", 1)
            assert await kv.get("k") is not None  # the loop-side reader is open

            def child() -> list[str]:
                # The child has no event loop of its own to run: each call is stepped by hand, and must
                # refuse at its first step, before it would wait for a thread that is not there.
                refused = []
                calls: list[Coroutine[Any, Any, object]] = [kv.get("k"), kv.set("k", 2), kv.list(), kv.delete("k")]
                for call in calls:
                    with pytest.raises(ForkedStoreError):
                        call.send(None)
                    refused.append(getattr(call, "__name__", "?"))
                return refused

            assert Forked(child).join() == ["get", "set", "list", "delete"]
            assert (await kv.get("k")).value == 1  # type: ignore[union-attr]
            assert (await kv.set("k", 2)).committed  # the parent's store goes on

    run(scenario)


def test_a_store_that_cannot_open_raises_on_open_and_on_every_call(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not an SQLite database" * 100)

    async def scenario() -> None:
        with pytest.raises(NotADatabaseError):
            async with AsyncKVStore(str(junk)):
                pass
        kv = AsyncKVStore(str(junk))
        with pytest.raises(NotADatabaseError):
            await kv.get("k")
        await kv.close()

    run(scenario)
    assert junk.read_bytes() == b"this is not an SQLite database" * 100


def test_one_store_serves_successive_event_loops(tmp_path: Path) -> None:
    kv = AsyncKVStore(str(tmp_path / "loops.db"))

    async def write() -> None:
        await kv.set("k", "from the first loop")

    async def read_and_close() -> None:
        entry = await kv.get("k")
        assert entry is not None
        assert entry.value == "from the first loop"
        await kv.close()

    run(write)
    run(read_and_close)


ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_asyncio_example_and_the_async_quickstart_run(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Asyncio", 1)[1].split("\n## ", 1)[0]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    done = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True ['products/1', 'products/2', 'products/3', 'products/4']"
    example = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "async_quickstart.py")], capture_output=True, text=True, check=False
    )
    assert example.returncode == 0, example.stderr
    assert "compare-and-set: True" in example.stdout
    assert "keys: ['products/1', 'products/2', 'products/3', 'products/4', 'products/5']" in example.stdout


def test_a_store_opens_nothing_until_it_is_used(tmp_path: Path) -> None:
    path = tmp_path / "lazy.db"
    unused = AsyncKVStore(path)
    used = AsyncKVStore(path)
    threads = threading.active_count()
    assert not path.exists()

    async def scenario() -> None:
        await unused.close()
        with pytest.raises(StoreClosedError):
            await unused.get("k")
        assert threading.active_count() == threads
        await used.set("k", 1)
        assert path.exists()
        await used.close()

    run(scenario)


def test_key_listing_counting_and_prefix_deletes(target: str) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(target) as kv:
            for i in range(4):
                await kv.set(f"p/{i}", i)
            await kv.set("q", 0)
            assert (await kv.list_keys("p/", limit=2)).keys == ["p/0", "p/1"]
            assert await kv.count("p/") == 4
            assert await kv.delete_prefix("p/") == 4
            assert await kv.count() == 1

    run(scenario)


def test_atomic_commits_on_the_write_thread(target: str) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(target) as kv:
            op = kv.atomic()
            assert isinstance(op, AsyncAtomicOperation)
            first = await op.check("a", None).set("a", 1).sum("n", 2).commit()
            assert first.ok
            assert first.versionstamp is not None
            entries = await kv.get_many(["a", "n"])
            assert [entry.value if entry else None for entry in entries] == [1, 2]
            assert {entry.versionstamp for entry in entries if entry} == {first.versionstamp}
            stale = await kv.atomic().check("a", None).set("a", 9).commit()
            assert stale.failed_checks == (FailedCheck(0, "a", first.versionstamp),)
            async with kv.atomic() as managed:
                managed.delete("a").max("n", 7)
            assert managed.result is not None
            assert managed.result.ok
            assert await kv.get("a") is None
            # Calls are replayed on the write thread, so bad input raises from commit() and writes nothing.
            with pytest.raises(InvalidKeyError):
                await kv.atomic().set("ok", 1).set("not ok", 2).commit()
            assert await kv.get("ok") is None
            other = await kv.namespace("other")
            assert (await other.atomic().set("a", "other").commit()).ok
            assert await kv.get("a") is None

    run(scenario)


@pytest.mark.parametrize("keys", ["abc", b"abc", 5, None])
def test_watch_validates_its_keys_as_the_sync_watch_does(keys: Any) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(":memory:") as kv:
            with pytest.raises(InvalidOptionsError):
                kv.watch(keys)
            with pytest.raises(InvalidKeyError):
                kv.watch(["ok", "bad key"])
            with pytest.raises(InvalidOptionsError), KVStore(":memory:") as sync:
                sync.watch(keys)

    run(scenario)


def test_watch_iterates_snapshots_without_blocking_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "watched.db"

    async def scenario() -> None:
        async with AsyncKVStore(path) as kv:
            await kv.set("k", "first")
            async with kv.watch(["k", "missing"], interval=0.01) as watch:
                assert isinstance(watch, AsyncWatch)
                snapshot = await anext(watch)
                assert [entry.value if entry else None for entry in snapshot] == ["first", None]
                await kv.set("k", "second")
                snapshot = await anext(watch)
                assert [entry.value if entry else None for entry in snapshot] == ["second", None]
                script = "import sys; from kvstore import KVStore; KVStore(sys.argv[1]).set('missing', 1)"
                done = await asyncio.create_subprocess_exec(sys.executable, "-c", script, str(path))
                assert await done.wait() == 0
                snapshot = await anext(watch)
                assert [entry.value if entry else None for entry in snapshot] == ["second", 1]
                ticks = 0

                async def tick() -> None:
                    nonlocal ticks
                    while True:
                        ticks += 1
                        await asyncio.sleep(0)

                ticker = asyncio.create_task(tick())
                await kv.delete("k")
                snapshot = await anext(watch)
                ticker.cancel()
                assert snapshot[0] is None
                assert ticks > 0  # the loop kept running while the watch waited
            with pytest.raises(StopAsyncIteration):
                await anext(watch)

    run(scenario)
