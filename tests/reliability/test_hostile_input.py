"""Hostile input: arbitrary objects for every argument of every public entry point.

Hypothesis draws keys, values, options, namespaces, cursors and store options from a pool that mixes
valid input, input built to look like SQL or LIKE patterns, arbitrary text, and arbitrary Python objects
(sets, tuples, subclasses of str and int, objects whose every special method raises, ...). For every
call the only exception allowed is a KVError; when one is raised, a dump of every row of every table
(versionstamp counter included) must be unchanged. A call that succeeds must have stored exactly what
it was given. HTTP routes are covered separately, by the HTTP service's own tests.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore import InvalidCursorError, InvalidKeyError, KVError, KVStore, Namespace, Page

from ._hostile import (
    LIST_OPTIONS,
    LIVE,
    SET_OPTIONS,
    SQLISH,
    Booby,
    Target,
    anything,
    attempt,
    keys,
    namespaces,
    pick_space,
    prefixes,
    same,
    valid_keys,
    values,
    versionstamps,
)

pytestmark = pytest.mark.reliability


@given(data=st.data())
def test_set_with_hostile_keys_values_and_options(target: Target, data: st.DataObject) -> None:
    space = pick_space(target, data)
    key = data.draw(keys, label="key")
    value = data.draw(values, label="value")
    options = data.draw(st.fixed_dictionaries({}, optional=SET_OPTIONS), label="options")
    if "if_versionstamp" in options and data.draw(st.booleans(), label="use a stored versionstamp"):
        options["if_versionstamp"] = data.draw(st.sampled_from(target.stamps()), label="stored versionstamp")
    result = attempt(target, lambda: space.set(key, value, **options))
    if isinstance(result, KVError) or not result.committed:  # type: ignore[attr-defined]
        return
    entry = space.get(key)
    assert entry is not None
    assert same(entry.value, value), "set stored something other than it was given"


@given(data=st.data())
def test_get_get_many_and_delete_with_hostile_arguments(target: Target, data: st.DataObject) -> None:
    space = pick_space(target, data)
    key = data.draw(keys, label="key")
    # Booby itself is left out: iterating the keys argument is what get_many is for.
    not_booby = anything.filter(lambda x: not isinstance(x, Booby))
    many = data.draw(
        st.one_of(st.lists(keys, max_size=4), st.lists(keys, max_size=4).map(tuple), not_booby), label="keys"
    )
    stamp = data.draw(st.one_of(st.none(), versionstamps, st.sampled_from(target.stamps())), label="if_versionstamp")
    got = attempt(target, lambda: space.get(key))
    if isinstance(got, KVError):
        assert isinstance(got, InvalidKeyError)
    attempt(target, lambda: space.get_many(many))
    attempt(target, lambda: space.delete(key, if_versionstamp=stamp))


@given(data=st.data())
def test_list_with_hostile_prefix_range_limit_cursor_and_direction(target: Target, data: st.DataObject) -> None:
    space = pick_space(target, data)
    prefix = data.draw(prefixes, label="prefix")
    options: dict[str, Any] = data.draw(st.fixed_dictionaries({}, optional=LIST_OPTIONS), label="options")
    page = attempt(target, lambda: space.list(prefix, **options))
    if isinstance(page, KVError):
        return
    assert isinstance(page, Page)
    assert isinstance(prefix, str)
    # Literal prefixes and plain bounds: exactly the stored live keys that qualify, found by plain SQL.
    rows = target.conn.execute(
        f"SELECT key FROM kvstore_entries WHERE namespace = ? AND substr(key, 1, length(?)) = ? AND {LIVE}",
        (space.name, prefix, prefix),
    ).fetchall()
    start, end = options.get("start"), options.get("end")
    matching = {key for (key,) in rows if (start is None or key >= start) and (end is None or key < end)}
    assert set(page.keys) <= matching
    if "limit" not in options and "cursor" not in options:
        assert sorted(page.keys, reverse=options.get("reverse", False)) == page.keys
        assert set(page.keys) == matching


@given(data=st.data())
def test_namespace_with_hostile_names(target: Target, data: st.DataObject) -> None:
    name = data.draw(namespaces, label="name")
    opened = attempt(target, lambda: target.kv.namespace(name))
    if isinstance(opened, KVError):
        return
    assert isinstance(opened, Namespace)
    space = opened
    assert space.name == name
    nested = data.draw(namespaces, label="nested name")
    attempt(target, lambda: space.namespace(nested))
    key = data.draw(valid_keys, label="key")
    attempt(target, lambda: space.set(key, name))
    listed = attempt(target, space.list)
    assert not isinstance(listed, KVError)
    rows = target.conn.execute("SELECT key FROM kvstore_entries WHERE namespace = ?", (name,)).fetchall()
    assert sorted(key for (key,) in rows) == listed.keys  # type: ignore[attr-defined]


STORE_OPTIONS: Final = {
    "busy_timeout": st.one_of(st.floats(), st.integers(), anything),
    "synchronous": st.one_of(st.sampled_from(["NORMAL", "FULL", "full", "OFF", "NORMAL; DROP TABLE x"]), anything),
    "max_value_size": st.one_of(st.integers(), anything),
    "max_metadata_size": st.one_of(st.integers(), anything),
    "purge_batch_size": st.one_of(st.integers(), anything),
    "auto_purge_every": st.one_of(st.integers(), anything),
}


@given(data=st.data())
def test_store_options_and_clock_readings_from_hostile_objects(target: Target, data: st.DataObject) -> None:
    """KVStore() with arbitrary options, on the target's file, then a write and a read with any clock."""
    path = target.conn.execute("PRAGMA database_list").fetchone()[2]
    options: dict[str, Any] = data.draw(st.fixed_dictionaries({}, optional=STORE_OPTIONS), label="options")
    reading = data.draw(st.one_of(st.floats(1e9, 2e9), anything), label="clock reading")
    opened = attempt(target, lambda: KVStore(path, clock=lambda: reading, **options))
    if isinstance(opened, KVError):
        return
    assert isinstance(opened, KVStore)
    with opened as kv:
        attempt(target, lambda: kv.set("k/clock", 1, expire_in=60_000))
        attempt(target, lambda: kv.get("k/a"))
        attempt(target, kv.purge_expired)


@given(
    target_object=st.one_of(
        anything.filter(lambda x: not isinstance(x, Booby | str | Path)),  # a str or a path names a file: legitimate
        st.sampled_from(SQLISH).map(lambda s: "sqlite://" + s),
        st.sampled_from(SQLISH).map(lambda s: s + "://x"),
    )
)
def test_store_targets_from_hostile_objects(tmp_path_factory: pytest.TempPathFactory, target_object: object) -> None:
    """Anything that is not a path or an SQLite URL is refused with a KVError, creating no file."""
    directory = tmp_path_factory.mktemp("targets")
    with contextlib.chdir(directory):
        try:
            store = KVStore(target_object)  # type: ignore[arg-type]
        except KVError:
            assert list(directory.iterdir()) == []
            return
        store.close()


# -- targeted cases -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["list", "list_keys", "delete_prefix"])
@pytest.mark.parametrize("size", [2**31, 2**62, 2**63 - 2, 2**63 - 1, 2**63, 2**64])
def test_page_and_batch_sizes_at_the_edge_of_sqlite_integers(target: Target, call: str, size: int) -> None:
    """A huge limit or batch size does the whole job or is refused with a KVError; it never overflows."""
    space = target.kv.namespace("edge")
    for key in ("k/1", "k/2", "l/1"):
        space.set(key, 1)
    calls: dict[str, Callable[[], object]] = {
        "list": lambda: space.list("k", limit=size).keys,
        "list_keys": lambda: space.list_keys("k", limit=size).keys,
        "delete_prefix": lambda: space.delete_prefix("k", batch_size=size),
    }
    outcome = attempt(target, calls[call])
    if not isinstance(outcome, KVError):
        assert outcome == (2 if call == "delete_prefix" else ["k/1", "k/2"])


def _at_depth(frames: int, call: Callable[[], object]) -> object:
    """Run ``call`` with ``frames`` more frames on the stack, as inside a deep framework."""
    if frames > 0:
        return _at_depth(frames - 1, call)
    return call()


@pytest.mark.parametrize("length", [1024, 2048])
def test_a_cursor_nested_as_deep_as_its_length_allows(target: Target, length: int) -> None:
    """A cursor of nested JSON arrays is refused as a cursor, even called 300 frames deep."""
    nested = "[" * (length * 3 // 4)
    cursor = base64.urlsafe_b64encode(nested.encode()).rstrip(b"=").decode()[:length]
    result = attempt(target, lambda: _at_depth(300, lambda: target.kv.list(cursor=cursor)))
    assert isinstance(result, InvalidCursorError), result


@pytest.mark.parametrize("text", SQLISH)
def test_sql_lookalikes_stored_as_data_change_only_their_own_entry(target: Target, text: str) -> None:
    """As values and metadata anything goes, and only the entry written changes; as names they are refused
    or, when valid ("a_", "--"), name exactly one entry."""
    space = target.kv.namespace("sqlish")

    def others() -> list[tuple[object, ...]]:
        return target.conn.execute(
            "SELECT * FROM kvstore_entries WHERE NOT (namespace = 'sqlish' AND key = 'k/data') ORDER BY id"
        ).fetchall()

    before = others()
    if "\ud800" not in text:
        result = space.set("k/data", text, metadata={text: text} if text else None)
        assert result.committed
        entry = space.get("k/data")
        assert entry is not None
        assert (entry.value, entry.metadata) == (text, {text: text})
        assert others() == before
    for call in (
        lambda: space.set(text, "as a key"),
        lambda: space.list(text),
        lambda: target.kv.namespace(text).list(),
        lambda: space.set("k/ct", 1, content_type=text),
        lambda: space.list(cursor=text),
        lambda: space.delete(text),
    ):
        outcome = attempt(target, call)
        if not isinstance(outcome, KVError):
            rows = others()
            changed = [row for row in rows if row not in before]
            assert len(rows) - len(before) <= 1
            assert all(row[1] in ("sqlish", text) for row in changed), changed
            before = rows


_LIKE_KEYS: Final = st.lists(
    st.from_regex(r"[ab_\-.]{1,3}(/[ab_\-.]{1,2})?", fullmatch=True).filter(
        lambda k: all(part not in (".", "..") for part in k.split("/"))
    ),
    max_size=12,
    unique=True,
)
_NAMESPACE_SERIAL = iter(range(10**9))


@given(stored=_LIKE_KEYS, prefix=st.from_regex(r"[ab_\-./]{0,3}", fullmatch=True), reverse=st.booleans())
def test_like_metacharacters_in_prefixes_match_literally(
    target: Target, stored: list[str], prefix: str, reverse: bool
) -> None:
    """'_' is the LIKE wildcard for one character and '-', '.' and '/' sort around it: none of it leaks."""
    name = f"like-{next(_NAMESPACE_SERIAL)}"
    space = target.kv.namespace(name)
    neighbour = target.kv.namespace(name + "x")  # a namespace whose name extends this one
    for key in stored:
        space.set(key, key)
        neighbour.set(key, "other")
    page = space.list(prefix, reverse=reverse)
    expected = sorted((key for key in stored if key.startswith(prefix)), reverse=reverse)
    assert page.keys == expected
    assert all(entry.value == entry.key for entry in page)
    (count,) = target.conn.execute(
        "SELECT count(*) FROM kvstore_entries WHERE namespace = ? AND substr(key, 1, length(?)) = ?",
        (name, prefix, prefix),
    ).fetchone()
    assert count == len(expected)
