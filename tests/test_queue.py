"""The queue's API and semantics (the pull model, enqueue, atomic enqueue, inspection), on every store kind."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ulid import ULID

from kvstore import (
    CommitResult,
    EnqueueResult,
    InvalidValueError,
    KVStore,
    LeaseLostError,
    Message,
    Namespace,
    QueuedMessage,
    QueueInfo,
    ValidationError,
)
from kvstore._group import GroupCommit, write_batch
from kvstore._queue import DEFAULT_BACKOFF_MS

from .conftest import FakeClock

EMPTY = ("default", 0, 0, 0, 0)


def _take(kv: Namespace, **options: Any) -> Message:
    message = kv.receive(**options)
    assert message is not None
    return message


def test_enqueue_returns_its_message_and_commit(kv: KVStore, clock: FakeClock) -> None:
    result = kv.enqueue({"to": "a@example.com"})
    assert isinstance(result, EnqueueResult)
    assert result.ok
    assert str(ULID.from_str(result.message_id)) == result.message_id
    later = kv.set("k", 1)
    assert later.versionstamp is not None
    assert result.versionstamp < later.versionstamp
    assert kv.queue_info() == QueueInfo("default", 1, 0, 0, 0)
    [peeked] = kv.peek_queue()
    assert isinstance(peeked, QueuedMessage)
    when = datetime.fromtimestamp(clock.now, UTC)
    assert peeked == QueuedMessage(
        result.message_id, {"to": "a@example.com"}, 1, "default", when, when, "application/json"
    )


def test_receive_leases_and_ack_deletes(kv: KVStore, clock: FakeClock) -> None:
    sent = kv.enqueue(b"\x00raw", content_type="application/x-thing")
    message = _take(kv)
    assert (message.id, message.value, message.attempt, message.queue) == (sent.message_id, b"\x00raw", 1, "default")
    assert message.content_type == "application/x-thing"
    assert message.enqueued_at == datetime.fromtimestamp(clock.now, UTC)
    assert kv.queue_info() == QueueInfo("default", 0, 0, 1, 0)
    assert kv.receive() is None  # leased: nobody else gets it
    assert kv.peek_queue() == []
    message.ack()
    assert kv.queue_info() == QueueInfo(*EMPTY)
    assert kv.receive() is None
    with pytest.raises(LeaseLostError):
        message.ack()  # acknowledged rows are gone


def test_order_is_due_time_then_enqueue_order(kv: KVStore, clock: FakeClock) -> None:
    late = kv.enqueue("late", delay=2000)
    first = kv.enqueue("first")
    soon = kv.enqueue("soon", delay=timedelta(seconds=1))
    second = kv.enqueue("second")
    assert kv.queue_info() == QueueInfo("default", 2, 2, 0, 0)
    assert [m.id for m in kv.peek_queue()] == [first.message_id, second.message_id]
    clock.advance(5)
    expected = [first.message_id, second.message_id, soon.message_id, late.message_id]
    assert [m.id for m in kv.peek_queue(limit=3)] == expected[:3]
    taken = [_take(kv) for _ in expected]
    assert [m.id for m in taken] == expected
    assert kv.receive() is None


def test_delay_holds_a_message_back(kv: KVStore, clock: FakeClock) -> None:
    kv.enqueue("x", delay=10_000)
    assert kv.receive() is None
    assert kv.queue_info() == QueueInfo("default", 0, 1, 0, 0)
    clock.advance(9.999)
    assert kv.receive() is None
    clock.advance(0.001)
    assert _take(kv).value == "x"


def test_retry_follows_the_backoff_then_dead_letters(kv: KVStore, clock: FakeClock) -> None:
    kv.enqueue("job", backoff_schedule=[1000, timedelta(seconds=3)], keys_if_undelivered=["failed/1", "failed/2"])
    first = _take(kv)
    first.retry()
    assert kv.queue_info() == QueueInfo("default", 0, 1, 0, 0)
    clock.advance(0.999)
    assert kv.receive() is None
    clock.advance(0.001)
    second = _take(kv)
    assert (second.id, second.attempt) == (first.id, 2)
    second.retry()
    clock.advance(3)
    third = _take(kv)
    assert third.attempt == 3
    assert kv.get("failed/1") is None
    third.retry()  # past the schedule's last interval: a dead letter
    assert kv.queue_info() == QueueInfo("default", 0, 0, 0, 1)
    for key in ("failed/1", "failed/2"):
        entry = kv.get(key)
        assert entry is not None
        assert entry.value == "job"
    clock.advance(3600)
    assert kv.receive() is None  # dead letters are not delivered
    assert kv.clear_dead_letters() == 1
    assert kv.queue_info() == QueueInfo(*EMPTY)
    assert kv.clear_dead_letters() == 0


def test_default_backoff_is_denos(kv: KVStore, clock: FakeClock) -> None:
    kv.enqueue("x")
    for attempt, interval_ms in enumerate(DEFAULT_BACKOFF_MS, start=1):
        message = _take(kv)
        assert message.attempt == attempt
        message.retry()
        clock.advance(interval_ms / 1000 - 0.001)
        assert kv.receive() is None
        clock.advance(0.001)
    last = _take(kv)
    assert last.attempt == len(DEFAULT_BACKOFF_MS) + 1
    last.retry()
    assert kv.queue_info().dead_letters == 1


def test_retry_with_an_explicit_delay(kv: KVStore, clock: FakeClock) -> None:
    kv.enqueue("x", backoff_schedule=[0])
    _take(kv).retry(delay=timedelta(minutes=5))
    clock.advance(299)
    assert kv.receive() is None
    clock.advance(1)
    assert _take(kv).attempt == 2


def test_an_empty_schedule_dead_letters_on_the_first_failure(kv: KVStore) -> None:
    kv.enqueue("x", backoff_schedule=[], keys_if_undelivered=["dead"])
    _take(kv).retry()
    entry = kv.get("dead")
    assert entry is not None
    assert entry.value == "x"
    assert kv.queue_info().dead_letters == 1


def test_an_expired_lease_delivers_again_and_the_old_holder_loses(kv: KVStore, clock: FakeClock) -> None:
    sent = kv.enqueue("x")
    first = _take(kv, lease=10)
    clock.advance(9)
    assert kv.receive() is None
    clock.advance(1)
    assert kv.queue_info() == QueueInfo("default", 1, 0, 0, 0)  # the lease ran out: ready again
    second = _take(kv, lease=timedelta(seconds=10))
    assert (second.id, second.attempt) == (sent.message_id, 2)
    for act in (first.ack, first.retry, first.renew):
        with pytest.raises(LeaseLostError):
            act()
    assert kv.queue_info() == QueueInfo("default", 0, 0, 1, 0)  # the old holder changed nothing
    second.ack()
    assert kv.queue_info() == QueueInfo(*EMPTY)


def test_an_expired_lease_not_yet_taken_may_still_be_acked(kv: KVStore, clock: FakeClock) -> None:
    kv.enqueue("x")
    message = _take(kv, lease=1)
    clock.advance(60)
    message.ack()
    assert kv.receive() is None


def test_renew_holds_the_message(kv: KVStore, clock: FakeClock) -> None:
    kv.enqueue("x")
    message = _take(kv, lease=10)
    for _ in range(3):
        clock.advance(8)
        message.renew()
        assert kv.receive() is None
    message.renew(lease=100)
    clock.advance(99)
    assert kv.receive() is None
    clock.advance(1)
    assert _take(kv).attempt == 2


def test_atomic_enqueue_exists_iff_the_commit_succeeds(kv: KVStore) -> None:
    failed = kv.atomic().check("order", "00000000000000990000").set("order", 1).enqueue("mail").commit()
    assert not failed.ok
    assert failed.message_ids == ()
    assert kv.queue_info() == QueueInfo(*EMPTY)
    kv.set("text", "not a number")
    with pytest.raises(InvalidValueError):
        kv.atomic().enqueue("mail").sum("text", 1).commit()  # rolled back: nothing enqueued
    assert kv.queue_info() == QueueInfo(*EMPTY)
    done = kv.atomic().check("order", None).set("order", 1).enqueue("mail").enqueue("sms", queue="sms").commit()
    assert isinstance(done, CommitResult)
    assert done.ok
    assert len(done.message_ids) == 2
    mail, sms = _take(kv), _take(kv, queue="sms")
    assert [mail.id, sms.id] == list(done.message_ids)
    assert (mail.value, sms.value) == ("mail", "sms")
    entry = kv.get("order")
    assert entry is not None
    assert entry.versionstamp == done.versionstamp
    assert CommitResult(True, None).message_ids == ()


def test_queues_and_namespaces_are_separate(kv: KVStore) -> None:
    other = kv.namespace("other")
    kv.enqueue("a")
    kv.enqueue("b", queue="emails")
    other.enqueue("c")
    assert kv.queue_info("emails") == QueueInfo("emails", 1, 0, 0, 0)
    assert other.queue_info() == QueueInfo("default", 1, 0, 0, 0)
    assert _take(other).value == "c"
    assert other.receive() is None
    assert _take(kv, queue="emails").value == "b"
    assert _take(kv).value == "a"


def test_dead_letter_keys_are_of_the_messages_namespace(kv: KVStore) -> None:
    other = kv.namespace("other")
    other.enqueue("x", backoff_schedule=[], keys_if_undelivered=["dead"])
    _take(other).retry()
    assert kv.get("dead") is None
    entry = other.get("dead")
    assert entry is not None
    assert entry.value == "x"


def test_peek_takes_nothing_and_respects_limit(kv: KVStore, clock: FakeClock) -> None:
    ids = [kv.enqueue(i).message_id for i in range(5)]
    assert [m.id for m in kv.peek_queue(limit=2)] == ids[:2]
    assert [m.value for m in kv.peek_queue(limit=100)] == list(range(5))
    assert kv.queue_info().ready == 5
    message = _take(kv)
    clock.advance(1)
    message.retry(delay=0)  # due now: after the others, due since they were enqueued
    assert [m.attempt for m in kv.peek_queue()] == [1, 1, 1, 1, 2]


def test_receive_waits_for_a_due_time(kv: KVStore, clock: FakeClock) -> None:
    kv.enqueue("x")
    assert _take(kv, timeout=0).value == "x"
    assert kv.receive(timeout=0.01) is None  # nothing comes: None after the timeout


@pytest.mark.parametrize(
    ("options", "bound"),
    [
        ({"delay": -1}, "from 0 to 2592000000 ms"),
        ({"delay": timedelta(days=30, milliseconds=1)}, "from 0 to 2592000000 ms"),
        ({"delay": float("nan")}, "from 0"),
        ({"delay": True}, "number of milliseconds"),
        ({"delay": "1"}, "number of milliseconds"),
        ({"backoff_schedule": [1] * 6}, "at most 5 intervals"),
        ({"backoff_schedule": [3_600_001]}, "from 0 to 3600000 ms"),
        ({"backoff_schedule": [timedelta(seconds=-1)]}, "from 0 to 3600000 ms"),
        ({"backoff_schedule": "100"}, "sequence"),
        ({"keys_if_undelivered": [f"k{i}" for i in range(11)]}, "at most 10 keys"),
        ({"keys_if_undelivered": "key"}, "sequence"),
        ({"keys_if_undelivered": [""]}, "[Kk]ey"),
        ({"queue": ""}, "amespace"),
        ({"queue": "x" * 65}, "amespace"),
        ({"content_type": 5}, "content"),
    ],
)
def test_bad_options_are_refused_before_anything_is_written(kv: KVStore, options: dict[str, Any], bound: str) -> None:
    before = kv.set("mark", 1)
    with pytest.raises(ValidationError, match=bound):
        kv.enqueue("x", **options)
    with pytest.raises(ValidationError, match=bound):
        kv.atomic().set("mark", 2).enqueue("x", **options)
    assert kv.queue_info() == QueueInfo(*EMPTY)
    assert kv.set("probe", 1).versionstamp > before.versionstamp  # type: ignore[operator]
    entry = kv.get("mark")
    assert entry is not None
    assert entry.value == 1


def test_bounds_themselves_are_allowed(kv: KVStore, clock: FakeClock) -> None:
    kv.enqueue("x", delay=timedelta(days=30), backoff_schedule=[0, 3_600_000, 1, 2, 3], keys_if_undelivered=["k"] * 10)
    assert kv.queue_info().delayed == 1
    clock.advance(30 * 86400)
    assert _take(kv).value == "x"


def test_values_are_checked_as_set_checks_them(kv: KVStore) -> None:
    with pytest.raises(ValidationError):
        kv.enqueue(object())
    with pytest.raises(ValidationError):
        kv.enqueue(b"x" * (kv._shared.max_value_size + 1))
    assert kv.queue_info() == QueueInfo(*EMPTY)


@pytest.mark.parametrize(
    ("call", "options"),
    [
        ("receive", {"lease": 0}),
        ("receive", {"lease": 3601}),
        ("receive", {"timeout": -1}),
        ("receive", {"queue": "a b"}),
        ("peek_queue", {"limit": 0}),
        ("listen_queue", {"concurrency": 0}),
        ("listen_queue", {"lease": "30"}),
    ],
)
def test_bad_consumer_options_are_refused(kv: KVStore, call: str, options: dict[str, Any]) -> None:
    kv.enqueue("x")
    method = (lambda **o: kv.listen_queue(lambda value: None, **o)) if call == "listen_queue" else getattr(kv, call)
    with pytest.raises(ValidationError):
        method(**options)
    assert kv.queue_info() == QueueInfo("default", 1, 0, 0, 0)


def test_queue_writes_reach_the_backend_through_the_group_commit(kv: KVStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Enqueue goes through the write path (``_write``); the later state changes through ``_queue_ops``; both
    only through the store's group commit, which alone calls the backend's writes."""
    callers: dict[str, list[str]] = {"backend": [], "group": []}

    def spy(target: object, side: str, name: str) -> None:
        real = getattr(target, name)

        def recording(*args: object) -> object:
            callers[side].append(sys._getframe(1).f_globals["__name__"])
            return real(*args)

        monkeypatch.setattr(target, name, recording)

    for name in ("try_put", "transact", "begin"):
        spy(kv._backend, "backend", name)
    for name in ("transact", "try_alone"):
        spy(GroupCommit, "group", name)
    kv.enqueue("a", backoff_schedule=[0], keys_if_undelivered=["dead"])
    kv.atomic().enqueue("b").commit()
    first = _take(kv)
    first.renew()
    first.retry()
    _take(kv).ack()
    _take(kv).retry()  # the second delivery of "a": a dead letter
    kv.clear_dead_letters()
    assert len(callers["group"]) >= 8
    assert set(callers["group"]) == {"kvstore._write", "kvstore._queue_ops"}
    assert set(callers["backend"]) == {"kvstore._group"}


def test_enqueue_in_a_write_batch_commits_with_the_block(kv: KVStore) -> None:
    with write_batch(kv):
        kv.set("order", 1)
        sent = kv.enqueue("mail")
    taken = _take(kv)
    assert taken.id == sent.message_id
    taken.ack()

    def failing_block() -> None:
        with write_batch(kv):
            kv.enqueue("never")
            raise RuntimeError("the block fails: everything in it is rolled back")

    with pytest.raises(RuntimeError):
        failing_block()
    assert kv.queue_info() == QueueInfo(*EMPTY)
