"""What kvstore returns: the result of a set, a stored entry, a page of a listing, a commit's outcome.

One family: every result type has ``_asdict()`` (its fields by name, shallow, as a named tuple gives them).
No ``from __future__ import annotations`` here: the annotations stay types, so ``help(Entry)`` and
``typing.get_type_hints`` show ``str``, not ``ForwardRef('str')``.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Final, NamedTuple, overload

__all__ = [
    "CheckpointResult",
    "CommitResult",
    "Entry",
    "FailedCheck",
    "ImportResult",
    "KeyPage",
    "Page",
    "SetResult",
    "StoreInfo",
]


# SetResult and Entry are named tuples, not frozen dataclasses: one is built on every set and every entry
# read, and a frozen dataclass sets each field through a descriptor call, which cost more than the rest
# of building an entry. A named tuple is built whole by one C call and is just as immutable.
new_tuple: Final = tuple.__new__  # new_tuple(Entry, fields): a named tuple without its __new__'s argument parsing


class SetResult(NamedTuple):
    """The outcome of ``set`` (an immutable named tuple).

    ``ok`` is False only when a condition (``if_versionstamp``, ``if_not_exists``) failed. ``committed`` is
    True when this call wrote; ``versionstamp`` is then the new one, otherwise the current live entry's
    (or None when there is none). ``key``, ``expires_at``, ``content_type`` and ``size_bytes`` describe the
    write that was asked for.
    """

    ok: bool
    committed: bool
    versionstamp: str | None
    created: bool
    key: str
    expires_at: datetime | None
    content_type: str
    size_bytes: int


class Entry(NamedTuple):
    """A live entry as read from the store (an immutable named tuple); every datetime is UTC-aware.

    ``value`` is what was stored, one of the types of ``Value``, and ``metadata`` the JSON object stored with
    it (``{}`` when none). Both are typed with ``Any``, as ``json.loads`` is: the caller knows what it
    stored, and ``entry.value["stock"]`` needs no ``isinstance`` first.
    """

    key: str
    value: Any
    versionstamp: str
    metadata: dict[str, Any]
    content_type: str
    size_bytes: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None


class ImportResult(NamedTuple):
    """What ``import_jsonl`` did with the entries it read: ``imported`` were written, ``skipped`` left alone
    because their key held a live entry (``on_existing="skip"``), ``expired`` not written because they had
    expired by the time of the import."""

    read: int
    imported: int
    skipped: int
    expired: int


class _Fields:
    """What the dataclass results share with the named tuples: ``_asdict()``."""

    __slots__ = ()

    def _asdict(self) -> dict[str, Any]:
        """The fields by name, in order (shallow: an entry in a page stays an ``Entry``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Page(_Fields, Sequence[Entry]):
    """One page of a listing, in the order asked for.

    ``cursor`` is None when the listing is exhausted; otherwise pass it back to ``list`` (with the same
    prefix and direction) to continue after the last entry of this page.
    """

    entries: list[Entry] = field(default_factory=list)
    cursor: str | None = None

    @overload
    def __getitem__(self, index: int) -> Entry: ...

    @overload
    def __getitem__(self, index: slice) -> list[Entry]: ...

    def __getitem__(self, index: int | slice) -> Entry | list[Entry]:
        return self.entries[index]

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    @property
    def keys(self) -> list[str]:
        """The keys of this page, in order."""
        return [entry.key for entry in self.entries]


@dataclass(frozen=True, slots=True)
class KeyPage(_Fields, Sequence[str]):
    """One page of a keys-only listing; ``cursor`` works as in ``Page``."""

    keys: list[str] = field(default_factory=list)
    cursor: str | None = None

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        return self.keys[index]

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys)


@dataclass(frozen=True, slots=True)
class FailedCheck(_Fields):
    """A check of an atomic commit that did not hold: its position, key, and the key's live versionstamp."""

    index: int
    key: str
    versionstamp: str | None


@dataclass(frozen=True, slots=True)
class CommitResult(_Fields):
    """The outcome of ``atomic().commit()``.

    ``ok`` is True when every check held; ``versionstamp`` is then the one every mutation wrote with (None if
    no mutation changed anything). When ``ok`` is False nothing was written and ``failed_checks`` says why.
    ``message_ids`` names the messages it enqueued.
    """

    ok: bool
    versionstamp: str | None
    failed_checks: tuple[FailedCheck, ...] = ()
    message_ids: tuple[str, ...] = ()
    """The ids of the messages the commit enqueued, in order (empty when it enqueued none or failed)."""

    @property
    def committed(self) -> bool:
        """Whether this commit wrote anything."""
        return self.ok and self.versionstamp is not None


class CheckpointResult(NamedTuple):
    """What ``KVStore.checkpoint()`` reports, as SQLite does: ``busy`` when a reader or writer kept it from
    finishing, the frames in the WAL, and how many of them are now in the database file. A database with no
    WAL of kvstore's to checkpoint (in memory, PostgreSQL) reports (False, 0, 0)."""

    busy: bool
    wal_frames: int
    checkpointed: int


@dataclass(frozen=True, slots=True)
class StoreInfo(_Fields):
    """What ``KVStore.info()`` reports about a database.

    ``entries`` counts live entries and ``expired`` those awaiting a purge, over every namespace;
    ``last_versionstamp`` is the greatest versionstamp among them (None when there are none);
    ``size_bytes`` is the database's logical size (pages x page size, WAL included), None in memory.
    """

    target: str
    schema_revision: str
    entries: int
    expired: int
    namespaces: int
    last_versionstamp: str | None
    size_bytes: int | None
    journal_mode: str
