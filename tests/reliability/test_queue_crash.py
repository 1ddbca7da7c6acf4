"""Queue crash safety: consumers in 4 processes are SIGKILLed at random moments while the parent enqueues.

Four consumer slots each run a child (``_queue_crash_child``: two of ``listen_queue``, two of the pull model)
with a short lease; the parent enqueues a few messages (by ``enqueue``, and some by ``atomic().enqueue``
with a set in the same commit), waits a random moment (the experiment: the kill lands anywhere, inside a
handler, between its record and the acknowledgement, mid-claim) and kills one slot's child, which the next
child replaces. After at least 100 kills, four children that are not killed drain the queue; then:

- ``PRAGMA integrity_check`` is ok;
- every message that handlers accept was handled at least once (its record is there): none is lost;
- every always-failing message is a dead letter, its value set at its ``keys_if_undelivered`` key exactly
  once (the entry was never overwritten), and no handler ever recorded it;
- nothing else is left: no message ready, delayed or in flight, only the dead letters.

The random choices come from one seed, shown on failure; set KVSTORE_RELIABILITY_SEED to replay a run.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from kvstore import KVStore, QueueInfo

from ._queue_crash_child import dead_key, handled_key
from ._support import Child, integrity, seed

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

KILLS: Final = 100
SLOTS: Final = ("listen", "pull", "listen", "pull")
LEASE_S: Final = 1.0
BACKOFF_MS: Final = (0, 20)  # an always-failing message is delivered 3 times, then dead-lettered
FAIL_EVERY: Final = 7  # one message in 7 always fails
DRAIN_S: Final = 60.0  # a bound on the final drain that only a broken queue reaches
OK: Final = [("ok",)]


@pytest.fixture
def rng() -> Iterator[random.Random]:
    value = seed()
    yield random.Random(value)
    print(f"KVSTORE_RELIABILITY_SEED={value}")  # shown with the output of a failing test


class Slot:
    """One consumer process at a time; with ``spare``, its successor started ahead, so that its imports overlap
    the run."""

    def __init__(self, path: Path, mode: str, spare: bool = True) -> None:
        self._args = (str(path), mode, str(LEASE_S))
        self._all: list[Child] = []
        self.current = self._start()
        self._upcoming = self._start() if spare else None
        self._go(self.current)

    def _start(self) -> Child:
        child = Child("_queue_crash_child.py", *self._args)
        self._all.append(child)
        return child

    @staticmethod
    def _go(child: Child) -> None:
        child.expect("ready")
        child.send("go")
        child.expect("consuming")

    def kill_and_replace(self) -> bool:
        """Kill the current child; start its successor. Whether the kill hit a running child."""
        assert self._upcoming is not None
        self.current.kill()
        hit = self.current.killed_alive
        self.current, self._upcoming = self._upcoming, self._start()
        self._go(self.current)
        return hit

    def close(self) -> None:
        for child in self._all:
            child.close()


def _enqueue_some(kv: KVStore, rng: random.Random, first: int, failing: set[int]) -> int:
    """Enqueue a few messages from number ``first`` on; return how many."""
    count = rng.randint(2, 8)
    for n in range(first, first + count):
        fail = n % FAIL_EVERY == 3
        if fail:
            failing.add(n)
        value = {"n": n, "fail": fail}
        options = {"keys_if_undelivered": [dead_key(n)], "backoff_schedule": list(BACKOFF_MS)}
        if n % 5 == 0:  # in one commit with a write: the message exists because the commit succeeded
            result = kv.atomic().set(f"order/{n:06d}", n).enqueue(value, **options).commit()  # type: ignore[arg-type]
            assert result.committed
            assert len(result.message_ids) == 1
        else:
            assert kv.enqueue(value, **options).ok  # type: ignore[arg-type]
    return count


def _drained(kv: KVStore) -> QueueInfo:
    """Wait (polling, with a deadline: the state is in another process) until nothing is left to deliver."""
    deadline = time.monotonic() + DRAIN_S
    while True:
        info = kv.queue_info()
        if info.ready + info.delayed + info.in_flight == 0 or time.monotonic() > deadline:
            return info
        time.sleep(0.05)


def test_sigkilled_consumers_lose_no_message_and_dead_letter_each_failing_one_once(
    tmp_path: Path, rng: random.Random
) -> None:
    """Kill consumers in 4 processes (listen_queue and receive/ack) at random moments, at least 100 times."""
    path = tmp_path / "queue.db"
    failing: set[int] = set()
    enqueued = 0
    kills = 0
    with contextlib.ExitStack() as stack, KVStore(path, busy_timeout=60) as kv:
        slots = [Slot(path, mode) for mode in SLOTS]
        for slot in slots:
            stack.callback(slot.close)
        turn = 0
        while kills < KILLS:
            enqueued += _enqueue_some(kv, rng, enqueued, failing)
            time.sleep(rng.uniform(0, 0.05))  # the kill point: the experiment, not synchronisation
            # In turn, so each successor has had three kills' time to start; the moment is what is random.
            kills += slots[turn % len(slots)].kill_and_replace()
            turn += 1
        handled_while_killing = kv.count("handled/")
        # The final consumers: four more children, never killed; the slots' current ones go on too.
        finals = [Slot(path, mode, spare=False) for mode in SLOTS]
        for slot in finals:
            stack.callback(slot.close)
        info = _drained(kv)

        assert integrity(path) == OK
        assert info == QueueInfo("default", 0, 0, 0, len(failing)), info
        accepted = [n for n in range(enqueued) if n not in failing]
        handled = {entry.key for entry in kv.list("handled/", limit=100_000)}
        lost = [n for n in accepted if handled_key(n) not in handled]
        assert lost == [], f"{len(lost)} of {len(accepted)} messages never handled: {lost[:10]}"
        assert handled == {handled_key(n) for n in accepted}  # a failing message was never recorded as handled
        dead = {entry.key: entry for entry in kv.list("dead/", limit=100_000)}
        assert set(dead) == {dead_key(n) for n in failing}
        for n in failing:
            entry = dead[dead_key(n)]
            assert entry.value == {"n": n, "fail": True}
            assert entry.created_at == entry.updated_at, f"dead/{n} was set more than once"
        assert kv.count("order/") == len([n for n in range(enqueued) if n % 5 == 0])
    assert kills >= KILLS
    assert turn <= KILLS + 5  # nearly every kill hit a running consumer
    assert handled_while_killing > 0  # the kills came while consumers were doing real work
    assert len(failing) > 10
