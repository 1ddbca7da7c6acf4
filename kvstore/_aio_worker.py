"""The worker thread of ``AsyncKVStore``: one thread that owns a blocking ``KVStore`` and runs its calls
one at a time, in the order they were made."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from ._errors import StoreClosedError
from ._store import KVStore

R = TypeVar("R")

_Job = tuple[Future[Any], Callable[[], Any]]


class Worker:
    """One thread that opens a KVStore, runs every call on it in order, and closes it at the end.

    The thread starts with the first call (or ``start``), so a store that is built but never used
    opens nothing.
    """

    def __init__(self, opener: Callable[[], KVStore], name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()  # None: stop
        self._stopping = False
        self._lock = threading.Lock()  # orders submit() against stop(), so no job lands after the stop
        self.store: KVStore | None = None
        self.opened: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(opener,), name=name, daemon=True)

    def start(self) -> None:
        """Start the thread (and so open the store) unless it is started or stopped already."""
        with self._lock:
            self._start()

    def _start(self) -> None:
        if self._stopping:
            raise StoreClosedError("the AsyncKVStore is closed")
        if self._thread.ident is None:
            self._thread.start()

    def submit(self, call: Callable[[], R]) -> Future[R]:
        """Queue ``call`` for the worker; its future is cancellable until the worker starts it."""
        future: Future[R] = Future()
        with self._lock:
            self._start()
            self._jobs.put((future, call))
        return future

    @property
    def stopping(self) -> bool:
        """Whether ``stop`` was called: no call is accepted any more."""
        return self._stopping

    def stop(self, final: Callable[[], None]) -> Future[None] | None:
        """Run ``final`` after every queued call, then end the thread; later calls raise StoreClosedError.

        Returns None when the thread never started: there is nothing to finish.
        """
        with self._lock:
            if self._stopping:
                raise StoreClosedError("the AsyncKVStore is closed")
            self._stopping = True
            if self._thread.ident is None:
                return None
            future: Future[None] = Future()
            self._jobs.put((future, final))
            self._jobs.put(None)
        return future

    def _run(self, opener: Callable[[], KVStore]) -> None:
        try:
            self.store = opener()
        except BaseException as exc:
            self.opened.set_exception(exc)
        else:
            self.opened.set_result(None)
        while (job := self._jobs.get()) is not None:
            future, call = job
            if not future.set_running_or_notify_cancel():
                continue  # cancelled before it started: it never runs
            try:
                future.set_result(call())
            except BaseException as exc:
                future.set_exception(exc)
