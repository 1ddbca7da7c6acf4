"""``AsyncKVStore.set``: a lone set of a small value on an SQLite file commits on the loop's own thread.

A set waits for the write thread (``_aio_writes``) unless every one of these holds, and then it is made on
the loop, at once, with no hop to a thread and back (``_backends.sqlite.loopwrite``):

- the store has a loop writer (a file in WAL mode under ``synchronous`` NORMAL or OFF: its commit neither
  waits nor syncs, and it never checkpoints);
- no write of this store is queued or running on the write thread: so this one follows every write called
  before it, in commit order (its versionstamp is the higher), and a task's writes keep their order;
- no other set committed on the loop in this turn of the loop: writes made together (tasks woken by one
  batch's results, many requests at once) still go to the thread together, as one transaction;
- the value and the metadata are small: scalars, and strings, bytes, lists and dicts of a few hundred items
  and ``LOOP_VALUE_MAX`` bytes at most, so that encoding them is brief (anything larger encodes on a thread);
- the database is free: busy, locked or full, the set goes to the thread, which waits, or gives space back.

It runs whole within one step of its coroutine, so a cancellation cannot split it (one during the turn the
coroutine then yields finds the write made, as one during its batch's commit would). What a commit sets in
motion runs on threads too: the auto-purge batch on the write thread, and every ``CHECKPOINT_EVERY`` loop
commits a passive checkpoint, which a loop commit never makes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol

from ._backends.sqlite.loopread import LOOP_VALUE_MAX
from ._backends.sqlite.loopwrite import CHECKPOINT_EVERY, LoopWriter
from ._codec import JSON, Value, stamp_bytes
from ._errors import ForkedStoreError, StoreClosedError
from ._models import SetResult
from ._mutations import build_put
from ._namespace import Namespace
from ._shared import Shared
from ._validation import Milliseconds
from ._write import expected_of, set_result

if TYPE_CHECKING:
    from ._aio_worker import Core
    from ._store import KVStore


class _View(Protocol):
    """What ``set`` needs of an ``AsyncNamespace`` (which imports this module)."""

    @property
    def _core(self) -> Core: ...

    @property
    def _resolve(self) -> Callable[[KVStore], Namespace]: ...


_ITEMS: Final = 256  # items of a value walked at most before it counts as large
_SCALARS: Final = frozenset((int, float, bool, type(None)))


def small(value: object) -> bool:
    """Whether ``value`` is certainly quick to encode: at most ``_ITEMS`` items, ``LOOP_VALUE_MAX`` bytes of
    strings and bytes, and no type but the JSON ones and bytes (a subclass, a datetime: on a thread)."""
    stack: list[Any] = [value]
    items = size = 0
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bytes:
            size += len(item)
        elif kind is dict or kind is list or kind is tuple:
            if len(item) > _ITEMS:
                return False  # checked before it is walked: a long list costs the loop nothing
            if kind is dict:
                stack += item.keys()
                stack += item.values()
            else:
                stack += item
        elif kind not in _SCALARS:
            return False
        items += 1
        if items > _ITEMS or size > LOOP_VALUE_MAX:
            return False
    return True


async def set(
    self: _View,
    key: str,
    value: Value,
    *,
    if_versionstamp: str | None = None,
    if_not_exists: bool = False,
    overwrite: bool = True,
    expire_in: timedelta | Milliseconds | None = None,
    expire_at: datetime | None = None,
    refresh_on_access: bool = False,
    metadata: Mapping[str, JSON] | None = None,
    content_type: str | None = None,
) -> SetResult:
    core = self._core
    writer = core.writer
    if (
        writer is not None
        and not core.pending
        and not core.loop_wrote
        and small(value)
        and (metadata is None or small(metadata))
    ):
        store = core.store
        assert store is not None  # a writer is set only once the store is open
        view = self._resolve(store)
        # Positional, as Namespace.set calls it.
        done = _on_loop(
            core, writer, view, key, value, expire_in, expire_at, refresh_on_access, metadata, content_type,
            if_versionstamp, if_not_exists, overwrite,
        )  # fmt: skip
        if done is not None:
            # The other writes of this turn (tasks woken together) go to the thread, as one batch; this task
            # yields a turn, as a write on the thread would, so that it cannot hold the loop set after set.
            core.loop_wrote = True
            asyncio.get_running_loop().call_soon(core.next_turn)
            await asyncio.sleep(0)
            return done
    resolve = self._resolve
    if (
        if_versionstamp is None
        and expire_in is None
        and metadata is None
        and overwrite is True
        and not if_not_exists
        and expire_at is None
        and not refresh_on_access
        and content_type is None
    ):
        # No options, the common set: a call with eight keywords cost a batched set 2,500 more instructions
        # under callgrind (120,600 against 118,100).
        plain: SetResult = await core.write(lambda store: resolve(store).set(key, value))
        return plain

    def on_thread(store: KVStore) -> SetResult:
        return resolve(store).set(
            key,
            value,
            if_versionstamp=if_versionstamp,
            if_not_exists=if_not_exists,
            overwrite=overwrite,
            expire_in=expire_in,
            expire_at=expire_at,
            refresh_on_access=refresh_on_access,
            metadata=metadata,
            content_type=content_type,
        )

    result: SetResult = await core.write(on_thread)
    return result


def _on_loop(
    core: Core,
    writer: LoopWriter,
    view: Namespace,
    key: str,
    value: Value,
    expire_in: timedelta | Milliseconds | None,
    expire_at: datetime | None,
    refresh_on_access: bool,
    metadata: Mapping[str, JSON] | None,
    content_type: str | None,
    if_versionstamp: str | None,
    if_not_exists: bool,
    overwrite: bool,
) -> SetResult | None:
    """``Namespace.set`` on the loop writer; None if it must run on the write thread instead (having written
    nothing). Bad input raises here, as it would there."""
    shared = view._shared
    put = build_put(
        view._name, key, value, shared.now_us, shared.max_value_size, shared.max_metadata_size, expire_in,
        expire_at, refresh_on_access, metadata, content_type, if_versionstamp, if_not_exists, overwrite,
    )  # fmt: skip
    now_us = shared.now_us()
    done = writer.put(put, expected_of(put, if_versionstamp, if_not_exists), now_us)
    if type(done) is not tuple:
        return None  # busy, or a condition that did not hold (the thread reports it), or no block for it
    version, found = done
    _committed(core, shared)
    return set_result(key, put, (True, True, stamp_bytes(version).hex(), found), now_us)  # format_versionstamp


def _committed(core: Core, shared: Shared) -> None:
    """``Shared.committed`` for a loop commit, whose purge and checkpoint go to threads."""
    core.loop_commits += 1
    with contextlib.suppress(StoreClosedError, ForkedStoreError):  # closed since: nothing left to tidy
        shared.committed(lambda: _later(core.write_alone(lambda _store: shared._purge())))
        if core.loop_commits % CHECKPOINT_EVERY == 0:
            _later(core.read(_checkpoint))


def _checkpoint(store: KVStore) -> object:
    return store.checkpoint("passive")


def _later(future: asyncio.Future[Any]) -> None:
    """Let ``future`` run unawaited: its error (a busy database, a closed store) is the next round's to fix."""
    future.add_done_callback(_quiet)


def _quiet(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
