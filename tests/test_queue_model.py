"""The queue against a plain-Python model: enqueue, receive, ack, retry, renew, lease expiry and the clock
moving, in any order hypothesis finds; after every step the store's figures and its next messages agree."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from kvstore import LeaseLostError, Message, QueueInfo

from .conftest import FakeClock, Stores, libpq_url

SCHEDULES = [(), (0,), (1_000_000,), (0, 3_000_000)]  # microseconds


@dataclass
class Modelled:
    """One message as the model holds it."""

    seq: int
    value: int
    due_us: int
    backoff: tuple[int, ...]
    attempt: int = 0  # deliveries so far
    state: str = "waiting"  # waiting, leased or dead
    holder: int | None = None  # the handle that holds the lease
    leased_until_us: int = 0  # a lease keeps the message's place: once it runs out, it is due where it was


@dataclass
class Handle:
    message: Message
    model_id: str
    lease_us: int
    number: int = field(default=0)


class QueueMachine(RuleBasedStateMachine):
    stores: Stores  # set by the test: where each example's store is opened

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.kv = self.stores.fresh(clock=self.clock)
        if self.stores.kind == "postgres":  # ``fresh`` empties the entries only
            import psycopg

            with psycopg.connect(libpq_url(self.stores.target), autocommit=True) as conn:
                conn.execute("TRUNCATE kvstore_queue")
        self.model: dict[str, Modelled] = {}
        self.handles: list[Handle] = []
        self.seq = 0

    def teardown(self) -> None:
        self.kv.close()

    def now_us(self) -> int:
        return round(self.clock.now * 1_000_000)

    def ready(self) -> list[str]:
        now = self.now_us()
        due = [
            (m.due_us, m.seq, mid)
            for mid, m in self.model.items()
            if m.state != "dead" and m.due_us <= now and m.leased_until_us <= now
        ]
        return [mid for _, _, mid in sorted(due)]

    def valid(self, handle: Handle) -> bool:
        m = self.model.get(handle.model_id)
        return m is not None and m.state == "leased" and m.holder == handle.number

    @rule(value=st.integers(0, 1000), delay_ms=st.sampled_from([0, 500, 2000]), schedule=st.sampled_from(SCHEDULES))
    def enqueue(self, value: int, delay_ms: int, schedule: tuple[int, ...]) -> None:
        backoff_ms = [us / 1000 for us in schedule]
        result = self.kv.enqueue(value, delay=delay_ms, backoff_schedule=backoff_ms)
        self.seq += 1
        self.model[result.message_id] = Modelled(self.seq, value, self.now_us() + delay_ms * 1000, schedule)

    @rule(lease_s=st.sampled_from([1, 5]))
    def receive(self, lease_s: int) -> None:
        message = self.kv.receive(lease=lease_s)
        expected = self.ready()
        if not expected:
            assert message is None
            return
        assert message is not None
        assert message.id == expected[0]
        m = self.model[message.id]
        m.attempt += 1
        m.state = "leased"
        m.leased_until_us = self.now_us() + lease_s * 1_000_000
        number = len(self.handles)
        m.holder = number
        assert (message.value, message.attempt) == (m.value, m.attempt)
        self.handles.append(Handle(message, message.id, lease_s * 1_000_000, number))

    @precondition(lambda self: self.handles)
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        handle = data.draw(st.sampled_from(self.handles))
        if not self.valid(handle):
            with pytest.raises(LeaseLostError):
                handle.message.ack()
            return
        handle.message.ack()
        del self.model[handle.model_id]

    @precondition(lambda self: self.handles)
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        handle = data.draw(st.sampled_from(self.handles))
        if not self.valid(handle):
            with pytest.raises(LeaseLostError):
                handle.message.retry()
            return
        handle.message.retry()
        m = self.model[handle.model_id]
        m.holder = None
        m.leased_until_us = 0
        if m.attempt > len(m.backoff):
            m.state = "dead"
        else:
            m.state = "waiting"
            m.due_us = self.now_us() + m.backoff[m.attempt - 1]

    @precondition(lambda self: self.handles)
    @rule(data=st.data())
    def renew(self, data: st.DataObject) -> None:
        handle = data.draw(st.sampled_from(self.handles))
        if not self.valid(handle):
            with pytest.raises(LeaseLostError):
                handle.message.renew()
            return
        handle.message.renew()
        self.model[handle.model_id].leased_until_us = self.now_us() + handle.lease_us

    @rule(seconds=st.sampled_from([0.5, 1.0, 3.0, 6.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def clear_dead_letters(self) -> None:
        dead = [mid for mid, m in self.model.items() if m.state == "dead"]
        assert self.kv.clear_dead_letters() == len(dead)
        for mid in dead:
            del self.model[mid]

    @invariant()
    def figures_agree(self) -> None:
        now = self.now_us()
        ms = list(self.model.values())
        ready = len(self.ready())
        delayed = sum(1 for m in ms if m.state != "dead" and m.due_us > now and m.leased_until_us <= now)
        in_flight = sum(1 for m in ms if m.state != "dead" and m.leased_until_us > now)
        dead = sum(1 for m in ms if m.state == "dead")
        assert self.kv.queue_info() == QueueInfo("default", ready, delayed, in_flight, dead)

    @invariant()
    def next_messages_agree(self) -> None:
        peeked = self.kv.peek_queue(limit=5)
        assert [m.id for m in peeked] == self.ready()[:5]
        assert [m.attempt for m in peeked] == [self.model[m.id].attempt + 1 for m in peeked]


def test_the_queue_agrees_with_its_model(stores: Stores) -> None:
    """On a file, in memory and on PostgreSQL: a fresh store per example."""
    machine = type("Machine", (QueueMachine,), {"stores": stores})
    run_state_machine_as_test(machine)
