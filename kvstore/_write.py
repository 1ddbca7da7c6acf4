"""The one write path: checks, then mutations, in one transaction under one versionstamp.

``set`` and ``delete`` (with or without conditions) are one-mutation atomics through ``commit``, and
``atomic()`` builds many-mutation ones. Inputs arrive validated and encoded: inside the transaction
there is only SQL (and, for sum / min / max, the stored integer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ._backends.base import UNCONDITIONAL, Backend, Current, PutRow, Transaction
from ._codec import (
    INT_MAX,
    INT_MIN,
    decode_value,
    default_content_type,
    encode_value,
    format_versionstamp,
    parse_versionstamp,
)
from ._errors import InvalidValueError
from ._mutations import Arith, Check, Delete, Mutation, Outcome, Put


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


# From this many mutations on, a commit reads the current entries of all its keys in bulk first and
# writes runs of puts with one executemany-style call: a batch of 1,000 sets then costs a few statements,
# not two per key.
BULK_FROM: Final = 16


class _NothingWritten(Exception):
    """Raised inside a transaction to roll it back (undoing the versionstamp it drew) with this outcome."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


def commit(
    backend: Backend, checks: Sequence[Check], mutations: Sequence[Mutation], now_us: int, *, tried: bool = False
) -> Outcome:
    """Apply ``mutations`` if every check holds, atomically; a versionstamp is drawn only if one writes.

    ``tried``: the caller already offered this one put to ``backend.try_put``, which declined it.
    """
    if len(mutations) == 1 and type(mutations[0]) is Put:
        put = mutations[0]
        if not checks and put.overwrite:
            return _blind_put(backend, put, now_us, tried)
        if (not checks and not put.overwrite) or (
            len(checks) == 1 and put.overwrite and (checks[0].namespace, checks[0].key) == (put.namespace, put.key)
        ):
            return _conditional_put(backend, put, checks[0].versionstamp if checks else None, now_us, tried)
    wanted = [None if c.versionstamp is None else parse_versionstamp(c.versionstamp) for c in checks]

    def body(tx: Transaction) -> Outcome:
        # What each key holds now, as this transaction's own mutations change it. A key missing here has
        # not been read yet; a key a put replaced without reading it is re-read if needed (the
        # transaction sees its own writes).
        live: dict[tuple[str, str], Current | None] = {}
        pending: list[PutRow] = []  # puts not yet sent, in order (bulk mode only)

        def current(namespace: str, key: str) -> Current | None:
            slot = (namespace, key)
            if slot not in live:
                flush()  # the read must see this transaction's puts
                live[slot] = tx.current(namespace, key, now_us)
            return live[slot]

        def flush() -> None:
            if pending:
                tx.put_many(pending)
                pending.clear()

        failed: list[tuple[int, str | None]] = []
        for index, check in enumerate(checks):
            found = current(check.namespace, check.key)
            if (found is None) != (wanted[index] is None) or (found is not None and found[0] != wanted[index]):
                failed.append((index, _stamp(found)))
        if failed:
            return Outcome(False, None, failed, [], [], [])

        bulk = len(mutations) >= BULK_FROM
        if bulk:
            _prefetch(tx, mutations, live, now_us)
        version: int | None = None
        found_live: list[bool | None] = []
        applied: list[bool] = []
        kept: list[str | None] = []
        for mutation in mutations:
            slot = (mutation.namespace, mutation.key)
            if type(mutation) is Put:
                if bulk and mutation.overwrite and slot not in live:
                    # Nothing reads this key: batch the write unread. SQL_PUT keeps the creation time of
                    # a live entry it replaces, so no read is needed to know it; whether there was one
                    # is left unknown (None), as nobody asks it of a commit this size.
                    version = tx.next_version() if version is None else version
                    pending.append(_put_row(mutation, version, now_us, now_us))
                    found_live.append(None)
                    applied.append(True)
                    kept.append(None)
                    continue  # the slot stays unread: a later mutation of it reads what this one wrote
                if mutation.overwrite and slot not in live:
                    # Nothing has read this key: write it without reading it first, in one statement
                    # that replaces a live entry (keeping its creation time) or reports there was none.
                    version = tx.next_version() if version is None else version
                    row = _put_row(mutation, version, now_us, now_us)
                    replaced = tx.replace_live(row, now_us)
                    if not replaced:
                        tx.put(*row)
                    found_live.append(replaced)
                    applied.append(True)
                    kept.append(None)
                    continue  # the slot stays unread: a later mutation of it reads what this one wrote
                found = current(*slot)
                found_live.append(found is not None)
                if found is not None and not mutation.overwrite:
                    applied.append(False)
                    kept.append(format_versionstamp(found[0]))
                    continue
                version = tx.next_version() if version is None else version
                created_us = now_us if found is None else found[1]
                row = _put_row(mutation, version, created_us, now_us)
                if bulk:
                    pending.append(row)
                else:
                    tx.put(*row)
            else:
                flush()
                found = current(*slot)
                found_live.append(found is not None)
                if type(mutation) is Delete:
                    applied.append(found is not None)
                    kept.append(None)
                    if found is not None:
                        version = tx.next_version() if version is None else version
                        tx.delete(*slot)
                        live[slot] = None
                    continue
                assert isinstance(mutation, Arith)
                version = tx.next_version() if version is None else version
                created_us = _apply_arith(tx, mutation, version, now_us)
            live[slot] = (version, created_us)
            applied.append(True)
            kept.append(None)
        flush()
        stamp = None if version is None else format_versionstamp(version)
        return Outcome(True, stamp, [], found_live, applied, kept)

    return backend.transact(body)


def _blind_put(backend: Backend, put: Put, now_us: int, tried: bool) -> Outcome:
    """One put with no condition, the shape of a plain ``set``: what ``commit`` does, without its
    bookkeeping for many mutations."""

    done = None if tried else backend.try_put(
        put.namespace, put.key, put.value, put.content_type, put.metadata, put.expires_us(now_us), put.ttl_us,
        put.refresh_on_access, UNCONDITIONAL, now_us,
    )  # fmt: skip
    if done is not None:
        return Outcome(True, format_versionstamp(done[0]), [], [done[1]], [True], [None])

    def body(tx: Transaction) -> Outcome:
        row = _put_row(put, tx.next_version(), now_us, now_us)
        replaced = tx.replace_live(row, now_us)
        if not replaced:
            tx.put(*row)
        return Outcome(True, format_versionstamp(row[5]), [], [replaced], [True], [None])

    return backend.transact(body)


def _conditional_put(backend: Backend, put: Put, expected: str | None, now_us: int, tried: bool) -> Outcome:
    """One put on the condition that the live entry at its key has ``expected`` (None: that there is none).

    The shape of every conditional ``set``: check and write are one statement. The version is drawn first,
    so a failed condition rolls the transaction back, after reading the current versionstamp to report.
    With a check (``expected`` given, or ``if_not_exists``) a failure is a failed check; without one
    (``overwrite=False``) it is a put that left the live entry alone.
    """
    wanted = None if expected is None else parse_versionstamp(expected)
    is_check = expected is not None or put.overwrite
    done = None if tried else backend.try_put(
        put.namespace, put.key, put.value, put.content_type, put.metadata, put.expires_us(now_us), put.ttl_us,
        put.refresh_on_access, wanted, now_us,
    )  # fmt: skip
    if done is not None:
        return Outcome(True, format_versionstamp(done[0]), [], [done[1]], [True], [None])

    def body(tx: Transaction) -> Outcome:
        version = tx.next_version()
        if tx.put_if(_put_row(put, version, now_us, now_us), wanted, now_us):
            return Outcome(True, format_versionstamp(version), [], [expected is not None], [True], [None])
        stamp = _stamp(tx.current(put.namespace, put.key, now_us))
        if is_check:
            raise _NothingWritten(Outcome(False, None, [(0, stamp)], [], [], []))
        raise _NothingWritten(Outcome(True, None, [], [stamp is not None], [False], [stamp]))

    try:
        return backend.transact(body)
    except _NothingWritten as stop:
        return stop.outcome


def _put_row(mutation: Put, version: int, created_us: int, now_us: int) -> PutRow:
    return (
        mutation.namespace,
        mutation.key,
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


def _prefetch(
    tx: Transaction, mutations: Sequence[Mutation], live: dict[tuple[str, str], Current | None], now_us: int
) -> None:
    """Read the current entries of every key a mutation reads (not a put that overwrites, which need not
    know) and no check read: a few statements for them all."""
    keys: dict[str, list[str]] = {}
    for mutation in mutations:
        if (type(mutation) is not Put or not mutation.overwrite) and (mutation.namespace, mutation.key) not in live:
            keys.setdefault(mutation.namespace, []).append(mutation.key)
    for namespace, wanted in keys.items():
        unique = list(dict.fromkeys(wanted))
        found = tx.current_many(namespace, unique, now_us)
        for key in unique:
            live[(namespace, key)] = found.get(key)


def _apply_arith(tx: Transaction, mutation: Arith, version: int, now_us: int) -> int:
    """Write the combined integer; return the entry's creation time."""
    slot = (mutation.namespace, mutation.key)
    row = tx.read(*slot, now_us)
    value = encode_value(_combine(mutation, 0 if row is None else decode_value(row[0])), INT_MAX)
    if row is None:
        tx.put(*slot, value, default_content_type(0), None, version, now_us, now_us, None, None, False)
        return now_us
    # A read returns the TTL only of an entry refreshed on access: the one use a stored TTL has.
    _, _, metadata, content_type, created_us, _, expires_us, refresh_ttl_us = row
    refresh = refresh_ttl_us is not None
    tx.put(*slot, value, content_type, metadata, version, created_us, now_us, expires_us, refresh_ttl_us, refresh)
    return created_us
