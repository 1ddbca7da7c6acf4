"""The dialect seam: what the store needs from a database, and nothing more.

A backend reads live rows and runs write transactions. Everything that varies between databases (how
to connect, how a write takes its lock, how the next versionstamp is drawn, how an upsert is spelt,
which failures are retried, how driver errors become KVErrors) lives behind this interface; validation,
encoding and the write rules above it are shared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias, TypeVar

if TYPE_CHECKING:
    from .._mutations import Put

T = TypeVar("T")


Found: TypeAlias = tuple[bytes, int, str | None, str, int, int, int | None, int | None]
"""A stored entry as a point read returns it for a key the caller named, positionally: value, version,
metadata, content_type, created_us, updated_us, expires_us, and its checksum (``_checksum``; None if written
before there was one), or ``REFRESH`` in its place when the entry is refreshed on access (whose reader then
reads it ``Whole``). Times are epoch microseconds. Unchecked: the reader checks the checksum and the columns
(``_entries``). Plain tuples, because the driver's rows are already tuples and the read path is hot."""

Whole: TypeAlias = tuple[bytes, int, str | None, str, int, int, int | None, int | None, int | None]
"""A stored entry with everything a write or a refresh needs: a ``Found``'s first seven columns, the TTL a
read refreshes it by (None unless refresh_on_access), then its checksum (never ``REFRESH``)."""

Row: TypeAlias = tuple[bytes, int, str | None, str, int, int, int | None, int | None, str]
"""A ``Found`` with its key last (index 8): what a read of many entries returns. Only ``get_many``, which
refreshes, returns ``REFRESH`` for a checksum; a scan returns every checksum as stored."""

CHECKSUM: Final = 7
"""The column of a ``Found`` or ``Row`` that holds its checksum (or ``REFRESH``): what a reader tests first."""
REFRESH: Final = -1
"""A point read's checksum column for an entry refreshed on access. No checksum is negative, so a corrupt
row that holds -1 is read whole too, and fails its checksum there. One column rather than two (a refresh TTL
beside the checksum), because each column a read returns costs the driver a conversion: a get went from 50,900
to 48,600 instructions under callgrind (47,400 before there were checksums)."""
ROW_KEY: Final = 8
"""The column of a ``Row`` that holds its key."""


def rows_within(rows: Iterable[Row], max_bytes: int) -> list[Row]:
    """The first ``rows`` (in order) up to the one whose value bytes take the running total past
    ``max_bytes``, and at least two: a page of what fits (at least one entry), and one row past it that says
    another page exists. Stops reading there, so a scan over large values reads one past its page."""
    taken: list[Row] = []
    total = 0
    for row in rows:
        taken.append(row)
        try:
            total += len(row[0])
        except TypeError:  # not a blob: a row kvstore never wrote, which the reader refuses (``_entries``)
            continue
        if total > max_bytes and len(taken) > 1:
            break
    return taken


PutRow: TypeAlias = tuple[str, str, bytes, str, str | None, int, int, int, int | None, int | None, bool, int | None]
"""A whole entry to write, as ``Transaction.put`` and its kin take it, in the order of the statements'
parameters: namespace, key, value, content_type, metadata, version,
created_us, updated_us, expires_us, ttl_us, refresh_on_access, checksum (of value, content type and metadata:
``_checksum``; a dump's row may hold None, an entry written before there were checksums)."""

Dump: TypeAlias = tuple[int, Iterator[PutRow]]
"""``Backend.dump``'s snapshot: how many rows it holds, and the rows, as ``PutRow``s in (namespace, key) order."""

Progress: TypeAlias = Callable[[int, int], None]
"""Called now and then by a long run with (units done, units in all)."""

Current: TypeAlias = tuple[int, int]
"""What a write needs to know of a live entry: (version, created_us)."""

UNCONDITIONAL: Final = -2
"""``Backend.try_put``'s ``expected`` for a write with no condition. No version is negative, and -1 is
``parse_versionstamp``'s answer for a versionstamp that names no commit, which no entry matches."""


QueueRow: TypeAlias = tuple[str, str, str, bytes, str, int, int, int, str, str | None]
"""A message to enqueue, in the order of the insert's parameters: message_id, namespace, queue, value,
content_type, version, enqueued_us, due_us, backoff (comma-separated microseconds), keys_if_undelivered (JSON)."""

Claimed: TypeAlias = tuple[int, str, bytes, str, int, int, str, str | None]
"""A message a claim leased: row id, message_id, value, content_type, attempt (this delivery's, from 1),
enqueued_us, backoff, keys_if_undelivered."""

Peeked: TypeAlias = tuple[str, bytes, str, int, int, int]
"""A message looked at, not taken: message_id, value, content_type, attempt (deliveries so far), enqueued_us,
due_us."""


class Transaction(Protocol):
    """Statements available inside one write transaction, which holds the write lock."""

    def execute(self, sql: str, params: Sequence[Any], /) -> Any:
        """Run one statement of this backend's own dialect (its queue side's) and return the cursor."""

    def current(self, namespace: str, key: str, now_us: int) -> Current | None:
        """The live entry at ``key``, or None."""

    def next_version(self) -> int:
        """Draw this commit's version: greater than every version committed before."""

    def put(self, row: PutRow) -> None:
        """Insert or wholly replace the entry at ``row``'s key."""

    def replace_live(self, row: PutRow, now_us: int) -> bool:
        """Replace the live entry at ``row``'s key whole, but keep its created_us (``row``'s is ignored).

        False, with nothing written, if no entry is live there. Lets a write that needs no check learn
        whether it creates its key without reading it first: one statement instead of two.
        """

    def put_if(self, row: PutRow, expected: int | None, now_us: int) -> bool:
        """Write ``row`` only if the live entry at its key has version ``expected`` (None: only if no entry
        is live), keeping a replaced entry's created_us; False, with nothing written, otherwise.

        A conditional set's check and write in one statement.
        """

    def put_many(self, rows: Sequence[PutRow]) -> None:
        """``put`` each row, in order (a backend can send them all at once)."""

    def current_many(self, namespace: str, keys: Sequence[str], now_us: int) -> dict[str, Current]:
        """The live entries among ``keys`` (distinct), by key; absent keys have none."""

    def delete(self, namespace: str, key: str) -> None:
        """Remove the entry at ``key``, live or not."""

    def read(self, namespace: str, key: str, now_us: int) -> Whole | None:
        """The whole live entry at ``key``, as this transaction has left it so far."""

    def range_batch(self, namespace: str, start: str, end: str, limit: int, now_us: int) -> list[tuple[str, int]]:
        """The first ``limit`` keys of ``start <= key < end``, live or not, with 1 for each live one."""

    def delete_through(self, namespace: str, start: str, last: str) -> None:
        """Remove every entry with ``start <= key <= last``."""

    def upsert(self, row: PutRow, now_us: int) -> bool:
        """``put`` ``row``, keeping a replaced live entry's created_us; True if a live entry was replaced."""

    def upsert_later(self, row: PutRow, now_us: int) -> Callable[[], bool]:
        """``upsert``, whose answer is asked for once the transaction is over: in a ``pipeline`` block the
        statement is sent without waiting for it."""

    def reserve(self, count: int) -> None:
        """Let the next ``count`` draws of ``next_version`` come from one reservation (a hint: a batch of
        ``count`` bodies is about to run; on PostgreSQL it saves a round trip per body)."""

    def pipeline(self) -> AbstractContextManager[object]:
        """A block whose statements are sent without waiting for answers nobody asks for yet (PostgreSQL's
        pipeline mode; nothing on SQLite, whose statements make no round trips). A statement's failure may
        come out later in the block, or at its end: it is the transaction's, never a body's."""

    def attempt(self, body: Callable[[Transaction], T], isolated: bool) -> tuple[bool, Any]:
        """Run ``body`` in this transaction: ``(True, its result)``, or ``(False, the Exception it raised)``.

        ``isolated`` runs it in a savepoint of its own, which its exception rolls back alone (what it wrote,
        and any versions it reserved). A body run without (``isolated`` False) must raise only before its
        first write, or not at all: what it wrote stays. A driver error, or any BaseException, is not the
        body's: it comes out, and the whole transaction fails.
        """


class HeldTransaction(Protocol):
    """A write transaction held open across calls (``Backend.begin``, for ``write_batch``); it holds the
    write lock until ``commit`` or ``rollback``. Never retried: its bodies' results are already out."""

    def run(self, body: Callable[[Transaction], T], isolated: bool) -> tuple[bool, Any]:
        """``Transaction.attempt`` in this transaction. A database failure (or a BaseException) rolls the
        whole transaction back and comes out, a driver error as its KVError."""

    def commit(self) -> None:
        """Commit; if that fails, everything is rolled back and the KVError raised."""

    def rollback(self) -> None:
        """Roll everything back (again: nothing)."""


class ChangeProbe(Protocol):
    """A cheap, cross-process signal that the database may have changed."""

    def __call__(self) -> int:
        """A number that differs from its previous value if another connection has committed since."""

    def close(self) -> None:
        """Release what the probe holds."""


class QueueSide(Protocol):
    """A backend's queue statements. The writes run inside a write transaction of the store's group commit
    (``tx``); a ``token`` names one lease, and a write on a message whose lease another claim took (its
    token changed) changes nothing and returns False."""

    def enqueue(self, tx: Transaction, rows: Sequence[QueueRow]) -> None:
        """Insert the messages, waiting (state 0)."""

    def try_enqueue(self, row_for: Callable[[int], QueueRow]) -> int | None:
        """Insert one message (``row_for(version)``) at once, outside a transaction, if this backend can:
        the version it committed with; None if nothing was written (the caller then runs a transaction)."""

    def claim(
        self, tx: Transaction, namespace: str, queue: str, now_us: int, until_us: int, token: str
    ) -> Claimed | None:
        """Lease the next message due by ``now_us`` (waiting, or leased with its lease run out) until
        ``until_us`` under ``token``, counting a delivery; None if none is due."""

    def ack(self, tx: Transaction, row_id: int, token: str) -> bool:
        """Delete the leased message."""

    def claim_alone(
        self, namespace: str, queue: str, now_us: int, until_us: int, token: str
    ) -> tuple[Claimed | None] | None:
        """``claim`` as one statement outside a transaction, if this backend can: ``(the row or None,)``;
        None if it cannot (the caller then runs a transaction)."""

    def ack_alone(self, row_id: int, token: str) -> bool | None:
        """``ack`` as one statement outside a transaction, if this backend can; None if it cannot."""

    def release(self, tx: Transaction, row_id: int, token: str, due_us: int) -> bool:
        """Put the leased message back, waiting until ``due_us``."""

    def renew(self, tx: Transaction, row_id: int, token: str, until_us: int) -> bool:
        """Move the lease's end to ``until_us``."""

    def bury(self, tx: Transaction, row_id: int, token: str) -> bool:
        """Make the leased message a dead letter."""

    def clear_dead(self, tx: Transaction, namespace: str, queue: str) -> int:
        """Delete the queue's dead letters; how many."""

    def counts(self, namespace: str, queue: str, now_us: int) -> tuple[int, int, int, int]:
        """(ready, delayed, in flight, dead letters), in one snapshot."""

    def peek(self, namespace: str, queue: str, now_us: int, limit: int) -> list[Peeked]:
        """The next ``limit`` messages due by ``now_us``, in delivery order."""

    def next_due(self, namespace: str, queue: str) -> int | None:
        """When the earliest message that is not a dead letter is due (a lease's end for a leased one)."""


class Backend(Protocol):
    """A database holding kvstore's tables."""

    @property
    def queue(self) -> QueueSide:
        """The queue's statements."""

    def get(self, namespace: str, key: str, now_us: int) -> Found | None:
        """The live entry at ``key``."""

    def get_whole(self, namespace: str, key: str, now_us: int) -> Whole | None:
        """The live entry at ``key``, whole: what a refresh on access reads."""

    def get_many(self, namespace: str, keys: Sequence[str], now_us: int) -> list[Row]:
        """The live entries among ``keys``, read in one snapshot, in no particular order."""

    def scan(
        self,
        namespace: str,
        start: str,
        end: str,
        resume: str | None,
        reverse: bool,
        limit: int | None,
        now_us: int,
        max_bytes: int | None = None,
    ) -> list[Row]:
        """Live entries with ``start <= key < end`` in key order (descending when ``reverse``).

        ``resume`` is the last key of the previous page: only keys past it, in the listing's direction, count.
        With ``max_bytes``, the scan stops early, at ``rows_within(rows, max_bytes)``.
        """

    def scan_keys(
        self,
        namespace: str,
        start: str,
        end: str,
        resume: str | None,
        reverse: bool,
        limit: int | None,
        now_us: int,
    ) -> list[str]:
        """The keys ``scan`` would return, without reading their values."""

    def count(self, namespace: str, start: str, end: str, now_us: int) -> int:
        """How many live entries have ``start <= key < end``."""

    def change_probe(self) -> ChangeProbe:
        """A probe that notices commits made through other connections, in this or other processes."""

    def refresh(self, namespace: str, key: str, version: int, expires_us: int, now_us: int) -> bool:
        """Move the expiry of the live entry at ``key`` if it still has ``version``; True if it did."""

    def try_put(self, put: Put, expected: int | None, now_us: int) -> tuple[int, bool] | None:
        """Write ``put`` at once, if this backend can without a transaction: ``(version, found)``, where
        ``found`` says a live entry was replaced (whose created_us is kept).

        ``expected`` is the version the live entry must have, None if no entry may be live, or
        UNCONDITIONAL. None back means nothing was written and nothing is known (the condition failed, or
        the backend cannot tell or declines): the caller runs the write through ``transact``.
        """

    def transact(self, body: Callable[[Transaction], T]) -> T:
        """Run ``body`` in one write transaction and commit; retried whole if the database asks."""

    def begin(self) -> HeldTransaction:
        """Open a write transaction (taking the write lock) to run bodies in one at a time, across calls."""

    def purge_batch(self, now_us: int, limit: int) -> int:
        """Delete at most ``limit`` expired entries in one transaction; return how many."""

    def dump(self, live_at: int | None) -> AbstractContextManager[Dump]:
        """Every row (only those live at ``live_at``, if given) in one snapshot held until the block ends."""

    def backup(self, target: str, progress: Progress | None) -> None:
        """Copy the database, consistently, into the new SQLite file ``target`` while writers go on."""

    def stats(self, now_us: int) -> tuple[int, int, int, int, str, int | None, str]:
        """(live rows, expired rows, namespaces, greatest version of a stored row or 0, schema revision, bytes or
        None, journal mode)."""

    def checkpoint(self, mode: str) -> tuple[bool, int, int]:
        """Checkpoint the WAL in ``mode`` (passive, full, restart, truncate): (busy, frames in the WAL, frames
        checkpointed). Where the database manages its own log (in memory, PostgreSQL): (False, 0, 0)."""

    def close(self) -> None:
        """Close every connection; later calls raise StoreClosedError."""

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
