"""Key, prefix and namespace rules, at their exact edges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore import InvalidKeyError, InvalidNamespaceError, KVStore

from .conftest import Stores

VALID_KEYS = ["a", "products/123", "A-b_c.d", "a/b/c", "..a", "a..", ".hidden", "x" * 256, "a/" + "b" * 254, "9"]
INVALID_KEYS = [
    "",
    "x" * 257,
    "/a",
    "a/",
    "a//b",
    "a/./b",
    "a/../b",
    ".",
    "..",
    "a/.",
    "../a",
    "has space",
    "tab\t",
    "new\nline",
    "ünïcode",
    "emoji😀",
    "percent%",
    "star*",
    "a\\b",
    "quote'",
    "semi;colon",
    "null\x00byte",
]


@pytest.mark.parametrize("key", VALID_KEYS)
def test_valid_keys_round_trip(kv: KVStore, key: str) -> None:
    assert kv.set(key, key).committed
    entry = kv.get(key)
    assert entry is not None
    assert entry.key == key
    assert entry.value == key


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_are_rejected_everywhere(kv: KVStore, key: str) -> None:
    kv.set("witness", 1)
    with pytest.raises(InvalidKeyError):
        kv.set(key, 1)
    with pytest.raises(InvalidKeyError):
        kv.get(key)
    with pytest.raises(InvalidKeyError):
        kv.get_many(["witness", key])
    with pytest.raises(InvalidKeyError):
        kv.delete(key)
    assert [entry.key for entry in kv.list()] == ["witness"]


def test_key_length_edges(kv: KVStore) -> None:
    assert kv.set("k" * 256, 1).ok
    with pytest.raises(InvalidKeyError, match="256"):
        kv.set("k" * 257, 1)


@pytest.mark.parametrize("key", [b"bytes", 1, None, ["a"]])
def test_non_str_keys_are_rejected(kv: KVStore, key: object) -> None:
    with pytest.raises(InvalidKeyError, match="str"):
        kv.set(key, 1)  # type: ignore[arg-type]


@given(st.text(max_size=300))
def test_arbitrary_text_is_either_a_valid_key_or_rejected(stores: Stores, text: str) -> None:
    with stores.fresh() as kv:
        try:
            kv.set(text, 1)
        except InvalidKeyError:
            assert kv.list().keys == []
        else:
            assert kv.list().keys == [text]
            assert 1 <= len(text) <= 256


@pytest.mark.parametrize("prefix", ["a%", "a*", "a b", "ü", "x" * 257])
def test_invalid_prefixes_are_rejected(kv: KVStore, prefix: str) -> None:
    with pytest.raises(InvalidKeyError):
        kv.list(prefix)


VALID_NAMESPACES = ["user", "event", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "a", "n" * 64, "with-dash_and_under"]
INVALID_NAMESPACES = ["", "n" * 65, "has space", "slash/ns", "dot.ns", "ünï", "ns%"]


@pytest.mark.parametrize("name", VALID_NAMESPACES)
def test_valid_namespaces(kv: KVStore, name: str) -> None:
    ns = kv.namespace(name)
    assert ns.name == name
    assert ns.set("k", name).committed
    entry = ns.get("k")
    assert entry is not None
    assert entry.value == name


@pytest.mark.parametrize("name", [*INVALID_NAMESPACES, 7, None, b"user"])
def test_invalid_namespaces(kv: KVStore, name: object) -> None:
    with pytest.raises(InvalidNamespaceError):
        kv.namespace(name)  # type: ignore[arg-type]


def _by_the_rules(key: str) -> bool:
    """The key rules spelled out one by one, independently of kvstore's regular expressions."""
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    segments = key.split("/")
    return (
        1 <= len(key) <= 256
        and all(segment and set(segment) <= allowed for segment in segments)
        and not any(segment in (".", "..") for segment in segments)
    )


def _assert_check_key_follows_the_rules(text: str) -> None:
    from kvstore._validation import check_key

    try:
        check_key(text)
    except InvalidKeyError:
        assert not _by_the_rules(text)
    else:
        assert _by_the_rules(text)


_KEYISH = st.text(alphabet=st.sampled_from("ab./-_\n\x00ü"), max_size=12) | st.text(max_size=300)


@given(_KEYISH)
def test_the_fast_key_check_agrees_with_the_rules(text: str) -> None:
    from kvstore._validation import _VALID_KEY

    fast = len(text) <= 256 and _VALID_KEY(text) is not None
    assert fast == _by_the_rules(text)
    _assert_check_key_follows_the_rules(text)


@pytest.mark.parametrize("key", VALID_KEYS + [k for k in INVALID_KEYS if isinstance(k, str)])
def test_the_fast_key_check_on_the_edge_cases(key: str) -> None:
    from kvstore._validation import _VALID_KEY

    assert (len(key) <= 256 and _VALID_KEY(key) is not None) == (key in VALID_KEYS)


@given(st.lists(_KEYISH, max_size=20))
def test_the_cache_of_valid_keys_holds_only_valid_keys(texts: list[str]) -> None:
    """check_key answers the same the second time (from its cache of valid keys) as the first."""
    from kvstore._validation import _VALID_KEYS

    for text in texts * 2:
        _assert_check_key_follows_the_rules(text)
    assert all(_by_the_rules(key) for key in _VALID_KEYS)


def test_the_cache_of_valid_keys_is_bounded_and_skips_str_subclasses() -> None:
    from kvstore._validation import _VALID_KEYS, _VALID_KEYS_MAX, check_key

    class Key(str):
        pass

    with pytest.raises(InvalidKeyError, match="must be a str"):
        check_key(Key("subclassed"))
    assert "subclassed" not in _VALID_KEYS
    for i in range(_VALID_KEYS_MAX + 10):
        check_key(f"bound/{i}")
    assert 0 < len(_VALID_KEYS) <= _VALID_KEYS_MAX
    assert f"bound/{_VALID_KEYS_MAX + 9}" in _VALID_KEYS
