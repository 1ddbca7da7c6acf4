"""``kv.mapping()``: a namespace as a ``MutableMapping`` of keys to values, for code that takes a mapping.

The store itself answers ``kv[key]``, ``key in kv``, ``len(kv)`` and the rest, but its ``get`` returns an
``Entry``, so it is no honest ``MutableMapping``; this view is one, with dict semantics: ``get(key, default)``
returns the value, ``pop`` and ``setdefault`` act once (a conditional write, tried again if another writer
got there first), and iterating ``items()`` or ``values()`` is one listing, not a read per key.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, MutableMapping, ValuesView
from typing import Any, Final, Protocol

from ._codec import Value
from ._errors import InvalidKeyError
from ._models import Entry, SetResult


class Entries(Protocol):
    """What the view needs of a namespace (``Namespace`` is one)."""

    def get(self, key: str) -> Entry | None: ...

    def set(self, key: str, value: Value, *, if_not_exists: bool = False) -> SetResult: ...

    def delete(self, key: str, *, if_versionstamp: str | None = None) -> bool: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def count(self) -> int: ...

    def iterate(self) -> Iterator[Entry]: ...

    def __iter__(self) -> Iterator[str]: ...

    def __contains__(self, key: object) -> bool: ...


_MISSING: Final[Any] = object()  # pop without a default
_GONE: Final[Any] = object()  # popitem: deleted by another writer meanwhile


class KVMapping(MutableMapping[str, Any]):
    """A namespace as a mutable mapping of its keys to their values (the live entries, in key order).

    As in a dict, a key that cannot be there is not there: reading or deleting an invalid key is a
    ``KeyError``, ``in`` is False; writing one raises ``InvalidKeyError``, as does a value ``set`` refuses.
    Writes replace whole entries (no TTL, no metadata); ``clear()`` is ``delete_prefix("")``.
    """

    __slots__ = ("_entries",)

    def __init__(self, entries: Entries) -> None:
        self._entries = entries

    def __repr__(self) -> str:
        return f"<KVMapping of {self._entries!r}>"

    def __getitem__(self, key: str) -> Any:
        entry = self._get(key)
        if entry is None:
            raise KeyError(key)
        return entry.value

    def _get(self, key: str) -> Entry | None:
        try:
            return self._entries.get(key)
        except InvalidKeyError:
            return None

    def __setitem__(self, key: str, value: Any) -> None:
        self._entries.set(key, value)

    def __delitem__(self, key: str) -> None:
        try:
            deleted = self._entries.delete(key)
        except InvalidKeyError:
            deleted = False
        if not deleted:
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        try:
            return key in self._entries
        except InvalidKeyError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return self._entries.count()

    def items(self) -> ItemsView[str, Any]:
        return _Items(self)

    def values(self) -> ValuesView[Any]:
        return _Values(self)

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value: the value it held when it was deleted, read and deleted
        under one versionstamp (read again if a write came between)."""
        entries = self._entries
        while True:
            entry = self._get(key)
            if entry is None:
                if default is _MISSING:
                    raise KeyError(key)
                return default
            if entries.delete(key, if_versionstamp=entry.versionstamp):
                return entry.value

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the first (key, value) in key order."""
        for key in self._entries:
            value = self.pop(key, _GONE)
            if value is not _GONE:
                return key, value
        raise KeyError("popitem(): the mapping is empty")

    def setdefault(self, key: str, default: Any = None) -> Any:
        """The value at ``key``; if there is none, store ``default`` (only if still none) and return it."""
        entries = self._entries
        while True:
            entry = entries.get(key)
            if entry is not None:
                return entry.value
            if entries.set(key, default, if_not_exists=True).ok:
                return default

    def clear(self) -> None:
        """Delete every entry of the namespace, in bounded transactions (``delete_prefix("")``)."""
        self._entries.delete_prefix("")


class _Items(ItemsView[str, Any]):
    """``items()``: iterated as one listing (``iterate``), a page at a time."""

    __slots__ = ()
    _mapping: KVMapping

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        for entry in self._mapping._entries.iterate():
            yield entry.key, entry.value


class _Values(ValuesView[Any]):
    """``values()``: iterated as one listing (``iterate``), a page at a time."""

    __slots__ = ()
    _mapping: KVMapping

    def __iter__(self) -> Iterator[Any]:
        for entry in self._mapping._entries.iterate():
            yield entry.value
