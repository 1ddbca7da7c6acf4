"""The one write path: checks, then mutations, in one transaction under one versionstamp.

``set`` and ``delete`` (with or without conditions) are one-mutation atomics through ``commit``, and
``atomic()`` builds many-mutation ones. Inputs arrive validated and encoded: inside the transaction
there is only SQL (and, for sum / min / max, the stored integer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ._backend import Backend, Current, Transaction
from ._codec import (
    INT_MAX,
    INT_MIN,
    decode_value,
    default_content_type,
    encode_metadata,
    encode_value,
    format_versionstamp,
    parse_versionstamp,
)
from ._errors import InvalidValueError
from ._validation import (
    check_content_type,
    check_flag,
    check_key,
    to_epoch_us,
    ttl_from_expire_at,
    ttl_from_expire_in,
)


@dataclass(frozen=True, slots=True)
class Check:
    """Commit only if the live entry at ``key`` has ``versionstamp`` (None: only if there is none)."""

    namespace: str
    key: str
    versionstamp: str | None


@dataclass(frozen=True, slots=True)
class Put:
    """Write an entry whole; with ``overwrite=False``, leave a live entry alone instead.

    The expiry is ``deadline_us`` when the caller named an instant, else commit time + ``ttl_us``.
    """

    namespace: str
    key: str
    value: bytes
    content_type: str
    metadata: str | None
    ttl_us: int | None
    deadline_us: int | None
    refresh_on_access: bool
    overwrite: bool = True

    def expires_us(self, now_us: int) -> int | None:
        if self.deadline_us is not None:
            return self.deadline_us
        return None if self.ttl_us is None else now_us + self.ttl_us


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove the entry at ``key``."""

    namespace: str
    key: str


@dataclass(frozen=True, slots=True)
class Arith:
    """Combine the integer at ``key`` (0 if absent) with ``operand``; the rest of the entry stays."""

    namespace: str
    key: str
    op: Literal["sum", "min", "max"]
    operand: int


Mutation = Put | Delete | Arith


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a commit did.

    ``ok`` is False when a check failed; ``failed`` then lists (check index, current versionstamp) and
    nothing was written. Otherwise ``previous[i]`` is the live versionstamp mutation i found (None: no live
    entry), ``applied[i]`` whether it wrote, and ``versionstamp`` the commit's, None if nothing was written.
    """

    ok: bool
    versionstamp: str | None
    failed: list[tuple[int, str | None]]
    previous: list[str | None]
    applied: list[bool]


def prepare_put(
    namespace: str,
    key: str,
    value: object,
    *,
    now_us: int,
    max_value_size: int,
    max_metadata_size: int,
    expire_in: object,
    expire_at: object,
    refresh_on_access: object,
    metadata: object,
    content_type: object,
    overwrite: bool = True,
) -> Put:
    """Validate and encode one set; raises a ValidationError before anything is written."""
    check_key(key)
    check_flag("refresh_on_access", refresh_on_access)
    ttl_us = deadline_us = None
    if expire_in is not None:
        ttl_us = ttl_from_expire_in(expire_in)
    elif expire_at is not None:
        ttl_us = ttl_from_expire_at(expire_at, now_us)
        assert isinstance(expire_at, datetime)
        deadline_us = to_epoch_us(expire_at)
    data = encode_value(value, max_value_size)
    kind = default_content_type(value) if content_type is None else check_content_type(content_type)
    meta = encode_metadata(metadata, max_metadata_size)
    return Put(namespace, key, data, kind, meta, ttl_us, deadline_us, bool(refresh_on_access), overwrite)


def _stamp(current: Current | None) -> str | None:
    return None if current is None else format_versionstamp(current[0])


def _combine(mutation: Arith, stored: object) -> int:
    if type(stored) is not int:
        raise InvalidValueError(
            f"{mutation.op} needs an integer at {mutation.key!r}, but it holds a {type(stored).__name__}"
        )
    if mutation.op == "sum":
        result = stored + mutation.operand
        if not INT_MIN <= result <= INT_MAX:
            raise InvalidValueError(f"sum at {mutation.key!r} would leave the signed 64-bit range")
        return result
    return min(stored, mutation.operand) if mutation.op == "min" else max(stored, mutation.operand)


def commit(backend: Backend, checks: Sequence[Check], mutations: Sequence[Mutation], now_us: int) -> Outcome:
    """Apply ``mutations`` if every check holds, atomically; a versionstamp is drawn only if one writes."""
    wanted = [None if c.versionstamp is None else parse_versionstamp(c.versionstamp) for c in checks]

    def body(tx: Transaction) -> Outcome:
        # What each key holds now, as this transaction's own mutations change it.
        live: dict[tuple[str, str], Current | None] = {}

        def current(namespace: str, key: str) -> Current | None:
            slot = (namespace, key)
            if slot not in live:
                live[slot] = tx.current(namespace, key, now_us)
            return live[slot]

        failed: list[tuple[int, str | None]] = []
        for index, check in enumerate(checks):
            found = current(check.namespace, check.key)
            if (found is None) != (wanted[index] is None) or (found is not None and found[0] != wanted[index]):
                failed.append((index, _stamp(found)))
        if failed:
            return Outcome(False, None, failed, [], [])

        version: int | None = None
        previous: list[str | None] = []
        applied: list[bool] = []
        for mutation in mutations:
            slot = (mutation.namespace, mutation.key)
            found = current(*slot)
            previous.append(_stamp(found))
            if isinstance(mutation, Delete):
                applied.append(found is not None)
                if found is not None:
                    version = tx.next_version() if version is None else version
                    tx.delete(*slot)
                    live[slot] = None
                continue
            if isinstance(mutation, Put):
                if found is not None and not mutation.overwrite:
                    applied.append(False)
                    continue
                version = tx.next_version() if version is None else version
                created_us = now_us if found is None else found[1]
                tx.put(
                    *slot,
                    mutation.value,
                    mutation.content_type,
                    mutation.metadata,
                    version,
                    created_us,
                    now_us,
                    mutation.expires_us(now_us),
                    mutation.ttl_us,
                    mutation.refresh_on_access,
                )
            else:
                row = tx.read(*slot, now_us)
                value = encode_value(_combine(mutation, 0 if row is None else decode_value(row[1])), INT_MAX)
                version = tx.next_version() if version is None else version
                if row is None:
                    created_us = now_us
                    tx.put(*slot, value, default_content_type(0), None, version, now_us, now_us, None, None, False)
                else:
                    _, _, _, metadata, content_type, created_us, _, expires_us, ttl_us, refresh = row
                    tx.put(
                        *slot, value, content_type, metadata, version, created_us, now_us, expires_us, ttl_us,
                        bool(refresh),
                    )  # fmt: skip
            live[slot] = (version, created_us)
            applied.append(True)
        return Outcome(True, None if version is None else format_versionstamp(version), [], previous, applied)

    return backend.transact(body)
