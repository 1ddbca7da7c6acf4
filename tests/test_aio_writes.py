"""AsyncKVStore's writes: the writes waiting together commit as one batch (group commit), results arrive only
after that commit, one write's failure is its own, a failed commit fails them all, and a cancelled await never
leaves a half-applied write.

Batches are made deterministic by holding one write (``GateClock``) while the next ones queue behind it; the
commit of a batch is held, or failed, by wrapping the ``write_batch`` the write thread uses (its one seam).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pytest

import kvstore._aio_writes as aio_writes
from kvstore import AsyncKVStore, InvalidValueError, StorageError
from kvstore._group import write_batch

from ._aio_support import WAIT, Gate, GateClock, run, submitted
from .conftest import store_target


@pytest.fixture(params=["file", "memory", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_target(request, request.param, tmp_path / "writes.db")


class Batches:
    """The write thread's ``write_batch``, wrapped: it counts blocks, and can hold or fail a commit."""

    def __init__(self) -> None:
        self.blocks = 0
        self.held: deque[Gate] = deque()
        self.fail: BaseException | None = None

    def hold_commit(self) -> Gate:
        """Hold the next batch at the end of its block, its writes made, before it commits."""
        gate = Gate()
        self.held.append(gate)
        return gate

    @contextlib.contextmanager
    def __call__(self, store: Any) -> Iterator[None]:
        self.blocks += 1
        with write_batch(store):
            yield
            if self.held:
                gate = self.held.popleft()
                gate.entered.set()
                assert gate.release.wait(WAIT), "the test never released the commit"
            if self.fail is not None:
                raise self.fail  # as a failed COMMIT: the block rolls back, and none of its writes happened


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> Batches:
    spy = Batches()
    monkeypatch.setattr(aio_writes, "write_batch", spy)
    return spy


Calls = Mapping[str, Callable[[], Coroutine[Any, Any, Any]]]


async def queue_behind_a_held_write(
    kv: AsyncKVStore, clock: GateClock, calls: Calls
) -> tuple[asyncio.Task[Any], dict[str, asyncio.Task[Any]], Gate]:
    """Hold a lone write, queue ``calls`` behind it (one batch when it is let go); return the held write,
    the queued tasks and its gate, armed: the test releases it."""
    gate = clock.hold()
    first = asyncio.create_task(kv.set("first", 0))
    await gate.wait_entered()
    tasks = {name: asyncio.create_task(call()) for name, call in calls.items()}
    await submitted()
    return first, tasks, gate


def test_writes_waiting_together_commit_as_one_batch_in_call_order(target: str, batches: Batches) -> None:
    clock = GateClock()

    async def scenario() -> None:
        async with AsyncKVStore(target, clock=clock) as kv:
            calls = {f"k{i}": partial(kv.set, f"k{i}", i) for i in range(10)}
            first, tasks, gate = await queue_behind_a_held_write(kv, clock, calls)
            gate.release.set()
            assert (await first).committed
            results = [await task for task in tasks.values()]
            assert batches.blocks == 1  # the held write ran alone, plainly; the ten queued behind it together
            stamps = [result.versionstamp for result in results]
            assert stamps == sorted(stamps)
            assert len(set(stamps)) == 10
            entries = await kv.get_many(list(tasks))
            assert [(e.value, e.versionstamp) for e in entries if e] == list(zip(range(10), stamps, strict=True))

    run(scenario)


def test_a_failing_write_in_a_batch_fails_alone(target: str, batches: Batches) -> None:
    clock = GateClock()

    async def scenario() -> None:
        async with AsyncKVStore(target, clock=clock) as kv:
            await kv.set("text", "not a number")
            calls: Calls = {
                "before": partial(kv.set, "before", 1),
                "stale": partial(kv.set, "text", 2, if_versionstamp="0" * 20),
                "sum": kv.atomic().set("in-atomic", 1).sum("text", 1).commit,
                "after": kv.atomic().sum("counter", 5).commit,
            }
            first, tasks, gate = await queue_behind_a_held_write(kv, clock, calls)
            gate.release.set()
            await first
            results = await asyncio.gather(*tasks.values(), return_exceptions=True)
            outcome: dict[str, Any] = dict(zip(tasks, results, strict=True))
            assert batches.blocks == 1
            assert outcome["before"].committed
            assert not outcome["stale"].ok
            assert isinstance(outcome["sum"], InvalidValueError)
            assert outcome["after"].ok
            entries = await kv.get_many(["before", "text", "in-atomic", "counter"])
            assert [e.value if e else None for e in entries] == [1, "not a number", None, 5]

    run(scenario)


def test_a_failed_commit_fails_every_write_of_its_batch_and_writes_none(target: str, batches: Batches) -> None:
    clock = GateClock()

    async def scenario() -> None:
        async with AsyncKVStore(target, clock=clock) as kv:
            await kv.set("text", "not a number")
            calls: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {
                f"k{i}": partial(kv.set, f"k{i}", i) for i in range(4)
            }
            calls["bad"] = kv.atomic().set("k9", 9).sum("text", 1).commit  # fails by itself
            batches.fail = StorageError("the disk is full")
            first, tasks, gate = await queue_behind_a_held_write(kv, clock, calls)
            gate.release.set()
            assert (await first).committed
            results = await asyncio.gather(*tasks.values(), return_exceptions=True)
            assert [type(result) for result in results] == [StorageError] * 4 + [InvalidValueError]
            assert len({id(result) for result in results}) == 5  # each its own exception to raise
            batches.fail = None
            assert await kv.get_many([*tasks, "k9"]) == [None] * 6
            assert (await kv.set("k0", "again")).committed  # the store goes on

    run(scenario)


def test_prefix_deletes_and_purges_run_alone_in_call_order(target: str, batches: Batches) -> None:
    clock = GateClock()

    async def scenario() -> None:
        async with AsyncKVStore(target, clock=clock) as kv:
            calls: Calls = {
                "a": partial(kv.set, "p/a", 1),
                "b": partial(kv.set, "p/b", 1),
                "wipe": partial(kv.delete_prefix, "p/"),
                "c": partial(kv.set, "p/c", 1),
                "purge": kv.purge_expired,
                "d": partial(kv.set, "p/d", 1),
            }
            first, tasks, gate = await queue_behind_a_held_write(kv, clock, calls)
            gate.release.set()
            await first
            results = {name: await task for name, task in tasks.items()}
            assert results["wipe"] == 2
            assert results["purge"] == 0
            assert (await kv.list_keys("p/")).keys == ["p/c", "p/d"]
            assert batches.blocks == 1  # a and b together; c and d each alone, between the solo calls

    run(scenario)


def test_cancelling_writes_while_their_batch_runs_and_commits(target: str, batches: Batches) -> None:
    """A write cancelled before it started never runs; one that started runs whole, in its batch; the
    writers still awaiting get their results, and only once the batch committed."""
    clock = GateClock()

    async def scenario() -> None:
        async with AsyncKVStore(target, clock=clock) as kv:
            names = "abcdef"
            calls = {name: partial(kv.set, name, i) for i, name in enumerate(names)}
            commit = batches.hold_commit()
            first, tasks, gate = await queue_behind_a_held_write(kv, clock, calls)
            inside = clock.hold()  # the next read of the clock: the batch's first write, "a"
            gate.release.set()
            await inside.wait_entered()  # "a" runs inside the open batch
            tasks["a"].cancel()  # started: it runs whole
            tasks["c"].cancel()  # queued in the batch, not started: skipped
            later = {name: asyncio.create_task(kv.set(name, 9)) for name in ("g", "h")}
            await submitted()
            later["h"].cancel()  # queued for the next batch: never runs
            inside.release.set()
            await commit.wait_entered()  # every write of the batch ran; its commit waits
            assert not any(tasks[name].done() for name in "bdef")  # no result before the commit
            tasks["e"].cancel()  # cancelled while its commit is in flight: it commits all the same
            commit.release.set()
            done = {name: await tasks[name] for name in "bdf"}
            done["g"] = await later["g"]
            for task in (tasks["a"], tasks["c"], tasks["e"], later["h"]):
                with pytest.raises(asyncio.CancelledError):
                    await task
            assert (await first).committed
            keys = [*names, "g", "h"]
            entries = dict(zip(keys, await kv.get_many(keys), strict=True))
            assert {key for key, entry in entries.items() if entry is None} == {"c", "h"}
            assert {key: entry.value for key, entry in entries.items() if entry} == {
                "a": 0, "b": 1, "d": 3, "e": 4, "f": 5, "g": 9,
            }  # fmt: skip
            for name, result in done.items():
                assert result.committed
                assert result.versionstamp == entries[name].versionstamp
            stamps = [entries[name].versionstamp for name in "abdefg"]
            assert stamps == sorted(stamps)
            assert len(set(stamps)) == 6
            assert (await kv.info()).entries == 7  # "first" and the six that ran

    run(scenario)
