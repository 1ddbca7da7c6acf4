"""Namespaces: same API, nothing crosses between them."""

from __future__ import annotations

from kvstore import KVStore, Namespace


def test_default_namespace_is_named_default(kv: KVStore) -> None:
    assert kv.name == "default"
    kv.set("k", "default")
    entry = kv.namespace("default").get("k")
    assert entry is not None
    assert entry.value == "default"


def test_nothing_crosses_namespaces(kv: KVStore) -> None:
    user, event = kv.namespace("user"), kv.namespace("event")
    assert isinstance(user, Namespace)
    stamp = user.set("k", "user").versionstamp
    event.set("k", "event")
    assert kv.get("k") is None
    user_entry, event_entry = user.get("k"), event.get("k")
    assert user_entry is not None
    assert event_entry is not None
    assert (user_entry.value, event_entry.value) == ("user", "event")
    assert user.list().keys == ["k"]
    assert kv.list().keys == []
    assert event.get_many(["k", "missing"])[0] == event_entry
    # Conditions and deletes see only their own namespace.
    assert not event.set("k", "x", if_versionstamp=stamp).ok
    assert event.set("new", 1, if_not_exists=True).committed
    assert user.get("new") is None
    assert event.delete("k")
    assert user.get("k") == user_entry


def test_namespace_of_a_namespace_is_a_sibling(kv: KVStore) -> None:
    a = kv.namespace("a")
    b = a.namespace("b")
    b.set("k", 1)
    assert kv.namespace("b").get("k") is not None
    assert a.get("k") is None


def test_versionstamps_are_shared_across_namespaces(kv: KVStore) -> None:
    first = kv.namespace("a").set("k", 1).versionstamp
    second = kv.namespace("b").set("k", 1).versionstamp
    assert first is not None
    assert second is not None
    assert second > first


def test_repr_names_the_namespace(kv: KVStore) -> None:
    assert repr(kv.namespace("user")) == "<Namespace 'user'>"
