"""The queues of the queue part: kvstore's, the Python peers' (persist-queue, litequeue, huey's SQLite storage)
and the floor, raw sqlite3 (an insert to enqueue; a claim, then a delete to acknowledge).

Every queue carries the same message, the benchmark's ~120-byte value with the message's index in it, each
with its own serializer (persist-queue pickles, litequeue takes text, huey bytes). A consumer receives one
ready message and acknowledges it; where a library can wait for a message in-process (kvstore's listener,
persist-queue's blocking get, the floor's event) the latency consumer waits that way, the others poll every
millisecond, which is the shortest sleep that does not spin a core.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import msgpack
from _config import VALUE

Enqueue = Callable[[int], None]
"""Enqueue message ``index``, durably (committed) before it returns."""
Consume = Callable[[], int | None]
"""Receive one ready message and acknowledge it: its index, or None when none is ready."""
Handled = Callable[[int], None]

POLL_S: Final = 0.001
NAMES: Final = ("kvstore", "persistqueue", "litequeue", "huey", "raw", "deno")
LABELS: Final = {
    "kvstore": "kvstore",
    "persistqueue": "persist-queue (SQLiteAckQueue)",
    "litequeue": "litequeue",
    "huey": "huey (SqliteStorage)",
    "raw": "raw sqlite3",
    "deno": "Deno KV",
}
MODULES: Final = {"persistqueue": "persistqueue", "litequeue": "litequeue", "huey": "huey"}


def message(index: int) -> dict[str, Any]:
    return {"i": index, **VALUE}


class QueuePeer:
    """One queue under test, on a database of its own."""

    def enqueue(self) -> Enqueue:
        raise NotImplementedError

    def consumer(self) -> Consume:
        """A consumer for one thread (several may run at once, each from its own call)."""
        raise NotImplementedError

    def listen(self, handled: Handled) -> Callable[[], None]:
        """Start a consumer thread calling ``handled(index)`` per message, polling when the library cannot wait;
        returns what stops it."""
        consume = self.consumer()
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                index = consume()
                if index is None:
                    stop.wait(POLL_S)
                else:
                    handled(index)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()

        def close() -> None:
            stop.set()
            thread.join()

        return close

    def tidy(self) -> None:
        """Between rounds, not timed: drop what the library keeps of acknowledged messages."""

    def close(self) -> None:
        raise NotImplementedError


class KVStoreQueue(QueuePeer):
    """``KVStore.enqueue``; ``receive`` then ``ack``; ``listen_queue`` for latency (woken in-process)."""

    def __init__(self, path: Path) -> None:
        from kvstore import KVStore

        self.kv = KVStore(path)

    def enqueue(self) -> Enqueue:
        put = self.kv.enqueue

        def op(index: int) -> None:
            put(message(index))

        return op

    def consumer(self) -> Consume:
        receive = self.kv.receive

        def op() -> int | None:
            got = receive()
            if got is None:
                return None
            got.ack()
            index: int = got.value["i"]
            return index

        return op

    def listen(self, handled: Handled) -> Callable[[], None]:
        def handler(value: Any) -> None:
            handled(value["i"])

        return self.kv.listen_queue(handler).close

    def close(self) -> None:
        self.kv.close()


class PersistQueue(QueuePeer):
    """persist-queue's ``SQLiteAckQueue`` (multithreading=True, its defaults otherwise): put; get, ack."""

    def __init__(self, path: Path) -> None:
        from persistqueue import SQLiteAckQueue

        self.queue: Any = SQLiteAckQueue(str(path), multithreading=True)

    def enqueue(self) -> Enqueue:
        put = self.queue.put

        def op(index: int) -> None:
            put(message(index))

        return op

    def consumer(self) -> Consume:
        from persistqueue import Empty

        get, ack = self.queue.get, self.queue.ack

        def op() -> int | None:
            try:
                item = get(block=False)
            except Empty:
                return None
            ack(item)
            index: int = item["i"]
            return index

        return op

    def listen(self, handled: Handled) -> Callable[[], None]:
        from persistqueue import Empty

        get, ack, stop = self.queue.get, self.queue.ack, threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    item = get(block=True, timeout=0.1)  # woken by its put event
                except Empty:
                    continue
                ack(item)
                handled(item["i"])

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()

        def close() -> None:
            stop.set()
            thread.join()

        return close

    def tidy(self) -> None:
        self.queue.clear_acked_data(max_delete=None, keep_latest=None)

    def close(self) -> None:
        self.queue.close()


class LiteQueue(QueuePeer):
    """litequeue's ``LiteQueue`` (WAL, synchronous=NORMAL): put (text); pop, done. One instance per thread:
    its connection holds one transaction at a time."""

    def __init__(self, path: Path) -> None:
        from litequeue import LiteQueue as Queue  # type: ignore[import-untyped]

        self.path = path
        self.queues: list[Any] = [Queue(str(path))]

    def enqueue(self) -> Enqueue:
        put = self.queues[0].put

        def op(index: int) -> None:
            put(json.dumps(message(index)))

        return op

    def consumer(self) -> Consume:
        from litequeue import LiteQueue as Queue

        queue = Queue(str(self.path))
        self.queues.append(queue)
        pop, done = queue.pop, queue.done

        def op() -> int | None:
            got = pop()
            if got is None:
                return None
            done(got.message_id)
            index: int = json.loads(got.data)["i"]
            return index

        return op

    def tidy(self) -> None:
        self.queues[0].prune()

    def close(self) -> None:
        for queue in self.queues:
            queue.close()


class HueyQueue(QueuePeer):
    """huey's ``SqliteStorage`` (its defaults: WAL): enqueue (bytes); dequeue, which claims and deletes at once
    (huey has no separate acknowledgement)."""

    def __init__(self, path: Path) -> None:
        from huey.storage import SqliteStorage  # type: ignore[import-untyped]

        self.storage: Any = SqliteStorage(name="bench", filename=str(path))

    def enqueue(self) -> Enqueue:
        put, pack = self.storage.enqueue, msgpack.packb

        def op(index: int) -> None:
            put(pack(message(index)))

        return op

    def consumer(self) -> Consume:
        take, unpack = self.storage.dequeue, msgpack.unpackb

        def op() -> int | None:
            data = take()
            if data is None:
                return None
            index: int = unpack(data)["i"]
            return index

        return op

    def close(self) -> None:
        self.storage.close()


RAW_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS queue (id INTEGER PRIMARY KEY, due_us INTEGER NOT NULL,"
    " leased_us INTEGER NOT NULL DEFAULT 0, attempt INTEGER NOT NULL DEFAULT 0, value BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS queue_due ON queue (due_us, id)",
)
RAW_INSERT: Final = "INSERT INTO queue (due_us, value) VALUES (?, ?)"
RAW_CLAIM: Final = (
    "UPDATE queue SET leased_us = ?, attempt = attempt + 1 WHERE id = (SELECT id FROM queue"
    " WHERE due_us <= ? AND leased_us <= ? ORDER BY due_us, id LIMIT 1) RETURNING id, value"
)
RAW_ACK: Final = "DELETE FROM queue WHERE id = ?"
LEASE_US: Final = 30_000_000


class RawQueue(QueuePeer):
    """The floor: sqlite3 with kvstore's pragmas (WAL, synchronous=NORMAL), msgpack values; enqueue is one
    INSERT in autocommit, receive one UPDATE ... RETURNING (the claim, with a lease), acknowledge one DELETE.
    An enqueue sets an event that wakes the latency consumer, as kvstore's listener is woken."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ready = threading.Event()
        self.connections: list[sqlite3.Connection] = []
        self.main = self._connect()
        for statement in RAW_SCHEMA:
            self.main.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5.0)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        self.connections.append(connection)
        return connection

    def enqueue(self) -> Enqueue:
        run, pack, ready = self.main.execute, msgpack.packb, self.ready

        def op(index: int) -> None:
            run(RAW_INSERT, (time.time_ns() // 1_000, pack(message(index))))
            ready.set()

        return op

    def consumer(self) -> Consume:
        run, unpack = self._connect().execute, msgpack.unpackb

        def op() -> int | None:
            now = time.time_ns() // 1_000
            row = run(RAW_CLAIM, (now + LEASE_US, now, now)).fetchone()
            if row is None:
                return None
            run(RAW_ACK, (row[0],))
            index: int = unpack(row[1])["i"]
            return index

        return op

    def listen(self, handled: Handled) -> Callable[[], None]:
        consume, ready, stop = self.consumer(), self.ready, threading.Event()

        def serve() -> None:
            while not stop.is_set():
                ready.clear()
                index = consume()
                if index is None:
                    ready.wait(0.1)
                else:
                    handled(index)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()

        def close() -> None:
            stop.set()
            ready.set()
            thread.join()

        return close

    def close(self) -> None:
        for connection in self.connections:
            connection.close()


def make_queue(name: str, directory: Path) -> QueuePeer:
    """Open queue ``name`` on a database of its own under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    if name == "kvstore":
        return KVStoreQueue(directory / "kvstore.db")
    if name == "persistqueue":
        return PersistQueue(directory / "persistqueue")  # a directory: the library names its file
    if name == "litequeue":
        return LiteQueue(directory / "litequeue.db")
    if name == "huey":
        return HueyQueue(directory / "huey.db")
    if name == "raw":
        return RawQueue(directory / "raw.db")
    raise ValueError(f"unknown queue {name!r}")


def unavailable(name: str) -> str | None:
    """Why queue ``name`` cannot run here (its package is not installed), or None."""
    module = MODULES.get(name)
    if module is None:
        return None
    try:
        __import__(module)
    except ImportError:
        return f"the {module} package is not installed (pip install -e '.[bench]')"
    return None
