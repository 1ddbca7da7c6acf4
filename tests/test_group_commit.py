"""Group commit: writes queued behind a commit in flight share the next transaction, each with its own
outcome and versionstamp; ``write_batch`` makes one thread's writes one transaction.

Batches are made on purpose, never by timing: ``Hold`` keeps a commit in flight (inside its transaction,
holding the connection) until the writers a test starts have queued behind it, which the group's queue
reports as they join. A follower that needed the connection, or anything the holder holds, would hang here.
"""

from __future__ import annotations

import signal
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from contextlib import closing
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore import (
    CommitResult,
    FailedCheck,
    InvalidValueError,
    KVStore,
    Namespace,
    SetResult,
    StorageError,
    _handoff,
)
from kvstore._backends.postgres import PostgresBackend
from kvstore._backends.postgres import sql as pg_sql
from kvstore._backends.postgres import write as pg_write
from kvstore._backends.sqlite import SQLiteBackend
from kvstore._backends.sqlite import block as block_module
from kvstore._backends.sqlite import sql as sqlite_sql
from kvstore._backends.sqlite.tx import SQLiteConnection
from kvstore._codec import CONTENT_TYPE_BINARY, CONTENT_TYPE_JSON
from kvstore._group import GroupCommit, write_batch

from .conftest import FakeClock, Stores, libpq_url
from .reliability._support import Forked

WAIT = 60.0  # seconds a wait may take before the test fails: only a hang reaches it


class _Crash(BaseException):
    """An interruption that is not an Exception, as KeyboardInterrupt is."""


class _Queue(deque[Any]):
    """The group's queue, counting the writers that join it and telling ``changed``."""

    def __init__(self, changed: threading.Condition) -> None:
        super().__init__()
        self.changed = changed
        self.joined = 0

    def append(self, item: Any) -> None:
        super().append(item)
        with self.changed:
            self.joined += 1
            self.changed.notify_all()


class Hold:
    """White-box control of one store's group commit (see the module docstring)."""

    def __init__(self, kv: KVStore) -> None:
        self.group: GroupCommit = kv._shared.group
        self.changed = threading.Condition()
        self.queue = _Queue(self.changed)
        self.group._queue = self.queue
        self._base = 0

    def until_joined(self, count: int) -> None:
        """Wait until ``count`` writers in all have joined the queue."""
        with self.changed:
            assert self.changed.wait_for(lambda: self.queue.joined >= count, WAIT), (self.queue.joined, count)

    def in_order(self, index: int) -> None:
        """Before starting the writer of ``index``: wait for the one before it to queue (``_run``'s hook)."""
        if index:
            self.until_joined(self._base + index)

    def hold(self, count: int) -> threading.Thread:
        """A thread whose commit stays in flight until ``count`` more writers have queued behind it."""
        inside = threading.Event()
        self._base = self.queue.joined
        target = self._base + count

        def body(tx: object) -> None:
            inside.set()
            self.until_joined(target)

        thread = threading.Thread(target=self.group.transact, args=(body, False))
        thread.start()
        assert inside.wait(WAIT)
        return thread


def _run(calls: list[Callable[[], Any]], before: Callable[[int], None] | None = None) -> list[Any]:
    """Run each call on a thread of its own (``before(i)`` first, on the caller's thread); their results,
    or what they raised."""
    outcomes: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            outcomes[i] = calls[i]()
        except BaseException as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for i, thread in enumerate(threads):
        if before is not None:
            before(i)
        thread.start()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    return outcomes


def _batched(kv: KVStore, calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` queued behind a held commit, in this order, so that they form one batch."""
    hold = Hold(kv)
    before = hold.group.batches, hold.group.batched
    holder = hold.hold(len(calls))
    outcomes = _run(calls, hold.in_order)
    holder.join(WAIT)
    assert (hold.group.batches, hold.group.batched) == (before[0] + 1, before[1] + len(calls))
    return outcomes


def _value(kv: Namespace, key: str) -> Any:
    entry = kv.get(key)
    assert entry is not None, key
    return entry.value


def _number(stamp: str | None) -> int:
    assert stamp is not None
    return int(stamp[:16], 16)


# -- batches -------------------------------------------------------------------------------------------------


def test_a_lone_writer_queues_behind_nobody(kv: KVStore) -> None:
    hold = Hold(kv)
    first = kv.set("a", 1)
    kv.set("a", 2, if_versionstamp=first.versionstamp)
    kv.delete("a")
    kv.atomic().sum("n", 1).commit()
    with write_batch(kv):
        kv.set("b", 1)
    assert hold.queue.joined == 0
    assert hold.group.batches == 0
    assert not hold.group._slot.locked()


def test_writes_queued_behind_a_commit_share_one_transaction(stores: Stores) -> None:
    """Eight sets from eight threads make one batch, each with its own versionstamp. (On PostgreSQL with a
    pool of one connection, which the holder has: a queued writer needs none.)"""
    with stores.open(pool_size=1) as kv:
        results: list[SetResult] = _batched(kv, [partial(kv.set, f"k{i}", i) for i in range(8)])
        assert all(result.committed and result.created for result in results), results
        assert len({result.versionstamp for result in results}) == 8
        entries = kv.list().entries
        assert [(entry.value, entry.versionstamp) for entry in entries] == [
            (i, result.versionstamp) for i, result in enumerate(results)
        ]


def test_versionstamps_follow_the_order_in_which_a_batch_ran(kv: KVStore) -> None:
    """The first writer to queue runs first in the batch, and so on: the stamps increase in queue order."""
    results: list[SetResult] = _batched(kv, [partial(kv.set, "k", i) for i in range(5)])
    numbers = [_number(result.versionstamp) for result in results]
    assert numbers == sorted(set(numbers))
    entry = kv.get("k")
    assert entry is not None
    assert (entry.value, entry.versionstamp) == (4, results[-1].versionstamp)


def test_a_failing_write_in_a_batch_changes_nothing_of_its_batch_mates(kv: KVStore) -> None:
    base = kv.set("base", 1)
    kv.set("text", "not a number")
    calls: list[Callable[[], Any]] = [
        lambda: kv.set("a", 1),
        lambda: kv.atomic().set("x", 1).sum("text", 1).commit(),  # InvalidValueError, after writing x
        lambda: kv.set("base", 2, if_versionstamp="00000000000000000001"),  # a wrong versionstamp
        lambda: kv.set("base", 3, if_not_exists=True),
        lambda: kv.atomic().check("base", None).set("y", 1).commit(),
        lambda: kv.set("base", 4, if_versionstamp=base.versionstamp),
        lambda: kv.delete("missing"),
        lambda: kv.atomic().set("z", 1).sum("n", 2).max("m", 5).commit(),
    ]
    a, bad_sum, wrong, exists, checked, cas, deleted, good = _batched(kv, calls)
    assert isinstance(bad_sum, InvalidValueError)
    assert (wrong.ok, wrong.committed, wrong.versionstamp) == (False, False, base.versionstamp)
    assert (exists.ok, exists.committed, exists.versionstamp) == (False, False, base.versionstamp)
    assert checked == CommitResult(False, None, (FailedCheck(0, "base", base.versionstamp),))
    assert cas.committed
    assert deleted is False
    assert good.committed
    values = {entry.key: entry.value for entry in kv.list()}
    assert values == {"a": 1, "base": 4, "text": "not a number", "z": 1, "n": 2, "m": 5}
    numbers = [_number(stamp) for stamp in (a.versionstamp, cas.versionstamp, good.versionstamp)]
    assert numbers == sorted(numbers)


def test_a_failed_commit_fails_every_write_of_its_batch_and_leaves_nothing(
    kv: KVStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One write of the batch makes its COMMIT fail: every write of the batch fails, none is there."""
    before = kv.set("before", 0)
    _refuse(kv, monkeypatch)
    calls: list[Callable[[], Any]] = [partial(kv.set, f"k{i}", i) for i in range(3)]
    calls.insert(1, lambda: kv.atomic().set(REFUSED, 1).sum("n", 1).commit())
    outcomes = _batched(kv, calls)
    assert all(isinstance(outcome, StorageError) for outcome in outcomes), outcomes
    assert len({id(outcome) for outcome in outcomes}) == 4  # each writer its own exception
    assert [entry.key for entry in kv.list()] == ["before"]
    after = kv.set("after", 1)
    assert _number(after.versionstamp) > _number(before.versionstamp)


def test_a_statement_failing_in_a_batch_fails_every_write_of_it(kv: KVStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database refuses one write's statement (on PostgreSQL inside the batch's pipeline, where the
    error comes out at a later answer): the batch's transaction fails, and every write with it."""
    _refuse(kv, monkeypatch, at_commit=False)
    calls: list[Callable[[], Any]] = [partial(kv.set, f"k{i}", i) for i in range(4)]
    calls.insert(2, partial(kv.set, REFUSED, 1))
    calls.append(lambda: kv.set("k0", 5, if_not_exists=True))  # asks for its answer after the refused one
    outcomes = _batched(kv, calls)
    assert all(isinstance(outcome, StorageError) for outcome in outcomes), outcomes
    assert list(kv.list()) == []
    assert kv.set("after", 1).committed


def test_a_leader_interrupted_by_a_base_exception_hands_the_slot_on(
    kv: KVStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's leader dies (a BaseException from the backend): its batch-mates fail with a KVError, the
    writers queued behind it commit, and the store goes on."""
    hold = Hold(kv)
    backend = kv._backend
    real = backend.transact
    started = threading.Event()

    def transact(body: Any) -> Any:
        if body.__name__ == "run_all":  # the batch, not the holder
            started.set()
            hold.until_joined(8)  # the four of the batch, then four more behind it
            raise _Crash
        return real(body)

    monkeypatch.setattr(backend, "transact", transact)
    holder = hold.hold(4)
    first: list[Any] = []
    runner = threading.Thread(target=lambda: first.extend(_run([partial(kv.set, f"a{i}", i) for i in range(4)])))
    runner.start()
    holder.join(WAIT)
    assert started.wait(WAIT)
    monkeypatch.setattr(backend, "transact", real)
    second = _run([partial(kv.set, f"b{i}", i) for i in range(4)])
    runner.join(WAIT)
    assert sorted(type(outcome).__name__ for outcome in first) == ["StorageError"] * 3 + ["_Crash"]
    assert all(result.committed for result in second), second
    assert sorted(entry.key for entry in kv.list()) == ["b0", "b1", "b2", "b3"]
    assert kv.set("later", 1).committed
    assert not hold.group._slot.locked()


def test_a_retried_batch_runs_each_write_once(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL asks for a retry (a serialization failure): the batch runs again whole, each write once."""
    with KVStore(pg_url) as kv:
        backend = kv._backend
        real = backend.transact
        failures: list[int] = []

        def transact(body: Any) -> Any:
            if body.__name__ != "run_all":
                return real(body)

            def flaky(tx: Any) -> Any:
                if not failures:
                    failures.append(1)
                    tx.next_version()
                    raise psycopg.errors.SerializationFailure("could not serialize access")
                return body(tx)

            return real(flaky)

        monkeypatch.setattr(backend, "transact", transact)

        def count(i: int) -> CommitResult:
            return kv.atomic().sum("n", 1).set(f"k{i}", i).commit()

        results = _batched(kv, [partial(count, i) for i in range(4)])
        assert failures == [1]
        assert all(result.committed for result in results)
        assert _value(kv, "n") == 4


# Not on a file: a store on a file refuses a forked child (tests/test_concurrency.py).
@pytest.mark.parametrize("stores", ["memory", "postgres"], indirect=True)
def test_a_forked_child_writes_though_its_parent_held_the_slot(stores: Stores) -> None:
    """The child has none of the parent's threads: their hold of the slot (here a write_batch block that
    has not written yet) and their queued writes must not hold the child's writes. (An in-memory store is the
    child's own copy; PostgreSQL gets the child a fresh pool.)"""
    with stores.open() as kv:
        hold = Hold(kv)
        inside, release = threading.Event(), threading.Event()

        def block() -> None:
            with write_batch(kv):
                inside.set()
                assert release.wait(WAIT)

        holder = threading.Thread(target=block)
        holder.start()
        assert inside.wait(WAIT)
        queued = threading.Thread(target=lambda: kv.set("queued", 1))
        queued.start()
        hold.until_joined(1)

        def child() -> bool:
            signal.alarm(int(WAIT))  # a child stuck behind its parent's threads dies, and the test fails
            return kv.set("child", 1).committed

        assert Forked(child).join() is True
        release.set()
        holder.join(WAIT)
        queued.join(WAIT)
        assert kv.get("queued") is not None
        assert (kv.get("child") is not None) == (stores.kind == "postgres")  # else it wrote its own copy
        assert kv.set("parent", 1).committed


# -- interrupted followers -------------------------------------------------------------------------------------


def _interrupt_wait(monkeypatch: pytest.MonkeyPatch, victim: Callable[[], bool], then: Callable[[Any], None]) -> None:
    """Make the victim's wait in the queue end with a _Crash, after ``then(waiter)``."""
    real = _handoff.Waiter.wait

    def wait(waiter: Any) -> None:
        if not victim():
            real(waiter)
            return
        then(waiter)
        raise _Crash

    monkeypatch.setattr(_handoff.Waiter, "wait", wait)


@pytest.mark.parametrize("where", ["queued", "handed the slot", "in its batch"])
def test_a_writer_interrupted_while_it_waits_learns_whether_its_write_was_made(
    kv: KVStore, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    hold = Hold(kv)
    victim = "victim"
    running = threading.Event()
    backend = kv._backend
    real = backend.transact

    def transact(body: Any) -> Any:
        if body.__name__ == "run_all":
            running.set()
        return real(body)

    monkeypatch.setattr(backend, "transact", transact)

    def then(waiter: Any) -> None:
        if where == "handed the slot":
            waiter.wake.acquire()  # the slot comes: the victim queued first
        elif where == "in its batch":
            assert running.wait(WAIT)  # another writer leads the batch the victim is in

    _interrupt_wait(monkeypatch, lambda: threading.current_thread().name == victim, then)
    holder = hold.hold(3)
    order = [0, 1, 2] if where == "handed the slot" else [1, 0, 2]
    calls = [lambda: kv.set("v", 1), lambda: kv.set("a", 1), lambda: kv.set("b", 1)]
    outcomes: list[Any] = [None] * 3

    def run(i: int) -> None:
        try:
            outcomes[i] = calls[i]()
        except BaseException as exc:
            outcomes[i] = exc

    threads = {i: threading.Thread(target=run, args=(i,), name=victim if i == 0 else f"w{i}") for i in range(3)}
    for count, i in enumerate(order, start=1):
        threads[i].start()
        hold.until_joined(count)
    holder.join(WAIT)
    for thread in threads.values():
        thread.join(WAIT)
    crash = outcomes[0]
    assert isinstance(crash, _Crash)
    made = where == "in its batch"
    assert crash.__notes__ == [f"kvstore: the interrupted write {'committed' if made else 'was not made'}"]
    assert (kv.get("v") is not None) == made
    assert outcomes[1].committed
    assert outcomes[2].committed
    assert not hold.group._slot.locked()


# -- the versionstamp block under savepoints (SQLite) ---------------------------------------------------------


def test_a_body_rolled_back_to_its_savepoint_leaves_no_gap_in_the_block(tmp_path: Path) -> None:
    """The leader's connection draws every version of a batch from its block; a body rolled back to its
    savepoint gives its draw back, so the next body takes the same number."""
    with KVStore(tmp_path / "kv.db") as kv:
        kv.set("text", "x")
        a, failed, b = _batched(
            kv,
            [
                lambda: kv.set("a", 1),
                lambda: kv.atomic().set("x", 1).sum("text", 1).commit(),  # drew a version, then failed
                lambda: kv.set("b", 1),
            ],
        )
        assert isinstance(failed, InvalidValueError)
        assert _number(b.versionstamp) == _number(a.versionstamp) + 1
        assert kv.get("x") is None


def test_reservations_rolled_back_with_savepoints_keep_versionstamps_increasing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a block of one, every draw writes the counter row, inside its body's savepoint: failed bodies
    roll reservations back; another store on the file and a reopened one still draw above everything."""
    monkeypatch.setattr(block_module, "BLOCK", 1)
    path = tmp_path / "kv.db"
    stamps: list[str | None] = []
    with KVStore(path) as kv, KVStore(path) as other:

        def count(i: int) -> CommitResult:
            return kv.atomic().sum("n", 1).set(f"b{i}", i).commit()

        kv.set("text", "x")
        for round_ in range(3):
            outcomes = _batched(
                kv,
                [
                    lambda: kv.atomic().set("x", 1).sum("text", 1).commit(),
                    partial(kv.set, f"a{round_}", round_),
                    lambda: kv.atomic().set("y", 1).sum("text", 1).commit(),
                    partial(count, round_),
                ],
            )
            assert isinstance(outcomes[0], InvalidValueError)
            assert isinstance(outcomes[2], InvalidValueError)
            stamps += [outcomes[1].versionstamp, outcomes[3].versionstamp]
            stamps.append(other.set(f"o{round_}", round_).versionstamp)
    with KVStore(path) as kv:
        stamps.append(kv.set("reopened", 1).versionstamp)
        assert kv.get("x") is None
        assert kv.get("y") is None
        stored = max(_number(entry.versionstamp) for entry in kv.list())
    numbers = [_number(stamp) for stamp in stamps]
    assert numbers == sorted(set(numbers))  # strictly increasing
    assert stored == numbers[-1]
    with closing(sqlite3.connect(path)) as raw:
        (counter,) = raw.execute("SELECT version FROM kvstore_versionstamp").fetchone()
    assert counter >= numbers[-1]


def test_the_savepoint_statements_run_in_a_transaction(pg_url: str, db_path: Path) -> None:
    KVStore(db_path).close()
    with closing(sqlite3.connect(db_path, isolation_level=None)) as raw:
        raw.execute("BEGIN IMMEDIATE")
        for sql in (sqlite_sql.SAVEPOINT, sqlite_sql.ROLLBACK_TO_SAVEPOINT, sqlite_sql.RELEASE_SAVEPOINT):
            raw.execute(sql)
        raw.execute("ROLLBACK")
    KVStore(pg_url).close()
    with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn, conn.transaction():
        for sql in (pg_sql.SAVEPOINT, pg_sql.ROLLBACK_TO_SAVEPOINT, pg_sql.RELEASE_SAVEPOINT):
            conn.execute(sql)


# -- faults ---------------------------------------------------------------------------------------------------


REFUSED = "refused"  # a transaction that writes this key fails (``_refuse``)


def _refuse(kv: KVStore, monkeypatch: pytest.MonkeyPatch, *, at_commit: bool = True) -> None:
    """Make a transaction that writes the key REFUSED fail: at its COMMIT, or (``at_commit`` False) at that
    write's statement. On SQLite as an I/O error would (after which a COMMIT may or may not have happened:
    the versionstamp block is given up); on PostgreSQL by a trigger, deferred to COMMIT or not."""
    backend = kv._backend
    if isinstance(backend, SQLiteBackend):
        real = sqlite3.Connection.execute

        def refused(self: SQLiteConnection, sql: str, args: tuple[Any, ...]) -> bool:
            if not at_commit:
                return sql.startswith(("INSERT", "UPDATE")) and bool(args) and REFUSED in args[0]
            if sql != "COMMIT":
                return False
            return real(self, "SELECT 1 FROM kvstore_entries WHERE key = ?", (REFUSED,)).fetchone() is not None

        def execute(self: SQLiteConnection, sql: str, *args: Any) -> sqlite3.Cursor:
            if refused(self, sql, args):
                error = sqlite3.OperationalError("disk I/O error")
                error.sqlite_errorcode = 10  # SQLITE_IOERR
                raise error
            return real(self, sql, *args)

        monkeypatch.setattr(SQLiteConnection, "execute", execute)
        return
    assert isinstance(backend, PostgresBackend)
    when = "DEFERRABLE INITIALLY DEFERRED" if at_commit else "NOT DEFERRABLE"
    with psycopg.connect(backend._conninfo, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION kvtest_refuse() RETURNS trigger LANGUAGE plpgsql AS"
            f" $$ BEGIN IF NEW.key = '{REFUSED}' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NULL; END $$"
        )
        conn.execute(
            f"CREATE CONSTRAINT TRIGGER kvtest_refuse AFTER INSERT OR UPDATE ON kvstore_entries {when}"
            " FOR EACH ROW EXECUTE FUNCTION kvtest_refuse()"
        )


# -- write_batch ----------------------------------------------------------------------------------------------


def test_a_write_batch_is_one_transaction_committed_when_it_ends(kv: KVStore) -> None:
    sqlite = isinstance(kv._backend, SQLiteBackend)
    with write_batch(kv):
        a = kv.set("a", 1)
        b = kv.namespace("other").set("b", 2)
        c = kv.atomic().sum("c", 3).commit()
        assert kv.delete("a")
        assert all(result.committed for result in (a, b, c))
        # This thread's reads: on SQLite on the block's connection (and they leave its transaction open),
        # on PostgreSQL on another.
        assert (kv.get("c") is not None) == sqlite
        many = kv.get_many([f"k{i}" for i in range(1200)] + ["c"])  # more keys than one statement reads
        assert (many[-1] is not None) == sqlite
        assert kv.info().entries == (2 if sqlite else 0)
        if kv._target != ":memory:":  # another thread sees none of it yet (in memory it would wait for it)
            assert _run([lambda: kv.namespace("other").get("b")]) == [None]
    assert kv.get("a") is None
    assert _value(kv.namespace("other"), "b") == 2
    assert _value(kv, "c") == 3
    numbers = [_number(a.versionstamp), _number(b.versionstamp), _number(c.versionstamp)]
    assert numbers == sorted(set(numbers))


def test_a_plain_set_in_a_write_batch_stores_what_a_set_alone_stores(kv: KVStore, clock: FakeClock) -> None:
    """SQLite writes a plain set of a block with its options as literals: it clears the options of the entry
    it replaces, keeps a live entry's creation time, gives an expired one a new one, and stores the value."""
    kv.set("live", "old", metadata={"m": 1}, expire_in=3_600_000, refresh_on_access=True)
    kv.set("expired", "old", expire_in=60_000)
    before = kv.get("live")
    assert before is not None
    clock.advance(120)
    with write_batch(kv):
        results = [kv.set("live", b"\x00new"), kv.set("expired", [1, "x"]), kv.set("fresh", {"a": None})]
    assert [result.created for result in results] == [False, True, True]
    live, expired, fresh = (kv.get(key) for key in ("live", "expired", "fresh"))
    assert live is not None
    assert expired is not None
    assert fresh is not None
    assert (live.value, live.content_type, live.metadata, live.expires_at) == (
        b"\x00new",
        CONTENT_TYPE_BINARY,
        {},
        None,
    )
    assert live.created_at == before.created_at
    assert live.updated_at > before.updated_at
    assert (expired.value, expired.metadata, expired.expires_at) == ([1, "x"], {}, None)
    assert expired.created_at == expired.updated_at == live.updated_at
    assert (fresh.value, fresh.content_type) == ({"a": None}, CONTENT_TYPE_JSON)
    clock.advance(7_200)  # past the hour the replaced entry had: the plain set's entry never expires
    assert _value(kv, "live") == b"\x00new"
    stamps = [_number(result.versionstamp) for result in results]
    assert stamps == sorted(set(stamps))


def test_an_exception_escaping_a_write_batch_rolls_back_its_writes(kv: KVStore) -> None:
    kv.set("kept", 0)

    def block(escaping: BaseException) -> None:
        with write_batch(kv):
            assert kv.set("a", 1).committed
            assert kv.delete("kept")
            raise escaping

    for escaping in (ValueError("the caller's"), _Crash()):
        with pytest.raises(type(escaping)):
            block(escaping)
        assert [entry.key for entry in kv.list()] == ["kept"]
    assert kv.set("b", 1).committed  # the slot was handed on


def test_a_write_that_raises_inside_a_write_batch_is_rolled_back_alone(kv: KVStore) -> None:
    kv.set("text", "x")
    with write_batch(kv):
        with pytest.raises(InvalidValueError):  # the block's first write, alone in its transaction
            kv.atomic().set("x", 1).sum("text", 1).commit()
        assert kv.set("a", 1).committed
        with pytest.raises(InvalidValueError):  # in a savepoint of its own
            kv.atomic().set("y", 1).sum("text", 1).commit()
        assert kv.set("b", 1, if_not_exists=True).committed
        assert not kv.set("b", 2, if_not_exists=True).ok
    assert sorted(entry.key for entry in kv.list()) == ["a", "b", "text"]
    assert _value(kv, "b") == 1


def test_a_write_batch_whose_commit_fails_raises_and_leaves_nothing(
    kv: KVStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _refuse(kv, monkeypatch)

    def block() -> None:
        with write_batch(kv):
            assert kv.set("a", 1).committed
            assert kv.set(REFUSED, 1).committed  # as if: the block's exit says otherwise

    with pytest.raises(StorageError):
        block()
    assert list(kv.list()) == []
    assert kv.set("b", 1).committed  # the slot was handed on


def test_a_long_write_batch_with_failures_keeps_versionstamps_increasing(kv: KVStore) -> None:
    """On PostgreSQL a block reserves versions a chunk at a time: the failing write here reserves the
    second chunk inside its savepoint, and its rollback must take the reservation with it."""
    kv.set("text", "x")
    stamps: list[str | None] = []
    with write_batch(kv):
        for i in range(pg_write._CHUNK + 4):
            if i in (pg_write._CHUNK, pg_write._CHUNK + 2):
                with pytest.raises(InvalidValueError):
                    kv.atomic().set("x", 1).sum("text", 1).commit()
            else:
                stamps.append(kv.set(f"k{i}", i).versionstamp)
    stamps.append(kv.set("after", 1).versionstamp)
    stamps.append(kv.atomic().sum("n", 1).commit().versionstamp)
    numbers = [_number(stamp) for stamp in stamps]
    assert numbers == sorted(set(numbers))
    assert kv.get("x") is None
    assert max(_number(entry.versionstamp) for entry in kv.list()) == numbers[-1]


def test_a_write_batch_whose_transaction_breaks_fails_its_later_writes_and_its_exit(
    kv: KVStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection fails mid-block: that write and every later one raise, and so does the exit (the
    results returned before are void); nothing of the block is there."""
    backend = kv._backend

    def block() -> None:
        with write_batch(kv):
            assert kv.set("a", 1).committed
            if isinstance(backend, SQLiteBackend):
                real = sqlite3.Connection.execute

                def execute(self: SQLiteConnection, sql: str, *args: Any) -> sqlite3.Cursor:
                    if sql != "ROLLBACK":
                        error = sqlite3.OperationalError("disk I/O error")
                        error.sqlite_errorcode = 10  # SQLITE_IOERR
                        raise error
                    return real(self, sql, *args)

                monkeypatch.setattr(SQLiteConnection, "execute", execute)
                # A plain set's statements run on the transaction's own cursor: it fails alike.
                held = kv._shared.group.block.held  # type: ignore[union-attr]
                monkeypatch.setattr(held, "_cursor", SimpleNamespace(execute=partial(execute, held._conn)))  # type: ignore[union-attr]
            else:
                held = kv._shared.group.block.held  # type: ignore[union-attr]
                with psycopg.connect(libpq_url_of(kv), autocommit=True) as other:
                    other.execute("SELECT pg_terminate_backend(%s)", (held._conn.info.backend_pid,))  # type: ignore[union-attr]
            with pytest.raises(StorageError):
                kv.set("b", 1)
            monkeypatch.undo()
            with pytest.raises(StorageError):
                kv.set("c", 1)

    with pytest.raises(StorageError):
        block()
    assert list(kv.list()) == []
    assert kv.set("d", 1).committed


def libpq_url_of(kv: KVStore) -> str:
    backend = kv._backend
    assert isinstance(backend, PostgresBackend)
    return backend._conninfo


def test_write_batch_nests_and_other_threads_wait_behind_it(kv: KVStore) -> None:
    hold = Hold(kv)
    with write_batch(kv):
        kv.set("outer", 1)
        with write_batch(kv):
            kv.set("inner", 1)
        others = threading.Thread(target=lambda: _run([partial(kv.set, f"t{i}", i) for i in range(3)]))
        others.start()
        hold.until_joined(3)  # they wait: the block is a commit in flight
        assert kv.set("outer", 2).committed
    others.join(WAIT)
    assert (hold.group.batches, hold.group.batched) == (1, 3)
    assert sorted(entry.key for entry in kv.list()) == ["inner", "outer", "t0", "t1", "t2"]
    assert _value(kv, "outer") == 2


def test_a_write_batch_signals_watchers_once_when_it_commits(kv: KVStore) -> None:
    shared = kv._shared
    with kv.watch(["a"]) as watch:
        assert next(watch) == [None]
        before = shared.commits
        with write_batch(kv):
            kv.set("a", 1)
            kv.set("a", 2)
            assert shared.commits == before  # nothing has committed yet
        assert shared.commits == before + 1
        snapshot = next(watch)
        assert snapshot[0] is not None
        assert snapshot[0].value == 2


# -- the model ------------------------------------------------------------------------------------------------


_KEYS = ("a", "b", "c")
_values = st.one_of(st.integers(-3, 3), st.just("s"))
_stamp = st.sampled_from(["known", "bogus", "absent"])
_mutations = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(_KEYS), _values),
    st.tuples(st.just("delete"), st.sampled_from(_KEYS)),
    st.tuples(st.sampled_from(["sum", "min", "max"]), st.sampled_from(_KEYS), st.integers(-3, 3)),
)
_ops = st.one_of(
    st.tuples(st.sampled_from(["set", "set_nx", "keep"]), st.sampled_from(_KEYS), _values),
    st.tuples(st.just("cas"), st.sampled_from(_KEYS), _values, _stamp),
    st.tuples(st.just("delete"), st.sampled_from(_KEYS), st.sampled_from(["none", "known", "bogus"])),
    st.tuples(
        st.just("atomic"),
        st.lists(st.tuples(st.sampled_from(_KEYS), _stamp), max_size=2),
        st.lists(_mutations, min_size=1, max_size=3),
    ),
)
_WRITERS = 4  # plain writers; one more thread makes write_batch blocks
_ROUNDS = 3

BOGUS = "0000000000000000ffff"  # a well-formed versionstamp no commit has


@settings(max_examples=20)  # an example runs 3 rounds of 5 threads on a fresh store
@given(
    plans=st.lists(st.lists(_ops, min_size=_ROUNDS, max_size=_ROUNDS), min_size=_WRITERS, max_size=_WRITERS),
    blocks=st.lists(st.lists(_ops, min_size=1, max_size=3), min_size=_ROUNDS, max_size=_ROUNDS),
)
def test_group_commit_equals_a_serial_execution_in_commit_order(
    stores: Stores, plans: list[list[Any]], blocks: list[list[Any]]
) -> None:
    """Rounds of four writers and a write_batch block, queued behind a held commit: every outcome equals
    a serial execution in the order the writes ran, whose versionstamps increase; the store ends as the
    model does."""
    with stores.fresh() as kv, pytest.MonkeyPatch.context() as patch:
        local, order = _record(kv, patch)
        calls: dict[tuple[str, int, int], tuple[Any, Any]] = {}
        hold = Hold(kv)
        start, end = threading.Barrier(_WRITERS + 2), threading.Barrier(_WRITERS + 2)

        def writer(name: str, rounds: list[list[Any]], in_block: bool) -> None:
            known: dict[str, str] = {}
            for number, ops in enumerate(rounds):
                start.wait(WAIT)
                if in_block:
                    with write_batch(kv):
                        for index, op in enumerate(ops):
                            local.call = (name, number, index)
                            calls[local.call] = _call(kv, op, known)
                else:
                    local.call = (name, number, 0)
                    calls[local.call] = _call(kv, ops[0], known)
                end.wait(WAIT)

        threads = [
            threading.Thread(target=writer, args=(f"w{i}", [[op] for op in plan], False))
            for i, plan in enumerate(plans)
        ]
        threads.append(threading.Thread(target=writer, args=("block", blocks, True)))
        for thread in threads:
            thread.start()
        for _ in range(_ROUNDS):
            holder = hold.hold(_WRITERS + 1)
            start.wait(WAIT)
            holder.join(WAIT)
            end.wait(WAIT)
        for thread in threads:
            thread.join(WAIT)
        assert hold.group.batches >= _ROUNDS  # four plain writers and a block queued: a run of two at least
        _replay(kv, calls, order)


def _record(kv: KVStore, patch: pytest.MonkeyPatch) -> tuple[Any, list[Any]]:
    """Record, as each write runs, the call (``local.call`` of the thread that made it): the order of the
    slot, and so the order in which the writes take effect."""
    order: list[Any] = []
    local = threading.local()
    real_transact = GroupCommit.transact

    def transact(self: GroupCommit, body: Any, isolated: bool) -> Any:
        call = getattr(local, "call", None)

        def recorded(tx: Any) -> Any:
            order.append(call)
            return body(tx)

        return real_transact(self, recorded, isolated)

    patch.setattr(GroupCommit, "transact", transact)
    backend = kv._backend
    real_try = backend.try_put

    def try_put(*args: Any) -> Any:
        done = real_try(*args)
        if done is not None:
            order.append(getattr(local, "call", None))
        return done

    patch.setattr(backend, "try_put", try_put)
    real_in_block = GroupCommit._put_in_block

    def put_in_block(self: GroupCommit, *args: Any) -> Any:  # a set in a write_batch block, made directly
        done = real_in_block(self, *args)
        if done is not None:
            order.append(getattr(local, "call", None))
        return done

    patch.setattr(GroupCommit, "_put_in_block", put_in_block)
    return local, order


def _call(kv: KVStore, op: Any, known: dict[str, str]) -> tuple[Any, Any]:
    """Make the call ``op`` describes; (the op with its versionstamps chosen, its outcome)."""
    kind = op[0]
    if kind == "cas":
        op = (kind, op[1], op[2], _choose(op[3], op[1], known) or BOGUS)
    elif kind == "delete":
        op = (kind, op[1], None if op[2] == "none" else _choose(op[2], op[1], known) or BOGUS)
    elif kind == "atomic":
        op = (kind, [(key, _choose(which, key, known)) for key, which in op[1]], op[2])
    outcome: Any
    try:
        if kind == "set":
            outcome = kv.set(op[1], op[2])
        elif kind == "set_nx":
            outcome = kv.set(op[1], op[2], if_not_exists=True)
        elif kind == "keep":
            outcome = kv.set(op[1], op[2], overwrite=False)
        elif kind == "cas":
            outcome = kv.set(op[1], op[2], if_versionstamp=op[3])
        elif kind == "delete":
            outcome = kv.delete(op[1], if_versionstamp=op[2])
        else:
            atomic = kv.atomic()
            for key, stamp in op[1]:
                atomic.check(key, stamp)
            for mutation in op[2]:
                getattr(atomic, mutation[0])(*mutation[1:])
            outcome = atomic.commit()
    except InvalidValueError as exc:
        outcome = exc
    if isinstance(outcome, SetResult) and outcome.versionstamp is not None:
        known[op[1]] = outcome.versionstamp
    return op, outcome


def _choose(which: str, key: str, known: dict[str, str]) -> str | None:
    """A versionstamp to check for: the last one this writer saw at ``key`` (which may be stale), one no
    commit has, or None (the key must be absent)."""
    if which == "absent":
        return None
    return known.get(key) if which == "known" else BOGUS


def _replay(kv: KVStore, calls: dict[tuple[str, int, int], tuple[Any, Any]], order: list[Any]) -> None:
    """Run the calls serially, in the order they ran, on a plain model: every outcome must be the same."""
    last = {call: position for position, call in enumerate(order) if call is not None}  # a retry ran it again
    ran = sorted(last, key=last.__getitem__)
    assert set(ran) == set(calls)
    model: dict[str, tuple[Any, str | None]] = {}
    previous = ""
    for call in ran:
        op, outcome = calls[call]
        expected, stamp = _apply(model, op, outcome)
        assert _shape(outcome) == expected, (call, op, model)
        if stamp is not None:
            assert stamp > previous, (call, stamp, previous)
            previous = stamp
    assert {entry.key: (entry.value, entry.versionstamp) for entry in kv.list()} == model


def _shape(outcome: Any) -> tuple[Any, ...]:
    if isinstance(outcome, SetResult):
        return ("set", outcome.ok, outcome.committed, outcome.versionstamp, outcome.created)
    if isinstance(outcome, CommitResult):
        return ("atomic", outcome.ok, outcome.versionstamp, outcome.failed_checks)
    if isinstance(outcome, InvalidValueError):
        return ("invalid",)
    return ("delete", outcome)


def _apply(model: dict[str, tuple[Any, str | None]], op: Any, outcome: Any) -> tuple[tuple[Any, ...], str | None]:
    """What ``op`` gives on the model (a new versionstamp is taken from the store's ``outcome``), and the
    versionstamp it committed, if any; the model changes as the store should have."""
    kind, key = op[0], op[1]
    if kind == "delete":
        current = model.get(key)
        if current is None or (op[2] is not None and current[1] != op[2]):
            return ("delete", False), None
        del model[key]
        return ("delete", True), None
    if kind != "atomic":
        current = model.get(key)
        stamp_now = None if current is None else current[1]
        if kind == "set_nx" and current is not None:
            return ("set", False, False, stamp_now, False), None
        if kind == "keep" and current is not None:
            return ("set", True, False, stamp_now, False), None
        if kind == "cas" and stamp_now != op[3]:
            return ("set", False, False, stamp_now, False), None
        stamp = outcome.versionstamp if isinstance(outcome, SetResult) else None
        model[key] = (op[2], stamp)
        return ("set", True, True, stamp, current is None), stamp
    failed = tuple(
        FailedCheck(i, checked, None if checked not in model else model[checked][1])
        for i, (checked, stamp) in enumerate(op[1])
        if (None if checked not in model else model[checked][1]) != stamp
    )
    if failed:
        return ("atomic", False, None, failed), None
    after: dict[str, tuple[Any, str | None]] = dict(model)
    wrote = False
    for name, target, *rest in op[2]:
        if name == "delete":
            wrote = wrote or target in after
            after.pop(target, None)
            continue
        if name == "set":
            after[target] = (rest[0], None)
        else:
            current = after.get(target)
            if current is not None and type(current[0]) is not int:
                return ("invalid",), None
            operand = rest[0]
            if current is None:
                combined = operand  # a missing entry becomes the operand
            else:
                combined = {
                    "sum": current[0] + operand,
                    "min": min(current[0], operand),
                    "max": max(current[0], operand),
                }[name]
            after[target] = (combined, None)
        wrote = True
    stamp = outcome.versionstamp if isinstance(outcome, CommitResult) and wrote else None
    model.clear()
    model.update({k: (value, stamp if version is None else version) for k, (value, version) in after.items()})
    return ("atomic", True, stamp, ()), stamp
