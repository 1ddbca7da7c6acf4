"""list: key order, literal prefixes, reverse, limits and cursors that survive concurrent writes."""

from __future__ import annotations

import base64
import json

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore import Entry, InvalidCursorError, InvalidOptionsError, KVStore, Page
from kvstore._backends.base import Found, Row
from kvstore._codec import format_versionstamp, from_epoch_us
from kvstore._entries import entries_of, entry_of

from .conftest import Stores, sqlite_connection


def _fill(kv: KVStore, keys: list[str]) -> None:
    for key in keys:
        kv.set(key, key)


def _drain(kv: KVStore, prefix: str = "", *, limit: int, reverse: bool = False) -> list[str]:
    keys: list[str] = []
    cursor: str | None = None
    while True:
        page = kv.list(prefix, limit=limit, cursor=cursor, reverse=reverse)
        assert len(page) <= limit
        keys.extend(page.keys)
        if page.cursor is None:
            return keys
        cursor = page.cursor


def test_keys_come_in_byte_order(kv: KVStore) -> None:
    keys = ["b", "a/b", "a", "B", "a-", "a_", "a.", "a0", "z", "-", "_"]
    _fill(kv, keys)
    assert kv.list().keys == sorted(keys)
    assert kv.list(reverse=True).keys == sorted(keys, reverse=True)


def test_prefix_matches_literally(kv: KVStore) -> None:
    _fill(kv, ["a_c", "abc", "a_b/x", "a", "a_", "b_c"])
    assert kv.list("a_").keys == ["a_", "a_b/x", "a_c"]  # '_' is no wildcard: "abc" is not matched
    assert kv.list("a_b/").keys == ["a_b/x"]
    assert kv.list("a_c").keys == ["a_c"]
    assert kv.list("zz").keys == []


def test_prefix_ending_in_the_highest_allowed_character(kv: KVStore) -> None:
    _fill(kv, ["az", "azz", "b", "ay"])
    assert kv.list("az").keys == ["az", "azz"]


def test_limit_and_cursor_page_through_everything(kv: KVStore) -> None:
    keys = [f"item/{i:03d}" for i in range(25)]
    _fill(kv, [*keys, "other"])
    first = kv.list("item/", limit=10)
    assert isinstance(first, Page)
    assert first.keys == keys[:10]
    assert first.cursor is not None
    assert _drain(kv, "item/", limit=10) == keys
    assert _drain(kv, "item/", limit=7, reverse=True) == keys[::-1]


def test_exact_final_page_has_no_cursor(kv: KVStore) -> None:
    _fill(kv, ["a", "b", "c", "d"])
    first = kv.list(limit=2)
    second = kv.list(limit=2, cursor=first.cursor)
    assert second.keys == ["c", "d"]
    assert second.cursor is None


def test_cursor_is_stable_under_concurrent_writes(kv: KVStore) -> None:
    _fill(kv, ["a", "c", "e", "g"])
    page = kv.list(limit=2)
    assert page.keys == ["a", "c"]
    kv.delete("a")  # before the cursor: no effect
    kv.set("b", "b")  # before the cursor: not seen in this listing
    kv.set("d", "d")  # after the cursor: seen
    kv.delete("e")  # after the cursor: not seen
    rest = kv.list(cursor=page.cursor)
    assert rest.keys == ["d", "g"]


def test_cursor_shape_is_documented_base64_json(kv: KVStore) -> None:
    _fill(kv, ["p/a", "p/b"])
    cursor = kv.list("p/", limit=1).cursor
    assert cursor is not None
    decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert decoded == {"v": 1, "p": "p/", "s": None, "e": None, "r": False, "k": "p/a"}


def test_cursor_must_belong_to_the_same_listing(kv: KVStore) -> None:
    _fill(kv, ["p/a", "p/b", "q"])
    cursor = kv.list("p/", limit=1).cursor
    with pytest.raises(InvalidCursorError, match="another prefix, range or direction"):
        kv.list("q", cursor=cursor)
    with pytest.raises(InvalidCursorError, match="another prefix, range or direction"):
        kv.list("p/", cursor=cursor, reverse=True)


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64 !!",
        "bm90IGpzb24",  # "not json"
        base64.urlsafe_b64encode(b'{"v":2,"p":"","s":null,"e":null,"r":false,"k":"a"}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"p":"","s":null,"e":null,"r":false,"k":"bad key"}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"p":"","s":null,"e":null,"r":0,"k":"a"}').decode(),
        base64.urlsafe_b64encode(b'["v",1]').decode(),
        "x" * 2000,
        7,
    ],
    ids=repr,
)
def test_malformed_cursors_are_rejected(kv: KVStore, cursor: object) -> None:
    with pytest.raises(InvalidCursorError):
        kv.list(cursor=cursor)  # type: ignore[arg-type]


@pytest.mark.parametrize("limit", [0, -1, 1.5, "10", True])
def test_limit_must_be_a_positive_int(kv: KVStore, limit: object) -> None:
    with pytest.raises(InvalidOptionsError, match="limit"):
        kv.list(limit=limit)  # type: ignore[arg-type]


def test_reverse_must_be_a_bool(kv: KVStore) -> None:
    with pytest.raises(InvalidOptionsError, match="reverse"):
        kv.list(reverse=1)  # type: ignore[arg-type]


def test_entries_carry_everything_get_returns(kv: KVStore) -> None:
    kv.set("k", b"v", metadata={"m": 1}, content_type="image/png", expire_in=60_000)
    (listed,) = kv.list()
    assert listed == kv.get("k")


KEYS = st.lists(st.from_regex(r"[ab_%]{1,3}(/[ab]{1,2})?", fullmatch=True), max_size=15, unique=True)


@given(KEYS, st.from_regex(r"[ab_%/]{0,3}", fullmatch=True), st.integers(1, 4), st.booleans())
def test_paging_equals_filtering_a_sorted_list(
    stores: Stores, keys: list[str], prefix: str, limit: int, reverse: bool
) -> None:
    with stores.fresh() as kv:
        _fill(kv, [key for key in keys if "%" not in key])
        expected = sorted((k for k in keys if k.startswith(prefix) and "%" not in k), reverse=reverse)
        if "%" in prefix:
            return  # '%' is not a key character: covered by the invalid-prefix tests
        assert _drain(kv, prefix, limit=limit, reverse=reverse) == expected
        assert kv.list(prefix, reverse=reverse).keys == expected


def _steps_to_list(kv: KVStore, cursor: str | None, reverse: bool) -> int:
    """SQLite virtual-machine steps one page of 10 costs: a count of work, not a timing."""
    conn = sqlite_connection(kv)
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    conn.set_progress_handler(count, 1)
    try:
        kv.list("p/", limit=10, cursor=cursor, reverse=reverse)
    finally:
        conn.set_progress_handler(None, 1)
    return steps[0]


@pytest.mark.parametrize("reverse", [False, True])
def test_a_page_deep_in_a_listing_costs_what_the_first_page_costs(sqlite_kv: KVStore, reverse: bool) -> None:
    """Each page seeks to its cursor: resuming near the end must not rescan the entries before it.

    (On PostgreSQL, tests/test_postgres.py checks the same with the server's row counts.)
    """
    kv = sqlite_kv
    with kv.atomic() as op:
        for i in range(3000):
            op.set(f"p/{i:05d}", i)
    first = _steps_to_list(kv, None, reverse)
    page = kv.list("p/", limit=2990, reverse=reverse)
    assert page.cursor is not None
    deep = _steps_to_list(kv, page.cursor, reverse)
    assert deep < 2 * first, (first, deep)


def _cursor(prefix: str, start: str | None, end: str | None, reverse: bool, key: str) -> str:
    data = {"v": 1, "p": prefix, "s": start, "e": end, "r": reverse, "k": key}
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


def test_a_cursor_key_outside_the_range_still_keeps_to_the_range(kv: KVStore) -> None:
    _fill(kv, ["a/1", "a/2", "a/3", "a/4", "a/5"])
    below = _cursor("a/", "a/2", "a/5", False, "a/1")
    assert kv.list("a/", start="a/2", end="a/5", cursor=below).keys == ["a/2", "a/3", "a/4"]
    assert kv.list_keys("a/", start="a/2", end="a/5", cursor=below).keys == ["a/2", "a/3", "a/4"]
    above = _cursor("a/", "a/2", "a/4", True, "a/5")
    assert kv.list("a/", start="a/2", end="a/4", cursor=above, reverse=True).keys == ["a/3", "a/2"]
    assert kv.list_keys("a/", start="a/2", end="a/4", cursor=above, reverse=True).keys == ["a/3", "a/2"]


# -- rows to entries: a listing builds its entries a column at a time, a get one at a time ---------------

_US = st.integers(min_value=0, max_value=253_402_300_799_000_000)
_ROWS = st.lists(
    st.tuples(
        st.sampled_from([msgpack.packb({"a": [1, 2.5]}), msgpack.packb("text"), msgpack.packb(b"\x00\xc1")]),
        st.integers(min_value=1, max_value=2**63 - 1),
        st.none() | st.sampled_from(['{"owner":"x"}', '{"n":[1,{"m":null}]}']),
        st.sampled_from(["application/json", "text/plain; charset=utf-8"]),
        _US,
        _US,
        st.none() | _US,
        st.none(),  # no checksum: tests/test_checksum.py checks rows with one
        st.text(min_size=1, max_size=4),
    ),
    max_size=6,
)


@given(_ROWS, st.booleans())
def test_entries_built_together_are_the_entries_built_one_by_one(rows: list[Row], same_times: bool) -> None:
    if same_times:  # one batch's entries: one instant for all (the fast path for times)
        rows = [(*row[:4], rows[0][4], rows[0][4], *row[6:]) for row in rows]
    built = entries_of(rows)
    assert built == [entry_of(row[8], row[:8]) for row in rows]
    assert all(type(entry) is Entry for entry in built)
    if built:  # every entry has a metadata dict of its own, even an empty one
        built[0].metadata["mine"] = True
        assert not any("mine" in entry.metadata for entry in built[1:])


_FOUND = st.tuples(
    st.just(msgpack.packb("v")),
    st.integers(min_value=1, max_value=2**40),
    st.none() | st.just('{"m": 1}'),
    st.sampled_from(["application/json", "text/plain"]),
    st.integers(min_value=0, max_value=2**50),
    st.integers(min_value=0, max_value=2**50),
    st.none() | st.integers(min_value=1, max_value=2**50),
    st.none(),
)


@given(_FOUND)
def test_an_entry_built_fast_fills_every_field_with_its_own_type(found: Found) -> None:
    """``new_tuple`` skips Entry's constructor: a missing or misplaced column would go unnoticed."""
    value, version, metadata, content_type, created_us, updated_us, expires_us, _ = found
    entry = entry_of("k", found)
    assert type(entry) is Entry
    assert len(entry) == len(Entry._fields)
    assert entry == Entry(
        key="k",
        value="v",
        versionstamp=format_versionstamp(version),
        metadata={} if metadata is None else {"m": 1},
        content_type=content_type,
        size_bytes=len(value),
        created_at=from_epoch_us(created_us),
        updated_at=from_epoch_us(updated_us),
        expires_at=None if expires_us is None else from_epoch_us(expires_us),
    )
    assert entries_of([(*found, "k")]) == [entry]


# --- max_bytes: pages bounded by the bytes of their values as well as by count -------------------------------


@settings(max_examples=60)
@given(
    st.lists(st.integers(0, 300), min_size=0, max_size=12),
    st.integers(1, 700),
    st.one_of(st.none(), st.integers(1, 5)),
    st.booleans(),
)
def test_pages_under_max_bytes_concatenate_to_the_full_listing(
    stores: Stores, sizes: list[int], max_bytes: int, limit: int | None, reverse: bool
) -> None:
    with stores.fresh() as kv:
        for index, size in enumerate(sizes):
            kv.set(f"k/{index:02d}", b"x" * size)
        listed: list[Entry] = []
        cursor: str | None = None
        while True:
            page = kv.list("k/", limit=limit, cursor=cursor, reverse=reverse, max_bytes=max_bytes)
            assert len(page) >= 1 or (not listed and not sizes)  # a page holds at least one entry
            assert limit is None or len(page) <= limit
            if len(page) > 1:
                assert sum(e.size_bytes for e in page) <= max_bytes
            if page.cursor is not None and (limit is None or len(page) < limit):
                # it stopped for bytes: the next entry would not have fitted
                following = kv.list("k/", limit=1, cursor=page.cursor, reverse=reverse)
                assert sum(e.size_bytes for e in page) + following[0].size_bytes > max_bytes
            listed.extend(page)
            if page.cursor is None:
                break
            cursor = page.cursor
        assert listed == kv.list("k/", reverse=reverse).entries


def test_a_value_larger_than_max_bytes_is_a_page_of_its_own(kv: KVStore) -> None:
    kv.set("a", b"x" * 5000)
    kv.set("b", b"y" * 10)
    first = kv.list(max_bytes=100)
    assert first.keys == ["a"]
    assert first.cursor is not None
    rest = kv.list(max_bytes=100, cursor=first.cursor)
    assert (rest.keys, rest.cursor) == (["b"], None)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "10", True])
def test_max_bytes_must_be_a_positive_int(kv: KVStore, bad: object) -> None:
    with pytest.raises(InvalidOptionsError):
        kv.list(max_bytes=bad)  # type: ignore[arg-type]
