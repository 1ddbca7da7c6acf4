"""The data API of one namespace: set, get, get_many, delete and list.

``KVStore`` is the view of the default namespace; ``kv.namespace(name)`` returns views of others. Views
share the store's backend, clock and limits, and no operation ever crosses from one namespace to another.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from ._backend import Backend, Row
from ._codec import (
    decode_metadata,
    decode_value,
    default_content_type,
    encode_metadata,
    encode_value,
    format_versionstamp,
    from_epoch_us,
)
from ._cursor import decode_cursor, encode_cursor
from ._errors import ConfigurationError, InvalidOptionsError, StorageError
from ._models import Entry, Page, SetResult
from ._validation import (
    MAX_TTL_US,
    check_content_type,
    check_flag,
    check_key,
    check_namespace,
    check_prefix,
    check_set_options,
    check_versionstamp,
    ttl_from_expire_at,
    ttl_from_expire_in,
)
from ._write import Check, Delete, Put, commit

DEFAULT_NAMESPACE: Final = "default"
# Above every character a key may hold, so ``key < _END`` bounds the listing of an empty prefix.
_END: Final = "~"
_REFRESH_ATTEMPTS: Final = 8
# Now + the longest TTL must still be a datetime (year <= 9999).
_LATEST_NOW_US: Final = 253_402_300_799_000_000 - MAX_TTL_US


@dataclass(slots=True)
class _Shared:
    """What every namespace view of one store shares."""

    backend: Backend
    clock: Callable[[], float]
    max_value_size: int
    max_metadata_size: int
    purge_batch_size: int
    auto_purge_every: int
    writes: int = 0

    def now_us(self) -> int:
        now = self.clock()
        if type(now) is not float and type(now) is not int:
            raise ConfigurationError(f"the store's clock must return epoch seconds as a number, not {now!r}")
        try:
            now_us = round(now * 1_000_000)
        except (ValueError, OverflowError) as exc:  # nan, inf
            raise ConfigurationError(f"the store's clock returned {now!r}, which is no instant") from exc
        if not 0 <= now_us <= _LATEST_NOW_US:
            raise ConfigurationError(f"the store's clock says {now_us / 1e6} s: not an instant from 1970 to 9998")
        return now_us


def _end_of(prefix: str) -> str:
    """The smallest string above every key that starts with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else _END


class Namespace:
    """The key-value API scoped to one namespace."""

    __slots__ = ("_name", "_shared")

    def __init__(self, shared: _Shared, name: str) -> None:
        self._shared = shared
        self._name = name

    @property
    def name(self) -> str:
        """This namespace's name."""
        return self._name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r}>"

    def namespace(self, name: str) -> Namespace:
        """The same API scoped to the namespace ``name`` (1-64 letters, digits, '-' or '_')."""
        return Namespace(self._shared, check_namespace(name))

    def set(
        self,
        key: str,
        value: object,
        *,
        if_versionstamp: str | None = None,
        if_not_exists: bool = False,
        overwrite: bool = True,
        expire_in: float | None = None,
        expire_at: datetime | None = None,
        refresh_on_access: bool = False,
        metadata: dict[str, object] | None = None,
        content_type: str | None = None,
    ) -> SetResult:
        """Write ``value`` at ``key``, replacing the whole entry, and return its versionstamp.

        A failed ``if_versionstamp`` or ``if_not_exists`` condition is a result (``ok=False``), not an error.
        ``expire_in`` is in milliseconds (60,000 to 31,536,000,000); ``expire_at`` is an aware datetime.
        """
        shared = self._shared
        check_key(key)
        check_set_options(
            if_versionstamp=if_versionstamp,
            if_not_exists=if_not_exists,
            overwrite=overwrite,
            expire_in=expire_in,
            expire_at=expire_at,
            refresh_on_access=refresh_on_access,
        )
        now_us = shared.now_us()
        ttl_us: int | None = None
        if expire_in is not None:
            ttl_us = ttl_from_expire_in(expire_in)
        elif expire_at is not None:
            ttl_us = ttl_from_expire_at(expire_at, now_us)
        data = encode_value(value, shared.max_value_size)
        kind = default_content_type(value) if content_type is None else check_content_type(content_type)
        meta = encode_metadata(metadata, shared.max_metadata_size)
        expires_us = None if ttl_us is None else now_us + ttl_us

        checks: list[Check] = []
        if if_versionstamp is not None:
            checks.append(Check(self._name, key, if_versionstamp))
        elif if_not_exists:
            checks.append(Check(self._name, key, None))
        put = Put(self._name, key, data, kind, meta, expires_us, ttl_us, refresh_on_access, overwrite)
        outcome = commit(shared.backend, checks, [put], now_us)

        if not outcome.ok:
            ok, committed, versionstamp, created = False, False, outcome.failed[0][1], False
        elif not outcome.applied[0]:
            ok, committed, versionstamp, created = True, False, outcome.previous[0], False
        else:
            ok, committed, versionstamp, created = True, True, outcome.versionstamp, outcome.previous[0] is None
            self._after_write()
        return SetResult(
            ok=ok,
            committed=committed,
            versionstamp=versionstamp,
            created=created,
            key=key,
            expires_at=None if expires_us is None else from_epoch_us(expires_us),
            content_type=kind,
            size_bytes=len(data),
        )

    def get(self, key: str) -> Entry | None:
        """The live entry at ``key``, or None; reading an entry set with refresh_on_access extends it."""
        check_key(key)
        shared = self._shared
        now_us = shared.now_us()
        row = shared.backend.get(self._name, key, now_us)
        if row is not None and row[9]:
            row = self._refresh(row, now_us)
        return None if row is None else _entry(row)

    def get_many(self, keys: Iterable[str]) -> list[Entry | None]:
        """The live entry (or None) for each of ``keys``, in order, read in one snapshot."""
        if isinstance(keys, str | bytes) or not isinstance(keys, Iterable):
            raise InvalidOptionsError("keys must be an iterable of key strings, not a single string or object")
        wanted = [check_key(key) for key in keys]
        shared = self._shared
        now_us = shared.now_us()
        found: dict[str, Entry] = {}
        for row in shared.backend.get_many(self._name, wanted, now_us):
            refreshed = self._refresh(row, now_us) if row[9] else row
            if refreshed is not None:
                found[refreshed[0]] = _entry(refreshed)
        return [found.get(key) for key in wanted]

    def delete(self, key: str, *, if_versionstamp: str | None = None) -> bool:
        """Delete the live entry at ``key``; True if one was deleted (and its versionstamp matched)."""
        check_key(key)
        checks = []
        if if_versionstamp is not None:
            checks.append(Check(self._name, key, check_versionstamp(if_versionstamp)))
        shared = self._shared
        outcome = commit(shared.backend, checks, [Delete(self._name, key)], shared.now_us())
        deleted = outcome.ok and outcome.applied[0]
        if deleted:
            self._after_write()
        return deleted

    def list(
        self, prefix: str = "", *, limit: int | None = None, cursor: str | None = None, reverse: bool = False
    ) -> Page:
        """Live entries whose key starts with ``prefix``, in key order; at most ``limit`` of them.

        The page's ``cursor`` continues the listing, or is None when nothing is left. The prefix matches
        literally: '_' and '%' are ordinary characters.
        """
        check_prefix(prefix)
        check_flag("reverse", reverse)
        if limit is not None and (type(limit) is not int or limit < 1):
            raise InvalidOptionsError(f"limit must be a positive int or None, got {limit!r}")
        resume = None if cursor is None else decode_cursor(cursor, prefix, reverse)
        shared = self._shared
        rows = shared.backend.scan(
            self._name,
            prefix,
            _end_of(prefix),
            resume,
            reverse,
            None if limit is None else limit + 1,
            shared.now_us(),
        )
        more = limit is not None and len(rows) > limit
        if more:
            del rows[limit:]
        entries = [_entry(row) for row in rows]
        return Page(entries, encode_cursor(prefix, reverse, entries[-1].key) if more else None)

    def _refresh(self, row: Row, now_us: int) -> Row | None:
        """Push a refresh_on_access entry's expiry to now + its TTL; re-read if it changed meanwhile."""
        backend = self._shared.backend
        current: Row | None = row
        for _ in range(_REFRESH_ATTEMPTS):
            if current is None or not current[9] or current[8] is None:
                return current
            expires_us = now_us + current[8]
            if backend.refresh(self._name, current[0], current[2], expires_us, now_us):
                return (*current[:7], expires_us, *current[8:])
            current = backend.get(self._name, current[0], now_us)
        return current

    def _after_write(self) -> None:
        """Every so many committed writes, purge one batch of expired entries.

        Best effort: the write has already committed, so a purge that fails (say, the lock is busy) must
        not turn its success into an error; the next round, or purge_expired, catches up.
        """
        shared = self._shared
        shared.writes += 1  # unlocked: an approximate count is all a purge schedule needs
        if shared.auto_purge_every and shared.writes % shared.auto_purge_every == 0:
            with contextlib.suppress(StorageError):
                shared.backend.purge_batch(shared.now_us(), shared.purge_batch_size)


def _entry(row: Row) -> Entry:
    key, value, version, metadata, content_type, created_us, updated_us, expires_us, _ttl, _refresh = row
    return Entry(
        key=key,
        value=decode_value(value),
        versionstamp=format_versionstamp(version),
        metadata=decode_metadata(metadata),
        content_type=content_type,
        size_bytes=len(value),
        created_at=from_epoch_us(created_us),
        updated_at=from_epoch_us(updated_us),
        expires_at=None if expires_us is None else from_epoch_us(expires_us),
    )
