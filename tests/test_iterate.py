"""``kv.iterate()``: a listing as one iterator that pages by itself, holding one page at a time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore import AsyncKVStore, InvalidCursorError, InvalidKeyError, InvalidOptionsError, KVStore, ListIterator

from .conftest import FakeClock


def _fill(kv: KVStore, count: int, prefix: str = "k/") -> list[str]:
    keys = [f"{prefix}{i:05d}" for i in range(count)]
    with kv.atomic() as op:
        for i, key in enumerate(keys):
            op.set(key, i)
    return keys


def test_iterate_yields_every_entry_in_order(kv: KVStore) -> None:
    keys = _fill(kv, 1234)
    kv.set("other", 1)
    entries = list(kv.iterate("k/", page_size=100))
    assert [entry.key for entry in entries] == keys
    assert [entry.value for entry in entries] == list(range(1234))
    assert [entry.key for entry in kv.iterate("k/", reverse=True, page_size=7)] == keys[::-1]
    assert list(kv.iterate("k/", keys_only=True, page_size=3)) == keys
    assert list(kv.iterate(start="k/00100", end="k/00105")) == list(kv.list(start="k/00100", end="k/00105"))
    assert [e.key for e in kv.iterate()] == [*keys, "other"]


def test_iterate_reads_a_page_at_a_time(kv: KVStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each read fetches at most ``page_size`` (and one more, to know whether another page exists)."""
    _fill(kv, 250)
    backend = kv._backend
    limits: list[int | None] = []
    for name in ("scan", "scan_keys"):
        real = getattr(backend, name)

        def spy(*args: Any, _real: Any = real) -> Any:
            limits.append(args[5])
            return _real(*args)

        monkeypatch.setattr(backend, name, spy)
    iterator = kv.iterate(page_size=100)
    first = next(iterator)
    assert first.key == "k/00000"
    assert limits == [101]  # nothing is read ahead of the page being consumed
    assert len(list(iterator)) == 249
    assert limits == [101, 101, 101]
    limits.clear()
    assert len(list(kv.iterate(keys_only=True, page_size=100))) == 250
    assert limits == [101, 101, 101]


def test_an_entry_page_is_bounded_by_bytes_too(sqlite_kv: KVStore, monkeypatch: pytest.MonkeyPatch) -> None:
    kv = sqlite_kv
    for i in range(6):
        kv.set(f"big/{i}", b"x" * 3_000_000)
    pages: list[int] = []
    real = kv._backend.scan

    def spy(*args: Any) -> Any:
        rows = real(*args)
        pages.append(len(rows))
        return rows

    monkeypatch.setattr(kv._backend, "scan", spy)
    assert len(list(kv.iterate(page_size=500))) == 6
    assert max(pages) <= 4  # 8 MiB of values a page (and the one row past it), not 500 entries of 3 MB


def test_the_cursor_continues_after_the_last_item(kv: KVStore) -> None:
    keys = _fill(kv, 10)
    iterator = kv.iterate(page_size=4)
    assert iterator.cursor is None  # started from no cursor
    taken = [next(iterator).key for _ in range(6)]
    assert taken == keys[:6]
    resumed = kv.iterate(cursor=iterator.cursor, page_size=3)
    assert [entry.key for entry in resumed] == keys[6:]
    assert resumed.cursor is None  # exhausted
    page = kv.list(limit=6)
    assert [e.key for e in kv.iterate(cursor=page.cursor)] == keys[6:]  # a page's cursor resumes it too
    keys_only = kv.iterate(keys_only=True, page_size=2)
    assert [next(keys_only) for _ in range(3)] == keys[:3]
    assert list(kv.list_keys(cursor=keys_only.cursor)) == keys[3:]


def test_writes_between_pages_follow_the_cursor_rules(kv: KVStore) -> None:
    keys = _fill(kv, 20)
    iterator = kv.iterate(page_size=5)
    seen = [next(iterator).key for _ in range(5)]
    kv.delete(keys[2])  # behind the cursor: no effect
    kv.delete(keys[10])  # ahead: not seen
    kv.set("k/00007x", 1)  # ahead: seen
    kv.set("k/00001x", 1)  # behind: not seen
    seen += [entry.key for entry in iterator]
    assert seen == [*keys[:8], "k/00007x", *keys[8:10], *keys[11:]]


def test_entries_that_expire_meanwhile_are_not_yielded(kv: KVStore, clock: FakeClock) -> None:
    kv.set("a", 1)
    kv.set("b", 1, expire_in=60_000)
    kv.set("c", 1)
    iterator = kv.iterate(page_size=1)
    assert next(iterator).key == "a"
    clock.advance(61)  # each page is read at its own "now"
    assert [entry.key for entry in iterator] == ["c"]


def test_iterate_checks_its_arguments_when_called(kv: KVStore) -> None:
    with pytest.raises(InvalidOptionsError, match="page_size"):
        kv.iterate(page_size=0)
    with pytest.raises(InvalidOptionsError, match="page_size"):
        kv.iterate(page_size=True)
    with pytest.raises(InvalidKeyError):
        kv.iterate("bad prefix")
    with pytest.raises(InvalidOptionsError, match="keys_only"):
        kv.iterate(keys_only=1)  # type: ignore[call-overload]
    with pytest.raises(InvalidCursorError):
        kv.iterate(cursor="nonsense")
    kv.set("a1", 1)
    kv.set("a2", 1)
    with pytest.raises(InvalidCursorError):
        kv.iterate("b", cursor=kv.list("a", limit=1).cursor)  # a cursor of another listing


def test_iterate_returns_a_typed_iterator(kv: KVStore) -> None:
    kv.set("k", 1)
    iterator = kv.iterate()
    assert isinstance(iterator, ListIterator)
    assert iter(iterator) is iterator
    namespace = kv.namespace("n")
    namespace.set("x", 2)
    assert [entry.value for entry in namespace.iterate()] == [2]


@settings(max_examples=30)
@given(
    keys=st.sets(st.from_regex(r"[a-c]{1,3}", fullmatch=True), max_size=30),
    prefix=st.sampled_from(["", "a", "b", "ab"]),
    page_size=st.integers(1, 7),
    reverse=st.booleans(),
)
def test_iterate_is_list_without_limit(keys: set[str], prefix: str, page_size: int, reverse: bool) -> None:
    with KVStore(":memory:") as kv:
        for key in keys:
            kv.set(key, key)
        expected = kv.list(prefix, reverse=reverse)
        assert list(kv.iterate(prefix, reverse=reverse, page_size=page_size)) == list(expected)
        assert list(kv.iterate(prefix, reverse=reverse, page_size=page_size, keys_only=True)) == expected.keys


def test_the_async_iterate_takes_the_same_range(tmp_path: Path) -> None:
    async def keys() -> list[str]:
        async with AsyncKVStore(tmp_path / "kv.db") as kv:
            for key in ("a", "b", "c", "d"):
                await kv.set(key, 1)
            return [entry.key async for entry in kv.iterate(start="b", end="d", page_size=1)]

    assert asyncio.run(keys()) == ["b", "c"]
