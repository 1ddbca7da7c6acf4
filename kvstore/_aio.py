"""AsyncKVStore: the KVStore API as coroutines, for asyncio applications.

The design is aiosqlite's: one worker thread owns a blocking ``KVStore`` and runs its calls one at a
time, in the order they were made; each coroutine waits on a future that the worker completes. The
event loop never blocks on SQLite. Every store call is one transaction, so an await that is cancelled
either never ran (it is skipped when it had not started) or ran whole on the worker: no write is ever
half-applied, and the next call finds the store in order.

It is built on the sync API (the classes ``kvstore`` exports) and three internals: ``DEFAULT_NAMESPACE``
(the default view's name, needed before the store opens), ``check_keys`` (so that ``watch`` refuses bad
keys when it is called, as the sync one does, not at the first await) and the default size limits, so
that ``AsyncKVStore`` takes the options of ``KVStore`` with the same defaults. The worker thread is
``_aio_worker``. Wrapping a new store method is one line in a class body::

    count = _delegate(Namespace.count)
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from concurrent.futures import Future
from datetime import datetime
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

# The public names from the modules that define them (importing ``kvstore`` here would be a cycle, as the
# package names this module under TYPE_CHECKING), and the internals named in the module docstring.
from ._aio_worker import Worker
from ._atomic import AtomicOperation
from ._codec import DEFAULT_MAX_METADATA_SIZE, DEFAULT_MAX_VALUE_SIZE, JSON, Value
from ._errors import StoreClosedError
from ._models import CommitResult, Entry
from ._namespace import DEFAULT_NAMESPACE, Namespace
from ._store import KVStore
from ._validation import check_keys
from ._watch import Watch

P = ParamSpec("P")
R = TypeVar("R")


async def _await(future: Future[R]) -> R:
    """Wait for a worker future without blocking the loop; cancelling skips the call if it has not started."""
    return await asyncio.wrap_future(future)


def _delegate(
    method: Callable[Concatenate[Any, P], R],
) -> Callable[Concatenate[AsyncNamespace, P], Coroutine[Any, Any, R]]:
    """An async method that runs ``method`` on the worker thread against the view's store object."""

    async def call(self: AsyncNamespace, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self._call(lambda target: method(target, *args, **kwargs))

    functools.update_wrapper(call, method)  # name, docstring, and a signature for inspect and help()
    return call


class AsyncNamespace:
    """The key-value API of one namespace, as coroutines run on the store's worker thread."""

    __slots__ = ("_name", "_resolve", "_worker")

    def __init__(self, worker: Worker, resolve: Callable[[KVStore], Namespace], name: str) -> None:
        self._worker = worker
        self._resolve = resolve
        self._name = name

    @property
    def name(self) -> str:
        """This namespace's name."""
        return self._name

    async def _call(self, call: Callable[[Any], R]) -> R:
        worker, resolve = self._worker, self._resolve

        def job() -> R:
            if worker.store is None:
                worker.opened.result()  # re-raises the error that kept the store from opening
                raise StoreClosedError("the store is not open")
            return call(resolve(worker.store))

        return await _await(worker.submit(job))

    set = _delegate(Namespace.set)
    get = _delegate(Namespace.get)
    get_many = _delegate(Namespace.get_many)
    delete = _delegate(Namespace.delete)
    list = _delegate(Namespace.list)
    list_keys = _delegate(Namespace.list_keys)
    count = _delegate(Namespace.count)
    delete_prefix = _delegate(Namespace.delete_prefix)

    async def namespace(self, name: str) -> AsyncNamespace:
        """The same API scoped to the namespace ``name`` (validated on the worker thread)."""
        view: Namespace = await self._call(lambda target: target.namespace(name))
        return AsyncNamespace(self._worker, lambda _store: view, view.name)

    def atomic(self) -> AsyncAtomicOperation:
        """An atomic commit built here and committed on the worker: ``await kv.atomic().set(...).commit()``."""
        return AsyncAtomicOperation(self)

    def watch(self, keys: Iterable[str], *, interval: float = 0.05) -> AsyncWatch:
        """``async for snapshot in kv.watch(keys)``: as ``KVStore.watch``, polled every ``interval`` seconds."""
        return AsyncWatch(self, check_keys(keys), interval)

    async def iterate(self, prefix: str = "", *, reverse: bool = False, page_size: int = 100) -> AsyncIterator[Entry]:
        """``async for entry in kv.iterate(prefix)``: every live entry under ``prefix``, in key order.

        Fetches ``page_size`` entries per call to ``list`` and follows its cursor, so the loop never holds
        a transaction open between pages; writes made meanwhile follow the cursor rules of ``list``.
        """
        cursor: str | None = None
        while True:
            page = await self.list(prefix, limit=page_size, cursor=cursor, reverse=reverse)
            for entry in page:
                yield entry
            if page.cursor is None:
                return
            cursor = page.cursor


class AsyncAtomicOperation:
    """``kv.atomic()`` for asyncio: the calls are recorded here, then replayed and committed on the worker.

    Bad input therefore raises from ``commit()`` rather than from the call that carried it. As an async
    context manager it commits on a clean exit (the outcome is in ``result``) and discards on an error.
    """

    __slots__ = ("_calls", "_namespace", "result")

    def __init__(self, namespace: AsyncNamespace) -> None:
        self._namespace = namespace
        self._calls: list[Callable[[AtomicOperation], object]] = []
        self.result: CommitResult | None = None

    def check(self, key: str, versionstamp: str | None) -> Self:
        """As ``AtomicOperation.check``."""
        self._calls.append(lambda op: op.check(key, versionstamp))
        return self

    def set(
        self,
        key: str,
        value: Value,
        *,
        expire_in: float | None = None,
        expire_at: datetime | None = None,
        refresh_on_access: bool = False,
        metadata: Mapping[str, JSON] | None = None,
        content_type: str | None = None,
    ) -> Self:
        """As ``AtomicOperation.set``."""
        self._calls.append(
            lambda op: op.set(
                key,
                value,
                expire_in=expire_in,
                expire_at=expire_at,
                refresh_on_access=refresh_on_access,
                metadata=metadata,
                content_type=content_type,
            )
        )
        return self

    def delete(self, key: str) -> Self:
        """As ``AtomicOperation.delete``."""
        self._calls.append(lambda op: op.delete(key))
        return self

    def sum(self, key: str, operand: int) -> Self:
        """As ``AtomicOperation.sum``."""
        self._calls.append(lambda op: op.sum(key, operand))
        return self

    def min(self, key: str, operand: int) -> Self:
        """As ``AtomicOperation.min``."""
        self._calls.append(lambda op: op.min(key, operand))
        return self

    def max(self, key: str, operand: int) -> Self:
        """As ``AtomicOperation.max``."""
        self._calls.append(lambda op: op.max(key, operand))
        return self

    async def commit(self) -> CommitResult:
        """Build the operation on the worker and commit it there: all or nothing, as ``KVStore.atomic``."""
        calls, self._calls = self._calls, []

        def run(target: Namespace) -> CommitResult:
            op = target.atomic()
            for call in calls:
                call(op)
            return op.commit()

        self.result = await self._namespace._call(run)
        return self.result

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            await self.commit()


class AsyncWatch:
    """``async for snapshot in kv.watch(keys)``: the snapshots of ``KVStore.watch``, without blocking the loop.

    Each check runs on the worker (one cheap probe, and a read only after a change); between checks the
    event loop sleeps ``interval`` seconds, so a change, from this process or another, shows within about
    one interval. ``await watch.aclose()`` (or ``async with``) releases its connection.
    """

    __slots__ = ("_interval", "_keys", "_namespace", "_watch")

    def __init__(self, namespace: AsyncNamespace, keys: list[str], interval: float) -> None:
        self._namespace = namespace
        self._keys = keys
        self._interval = interval
        self._watch: Watch | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> list[Entry | None]:
        watch = self._watch
        if watch is None:
            keys, interval = self._keys, self._interval
            created: Watch = await self._namespace._call(lambda target: target.watch(keys, interval=interval))
            watch = self._watch = created
        poll = watch.poll
        while True:
            try:
                snapshot = await self._namespace._call(lambda _target: poll())
            except StoreClosedError:
                raise StopAsyncIteration from None
            if snapshot is not None:
                return snapshot
            await asyncio.sleep(self._interval)

    async def aclose(self) -> None:
        """Stop watching; a later ``__anext__`` ends the iteration."""
        if self._watch is not None:
            watch = self._watch
            await self._namespace._call(lambda _target: watch.close())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class AsyncKVStore(AsyncNamespace):
    """A KVStore driven from asyncio: ``async with AsyncKVStore("app.db") as kv: await kv.set(...)``.

    Takes the same arguments as ``KVStore``. The store is opened on the worker thread by the first call;
    ``await kv.open()`` (or ``async with``) opens it and raises if it cannot be opened. ``set``, ``get``,
    ``get_many``, ``delete``, ``list``, ``list_keys``, ``count``, ``delete_prefix``, ``namespace``,
    ``purge_expired``, ``info`` and ``close`` are coroutines here; ``atomic()`` commits with ``await``, and
    ``iterate`` and ``watch`` give an ``async for``.
    """

    __slots__ = ()

    def __init__(
        self,
        target: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 5.0,
        synchronous: str = "NORMAL",
        max_value_size: int = DEFAULT_MAX_VALUE_SIZE,
        max_metadata_size: int = DEFAULT_MAX_METADATA_SIZE,
        purge_batch_size: int = 500,
        auto_purge_every: int = 1000,
        max_checks: int = 1000,
        max_mutations: int = 10_000,
        max_commit_size: int = 64 * 1024 * 1024,
        pool_size: int = 10,
        pool_timeout: float = 30.0,
        connect_timeout: float = 10.0,
    ) -> None:
        def opener() -> KVStore:
            return KVStore(
                target,
                clock=clock,
                busy_timeout=busy_timeout,
                synchronous=synchronous,
                max_value_size=max_value_size,
                max_metadata_size=max_metadata_size,
                purge_batch_size=purge_batch_size,
                auto_purge_every=auto_purge_every,
                max_checks=max_checks,
                max_mutations=max_mutations,
                max_commit_size=max_commit_size,
                pool_size=pool_size,
                pool_timeout=pool_timeout,
                connect_timeout=connect_timeout,
            )

        super().__init__(Worker(opener, name="kvstore-async-worker"), _identity, DEFAULT_NAMESPACE)

    async def open(self) -> Self:
        """Wait until the store is open; raise the error that kept it from opening."""
        self._worker.start()
        # Shielded: cancelling this wait must not cancel the shared "opened" future itself.
        await asyncio.shield(_await(self._worker.opened))
        return self

    purge_expired = _delegate(KVStore.purge_expired)
    info = _delegate(KVStore.info)

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._worker.stopping

    async def close(self) -> None:
        """Finish the queued calls, close the store and end the worker thread. Closing twice is harmless."""
        worker = self._worker
        try:
            done = worker.stop(lambda: None if worker.store is None else worker.store.close())
        except StoreClosedError:
            return
        if done is not None:
            await asyncio.shield(_await(done))

    async def __aenter__(self) -> Self:
        try:
            return await self.open()
        except BaseException:
            await self.close()
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def _identity(store: KVStore) -> Namespace:
    return store
