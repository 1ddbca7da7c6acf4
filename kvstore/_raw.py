"""A point read that leaves a large value undecoded: its stored msgpack bytes, checksum verified, beside the
rest of its entry, for a caller that has it decoded elsewhere (the HTTP service renders it in a worker process).

``get_raw`` is ``AsyncNamespace.get``, except that a live entry whose value has more than ``above`` bytes comes
back as a ``Raw``: an ``Entry`` whose ``value`` is None, and the value's bytes, which ``_codec.decode_value``
decodes (and refuses, if corrupt) as a get would. Everything else (a small value, a refresh on access, a busy
loop-side reader, PostgreSQL) reads as ``get`` does.

It uses internals of the read path: the loop-side reader and lanes of ``_aio_worker.Core``, a ``Found``'s columns
(``_backends.base``) and the checksum and entry helpers. Only ``_refreshes`` depends on the shape of a ``Found``.
"""

from __future__ import annotations

from typing import NamedTuple

from ._aio import AsyncNamespace
from ._backends.base import CHECKSUM, REFRESH, Found
from ._backends.sqlite.loopread import LOOP_VALUE_MAX, OffLoop
from ._checksum import corrupt, verified
from ._codec import decode_metadata, format_versionstamp, from_epoch_us
from ._entries import _BAD_COLUMN, entry_of
from ._models import Entry
from ._namespace import Namespace
from ._validation import _VALID_KEYS, check_key


class Raw(NamedTuple):
    """A live entry whose value is left as stored: ``entry.value`` is None, ``value`` the checked msgpack bytes."""

    entry: Entry
    value: bytes


def _refreshes(found: Found) -> bool:
    """Whether a read of this entry refreshes its expiry (a write, which ``Namespace.get`` makes)."""
    return found[CHECKSUM] == REFRESH


def _without_value(key: str, found: Found) -> Entry:
    """The Entry at ``key`` of a verified stored entry, its value left out (None); ``size_bytes`` is the value's."""
    value, version, metadata, content_type, created_us, updated_us, expires_us = found[:7]
    try:
        created_at = from_epoch_us(created_us)
        return Entry(
            key,
            None,
            format_versionstamp(version),
            decode_metadata(metadata),
            content_type,
            len(value),
            created_at,
            created_at if updated_us == created_us else from_epoch_us(updated_us),
            None if expires_us is None else from_epoch_us(expires_us),
        )
    except _BAD_COLUMN:
        raise corrupt(key, found) from None


def read_raw(namespace: Namespace, key: str, above: int) -> Entry | Raw | None:
    """``namespace.get(key)``, or a ``Raw`` for a value of more than ``above`` bytes (on a thread: it waits)."""
    shared = namespace._shared
    found = shared.backend.get(namespace.name, key, shared.now_us())
    if found is None:
        return None
    if _refreshes(found):
        return namespace.get(key)  # reads it again, and refreshes it as a get does
    value = found[0]
    if type(value) is not bytes or len(value) <= above:
        return entry_of(key, found)
    if not verified(found):
        raise corrupt(key, found)
    return Raw(_without_value(key, found), value)


async def get_raw(view: AsyncNamespace, key: str, above: int) -> Entry | Raw | None:
    """``await view.get(key)``, or a ``Raw`` for a value of more than ``above`` bytes (at least LOOP_VALUE_MAX)."""
    if type(key) is not str or key not in _VALID_KEYS:  # check_key's first test inlined, as AsyncNamespace.get
        check_key(key)
    core = view._core
    reader = core.reader
    if reader is None:  # PostgreSQL (its gets are batched), or a store not open yet or closed
        return await view.get(key)
    row = reader.get(view.name, key, core.now_us())
    if row is None:
        return None
    if isinstance(row, tuple):
        if not _refreshes(row):  # the common case: a small value, read and decoded on the loop as get does
            return entry_of(key, row)
        return await view.get(key)
    if row is OffLoop.BUSY:
        return await view.get(key)
    resolve = view._resolve
    found: Entry | Raw | None = await core.read(lambda store: read_raw(resolve(store), key, above))
    if found is None or (type(found) is Entry and found.size_bytes <= LOOP_VALUE_MAX):
        reader.small(key)
    return found
