"""What kvstore returns: the result of a set, a stored entry, and a page of a listing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, overload

from ._codec import JSON, Value

__all__ = ["CommitResult", "Entry", "FailedCheck", "KeyPage", "Page", "SetResult", "StoreInfo"]


@dataclass(frozen=True, slots=True)
class SetResult:
    """The outcome of ``set``.

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


@dataclass(frozen=True, slots=True)
class Entry:
    """A live entry as read from the store; every datetime is UTC-aware."""

    key: str
    value: Value
    versionstamp: str
    metadata: dict[str, JSON]
    content_type: str
    size_bytes: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None


_RESULT_SLOTS: Final = tuple(SetResult.__dict__[name].__set__ for name in SetResult.__dataclass_fields__)


def make_set_result(
    ok: bool,
    committed: bool,
    versionstamp: str | None,
    created: bool,
    key: str,
    expires_at: datetime | None,
    content_type: str,
    size_bytes: int,
) -> SetResult:
    """``SetResult(...)`` with positional fields, faster (see ``make_entry``)."""
    result: SetResult = object.__new__(SetResult)
    s_ok, s_committed, s_stamp, s_created, s_key, s_expires, s_type, s_size = _RESULT_SLOTS
    s_ok(result, ok)
    s_committed(result, committed)
    s_stamp(result, versionstamp)
    s_created(result, created)
    s_key(result, key)
    s_expires(result, expires_at)
    s_type(result, content_type)
    s_size(result, size_bytes)
    return result


# Every entry read goes through ``make_entry``: it fills the slots directly, skipping the frozen dataclass's
# __init__, which sets each of the nine fields through object.__setattr__ (a third of the cost of a get's
# Python). The result is an ordinary Entry: frozen, equal and hashable as one built by Entry(...).
_ENTRY_SLOTS: Final = tuple(Entry.__dict__[name].__set__ for name in Entry.__dataclass_fields__)
_NEW: Final = object.__new__


def make_entry(
    key: str,
    value: Value,
    versionstamp: str,
    metadata: dict[str, JSON],
    content_type: str,
    size_bytes: int,
    created_at: datetime,
    updated_at: datetime,
    expires_at: datetime | None,
) -> Entry:
    """``Entry(...)`` with positional fields, faster."""
    entry: Entry = _NEW(Entry)
    s_key, s_value, s_stamp, s_metadata, s_type, s_size, s_created, s_updated, s_expires = _ENTRY_SLOTS
    s_key(entry, key)
    s_value(entry, value)
    s_stamp(entry, versionstamp)
    s_metadata(entry, metadata)
    s_type(entry, content_type)
    s_size(entry, size_bytes)
    s_created(entry, created_at)
    s_updated(entry, updated_at)
    s_expires(entry, expires_at)
    return entry


@dataclass(frozen=True, slots=True)
class Page(Sequence[Entry]):
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
class KeyPage(Sequence[str]):
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
class FailedCheck:
    """A check of an atomic commit that did not hold: its position, key, and the key's live versionstamp."""

    index: int
    key: str
    versionstamp: str | None


@dataclass(frozen=True, slots=True)
class CommitResult:
    """The outcome of ``atomic().commit()``.

    ``ok`` is True when every check held; ``versionstamp`` is then the one every mutation wrote with (None if
    no mutation changed anything). When ``ok`` is False nothing was written and ``failed_checks`` says why.
    """

    ok: bool
    versionstamp: str | None
    failed_checks: tuple[FailedCheck, ...] = ()

    @property
    def committed(self) -> bool:
        """Whether this commit wrote anything."""
        return self.ok and self.versionstamp is not None


@dataclass(frozen=True, slots=True)
class StoreInfo:
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
