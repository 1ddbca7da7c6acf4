"""Queue listeners: delivery to handlers on threads, sharing between listeners and processes, leases
renewed while a handler runs, failures that never end a listener, and close."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kvstore import KVStore, QueueInfo, QueueListener, StoreClosedError

from .conftest import FakeClock, sqlite_connection

DEADLINE = 60.0  # seconds: how long a test waits for a condition before it fails


def _until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` (the last resort the rules allow: a state seen only through the database)."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Recorder:
    """A handler that records what it was given and lets a test wait for a count of calls."""

    def __init__(self, fail: Callable[[Any], bool] = lambda value: False) -> None:
        self.values: list[Any] = []
        self.threads: set[int] = set()
        self._fail = fail
        self._changed = threading.Condition()

    def __call__(self, value: Any) -> None:
        with self._changed:
            self.values.append(value)
            self.threads.add(threading.get_ident())
            self._changed.notify_all()
        if self._fail(value):
            raise RuntimeError(f"handler failed on {value!r}")

    def wait_for(self, count: int) -> list[Any]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.values) >= count, DEADLINE), self.values
            return list(self.values)


def test_a_listener_handles_and_acknowledges(kv: KVStore) -> None:
    handled = Recorder()
    with kv.listen_queue(handled) as listener:
        assert isinstance(listener, QueueListener)
        assert not listener.closed
        for i in range(20):
            kv.enqueue({"n": i})
        assert handled.wait_for(20) == [{"n": i} for i in range(20)]  # one consumer: in order
    assert listener.closed
    assert kv.queue_info() == QueueInfo("default", 0, 0, 0, 0)


def test_a_listener_takes_only_its_queue(kv: KVStore) -> None:
    handled = Recorder()
    kv.enqueue("other", queue="other")
    with kv.listen_queue(handled, queue="mine"):
        kv.enqueue("mine", queue="mine")
        assert handled.wait_for(1) == ["mine"]
    assert kv.queue_info("other").ready == 1


def test_many_listeners_share_without_loss(kv: KVStore) -> None:
    """Several listeners of one queue in one process: every message handled exactly once (deno#28772)."""
    handled = Recorder()
    listeners = [kv.listen_queue(handled, concurrency=3) for _ in range(4)]
    try:
        for i in range(300):
            kv.enqueue(i)
        values = handled.wait_for(300)
    finally:
        for listener in listeners:
            listener.close()
    assert sorted(values) == list(range(300))
    assert len(handled.values) == 300  # nothing handled twice, even after close
    assert kv.queue_info() == QueueInfo("default", 0, 0, 0, 0)


def test_concurrency_runs_handlers_at_once(kv: KVStore) -> None:
    together = threading.Barrier(3, timeout=DEADLINE)  # broken, and the handlers fail, unless 3 run at once
    handled = Recorder(fail=lambda value: together.wait() < 0)
    with kv.listen_queue(handled, concurrency=3):
        for i in range(3):
            kv.enqueue(i)
        _until(lambda: kv.queue_info() == QueueInfo("default", 0, 0, 0, 0), "the three acknowledged")
    assert sorted(handled.values) == [0, 1, 2]
    assert len(handled.threads) == 3


def test_receive_wakes_on_an_enqueue_of_this_process(kv: KVStore) -> None:
    got: list[Any] = []
    receiver = threading.Thread(target=lambda: got.append(kv.receive(timeout=DEADLINE)))
    receiver.start()
    _until(lambda: kv._shared.watchers > 0, "the receiver to wait")
    sent = kv.enqueue("now")
    receiver.join(DEADLINE)
    assert [message.id for message in got] == [sent.message_id]


def test_a_failing_handler_is_retried_and_never_kills_the_listener(kv: KVStore) -> None:
    handled = Recorder(fail=lambda value: value == "bad")
    with kv.listen_queue(handled):
        kv.enqueue("bad", backoff_schedule=[0, 0], keys_if_undelivered=["undelivered"])
        _until(lambda: kv.queue_info().dead_letters == 1, "the dead letter")
        kv.enqueue("good")
        values = handled.wait_for(4)
    assert values == ["bad", "bad", "bad", "good"]  # 1 + 2 retries, then the next message
    entry = kv.get("undelivered")
    assert entry is not None
    assert entry.value == "bad"


def test_an_undecodable_value_is_dead_lettered(sqlite_kv: KVStore) -> None:
    kv = sqlite_kv
    kv.enqueue("broken", keys_if_undelivered=["dead"])
    sqlite_connection(kv).execute("UPDATE kvstore_queue SET value = x'c1'")  # 0xc1: never valid msgpack
    handled = Recorder()
    with kv.listen_queue(handled):
        _until(lambda: kv.queue_info().dead_letters == 1, "the dead letter")
        kv.enqueue("fine")
        assert handled.wait_for(1) == ["fine"]
    assert handled.values == ["fine"]
    assert kv.get("dead") is None  # no entry may hold a value that cannot be decoded


def test_receive_dead_letters_an_undecodable_value(sqlite_kv: KVStore) -> None:
    kv = sqlite_kv
    kv.enqueue("broken")
    sqlite_connection(kv).execute("UPDATE kvstore_queue SET value = x'c1'")
    kv.enqueue("fine")
    message = kv.receive()
    assert message is not None
    assert message.value == "fine"
    assert kv.queue_info().dead_letters == 1


def test_the_lease_is_renewed_while_a_slow_handler_runs(kv: KVStore, clock: FakeClock) -> None:
    entered, release = threading.Event(), threading.Event()
    calls: list[Any] = []

    def slow(value: Any) -> None:
        calls.append(value)
        entered.set()
        assert release.wait(DEADLINE)

    listener = kv.listen_queue(slow, lease=10)
    try:
        kv.enqueue("slow")
        assert entered.wait(DEADLINE)
        for _ in range(6):  # 30 s of store time: three leases
            seen = listener._renewals
            clock.advance(5)
            _until(lambda: listener._renewals > seen, "a renewal")  # noqa: B023 - seen is read at once
            assert kv.receive() is None  # still leased to the slow handler
        assert kv.queue_info() == QueueInfo("default", 0, 0, 1, 0)
        release.set()
    finally:
        release.set()
        listener.close()
    assert calls == ["slow"]
    assert kv.queue_info() == QueueInfo("default", 0, 0, 0, 0)


def test_close_waits_for_running_handlers(kv: KVStore) -> None:
    entered, release, finished = threading.Event(), threading.Event(), threading.Event()

    def handler(value: Any) -> None:
        entered.set()
        assert release.wait(DEADLINE)
        finished.set()

    listener = kv.listen_queue(handler)
    kv.enqueue("x")
    assert entered.wait(DEADLINE)
    seen_at_return: list[bool] = []

    def close() -> None:
        listener.close()
        seen_at_return.append(finished.is_set())

    closer = threading.Thread(target=close)
    closer.start()
    _until(lambda: listener.closed, "close to begin")
    release.set()
    closer.join(DEADLINE)
    assert seen_at_return == [True]  # close returned only after the handler finished
    assert kv.queue_info() == QueueInfo("default", 0, 0, 0, 0)  # and its message was acknowledged


def test_a_handler_may_close_its_own_listener(kv: KVStore) -> None:
    listeners: list[QueueListener] = []
    closed = threading.Event()

    def handler(value: Any) -> None:
        listeners[0].close()
        closed.set()

    listeners.append(kv.listen_queue(handler))
    kv.enqueue("x")
    assert closed.wait(DEADLINE)
    listener = listeners[0]
    assert listener.closed
    _until(lambda: not any(thread.is_alive() for thread in listener._threads), "every thread to end")
    assert kv.queue_info() == QueueInfo("default", 0, 0, 0, 0)  # its message was acknowledged


def test_closing_the_store_closes_its_listeners(tmp_path: Path, clock: FakeClock) -> None:
    kv = KVStore(tmp_path / "kv.db", clock=clock)
    handled = Recorder()
    listeners = [kv.listen_queue(handled), kv.namespace("n").listen_queue(handled, concurrency=2)]
    kv.enqueue("x")
    handled.wait_for(1)
    kv.close()
    assert all(listener.closed for listener in listeners)
    assert not any(thread.is_alive() for listener in listeners for thread in listener._threads)


def test_a_closed_store_refuses_consumers(tmp_path: Path) -> None:
    kv = KVStore(tmp_path / "kv.db")
    kv.close()
    with pytest.raises(StoreClosedError):
        kv.listen_queue(lambda value: None)
    with pytest.raises(StoreClosedError):
        kv.receive()
    with pytest.raises(StoreClosedError):
        kv.enqueue("x")


def test_an_idle_listener_does_not_claim(kv: KVStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """While nothing is enqueued in its queue, an idle listener asks the change probe once per interval and
    claims nothing, whatever else commits."""
    import kvstore._queue_ops as ops

    claims: list[int] = []
    probes: list[int] = []
    real_claim, real_probe = ops.claim, kv._backend.change_probe

    def counting_claim(*args: Any) -> Any:
        claims.append(1)
        return real_claim(*args)

    class CountingProbe:
        def __init__(self) -> None:
            self._probe = real_probe()

        def __call__(self) -> int:
            probes.append(1)
            return self._probe()

        def close(self) -> None:
            self._probe.close()

    monkeypatch.setattr(ops, "claim", counting_claim)
    monkeypatch.setattr(kv._backend, "change_probe", CountingProbe)
    handled = Recorder()
    with kv.listen_queue(handled):
        kv.enqueue("first")
        handled.wait_for(1)
        first = len(probes)
        _until(lambda: len(probes) >= first + 5, "the listener to go idle")  # its empty claim is behind it
        idle_from = len(claims)
        seen = len(probes)
        for i in range(5):
            kv.set(f"other/{i}", i)  # commits that enqueue nothing wake the listener, which then reads only
        kv.enqueue("later", queue="another")
        _until(lambda: len(probes) >= seen + 10, "ten probes of an idle listener")
        assert len(claims) == idle_from  # idle: probes only, no claim
        kv.enqueue("second")
        assert handled.wait_for(2) == ["first", "second"]


_CHILD = textwrap.dedent(
    """
    import os, sys
    from kvstore import KVStore

    kv = KVStore(sys.argv[1])

    def handle(value):
        kv.atomic().sum(f"count/{value:04d}", 1).set(f"by/{value:04d}", os.getpid()).commit()

    listener = kv.listen_queue(handle, concurrency=2)
    kv.set(f"ready/{os.getpid()}", True)
    for snapshot in kv.watch(["stop"]):
        if snapshot[0] is not None:
            break
    listener.close()
    kv.close()
    """
)


def test_listeners_in_several_processes_share_without_loss(shared_target: str, tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    children = [subprocess.Popen([sys.executable, str(script), shared_target], env=env) for _ in range(3)]
    kv = KVStore(shared_target)
    try:
        _until(lambda: kv.count("ready/") == 3, "the children's listeners")
        for i in range(150):
            kv.enqueue(i)
        _until(lambda: kv.count("count/") == 150, "every message handled")
        kv.set("stop", True)
        for child in children:
            assert child.wait(DEADLINE) == 0
        counts = [entry.value for entry in kv.list(prefix="count/")]
        assert counts == [1] * 150  # each message handled once, by one process
        pids = Counter(entry.value for entry in kv.list(prefix="by/"))
        assert sum(pids.values()) == 150
        assert set(pids) <= {child.pid for child in children}
        assert kv.queue_info() == QueueInfo("default", 0, 0, 0, 0)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        kv.close()


def test_receive_wakes_on_another_process_enqueue(shared_target: str, tmp_path: Path) -> None:
    """A consumer waiting in ``receive`` sees an enqueue of another process through the change probe."""
    script = tmp_path / "producer.py"
    script.write_text("import sys\nfrom kvstore import KVStore\nwith KVStore(sys.argv[1]) as kv: kv.enqueue('hi')\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    with KVStore(shared_target) as kv:
        kv.set("open", True)  # the schema exists before the producer opens the database
        producer = subprocess.Popen([sys.executable, str(script), shared_target], env=env)
        try:
            message = kv.receive(timeout=DEADLINE)
            assert message is not None
            assert message.value == "hi"
            message.ack()
        finally:
            assert producer.wait(DEADLINE) == 0
