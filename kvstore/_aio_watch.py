"""AsyncWatch: ``KVStore.watch`` as an ``async for``, its checks run on a read thread of ``AsyncKVStore``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, Self, TypeVar

from ._errors import StoreClosedError
from ._models import Entry
from ._namespace import Namespace
from ._watch import Watch

R = TypeVar("R")


class _Reads(Protocol):
    """An async view that runs reads on its store's read threads (``AsyncNamespace``)."""

    async def _read(self, call: Callable[[Namespace], R]) -> R: ...


class AsyncWatch:
    """``async for snapshot in kv.watch(keys)``: the snapshots of ``KVStore.watch``, without blocking the loop.

    Each check runs on a read thread (one cheap probe, and a read only after a change); between checks the
    event loop sleeps ``interval`` seconds, so a change, from this process or another, shows within about
    one interval. ``await watch.aclose()`` (or ``async with``) releases its connection.
    """

    __slots__ = ("_interval", "_keys", "_namespace", "_watch")

    def __init__(self, namespace: _Reads, keys: list[str], interval: float) -> None:
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
            created: Watch = await self._namespace._read(lambda target: target.watch(keys, interval=interval))
            watch = self._watch = created
        poll = watch.poll
        while True:
            try:
                snapshot = await self._namespace._read(lambda _target: poll())
            except StoreClosedError:
                raise StopAsyncIteration from None
            if snapshot is not None:
                return snapshot
            await asyncio.sleep(self._interval)

    async def aclose(self) -> None:
        """Stop watching; a later ``__anext__`` ends the iteration."""
        if self._watch is not None:
            watch = self._watch
            await self._namespace._read(lambda _target: watch.close())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
