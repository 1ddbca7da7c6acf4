"""The one write path: checks, then mutations, in one transaction under one versionstamp.

Every write comes here, and reaches the backend through the store's group commit (``_group``), which runs
it at once when no commit is in flight and otherwise in the next batch. ``set_entry`` is one put, plain or
conditional (``Namespace.set``, and ``commit`` for an atomic of that shape): the backend's one-statement
write when it can (``try_put``), else a short transaction. ``commit`` runs checks and mutations of any shape
(``delete`` and every ``atomic()``), and ``delete_range_batch`` one batch of ``delete_prefix``. Inputs arrive
validated and encoded: inside the transaction there is only SQL (and, for sum / min / max, the stored integer).

Each body says whether it needs a savepoint of its own in a batch (``Transaction.attempt``): only one that
can raise after it has written does, which is an atomic with sum / min / max (an InvalidValueError).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, TypeAlias

from ._backends.base import UNCONDITIONAL, Current, PutRow, QueueRow, QueueSide, Transaction
from ._checksum import checksum
from ._codec import (
    INT_MAX,
    default_content_type,
    encode_value,
    format_versionstamp,
    from_epoch_us,
    parse_versionstamp,
    stamp_bytes,
)
from ._entries import entry_of, found_of
from ._group import GroupCommit
from ._models import SetResult, new_tuple
from ._mutations import Arith, Check, Delete, Enqueue, Mutation, Outcome, Put
from ._rows import combined_value, put_row, queue_row, stamped


def _stamp(current: Current | None) -> str | None:
    return None if current is None else format_versionstamp(current[0])


# From this many mutations on, a commit reads the current entries of all its keys in bulk first and
# writes runs of puts with one executemany-style call: a batch of 1,000 sets then costs a few statements,
# not two per key.
BULK_FROM: Final = 16


class _NothingWritten(Exception):
    """Raised inside a transaction to roll it back (undoing the versionstamp it drew) with this result; in
    a batch it has written nothing to roll back, and the version it drew is left unused."""

    def __init__(self, written: Written) -> None:
        self.written = written


Written: TypeAlias = tuple[bool, bool, str | None, bool]
"""What ``set_entry`` did: (ok, written, versionstamp, found). ``ok`` is False when its condition failed
(the versionstamp is then the live entry's, None if there is none); ``written`` whether it wrote (False for
an ``overwrite=False`` put that left a live entry alone, whose versionstamp it reports); otherwise the
versionstamp is the commit's and ``found`` whether a live entry was replaced."""


def expected_of(put: Put, if_versionstamp: str | None, if_not_exists: bool) -> int | None:
    """``set_entry``'s ``expected`` for a set with these options (``put`` built from them)."""
    if if_versionstamp is not None:
        return parse_versionstamp(if_versionstamp)
    return UNCONDITIONAL if put.overwrite and not if_not_exists else None


def set_result(key: str, put: Put, written: Written, now_us: int) -> SetResult:
    """The ``SetResult`` of ``put`` at ``key``, made at ``now_us``, from ``set_entry``'s answer."""
    ok, wrote, versionstamp, found = written
    expires_us = put.expires_us(now_us)
    return new_tuple(
        SetResult,
        (
            ok,
            wrote,
            versionstamp,
            wrote and not found,
            key,
            None if expires_us is None else from_epoch_us(expires_us),
            put.content_type,
            len(put.value),
        ),
    )


def set_entry(group: GroupCommit, put: Put, expected: int | None, now_us: int) -> Written:
    """Write one entry: unconditionally (``expected`` is UNCONDITIONAL), only over a live entry of version
    ``expected``, or only where no entry is live (None). Without a check (``put.overwrite`` False) a live
    entry is left alone and the write is ``ok``; with one, failing is not ``ok``."""
    done = group.try_put(put, expected, now_us)
    if done is not None:
        version, found = done
        return True, True, stamp_bytes(version).hex(), found  # format_versionstamp, inlined
    if expected == UNCONDITIONAL:

        def blind(tx: Transaction) -> tuple[str, Callable[[], bool]]:
            version = tx.next_version()
            return format_versionstamp(version), tx.upsert_later(put_row(put, version, now_us, now_us), now_us)

        stamp, replaced = group.transact(blind, False)
        return True, True, stamp, replaced()  # asked once the transaction is over: a batch may pipeline it

    def conditional(tx: Transaction) -> Written:
        # The version is drawn first, so that check and write are one statement; a failed condition rolls
        # the transaction back (undoing the draw), after reading the versionstamp to report.
        version = tx.next_version()
        if tx.put_if(put_row(put, version, now_us, now_us), expected, now_us):
            return True, True, format_versionstamp(version), expected is not None
        stamp = _stamp(tx.current(put.namespace, put.key, now_us))
        raise _NothingWritten((expected is None and not put.overwrite, False, stamp, stamp is not None))

    try:
        return group.transact(conditional, False)  # raises only once its put wrote nothing
    except _NothingWritten as stop:
        return stop.written


def enqueue_one(group: GroupCommit, message: Enqueue, now_us: int, queue: QueueSide) -> str | None:
    """``commit`` of one enqueue alone (``kv.enqueue``), less the checks of its shape: its versionstamp."""
    # Under callgrind an enqueue on a file store took 140,600 instructions through ``commit``, 131,900 so.
    version = group.try_alone(lambda: queue.try_enqueue(lambda v: queue_row(message, v, now_us)))
    if version is None:
        return commit(group, (), (message,), now_us, queue).versionstamp
    return stamp_bytes(version).hex()  # format_versionstamp, inlined


def commit(
    group: GroupCommit,
    checks: Sequence[Check],
    mutations: Sequence[Mutation],
    now_us: int,
    queue: QueueSide | None = None,
) -> Outcome:
    """Apply ``mutations`` if every check holds, atomically; a versionstamp is drawn only if one writes.
    An ``Enqueue`` among them needs the backend's ``queue`` side: its message is inserted in the same
    transaction, under the commit's version, due ``delay_us`` after ``now_us``."""
    if len(mutations) == 1 and type(mutations[0]) is Put:
        # One put, alone or checked at its own key: the shape of every set, settled by ``set_entry``.
        put = mutations[0]
        expected: int | bool | None = False  # False: not that shape (None means "no live entry")
        if not checks:
            expected = UNCONDITIONAL if put.overwrite else None
        elif len(checks) == 1 and put.overwrite and (checks[0].namespace, checks[0].key) == (put.namespace, put.key):
            stamp = checks[0].versionstamp
            expected = None if stamp is None else parse_versionstamp(stamp)
        if expected is not False:
            ok, written, versionstamp, found = set_entry(group, put, expected, now_us)
            if not ok:
                return Outcome(False, None, [(0, versionstamp)], [], [], [])
            if not written:
                return Outcome(True, None, [], [found], [False], [versionstamp])
            return Outcome(True, versionstamp, [], [found], [True], [None])
    if len(mutations) == 1 and not checks and queue is not None and type(mutations[0]) is Enqueue:
        # A lone enqueue (every ``kv.enqueue``): the backend's one-statement write when it can.
        message = mutations[0]
        version = group.try_alone(lambda: queue.try_enqueue(lambda v: queue_row(message, v, now_us)))
        if version is not None:
            return Outcome(True, format_versionstamp(version), [], [None], [True], [None])
    wanted = [None if c.versionstamp is None else parse_versionstamp(c.versionstamp) for c in checks]

    def body(tx: Transaction) -> Outcome:
        # What each key holds now, as this transaction's own mutations change it. A key missing here has
        # not been read yet; a key a put replaced without reading it is re-read if needed (the
        # transaction sees its own writes).
        live: dict[tuple[str, str], Current | None] = {}
        pending: list[PutRow] = []  # puts not yet sent, in order (bulk mode only)
        queued: list[QueueRow] = []  # messages to enqueue once the mutations of keys are done

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
            if type(mutation) is Enqueue:
                version = tx.next_version() if version is None else version
                queued.append(queue_row(mutation, version, now_us))
                found_live.append(None)
                applied.append(True)
                kept.append(None)
                continue
            assert not isinstance(mutation, Enqueue)
            slot = (mutation.namespace, mutation.key)
            if type(mutation) is Put:
                if bulk and mutation.overwrite and slot not in live:
                    # Nothing reads this key: batch the write unread. SQL_PUT keeps the creation time of
                    # a live entry it replaces, so no read is needed to know it; whether there was one
                    # is left unknown (None), as nobody asks it of a commit this size.
                    version = tx.next_version() if version is None else version
                    pending.append(put_row(mutation, version, now_us, now_us))
                    found_live.append(None)
                    applied.append(True)
                    kept.append(None)
                    continue  # the slot stays unread: a later mutation of it reads what this one wrote
                if mutation.overwrite and slot not in live:
                    # Nothing has read this key: write it without reading it first (``upsert`` keeps a live
                    # entry's creation time, and reports whether there was one).
                    version = tx.next_version() if version is None else version
                    replaced = tx.upsert(put_row(mutation, version, now_us, now_us), now_us)
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
                row = put_row(mutation, version, created_us, now_us)
                if bulk:
                    pending.append(row)
                else:
                    tx.put(row)
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
        if queued:
            assert queue is not None, "a commit that enqueues needs the backend's queue side"
            queue.enqueue(tx, queued)
        stamp = None if version is None else format_versionstamp(version)
        return Outcome(True, stamp, [], found_live, applied, kept)

    return group.transact(body, any(type(mutation) is Arith for mutation in mutations))


def delete_range_batch(
    group: GroupCommit, namespace: str, low: str, high: str, limit: int, now_us: int
) -> tuple[int, int]:
    """Delete the next ``limit`` entries of ``[low, high)`` in one transaction: (rows, live rows) deleted.

    A batch that deletes a live entry is a committed write and draws a versionstamp; expired rows go
    silently, as a purge would take them.
    """

    def body(tx: Transaction) -> tuple[int, int]:
        batch = tx.range_batch(namespace, low, high, limit, now_us)
        if not batch:
            return 0, 0
        live = sum(1 for _, is_live in batch if is_live)
        if live:
            tx.next_version()
        tx.delete_through(namespace, low, batch[-1][0])
        return len(batch), live

    return group.transact(body, False)


def restore_batch(group: GroupCommit, rows: Sequence[PutRow], existing: str, now_us: int) -> list[PutRow]:
    """Write imported entries whole, their times and expiry as given, in one transaction under one new
    versionstamp (``rows``, of distinct keys, carry version 0). At a key that holds a live entry, ``existing``
    says: "overwrite" it, "skip" that row, or "fail": write no row at all. Return the rows of keys that hold
    a live entry, unwritten (the caller decides whether that is an error; a batch that writes nothing draws no
    version)."""

    def body(tx: Transaction) -> list[PutRow]:
        live: set[tuple[str, str]] = set()
        if existing != "overwrite":
            keys: dict[str, list[str]] = {}
            for row in rows:
                keys.setdefault(row[0], []).append(row[1])
            for namespace, wanted in keys.items():
                live.update((namespace, key) for key in tx.current_many(namespace, wanted, now_us))
        if len(live) < len(rows) and not (live and existing == "fail"):  # something to write: one version
            version = tx.next_version()
            tx.put_many([stamped(row, version) for row in rows if (row[0], row[1]) not in live])
        return [row for row in rows if (row[0], row[1]) in live]

    return group.transact(body, False)


def put_within(tx: Transaction, puts: Sequence[Put], now_us: int) -> int:
    """Write ``puts`` (keeping live entries' creation times) under one new version, inside a transaction of
    the group commit that another module's body runs in (a dead letter's); that version."""
    version = tx.next_version()
    for put in puts:
        tx.upsert(put_row(put, version, now_us, now_us), now_us)
    return version


def _prefetch(
    tx: Transaction, mutations: Sequence[Mutation], live: dict[tuple[str, str], Current | None], now_us: int
) -> None:
    """Read the current entries of every key a mutation reads (not a put that overwrites, which need not
    know) and no check read: a few statements for them all."""
    keys: dict[str, list[str]] = {}
    for mutation in mutations:
        if isinstance(mutation, Enqueue):
            continue
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
    # A missing entry becomes the operand: sum's 0 + operand, and Deno KV's rule for min and max (a running
    # minimum must not start at 0).
    # The stored integer is read through ``entry_of``, which checks the row and its checksum: a damaged value
    # must fail here, not be combined and written back under a fresh checksum.
    combined = (
        mutation.operand if row is None else combined_value(mutation, entry_of(mutation.key, found_of(row)).value)
    )
    value = encode_value(combined, INT_MAX)
    namespace, key = slot
    if row is None:
        kind = default_content_type(0)
        crc = checksum(value, kind, None)
        tx.put((namespace, key, value, kind, None, version, now_us, now_us, None, None, False, crc))
        return now_us
    # A read returns the TTL only of an entry refreshed on access: the one use a stored TTL has.
    _, _, metadata, content_type, created_us, _, expires_us, refresh_ttl_us, _ = row
    refresh = refresh_ttl_us is not None
    tx.put(
        (
            namespace,
            key,
            value,
            content_type,
            metadata,
            version,
            created_us,
            now_us,
            expires_us,
            refresh_ttl_us,
            refresh,
            checksum(value, content_type, metadata),
        )
    )
    return created_us
