"""get, get_many and delete."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kvstore import Entry, InvalidOptionsError, KVStore

from .conftest import FakeClock


def test_get_returns_the_whole_entry(kv: KVStore, clock: FakeClock) -> None:
    result = kv.set("k", {"a": [1, 2]}, metadata={"m": "x"}, expire_in=120_000)
    entry = kv.get("k")
    assert isinstance(entry, Entry)
    assert entry.key == "k"
    assert entry.value == {"a": [1, 2]}
    assert entry.versionstamp == result.versionstamp
    assert entry.metadata == {"m": "x"}
    assert entry.content_type == "application/json"
    assert entry.size_bytes == result.size_bytes
    now = datetime.fromtimestamp(clock.now, UTC)
    assert entry.created_at == entry.updated_at == now
    assert entry.expires_at == result.expires_at
    for moment in (entry.created_at, entry.updated_at, entry.expires_at):
        assert moment is not None
        assert moment.utcoffset() is not None
        assert moment.tzinfo == UTC


def test_get_missing_is_none(kv: KVStore) -> None:
    assert kv.get("missing") is None


def test_get_many_keeps_order_and_duplicates(kv: KVStore) -> None:
    kv.set("a", 1)
    kv.set("b", 2)
    result = kv.get_many(["b", "missing", "a", "b"])
    assert [None if entry is None else entry.value for entry in result] == [2, None, 1, 2]
    assert kv.get_many([]) == []
    assert kv.get_many(iter(["a"]))[0] == kv.get("a")


def test_get_many_over_many_chunks(kv: KVStore) -> None:
    keys = [f"k{i}" for i in range(1200)]
    for key in keys[::2]:
        kv.set(key, key)
    result = kv.get_many(keys)
    assert [entry.key if entry else None for entry in result] == [k if i % 2 == 0 else None for i, k in enumerate(keys)]


@pytest.mark.parametrize("keys", ["ab", b"ab", 5, None])
def test_get_many_needs_an_iterable_of_keys(kv: KVStore, keys: object) -> None:
    with pytest.raises(InvalidOptionsError):
        kv.get_many(keys)  # type: ignore[arg-type]


def test_delete_reports_whether_a_live_entry_was_deleted(kv: KVStore) -> None:
    kv.set("k", 1)
    assert kv.delete("k") is True
    assert kv.get("k") is None
    assert kv.delete("k") is False


def test_delete_with_versionstamp(kv: KVStore) -> None:
    old = kv.set("k", 1).versionstamp
    new = kv.set("k", 2).versionstamp
    assert old is not None
    assert new is not None
    assert kv.delete("k", if_versionstamp=old) is False
    assert kv.get("k") is not None
    assert kv.delete("k", if_versionstamp=new) is True
    assert kv.get("k") is None


def test_delete_draws_a_versionstamp(kv: KVStore) -> None:
    first = kv.set("k", 1).versionstamp
    kv.delete("k")
    after = kv.set("k", 1).versionstamp
    assert first is not None
    assert after is not None
    assert int(after[:16], 16) == int(first[:16], 16) + 2
