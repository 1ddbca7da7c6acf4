"""Lanes: queues of ``AsyncKVStore`` calls, each served by threads of its own.

A thread takes every call waiting in its lane (up to the lane's batch size), runs them, and hands all their
results to the event loop in one ``call_soon_threadsafe``: one wake-up of the loop per batch, not per call.
Results are asyncio futures of the awaiting coroutines, settled on their own loop; a future cancelled before
its call started tells the runner to skip the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeAlias, TypeVar

Outcome: TypeAlias = tuple["asyncio.Future[Any]", bool, Any]
"""A call's result for its future: (future, True, value) or (future, False, exception)."""

J = TypeVar("J", bound=tuple[Any, ...])  # a job: a tuple whose first item is its future


def _settle(outcomes: list[Outcome], settled: Callable[[int], None] | None = None) -> None:
    """On the loop: complete each future, unless its coroutine stopped waiting (it was cancelled); then tell
    ``settled`` how many there were."""
    for future, ok, value in outcomes:
        if not future.done():
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
    if settled is not None:
        settled(len(outcomes))


def deliver(outcomes: list[Outcome], settled: Callable[[int], None] | None = None) -> None:
    """Hand ``outcomes`` to their loops: one call per loop (nearly always one loop for the whole batch), which
    calls ``settled`` once they are."""
    if not outcomes:
        return
    loop = outcomes[0][0].get_loop()
    batches: dict[asyncio.AbstractEventLoop, list[Outcome]] = {loop: outcomes}
    if any(outcome[0].get_loop() is not loop for outcome in outcomes):
        batches = {}
        for outcome in outcomes:
            batches.setdefault(outcome[0].get_loop(), []).append(outcome)
    for target, batch in batches.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody can await these results any more
            target.call_soon_threadsafe(_settle, batch, settled)


def failed(futures: Sequence[asyncio.Future[Any]], exc: BaseException) -> list[Outcome]:
    """``exc`` for every one of ``futures``: the first gets it, each other a copy (tasks that raise one
    instance at once would tangle its traceback)."""
    outcomes: list[Outcome] = []
    for index, future in enumerate(futures):
        error = exc
        if index:
            try:
                error = copy.copy(exc)
                error.__cause__, error.__context__ = exc.__cause__, exc.__context__
                error.__traceback__ = exc.__traceback__
            except Exception:  # an exception type that cannot be copied: share the one instance
                error = exc
        outcomes.append((future, False, error))
    return outcomes


class Lane(Generic[J]):
    """A queue of jobs and the threads that serve it: one at first, another (up to ``threads``) whenever a job
    arrives while none is free, so a quiet store keeps one thread (and one connection) per lane.

    ``run`` turns a batch of jobs into their outcomes (skipping cancelled ones); if it raises, every job
    of the batch fails with that error, so no coroutine waits forever. ``prepare`` runs first on each thread;
    ``settled`` on the loop, after a batch's futures are settled, with their number.
    """

    def __init__(
        self,
        name: str,
        threads: int,
        batch: int,
        run: Callable[[list[J]], list[Outcome]],
        prepare: Callable[[], None] | None = None,
        settled: Callable[[int], None] | None = None,
    ) -> None:
        self._name = name
        self._prepare = prepare
        self._settled = settled
        self._size = threads
        self._batch = batch
        self._run = run
        self._jobs: queue.SimpleQueue[J | None] = queue.SimpleQueue()  # None: a thread stops
        self._threads: list[threading.Thread] = []
        # Threads waiting for a job and not yet claimed by one: a guide to when to start another, which
        # can be off by a thread either way (a free thread that a busy one beat to a job, say).
        self._idle = 0
        self._count = threading.Lock()

    def put(self, job: J) -> None:
        """Queue ``job``; the caller orders this against ``stop`` (the store's lock)."""
        if len(self._threads) == self._size:
            # Every thread is running: none is to be started, so the count of idle ones, a guide to that
            # alone, is let be (unlocked: a thread only ever joins the list). Under callgrind a put into a
            # lane of one busy thread cost 5,900 instructions taking the lock, 3,800 so (the write lane).
            self._jobs.put(job)
            return
        with self._count:
            if self._idle:
                self._idle -= 1  # a waiting thread takes it
            elif len(self._threads) < self._size:
                self._spawn(waiting=False)
        self._jobs.put(job)

    def start(self) -> None:
        """Start the lane's first thread, unless it has one."""
        with self._count:
            if not self._threads:
                self._spawn(waiting=True)

    def _spawn(self, waiting: bool) -> None:
        name = self._name if self._size == 1 else f"{self._name}-{len(self._threads)}"
        thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._threads.append(thread)
        if waiting:
            self._idle += 1
        thread.start()

    def stop(self) -> list[threading.Thread]:
        """Let each thread finish the jobs queued so far, then end; returns the threads to join."""
        for _ in self._threads:
            self._jobs.put(None)
        return self._threads

    def _serve(self) -> None:
        if self._prepare is not None:
            self._prepare()
        take, take_now, limit = self._jobs.get, self._jobs.get_nowait, self._batch
        while (job := take()) is not None:
            jobs = [job]
            stop = False
            while len(jobs) < limit:
                try:
                    job = take_now()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                jobs.append(job)
            try:
                outcomes = self._run(jobs)
            except BaseException as exc:
                outcomes = failed([job[0] for job in jobs if not job[0].done()], exc)
            deliver(outcomes, self._settled)
            if stop:
                return
            with self._count:
                self._idle += 1
