"""The threads behind ``AsyncKVStore``: a store opened off the loop, and three lanes of calls.

- **writes**: one thread; every write waiting when it looks goes into one transaction (group commit, see
  ``_aio_writes``), and the results are delivered after that transaction committed.
- **gets**: point reads that could not run on the loop (PostgreSQL, an SQLite connection in use); the gets
  waiting for one view run as one ``get_many``, one statement and one snapshot for them all.
- **reads**: everything else that reads (listings, ``get_many``, large values, refreshes, watches), one
  call at a time per thread, so a long read never holds up another.

Reads never queue behind writes. Short SQLite gets skip the threads altogether: ``reader`` reads on the
loop's thread (see ``_backends.sqlite.loopread``) once the store is open; and a lone small set, with no
write ``pending``, commits there on ``writer`` (``_aio_set``).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Final, TypeAlias

from ._aio_lanes import Lane, Outcome, failed
from ._aio_writes import WriteJob, run_writes
from ._backends.sqlite import SQLiteBackend
from ._backends.sqlite.loopread import LoopReader
from ._backends.sqlite.loopwrite import LoopWriter, loop_writer
from ._errors import ForkedStoreError, StoreClosedError
from ._namespace import Namespace
from ._store import KVStore

GetJob: TypeAlias = tuple["asyncio.Future[Any]", Callable[[KVStore], Namespace], str]
"""(future, the view's resolver, key): one point read."""
ReadJob: TypeAlias = tuple["asyncio.Future[Any]", Callable[[KVStore], Any]]
"""(future, call): any other read, run against the open store."""

# Two get threads, so that gets arriving while a batch waits on PostgreSQL need not wait for it (64 tasks: 19,
# 23 and 20 thousand gets/s with 1, 2 and 4 threads, within this machine's noise); four read threads, so that a
# small read is held up only when four large ones are in flight. With the write thread, 7 connections at most:
# below the PostgreSQL pool's default of 10. A batch of writes is at most group commit's (``_group.CAP``), which
# bounds how long it holds the write lock.
_GET_THREADS: Final = 2
_GET_BATCH: Final = 256
_READ_THREADS: Final = 4
_WRITE_BATCH: Final = 256
_FORKED: Final = "an AsyncKVStore cannot be used in a child process it was inherited by: open one in the child"

_CORES: weakref.WeakSet[Core] = weakref.WeakSet()


class Core:
    """What every view of one ``AsyncKVStore`` shares: the store, its lanes, and the loop-side reader."""

    def __init__(self, opener: Callable[[], KVStore], name: str) -> None:
        self._opener = opener
        self._name = name
        self.store: KVStore | None = None
        self.opened: Future[None] = Future()
        self.reader: LoopReader | None = None  # set once the store is open on SQLite; None again at close
        self.writer: LoopWriter | None = None  # likewise, on an SQLite file where a loop commit cannot wait
        self.pending = 0  # writes queued, or running on the write thread: a loop write waits for none
        self.loop_commits = 0  # writes committed by ``writer`` (the loop schedules checkpoints by it)
        # On the loop (``_aio_set``): ``writer`` committed in this turn of the loop, or a batch of writes was
        # settled and its tasks run in this one; then a set goes to the write thread, to be batched.
        self.loop_wrote = False
        self.now_us: Callable[[], int] = _unset_clock
        self._lock = threading.Lock()  # orders submissions against stop(), so no call lands after the stop
        self._refusal: str | None = None  # why calls are refused: the store is closed, or inherited by fork
        self._closed: Future[None] | None = None
        self._started = False
        self._writes: Lane[WriteJob] = Lane(name, 1, _WRITE_BATCH, self._run_writes, self._open, self._settled)
        self._gets: Lane[GetJob] = Lane(f"{name}-get", _GET_THREADS, _GET_BATCH, self._run_gets)
        self._reads: Lane[ReadJob] = Lane(f"{name}-read", _READ_THREADS, 1, self._run_reads)
        _CORES.add(self)

    @property
    def stopping(self) -> bool:
        """Whether calls are refused (``close`` was called, or this is a forked child)."""
        return self._refusal is not None

    # -- submitting, on the loop -------------------------------------------------------------------------

    def start(self) -> None:
        """Open the store (on the write thread) unless it is opening already; refused once closed."""
        with self._lock:
            self._start()

    def _start(self) -> None:
        if self._refusal is not None:
            raise (ForkedStoreError if self._refusal is _FORKED else StoreClosedError)(self._refusal)
        if not self._started:
            self._started = True
            self._writes.start()  # its thread opens the store before it serves a write

    def write(self, call: Callable[[KVStore], Any], solo: bool = False) -> asyncio.Future[Any]:
        """Queue a write; ``solo`` runs it in no batch (a call of many transactions, as delete_prefix)."""
        with self._lock:
            self._start()
            future = asyncio.get_running_loop().create_future()
            self._writes.put((future, call, solo))
            self.pending += 1
        return future

    def next_turn(self) -> None:
        """On the loop, at its next turn: the writes of the last one are over."""
        self.loop_wrote = False

    def _settled(self, count: int) -> None:
        # The tasks a batch of writes woke run next, and their next writes, made together, batch too: a set
        # on the loop between them would cost every batch a commit (and each connection a block).
        if count > 1 and self.writer is not None:
            self.loop_wrote = True
            asyncio.get_running_loop().call_soon(self.next_turn)  # after those tasks' steps

    def write_alone(self, call: Callable[[KVStore], Any]) -> asyncio.Future[Any]:
        """Queue a write of many transactions (delete_prefix, purge_expired): it runs in no batch."""
        return self.write(call, True)

    def get(self, resolve: Callable[[KVStore], Namespace], key: str) -> asyncio.Future[Any]:
        """Queue a point read of ``key`` (checked already) in the view ``resolve`` gives."""
        with self._lock:
            self._start()
            future = asyncio.get_running_loop().create_future()
            self._gets.put((future, resolve, key))
        return future

    def read(self, call: Callable[[KVStore], Any]) -> asyncio.Future[Any]:
        """Queue any other read."""
        with self._lock:
            self._start()
            future = asyncio.get_running_loop().create_future()
            self._reads.put((future, call))
        return future

    def stop(self) -> Future[None] | None:
        """Refuse new calls, finish the queued ones, close the store; None if nothing was ever opened.

        Calling it again returns the same future: every closer waits until the store is closed.
        """
        with self._lock:
            if self._refusal is None:
                self._refusal = "the AsyncKVStore is closed"
                self.reader = None  # the loop reads no more; one in progress holds its connection's lock
                self.writer = None  # nor writes; the store closes its connection
                if self._started:
                    threads = [*self._gets.stop(), *self._reads.stop(), *self._writes.stop()]
                    self._closed = Future()
                    closer = threading.Thread(
                        target=self._finish, args=(threads, self._closed), name=f"{self._name}-close", daemon=True
                    )
                    closer.start()
            return self._closed

    def forked(self) -> None:
        """In a forked child: the threads are gone and SQLite connections must not be used; refuse calls."""
        self._lock = threading.Lock()  # another thread may have held it at the fork: it is gone in the child
        self._refusal = _FORKED
        self.reader = None
        self.writer = None

    # -- on the threads ----------------------------------------------------------------------------------

    def _open(self) -> None:
        """On the write thread, before it serves a write: open the store and, on SQLite, the loop reader."""
        try:
            store = self._opener()
            backend = store._backend
            reader = backend.loop_reader() if isinstance(backend, SQLiteBackend) else None
            # A clock of the caller's own may wait (or be slow): then every write reads it on the thread.
            mine = store._shared.clock is time.time
            writer = loop_writer(backend) if isinstance(backend, SQLiteBackend) and mine else None
        except BaseException as exc:
            self.opened.set_exception(exc)
            return
        self.store = store
        self.now_us = store._shared.now_us
        with self._lock:
            if self._refusal is None:
                self.reader = reader
                self.writer = writer
        self.opened.set_result(None)

    def _finish(self, threads: list[threading.Thread], done: Future[None]) -> None:
        try:
            for thread in threads:
                thread.join()
            if self.store is not None:
                self.store.close()
        except BaseException as exc:
            done.set_exception(exc)
        else:
            done.set_result(None)

    def open_store(self) -> KVStore:
        """The open store, once it is; raises the error that kept it from opening."""
        self.opened.result()
        store = self.store
        if store is None:  # pragma: no cover - opened resolves only after the store is set
            raise StoreClosedError("the store is not open")
        return store

    def _run_writes(self, jobs: list[WriteJob]) -> list[Outcome]:
        try:
            return run_writes(self.open_store(), jobs)
        finally:  # before the outcomes go out: a loop write that finds none pending follows these commits
            with self._lock:
                self.pending -= len(jobs)

    def _run_gets(self, jobs: list[GetJob]) -> list[Outcome]:
        store = self.open_store()
        outcomes: list[Outcome] = []
        # One get_many per view, over distinct keys: entries of one key read twice must not share a value
        # (values are mutable), so a repeated key waits for the next round.
        pending = [job for job in jobs if not job[0].done()]
        while pending:
            rounds: dict[Callable[[KVStore], Namespace], dict[str, GetJob]] = {}
            later: list[GetJob] = []
            for job in pending:
                keys = rounds.setdefault(job[1], {})
                if job[2] in keys:
                    later.append(job)
                else:
                    keys[job[2]] = job
            for resolve, keyed in rounds.items():
                group = list(keyed.values())
                try:
                    view = resolve(store)
                    entries = [view.get(group[0][2])] if len(group) == 1 else view.get_many(keyed)
                except Exception as exc:
                    outcomes += failed([job[0] for job in group], exc)
                else:
                    outcomes += [(job[0], True, entry) for job, entry in zip(group, entries, strict=True)]
            pending = later
        return outcomes

    def _run_reads(self, jobs: list[ReadJob]) -> list[Outcome]:
        store = self.open_store()
        outcomes: list[Outcome] = []
        for future, call in jobs:
            if not future.done():  # not cancelled before it started
                try:
                    outcomes.append((future, True, call(store)))
                except Exception as exc:
                    outcomes.append((future, False, exc))
        return outcomes


def _unset_clock() -> int:
    raise StoreClosedError("the store is not open")  # pragma: no cover - read only after open


def _after_fork_in_child() -> None:
    for core in list(_CORES):
        core.forked()


os.register_at_fork(after_in_child=_after_fork_in_child)
