"""Leases and the queue's order: an expired lease keeps its message's place, and a waiting consumer's next
due time counts each lease's end (on every store kind)."""

from __future__ import annotations

from typing import Any

from kvstore import KVStore, Message, Namespace

from .conftest import FakeClock


def _take(kv: Namespace, **options: Any) -> Message:
    message = kv.receive(**options)
    assert message is not None
    return message


def test_an_expired_lease_is_delivered_again_in_its_place(kv: KVStore, clock: FakeClock) -> None:
    first = kv.enqueue("first")
    second = kv.enqueue("second")
    _take(kv, lease=1)
    assert [m.id for m in kv.peek_queue()] == [second.message_id]
    clock.advance(2)  # the lease ran out: "first" is due where it was, ahead of "second"
    assert [m.id for m in kv.peek_queue()] == [first.message_id, second.message_id]
    again = _take(kv)
    assert (again.id, again.attempt) == (first.message_id, 2)


def test_the_next_due_time_counts_leases(kv: KVStore, clock: FakeClock) -> None:
    """What a waiting consumer sleeps until: the earliest due time, a leased message's being its lease's end."""
    side = kv._shared.backend.queue
    start = round(clock.now * 1_000_000)
    assert side.next_due("default", "default") is None
    kv.enqueue("now")
    kv.enqueue("later", delay=10_000)
    assert side.next_due("default", "default") == start
    message = _take(kv, lease=3)
    assert side.next_due("default", "default") == start + 3_000_000  # the lease's end, before "later"
    message.renew(lease=30)
    assert side.next_due("default", "default") == start + 10_000_000  # "later", now before the lease's end
    clock.advance(40)
    assert side.next_due("default", "default") == start + 10_000_000  # both due; "now" again at 30 s
    assert _take(kv).value == "now"  # in its place, first
    assert side.next_due("default", "default") == start + 10_000_000
    assert _take(kv).value == "later"
    assert side.next_due("default", "default") == start + 70_000_000  # both leased, 30 s from 40 s
