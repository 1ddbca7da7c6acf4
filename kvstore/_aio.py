"""AsyncKVStore: the KVStore API as coroutines, for asyncio applications.

A blocking ``KVStore`` is opened off the loop, and calls reach it on three lanes of threads (``_aio_worker``):
writes on one thread, in the order they were made, the writes waiting together committed as one transaction
(group commit, ``_aio_writes``); point reads that must leave the loop, several at once as one ``get_many``;
and every other read, one at a time per thread. A thread hands the results of a whole batch back to the loop
in one wake-up (``_aio_lanes``). Reads never wait behind writes, and a short get on an SQLite store does not
leave the loop at all: it reads on a connection that never waits and returns at once (``_backends.sqlite.
loopread``), so the loop never blocks, while large values, refreshes and busy databases go to a thread.
Likewise a lone set of a small value on an SQLite file commits on the loop when no write is queued (``_aio_set``).

Ordering: writes apply in the order they were called; a read sees every write whose ``await`` returned before
the read was called (read your own writes), and calls in flight at the same time have no order between them.
A cancelled ``await`` never leaves a half-applied write: a write that had not started is skipped, one that had
runs whole (in its batch).

It is built on the sync API (the classes ``kvstore`` exports) and a few internals: ``DEFAULT_NAMESPACE`` (the
default view's name, needed before the store opens), ``check_key`` and ``check_keys`` (so that bad keys raise
when the call is made, as in the sync API), ``entry_of`` (the loop-side get builds its entry as ``get`` does)
and the default size limits, so that ``AsyncKVStore`` takes the options of ``KVStore`` with the same defaults.
Wrapping a new store method is one line in a class body, naming the lane it runs on::

    count = _delegate(Namespace.count, Core.read)
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

# The public names from the modules that define them (importing ``kvstore`` here would be a cycle, as the
# package names this module under TYPE_CHECKING), and the internals named in the module docstring.
from ._aio_queue import AsyncMessage, AtomicEnqueue, QueueMethods
from ._aio_queue_wait import signal_of
from ._aio_set import set as loop_set
from ._aio_watch import AsyncWatch
from ._aio_worker import Core
from ._atomic import AtomicOperation
from ._backends.base import CHECKSUM, REFRESH
from ._backends.sqlite.loopread import LOOP_VALUE_MAX, OffLoop
from ._codec import DEFAULT_MAX_METADATA_SIZE, DEFAULT_MAX_VALUE_SIZE, JSON, Value
from ._entries import entry_of
from ._models import CommitResult, Entry
from ._namespace import DEFAULT_NAMESPACE, Namespace
from ._store import KVStore
from ._validation import _VALID_KEYS, Milliseconds, Seconds, check_interval, check_key, check_keys

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

Lane = Callable[[Core, Callable[[KVStore], Any]], "asyncio.Future[Any]"]
"""Where a call runs: ``Core.write``, ``Core.write_alone`` or ``Core.read``."""


def _delegate(
    method: Callable[Concatenate[Any, P], R], lane: Lane
) -> Callable[Concatenate[AsyncNamespace, P], Coroutine[Any, Any, R]]:
    """An async method that runs ``method`` on ``lane``'s threads against the view's store object."""

    async def call(self: AsyncNamespace, /, *args: P.args, **kwargs: P.kwargs) -> R:
        resolve = self._resolve
        result: R = await lane(self._core, lambda store: method(resolve(store), *args, **kwargs))
        return result

    functools.update_wrapper(call, method)  # name, docstring, and a signature for inspect and help()
    return call


def _twin(method: Callable[..., Any]) -> Callable[[F], F]:
    """Give a hand-written coroutine method the name, docstring and signature of the store method it mirrors."""

    def wrap(function: F) -> F:
        functools.update_wrapper(function, method)
        return function

    return wrap


class AsyncNamespace(QueueMethods):
    """The key-value API of one namespace, as coroutines that never block the event loop; its queues'
    (``_aio_queue``) too."""

    __slots__ = ("_core", "_name", "_resolve")

    def __init__(self, core: Core, resolve: Callable[[KVStore], Namespace], name: str) -> None:
        self._core = core
        self._resolve = resolve
        self._name = name

    @property
    def name(self) -> str:
        """This namespace's name."""
        return self._name

    async def _read(self, call: Callable[[Namespace], R]) -> R:
        resolve = self._resolve
        result: R = await self._core.read(lambda store: call(resolve(store)))
        return result

    async def _write(self, call: Callable[[Namespace], R]) -> R:
        resolve = self._resolve
        result: R = await self._core.write(lambda store: call(resolve(store)))
        return result

    set = _twin(Namespace.set)(loop_set)  # on the loop when it can (``_aio_set``), else on the write thread
    get_many = _delegate(Namespace.get_many, Core.read)
    delete = _delegate(Namespace.delete, Core.write)
    list = _delegate(Namespace.list, Core.read)
    list_keys = _delegate(Namespace.list_keys, Core.read)
    count = _delegate(Namespace.count, Core.read)
    delete_prefix = _delegate(Namespace.delete_prefix, Core.write_alone)

    @_twin(Namespace.get)
    async def get(self, key: str) -> Entry | None:
        core = self._core
        # Here, not on a thread: a bad key must not fail the gets read together with it. check_key's first test
        # inlined (a key found valid lately), as in Namespace.get: a call fewer, 340 instructions of a get.
        if type(key) is not str or key not in _VALID_KEYS:
            check_key(key)
        reader = core.reader
        if reader is None:  # PostgreSQL, or a store not open yet or closed
            found: Entry | None = await core.get(self._resolve, key)
            return found
        row = reader.get(self._name, key, core.now_us())
        if row is None:
            return None
        if isinstance(row, tuple):
            if row[CHECKSUM] != REFRESH:  # the common case: read and decoded on the loop, no hop
                return entry_of(key, row)
        elif row is OffLoop.BUSY:
            found = await core.get(self._resolve, key)
            return found
        # A large value decodes on a thread; a refresh on access is a write, which may wait for the lock.
        resolve = self._resolve
        found = await core.read(lambda store: resolve(store).get(key))
        if row is OffLoop.LARGE and (found is None or found.size_bytes <= LOOP_VALUE_MAX):
            reader.small(key)
        return found

    async def namespace(self, name: str) -> AsyncNamespace:
        """The same API scoped to the namespace ``name`` (validated once the store is open)."""
        view: Namespace = await self._read(lambda target: target.namespace(name))
        return AsyncNamespace(self._core, lambda _store: view, view.name)

    def atomic(self) -> AsyncAtomicOperation:
        """An atomic commit built here and committed with the writes: ``await kv.atomic().set(...).commit()``."""
        return AsyncAtomicOperation(self)

    def watch(self, keys: Iterable[str], *, interval: timedelta | Seconds = 0.05) -> AsyncWatch:
        """``async for snapshot in kv.watch(keys)``: as ``KVStore.watch``, polled every ``interval`` (seconds)."""
        return AsyncWatch(self, check_keys(keys), check_interval(interval))

    async def iterate(
        self,
        prefix: str = "",
        *,
        start: str | None = None,
        end: str | None = None,
        reverse: bool = False,
        page_size: int = 100,
    ) -> AsyncIterator[Entry]:
        """``async for entry in kv.iterate(prefix)``: every live entry under ``prefix`` (and in ``[start, end)``),
        in key order.

        Fetches ``page_size`` entries per call to ``list`` and follows its cursor, so the loop never holds
        a transaction open between pages; writes made meanwhile follow the cursor rules of ``list``.
        """
        cursor: str | None = None
        while True:
            page = await self.list(prefix, start=start, end=end, limit=page_size, cursor=cursor, reverse=reverse)
            for entry in page:
                yield entry
            if page.cursor is None:
                return
            cursor = page.cursor


class AsyncAtomicOperation(AtomicEnqueue):
    """``kv.atomic()`` for asyncio: the calls are recorded here, then replayed and committed on the write thread.

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
        expire_in: timedelta | Milliseconds | None = None,
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
        """Build the operation on the write thread and commit it there: all or nothing, as ``KVStore.atomic``."""
        calls, self._calls = self._calls, []

        def run(target: Namespace) -> CommitResult:
            op = target.atomic()
            for call in calls:
                call(op)
            return op.commit()

        self.result = await self._namespace._write(run)
        if self.result.message_ids:  # waiting receivers of this store may take them now
            signal_of(self._namespace._core).wake()
        return self.result

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            await self.commit()


class AsyncKVStore(AsyncNamespace):
    """A KVStore driven from asyncio: ``async with AsyncKVStore("app.db") as kv: await kv.set(...)``.

    Takes the same arguments as ``KVStore``. The store is opened on the write thread by the first call;
    ``await kv.open()`` (or ``async with``) opens it and raises if it cannot be opened. ``set``, ``get``,
    ``get_many``, ``delete``, ``list``, ``list_keys``, ``count``, ``delete_prefix``, ``namespace``,
    ``purge_expired``, ``info`` and ``close`` are coroutines here; ``atomic()`` commits with ``await``, and
    ``iterate`` and ``watch`` give an ``async for``. So are the queue's ``enqueue``, ``receive`` (an
    ``AsyncMessage``), ``queue_info``, ``peek_queue``, ``clear_dead_letters`` and ``listen_queue``, which runs
    an async handler until cancelled or the store closes (``_aio_queue``).
    """

    __slots__ = ()

    def __init__(
        self,
        target: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: timedelta | Seconds = 5.0,
        synchronous: str = "NORMAL",
        max_value_size: int = DEFAULT_MAX_VALUE_SIZE,
        max_metadata_size: int = DEFAULT_MAX_METADATA_SIZE,
        purge_batch_size: int = 500,
        auto_purge_every: int = 1000,
        max_checks: int = 1000,
        max_mutations: int = 10_000,
        max_commit_size: int = 64 * 1024 * 1024,
        pool_size: int = 10,
        pool_timeout: timedelta | Seconds = 30.0,
        connect_timeout: timedelta | Seconds = 10.0,
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

        super().__init__(Core(opener, name="kvstore-async"), _identity, DEFAULT_NAMESPACE)

    async def open(self) -> Self:
        """Wait until the store is open; raise the error that kept it from opening."""
        self._core.start()
        # Shielded: cancelling this wait must not cancel the shared "opened" future itself.
        await asyncio.shield(asyncio.wrap_future(self._core.opened))
        return self

    purge_expired = _delegate(KVStore.purge_expired, Core.write_alone)
    info = _delegate(KVStore.info, Core.read)
    checkpoint = _delegate(KVStore.checkpoint, Core.write_alone)
    verify = _delegate(KVStore.verify, Core.read)

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._core.stopping

    async def close(self) -> None:
        """Finish the queued calls, close the store and end its threads. Closing twice is harmless."""
        done = self._core.stop()
        if done is not None:
            await asyncio.shield(asyncio.wrap_future(done))

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


# What kvstore exports from here.
__all__ = ["AsyncAtomicOperation", "AsyncKVStore", "AsyncMessage", "AsyncNamespace", "AsyncWatch"]
