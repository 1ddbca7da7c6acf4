"""AsyncKVStore's queues: enqueue, the pull model as coroutines, inspection, and listen_queue on the loop.

Waiting is shown by events and by a held clock (``GateClock``), never by sleeping: a receive that waits
holds no thread, an enqueue through the store wakes it at once, one from another store object reaches it
through the change probe, and a cancelled receive hands its message straight back.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest

from kvstore import (
    AsyncKVStore,
    AsyncMessage,
    InvalidOptionsError,
    KVStore,
    LeaseLostError,
    QueueInfo,
    ValidationError,
)
from kvstore._aio_queue_wait import signal_of

from ._aio_support import WAIT, GateClock, run
from .conftest import START, FakeClock, store_target


@pytest.fixture(params=["file", "memory", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_target(request, request.param, tmp_path / "queue.db")


@pytest.fixture
def shared(shared_target: str) -> str:
    """A database two store objects can share: a file, or PostgreSQL."""
    return shared_target


async def until(condition: Any, what: str) -> None:
    """Poll ``condition()`` on the loop until it holds (a last resort: the state is inside the store)."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.005)


def test_enqueue_receive_ack_and_inspect(target: str, clock: FakeClock) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(target, clock=clock) as kv:
            first = await kv.enqueue({"order": 1}, content_type="application/json")
            later = await kv.enqueue("later", delay=timedelta(seconds=5))
            assert first.ok
            assert first.message_id != later.message_id
            assert await kv.queue_info() == QueueInfo("default", 1, 1, 0, 0)
            peeked = await kv.peek_queue()
            assert [m.id for m in peeked] == [first.message_id]
            message = await kv.receive(lease=10)
            assert isinstance(message, AsyncMessage)
            assert (message.id, message.value, message.attempt, message.queue) == (
                first.message_id, {"order": 1}, 1, "default",
            )  # fmt: skip
            assert message.content_type == "application/json"
            assert message.enqueued_at.tzinfo is UTC
            assert await kv.queue_info() == QueueInfo("default", 0, 1, 1, 0)
            assert await kv.receive() is None  # nothing else due: no wait by default
            await message.ack()
            assert await kv.queue_info() == QueueInfo("default", 0, 1, 0, 0)
            clock.advance(5)
            other = await (await kv.namespace("other")).receive()
            assert other is None  # queues belong to a namespace
            due = await kv.receive()
            assert due is not None
            assert due.value == "later"
            await due.ack()
            assert await kv.clear_dead_letters() == 0

    run(scenario)


def test_atomic_enqueue_exists_only_if_the_commit_succeeds(target: str, clock: FakeClock) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(target, clock=clock) as kv:
            await kv.set("order/1", "new")
            refused = await kv.atomic().check("order/1", None).enqueue("never").commit()
            assert not refused.ok
            assert refused.message_ids == ()
            assert await kv.peek_queue() == []
            done = await kv.atomic().set("order/2", "new").enqueue("mail 2", queue="mail").commit()
            assert done.committed
            assert [m.id for m in await kv.peek_queue("mail")] == list(done.message_ids)
            assert len(done.message_ids) == 1

    run(scenario)


def test_retry_follows_the_backoff_then_dead_letters_the_value(target: str, clock: FakeClock) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(target, clock=clock) as kv:
            await kv.enqueue("webhook", backoff_schedule=[1000], keys_if_undelivered=["dead/webhook"])
            first = await kv.receive()
            assert first is not None
            await first.retry()
            assert await kv.queue_info() == QueueInfo("default", 0, 1, 0, 0)
            assert await kv.receive() is None
            clock.advance(1)
            second = await kv.receive()
            assert second is not None
            assert (second.id, second.attempt) == (first.id, 2)
            await second.retry()  # past the schedule's last interval
            assert await kv.queue_info() == QueueInfo("default", 0, 0, 0, 1)
            dead = await kv.get("dead/webhook")
            assert dead is not None
            assert dead.value == "webhook"
            assert await kv.clear_dead_letters() == 1
            assert await kv.queue_info() == QueueInfo("default", 0, 0, 0, 0)

    run(scenario)


def test_acting_on_a_lost_lease_raises_and_changes_nothing(target: str, clock: FakeClock) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(target, clock=clock) as kv:
            await kv.enqueue("job")
            slow = await kv.receive(lease=1)
            assert slow is not None
            clock.advance(2)
            fast = await kv.receive(lease=30)
            assert fast is not None
            assert (fast.id, fast.attempt) == (slow.id, 2)
            for action in (slow.ack(), slow.retry(), slow.renew()):
                with pytest.raises(LeaseLostError):
                    await action
            assert await kv.queue_info() == QueueInfo("default", 0, 0, 1, 0)
            await fast.ack()
            assert await kv.queue_info() == QueueInfo("default", 0, 0, 0, 0)

    run(scenario)


def test_bad_input_raises_and_writes_nothing(target: str, clock: FakeClock) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(target, clock=clock) as kv:
            for bad in (
                {"delay": -1},
                {"delay": timedelta(days=31)},
                {"backoff_schedule": [0] * 6},
                {"keys_if_undelivered": ["k"] * 11},
                {"queue": ""},
            ):
                with pytest.raises(ValidationError):
                    await kv.enqueue("x", **bad)
            with pytest.raises(ValidationError):
                await kv.atomic().set("k", 1).enqueue("x", delay=-1).commit()
            with pytest.raises(InvalidOptionsError):
                await kv.receive(timeout=-1)
            with pytest.raises(InvalidOptionsError):
                await kv.receive(lease=0)
            with pytest.raises(InvalidOptionsError):
                await kv.listen_queue(_never, concurrency=0)
            assert await kv.queue_info() == QueueInfo("default", 0, 0, 0, 0)
            assert await kv.get("k") is None

    run(scenario)


async def _never(value: Any) -> None:
    raise AssertionError(f"no message should reach this handler: {value!r}")


def test_waiting_receivers_hold_no_thread_and_an_enqueue_wakes_them(target: str) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(target) as kv:
            waiting = [asyncio.create_task(kv.receive(timeout=WAIT)) for _ in range(40)]
            signal = signal_of(kv._core)
            await until(lambda: len(signal._waiters) == 40, "40 receivers waiting")
            # The lanes have at most 7 threads: a thread per waiter would make it more than 40.
            assert threading.active_count() < 20
            assert (await kv.get("k")) is None  # the loop is free while they wait
            sent = {(await kv.enqueue(n)).message_id for n in range(40)}
            got = await asyncio.gather(*waiting)
            assert {message.id for message in got if message is not None} == sent
            for message in got:
                assert message is not None
                await message.ack()

    run(scenario)


def test_a_message_from_another_store_object_reaches_a_waiting_receive(shared: str) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(shared) as kv:
            waiting = asyncio.create_task(kv.receive(timeout=WAIT, queue="jobs"))
            await until(lambda: len(signal_of(kv._core)._waiters) == 1, "the receiver waiting")
            with KVStore(shared) as other:  # another connection: seen through the change probe
                sent = other.enqueue("from elsewhere", queue="jobs")
            message = await waiting
            assert message is not None
            assert (message.id, message.value) == (sent.message_id, "from elsewhere")
            await message.ack()

    run(scenario)


def test_a_waiting_receive_takes_a_delayed_message_once_it_is_due(target: str, clock: FakeClock) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(target, clock=clock) as kv:
            sent = await kv.enqueue("soon", delay=1000)
            waiting = asyncio.create_task(kv.receive(timeout=WAIT))
            await until(lambda: len(signal_of(kv._core)._waiters) == 1, "the receiver waiting")
            assert not waiting.done()
            clock.advance(1)
            message = await waiting
            assert message is not None
            assert message.id == sent.message_id

    run(scenario)


def test_a_receive_cancelled_mid_claim_hands_the_message_back(target: str) -> None:
    clock = GateClock()

    async def scenario() -> None:
        async with AsyncKVStore(target, clock=clock) as kv:
            sent = await kv.enqueue("job")
            gate = clock.hold()
            claiming = asyncio.create_task(kv.receive(lease=3600))
            await gate.wait_entered()  # the claim is on the write thread, held at its clock read
            claiming.cancel()
            gate.release.set()
            with pytest.raises(asyncio.CancelledError):
                await claiming
            # The hand-back is a write of its own, queued once the claim's result reached the loop: poll for
            # it, a millisecond of the store's clock per look, well short of the hour-long lease it cut short.
            again: AsyncMessage | None = None
            deadline = time.monotonic() + WAIT
            while again is None:
                assert time.monotonic() < deadline, "the message was not handed back"
                clock.now += 0.001
                again = await kv.receive()
            assert clock.now - START < 60
            assert (again.id, again.attempt) == (sent.message_id, 2)
            await again.ack()

    run(scenario)


def test_listen_queue_acknowledges_retries_and_survives_a_raising_handler(target: str) -> None:
    async def scenario() -> None:
        async with AsyncKVStore(target) as kv:
            seen: list[Any] = []
            failed_twice, sentinel = asyncio.Event(), asyncio.Event()

            async def handler(value: Any) -> None:
                seen.append(value)
                if value == "sentinel":
                    sentinel.set()
                if value == "bad":
                    if seen.count("bad") == 2:
                        failed_twice.set()
                    raise RuntimeError("always fails")

            await kv.enqueue("bad", backoff_schedule=[0], keys_if_undelivered=["dead/bad"])
            await kv.enqueue("good")
            listening = asyncio.create_task(kv.listen_queue(handler))
            await asyncio.wait_for(failed_twice.wait(), WAIT)
            await kv.enqueue("sentinel")  # one worker: handled after the bad one was dead-lettered
            await asyncio.wait_for(sentinel.wait(), WAIT)
            await until(lambda: len(seen) == 4, "the sentinel acknowledged")
            assert sorted(seen) == ["bad", "bad", "good", "sentinel"]
            dead = await kv.get("dead/bad")
            assert dead is not None
            assert dead.value == "bad"
            info = await kv.queue_info()
            assert (info.ready, info.delayed, info.dead_letters) == (0, 0, 1)
            listening.cancel()
            with pytest.raises(asyncio.CancelledError):
                await listening

    run(scenario)


def test_listen_queue_cancelled_hands_back_held_messages_and_ends_when_the_store_closes(target: str) -> None:
    async def scenario() -> None:
        kv = AsyncKVStore(target)
        async with kv:
            holding, never = asyncio.Event(), asyncio.Event()

            async def stuck(value: Any) -> None:
                holding.set()
                await never.wait()

            sent = await kv.enqueue("held")
            listening = asyncio.create_task(kv.listen_queue(stuck, lease=3600))
            await asyncio.wait_for(holding.wait(), WAIT)
            listening.cancel()
            with pytest.raises(asyncio.CancelledError):
                await listening
            again = await kv.receive(timeout=WAIT)  # handed back: not held for the hour-long lease
            assert again is not None
            assert (again.id, again.attempt) == (sent.message_id, 2)
            await again.ack()
            idle = asyncio.create_task(kv.listen_queue(_never))
            await until(lambda: len(signal_of(kv._core)._waiters) == 1, "the listener waiting")
        await asyncio.wait_for(idle, WAIT)  # closing the store ended it (a hang fails here)
        assert idle.done()
        assert not idle.cancelled()

    run(scenario)


def test_listen_queue_renews_leases_off_the_loop(shared: str, tmp_path: Path) -> None:
    """A handler that blocks the loop for longer than the lease keeps its message: a thread renews it."""

    async def scenario() -> None:
        async with AsyncKVStore(shared) as kv:
            taken_meanwhile: list[object] = []
            done = asyncio.Event()

            async def blocking(value: Any) -> None:
                with KVStore(shared) as other:
                    deadline = time.monotonic() + 1.5  # three leases' worth, the loop blocked throughout
                    while time.monotonic() < deadline:
                        taken_meanwhile.append(other.receive())
                done.set()

            await kv.enqueue("slow")
            listening = asyncio.create_task(kv.listen_queue(blocking, lease=0.5))
            await asyncio.wait_for(done.wait(), WAIT)
            await until(lambda: len(taken_meanwhile) > 0, "the handler ran")
            assert set(taken_meanwhile) == {None}
            info: QueueInfo | None = None
            deadline = time.monotonic() + WAIT
            while info is None or info.in_flight:
                assert time.monotonic() < deadline
                info = await kv.queue_info()
            assert info == QueueInfo("default", 0, 0, 0, 0)  # acknowledged: its lease was never lost
            listening.cancel()
            with pytest.raises(asyncio.CancelledError):
                await listening

    run(scenario)


def test_an_idle_receive_looks_without_claiming(target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """While nothing happens a waiting receive only looks (a probe, as a watch does): it makes no claim."""
    from kvstore import _aio_queue_wait, _queue_api

    claims: list[str] = []
    looks: list[bool] = []
    claim, look = _queue_api.QueueAPI.receive, _aio_queue_wait.Look.may_claim

    def counted_claim(self: Any, **options: Any) -> Any:
        claims.append(options["queue"])
        return claim(self, **options)

    def counted_look(self: Any) -> bool:
        looks.append(found := look(self))
        return found

    monkeypatch.setattr(_queue_api.QueueAPI, "receive", counted_claim)
    monkeypatch.setattr(_aio_queue_wait.Look, "may_claim", counted_look)

    async def scenario() -> None:
        async with AsyncKVStore(target) as kv:
            await kv.set("unrelated", 1)
            waiting = asyncio.create_task(kv.receive(timeout=WAIT))
            await until(lambda: len(looks) >= 5, "five looks")
            assert claims == ["default", "default"]  # before waiting, and once the look was made
            assert not any(looks)
            sent = await kv.enqueue("now")
            message = await waiting
            assert message is not None
            assert message.id == sent.message_id

    run(scenario)
