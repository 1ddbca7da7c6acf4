"""The mapping protocol: ``kv[key]``, ``key in kv``, ``len(kv)``, iteration on stores and namespaces, each one
call of the store, and ``kv.mapping()``, a ``MutableMapping`` with dict semantics."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore import InvalidKeyError, InvalidValueError, KVMapping, KVStore

from .conftest import FakeClock


def test_a_store_reads_and_writes_by_subscript(kv: KVStore) -> None:
    kv["products/1"] = {"name": "lamp"}
    assert kv["products/1"] == {"name": "lamp"}
    entry = kv.get("products/1")
    assert entry is not None
    assert entry.value == {"name": "lamp"}  # the same entry ``set`` writes
    with pytest.raises(KeyError) as missing:
        kv["products/2"]
    assert missing.value.args == ("products/2",)
    del kv["products/1"]
    assert kv.get("products/1") is None
    with pytest.raises(KeyError):
        del kv["products/1"]


def test_membership_length_and_iteration(kv: KVStore) -> None:
    for key in ("b", "a", "c/1", "c/0"):
        kv[key] = 1
    kv.namespace("other")["z"] = 1
    assert "a" in kv
    assert "z" not in kv
    assert "z" in kv.namespace("other")
    assert len(kv) == 4
    assert list(kv) == ["a", "b", "c/0", "c/1"]  # keys, in key order, of this namespace only
    assert list(kv.namespace("other")) == ["z"]


def test_an_expired_entry_is_absent_to_the_protocol(kv: KVStore, clock: FakeClock) -> None:
    kv.set("short", 1, expire_in=60_000)
    assert "short" in kv
    clock.advance(61)
    assert "short" not in kv
    assert len(kv) == 0
    assert list(kv) == []
    with pytest.raises(KeyError):
        kv["short"]


def test_membership_is_a_probe_that_reads_no_value(kv: KVStore, monkeypatch: pytest.MonkeyPatch) -> None:
    kv["big"] = b"x" * 100_000
    backend = kv._backend

    def refuse(*args: object) -> None:
        raise AssertionError("`in` read the entry")

    monkeypatch.setattr(backend, "get", refuse)
    monkeypatch.setattr(backend, "get_many", refuse)
    assert "big" in kv
    assert "bigger" not in kv  # the probe's range holds the key alone, not the keys it begins
    assert "bi" not in kv


def test_length_is_one_count_and_iteration_pages(kv: KVStore, monkeypatch: pytest.MonkeyPatch) -> None:
    with kv.atomic() as op:
        for i in range(1200):
            op.set(f"k/{i:04d}", i)
    backend = kv._backend
    counts: list[object] = []
    scans: list[int | None] = []
    real_count, real_scan_keys = backend.count, backend.scan_keys

    def count(*args: Any) -> int:
        counts.append(args)
        return real_count(*args)

    def scan_keys(*args: Any) -> list[str]:
        scans.append(args[5])
        return real_scan_keys(*args)

    monkeypatch.setattr(backend, "count", count)
    monkeypatch.setattr(backend, "scan_keys", scan_keys)
    assert len(kv) == 1200
    assert len(counts) == 1
    assert list(kv) == [f"k/{i:04d}" for i in range(1200)]
    assert len(scans) == 3  # pages of 500 (each asks one more, to know whether another exists)
    assert all(limit is not None and limit <= 501 for limit in scans)


def test_bad_keys_raise_from_the_store_protocol(kv: KVStore) -> None:
    with pytest.raises(InvalidKeyError):
        kv["bad key"]
    with pytest.raises(InvalidKeyError):
        kv["bad key"] = 1
    with pytest.raises(InvalidKeyError):
        "bad key" in kv  # noqa: B015
    with pytest.raises(InvalidValueError):
        kv["k"] = (1, 2)  # type: ignore[assignment]
    assert len(kv) == 0


def test_an_empty_store_is_still_true() -> None:
    with KVStore(":memory:") as kv:
        assert kv  # ``if kv:`` asks whether there is a store, not whether it is empty
        assert not kv.mapping()  # the mapping view has dict semantics


def test_the_view_is_a_mutable_mapping_with_dict_semantics(kv: KVStore) -> None:
    view = kv.mapping()
    assert isinstance(view, MutableMapping)
    assert isinstance(view, KVMapping)
    view["a"] = 1
    view.update({"b": [1, 2], "c": {"x": None}}, d=b"\x00")
    assert dict(view) == {"a": 1, "b": [1, 2], "c": {"x": None}, "d": b"\x00"}
    assert view.get("a") == 1
    assert view.get("zz", "default") == "default"
    assert view.get("bad key", "default") == "default"  # cannot be there, so is not there
    assert "bad key" not in view
    assert list(view.items()) == [("a", 1), ("b", [1, 2]), ("c", {"x": None}), ("d", b"\x00")]
    assert list(view.values()) == [1, [1, 2], {"x": None}, b"\x00"]
    assert list(view.keys()) == ["a", "b", "c", "d"]
    assert ("a", 1) in view.items()
    assert view.pop("a") == 1
    assert view.pop("a", "gone") == "gone"
    with pytest.raises(KeyError):
        view.pop("a")
    assert view.setdefault("b", "other") == [1, 2]
    assert view.setdefault("e", "new") == "new"
    assert view["e"] == "new"
    assert view.popitem() == ("b", [1, 2])
    assert view == {"c": {"x": None}, "d": b"\x00", "e": "new"}
    with pytest.raises(KeyError):
        del view["bad key"]
    with pytest.raises(InvalidKeyError):
        view["bad key"] = 1
    view.clear()
    assert len(view) == 0
    assert kv.get("c") is None
    with pytest.raises(KeyError):
        view.popitem()


def test_the_view_of_a_namespace_sees_that_namespace_only(kv: KVStore) -> None:
    kv["k"] = "default"
    users = kv.namespace("users").mapping()
    users["k"] = "users"
    assert dict(users) == {"k": "users"}
    assert kv["k"] == "default"
    users.clear()
    assert kv["k"] == "default"


def test_pop_returns_the_value_it_deleted_when_a_write_comes_between(
    kv: KVStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pop`` deletes only the version it read: a write in between makes it read again, never delete a value
    it did not return."""
    view = kv.mapping()
    kv["k"] = "first"
    real_get = KVStore.get
    reads = 0

    def get_then_overwrite(self: KVStore, key: str) -> Any:
        nonlocal reads
        reads += 1
        entry = real_get(self, key)
        if reads == 1:
            self["k"] = "second"  # another writer, between the read and the delete
        return entry

    monkeypatch.setattr(KVStore, "get", get_then_overwrite)
    assert view.pop("k") == "second"
    assert reads == 2
    assert "k" not in kv


def _apply(target: MutableMapping[str, int], name: str, key: str, value: int) -> object:
    """One operation on ``target`` (the view, or a dict), and what it returned (KeyError if it raised one)."""
    try:
        if name == "set":
            target[key] = value
            return None
        if name == "del":
            del target[key]
            return None
        if name == "pop":
            return target.pop(key, None)
        if name == "setdefault":
            return target.setdefault(key, value)
        if isinstance(target, KVMapping):
            return target.popitem()
        first = min(target)  # the view pops in key order, a dict its last insertion: the model follows the view
        return first, target.pop(first)
    except (KeyError, ValueError):  # min() of an empty dict: a popitem of an empty mapping
        return KeyError


@settings(max_examples=40)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["set", "del", "pop", "setdefault", "popitem"]),
            st.sampled_from(["a", "b", "c/1", "c/2"]),
            st.integers(-3, 3),
        ),
        max_size=25,
    )
)
def test_the_view_behaves_as_a_dict(operations: list[tuple[str, str, int]]) -> None:
    with KVStore(":memory:") as kv:
        view = kv.mapping()
        model: dict[str, int] = {}
        for name, key, value in operations:
            assert _apply(view, name, key, value) == _apply(model, name, key, value), (name, key)
            assert dict(view) == model
            assert len(view) == len(model)
            assert list(view) == sorted(model)
