"""Ranges: start/end bounds, keys-only listing, count, delete_prefix, and get_many's snapshot."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore import InvalidCursorError, InvalidKeyError, InvalidOptionsError, KeyPage, KVStore

from .conftest import FakeClock, Stores

KEYS = ["a", "a/1", "a/2", "a/3", "a_", "b", "b/1", "c"]


@pytest.fixture
def filled(kv: KVStore) -> KVStore:
    for key in KEYS:
        kv.set(key, key)
    return kv


def test_start_is_inclusive_and_end_exclusive(filled: KVStore) -> None:
    assert filled.list(start="a/2", end="b/1").keys == ["a/2", "a/3", "a_", "b"]
    assert filled.list(start="a/2", end="b/1", reverse=True).keys == ["b", "a_", "a/3", "a/2"]
    assert filled.list(start="b").keys == ["b", "b/1", "c"]
    assert filled.list(end="a/2").keys == ["a", "a/1"]
    assert filled.list(start="a/25").keys[0] == "a/3"  # a bound need not be a key


def test_bounds_intersect_the_prefix(filled: KVStore) -> None:
    assert filled.list("a/", start="a/2").keys == ["a/2", "a/3"]
    assert filled.list("a/", end="a/3").keys == ["a/1", "a/2"]
    assert filled.list("a/", start="b").keys == []
    assert filled.list("b", start="a", end="z").keys == ["b", "b/1"]


def test_cursors_page_through_a_range_in_both_directions(filled: KVStore) -> None:
    for reverse in (False, True):
        keys: list[str] = []
        cursor: str | None = None
        while True:
            page = filled.list(start="a/1", end="c", limit=2, cursor=cursor, reverse=reverse)
            keys.extend(page.keys)
            cursor = page.cursor
            if cursor is None:
                break
        expected = ["a/1", "a/2", "a/3", "a_", "b", "b/1"]
        assert keys == (expected[::-1] if reverse else expected)


def test_a_cursor_belongs_to_its_range(filled: KVStore) -> None:
    cursor = filled.list(start="a", end="b", limit=1).cursor
    with pytest.raises(InvalidCursorError, match="range"):
        filled.list(start="a", end="c", cursor=cursor)
    with pytest.raises(InvalidCursorError, match="range"):
        filled.list(start="a", cursor=cursor)


@pytest.mark.parametrize("bound", ["a%", "ü", 5, "x" * 257])
def test_bounds_are_key_positions(kv: KVStore, bound: object) -> None:
    with pytest.raises(InvalidKeyError):
        kv.list(start=bound)  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError):
        kv.count(end=bound)  # type: ignore[arg-type]


def test_list_keys_matches_list_and_shares_its_cursors(filled: KVStore) -> None:
    page = filled.list_keys("a", limit=3)
    assert isinstance(page, KeyPage)
    assert list(page) == ["a", "a/1", "a/2"] == filled.list("a", limit=3).keys
    assert page[0] == "a"
    assert len(page) == 3
    rest = filled.list("a", cursor=page.cursor)
    assert rest.keys == ["a/3", "a_"]
    assert filled.list_keys("a", cursor=filled.list("a", limit=3).cursor).keys == ["a/3", "a_"]
    assert filled.list_keys(start="b", reverse=True).keys == ["c", "b/1", "b"]


def test_list_keys_skips_expired_entries(kv: KVStore, clock: FakeClock) -> None:
    kv.set("a", 1, expire_in=60_000)
    kv.set("b", 1)
    clock.advance(60)
    assert kv.list_keys().keys == ["b"]


def test_count(filled: KVStore, clock: FakeClock) -> None:
    assert filled.count() == len(KEYS)
    assert filled.count("a/") == 3
    assert filled.count("a_") == 1  # literal '_'
    assert filled.count(start="a/2", end="b") == 3
    filled.set("a/4", 1, expire_in=60_000)
    assert filled.count("a/") == 4
    clock.advance(60)
    assert filled.count("a/") == 3
    assert filled.namespace("other").count() == 0


def test_delete_prefix_in_batches(kv: KVStore) -> None:
    for i in range(23):
        kv.set(f"logs/{i:02d}", i)
    kv.set("logs", "not under logs/")
    kv.set("logsx", 1)
    kv.namespace("other").set("logs/1", 1)
    first = kv.set("marker", 1).versionstamp
    assert kv.delete_prefix("logs/", batch_size=5) == 23
    assert kv.list().keys == ["logs", "logsx", "marker"]
    assert kv.namespace("other").count() == 1
    after = kv.set("marker", 2).versionstamp
    assert first is not None
    assert after is not None
    # Five batches deleted live entries (5+5+5+5+3): each drew one versionstamp.
    assert int(after[:16], 16) == int(first[:16], 16) + 6


def test_delete_prefix_counts_only_live_entries_and_takes_expired_ones_too(kv: KVStore, clock: FakeClock) -> None:
    kv.set("t/a", 1, expire_in=60_000)
    kv.set("t/b", 1)
    clock.advance(60)
    assert kv.delete_prefix("t/") == 1
    assert kv.info().expired == 0


def test_delete_prefix_is_literal(kv: KVStore) -> None:
    kv.set("a_b", 1)
    kv.set("axb", 1)
    assert kv.delete_prefix("a_") == 1
    assert kv.list().keys == ["axb"]


def test_delete_prefix_of_nothing(kv: KVStore) -> None:
    assert kv.delete_prefix("none/") == 0


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, "5"])
def test_delete_prefix_batch_size_must_be_positive(kv: KVStore, batch_size: object) -> None:
    with pytest.raises(InvalidOptionsError):
        kv.delete_prefix("a", batch_size=batch_size)  # type: ignore[arg-type]


@given(
    st.lists(st.from_regex(r"[abc_]{1,3}(/[ab])?", fullmatch=True), unique=True, max_size=12),
    st.from_regex(r"[abc_/]{0,2}", fullmatch=True),
    st.from_regex(r"[abc_/]{0,3}", fullmatch=True),
    st.from_regex(r"[abc_/]{0,3}", fullmatch=True),
)
def test_ranges_equal_filtering_a_sorted_list(
    stores: Stores, keys: list[str], prefix: str, start: str, end: str
) -> None:
    with stores.fresh() as kv:
        for key in keys:
            kv.set(key, 1)
        expected = sorted(k for k in keys if k.startswith(prefix) and k >= start and (not end or k < end))
        high = end or None
        assert kv.list_keys(prefix, start=start, end=high).keys == expected
        assert kv.count(prefix, start=start, end=high) == len(expected)


def test_get_many_reads_one_snapshot_across_chunks(shared_target: str) -> None:
    """A writer moves units between 1,200 keys; every read of all of them sees the same total."""
    keys = [f"k{i:04d}" for i in range(1200)]
    with KVStore(shared_target) as kv:
        with kv.atomic() as op:
            for key in keys:
                op.set(key, 10)
        stop = threading.Event()

        def shuffle() -> None:
            i = 0
            while not stop.is_set():
                source, target = keys[i % 1200], keys[(i * 7 + 600) % 1200]
                kv.atomic().sum(source, -1).sum(target, 1).commit()
                i += 1

        writer = threading.Thread(target=shuffle)
        writer.start()
        try:
            totals: set[int] = set()
            for _ in range(15):
                values = [entry.value for entry in kv.get_many(keys) if entry is not None]
                totals.add(sum(value for value in values if isinstance(value, int)))
        finally:
            stop.set()
            writer.join()
        assert totals == {12_000}
