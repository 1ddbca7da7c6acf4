"""Values, content types, sizes and metadata: what is stored, and what is refused before any write."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore import (
    JSON,
    InvalidContentTypeError,
    InvalidMetadataError,
    InvalidValueError,
    KVStore,
    NotADatabaseError,
    Value,
    ValueTooLargeError,
)
from kvstore._codec import (
    _INSTANTS,
    DEFAULT_MAX_VALUE_SIZE,
    MAX_DEPTH,
    decode_value,
    decode_values,
    encode_value,
    from_epoch_us,
    instants_of,
)

from .conftest import Stores

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)  # NaN and the infinities are refused: JSON has none
SCALARS = st.none() | st.booleans() | INT64 | FLOATS | st.text() | st.binary()
VALUES: st.SearchStrategy[Value] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _same(a: object, b: object) -> bool:
    """Equal and of the same types all the way down (True == 1 would hide a bool turned int)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)  # NaN, read back as stored before kvstore refused it
    return a == b


@given(VALUES)
def test_values_round_trip_with_their_types(stores: Stores, value: Value) -> None:
    with stores.open() as kv:
        result = kv.set("k", value)
        entry = kv.get("k")
        assert entry is not None
        assert _same(entry.value, value)
        assert entry.size_bytes == result.size_bytes == len(msgpack.packb(value, use_bin_type=True))


@pytest.mark.parametrize("value", [math.inf, [-math.inf], {"n": [math.nan]}], ids=repr)
def test_nan_and_infinities_are_refused(kv: KVStore, value: Value) -> None:
    """JSON has no such numbers, nor has the HTTP API: refused as metadata refuses them (more in
    test_hostile_values.py)."""
    with pytest.raises(InvalidValueError, match="JSON has no such number"):
        kv.set("k", value)
    assert kv.get("k") is None


def test_bytes_and_str_stay_apart(kv: KVStore) -> None:
    kv.set("b", b"abc")
    kv.set("s", "abc")
    b, s = kv.get_many(["b", "s"])
    assert b is not None
    assert s is not None
    assert b.value == b"abc"
    assert type(b.value) is bytes
    assert s.value == "abc"
    assert type(s.value) is str


@pytest.mark.parametrize(
    ("value", "content_type"),
    [
        (b"\x00\x01", "application/octet-stream"),
        ("text", "text/plain; charset=utf-8"),
        ({"a": 1}, "application/json"),
        ([1, 2], "application/json"),
        (None, "application/json"),
        (3, "application/json"),
        (1.5, "application/json"),
        (True, "application/json"),
    ],
)
def test_default_content_types(kv: KVStore, value: Value, content_type: str) -> None:
    assert kv.set("k", value).content_type == content_type
    entry = kv.get("k")
    assert entry is not None
    assert entry.content_type == content_type


@pytest.mark.parametrize(
    "content_type",
    ["image/png", "application/vnd.api+json", "text/csv; charset=utf-8", 'text/plain; format="flowed"', "a/b"],
)
def test_given_content_type_is_kept(kv: KVStore, content_type: str) -> None:
    assert kv.set("k", b"data", content_type=content_type).content_type == content_type
    entry = kv.get("k")
    assert entry is not None
    assert entry.content_type == content_type


@pytest.mark.parametrize(
    "content_type",
    ["", "png", "image/", "/png", "image png", "image/png/x", "text/plain; charset", "é/x", "a/" + "b" * 300],
)
def test_malformed_content_types_are_rejected(kv: KVStore, content_type: str) -> None:
    with pytest.raises(InvalidContentTypeError):
        kv.set("k", b"data", content_type=content_type)
    assert kv.get("k") is None


class _Custom:
    pass


@pytest.mark.parametrize(
    "value",
    [
        {1, 2},
        datetime(2026, 1, 1, tzinfo=UTC),
        _Custom(),
        Decimal("1.5"),
        2**63,
        -(2**63) - 1,
        {1: "int key"},
        {"nested": {(1, 2): "tuple key"}},
        (1, 2),
        bytearray(b"x"),
        [1, [2, [object()]]],
        {"deep": [{"set": {3}}]},
    ],
    ids=repr,
)
def test_unsupported_values_are_rejected_and_nothing_is_written(kv: KVStore, value: Any) -> None:
    kv.set("k", "before")
    with pytest.raises(InvalidValueError):
        kv.set("k", value)
    entry = kv.get("k")
    assert entry is not None
    assert entry.value == "before"


def test_int_range_edges(kv: KVStore) -> None:
    for edge in (2**63 - 1, -(2**63)):
        kv.set("k", edge)
        entry = kv.get("k")
        assert entry is not None
        assert entry.value == edge


def test_self_referencing_values_are_rejected(kv: KVStore) -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(InvalidValueError, match="nested"):
        kv.set("k", loop)


def test_value_size_limit_is_configurable_and_exact(stores: Stores) -> None:
    with stores.open(max_value_size=100) as kv:
        at_limit = b"x" * (100 - len(msgpack.packb(b"x" * 97)) + 97)
        assert len(msgpack.packb(at_limit)) == 100
        assert kv.set("k", at_limit).size_bytes == 100
        with pytest.raises(ValueTooLargeError, match="100"):
            kv.set("k", at_limit + b"y")
        entry = kv.get("k")
        assert entry is not None
        assert entry.value == at_limit


def test_default_value_limit_is_16_mib(stores: Stores) -> None:
    with stores.open() as kv:
        with pytest.raises(ValueTooLargeError):
            kv.set("k", b"x" * (16 * 1024 * 1024))
        assert kv.set("k", b"x" * (16 * 1024 * 1024 - 5)).size_bytes == 16 * 1024 * 1024


def test_metadata_round_trips(kv: KVStore) -> None:
    meta: dict[str, JSON] = {"schema": "v1", "tags": ["a", "b"], "n": 1, "f": 0.5, "ok": True, "none": None}
    kv.set("k", 1, metadata=meta)
    entry = kv.get("k")
    assert entry is not None
    assert entry.metadata == meta
    kv.set("plain", 1)
    plain = kv.get("plain")
    assert plain is not None
    assert plain.metadata == {}


@pytest.mark.parametrize(
    "metadata",
    [[1, 2], "text", {1: "int key"}, {"f": math.nan}, {"f": math.inf}, {"b": b"bytes"}, {"d": {"s": {1}}}],
    ids=repr,
)
def test_metadata_must_be_a_json_compatible_dict(kv: KVStore, metadata: object) -> None:
    with pytest.raises(InvalidMetadataError):
        kv.set("k", 1, metadata=metadata)  # type: ignore[arg-type]
    assert kv.get("k") is None


def test_metadata_limit_edges(stores: Stores) -> None:
    with stores.open() as kv:
        # {"m":"..."} is 8 bytes of JSON around the string.
        kv.set("k", 1, metadata={"m": "x" * (1024 - 8)})
        with pytest.raises(ValueTooLargeError, match="1024"):
            kv.set("k", 2, metadata={"m": "x" * (1024 - 7)})
        entry = kv.get("k")
        assert entry is not None
        assert entry.value == 1
    with stores.open(max_metadata_size=16) as kv:
        with pytest.raises(ValueTooLargeError):
            kv.set("k", 1, metadata={"m": "x" * 9})
        assert kv.set("k", 1, metadata={"m": "x" * 8}).ok


def test_metadata_limit_counts_utf8_bytes(stores: Stores) -> None:
    with stores.open(max_metadata_size=16) as kv, pytest.raises(ValueTooLargeError):
        kv.set("k", 1, metadata={"m": "é" * 5})  # 8 bytes of JSON + 10 bytes of UTF-8


@pytest.mark.parametrize("value", ["\ud800", {"k": "\udc00"}, {"\ud800": 1}, ["ok", ["\udfff"]]], ids=repr)
def test_strings_with_lone_surrogates_are_invalid_values(kv: KVStore, value: Any) -> None:
    with pytest.raises(InvalidValueError, match="Unicode"):
        kv.set("k", value)
    assert kv.get("k") is None


def test_metadata_with_lone_surrogates_is_invalid(kv: KVStore) -> None:
    with pytest.raises(InvalidMetadataError, match="Unicode"):
        kv.set("k", 1, metadata={"m": "\ud800"})
    assert kv.get("k") is None


@pytest.mark.parametrize("content_type", ['text/plain; x="\ud800"', 'text/plain; x="é"', 'text/plain; x="a\\"b"'])
def test_content_type_parameters_are_ascii(kv: KVStore, content_type: str) -> None:
    with pytest.raises(InvalidContentTypeError):
        kv.set("k", 1, content_type=content_type)


def test_an_entry_read_back_can_be_written_again_as_is(kv: KVStore) -> None:
    """Typed end to end: mypy --strict checks this call, so metadata's type must accept what get returns."""
    kv.set("a", {"n": [1, 2]}, metadata={"tags": ["x"]}, content_type="application/vnd.x+json")
    entry = kv.get("a")
    assert entry is not None
    kv.set("b", entry.value, metadata=entry.metadata, content_type=entry.content_type)
    copy = kv.get("b")
    assert copy is not None
    assert (copy.value, copy.metadata, copy.content_type) == (entry.value, entry.metadata, entry.content_type)


# -- decoding: a stored value kvstore could not have written is refused, however it is built -----------

# Everything msgpack can encode without ext types, including what kvstore never writes: bytes map keys,
# ints past the signed 64-bit range, nesting of any depth (up to msgpack's own limit).
_ANY_SCALARS = (
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.floats() | st.text()
    | st.binary()
)  # fmt: skip
_ANY_DATA = st.recursive(
    _ANY_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4) | st.binary(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


def _nested(depth: int, leaf: object) -> object:
    for index in range(depth):
        leaf = [leaf] if index % 2 else {"k": leaf}
    return leaf


def _refused_on_write(value: object) -> bool:
    try:
        encode_value(value, DEFAULT_MAX_VALUE_SIZE)
    except InvalidValueError as exc:
        # NaN and the infinities alone: refused on write since JSON has none, but read back as stored before.
        return "JSON has no such number" not in str(exc)
    return False


@given(_ANY_DATA | st.builds(_nested, st.integers(min_value=55, max_value=70), _ANY_DATA))
def test_a_value_reads_back_exactly_when_set_would_take_it(value: object) -> None:
    """Reading and writing agree on what a value may be, whichever way the read decides it."""
    data = msgpack.packb(value, use_bin_type=True)
    if _refused_on_write(value):
        with pytest.raises(NotADatabaseError):
            decode_value(data)
    else:
        assert _same(decode_value(data), value)


@pytest.mark.parametrize(
    "value",
    [
        {b"k": 1},
        [1.5, {"a": [{b"": None}]}],
        2**63,
        [2**64 - 1],
        {"n": [2**63]},
        _nested(MAX_DEPTH + 1, 1),
        _nested(MAX_DEPTH + 1, "x" * 5000),  # too long to scan: walked
        [msgpack.Timestamp(1, 0)],
        msgpack.ExtType(5, b""),
    ],
    ids=repr,
)
def test_stored_values_kvstore_would_not_write_are_refused(value: object) -> None:
    with pytest.raises(NotADatabaseError):
        decode_value(msgpack.packb(value, use_bin_type=True))


@pytest.mark.parametrize(
    "data",
    [
        b"\x81\xa1t\xd7\xff" + bytes(8),  # {"t": <timestamp>}, as fixext 8 of type -1
        b"\x91\xc7\x00\xff",  # [<timestamp of no bytes>]
        b"\x91\xc7\x00\x05",  # [<ext type 5 of no bytes>]
        b"\x92\x01",  # truncated
        b"\x91\x01\x01",  # trailing bytes
        b"\x81\x01\x02",  # an int map key
    ],
    ids=repr,
)
def test_malformed_stored_values_are_refused(data: bytes) -> None:
    with pytest.raises(NotADatabaseError):
        decode_value(data)


@pytest.mark.parametrize(
    "value",
    [
        _nested(MAX_DEPTH, 1),
        {"price": 19.99, "tags": ["a"]},
        ["\u00e9" * 100, {"\u4e2d": "\u6587" * 50}],  # UTF-8 bytes that look like container headers
        [b"\xcf\xc4\x80" * 30, 2**63 - 1, -(2**63)],
        {"big": "x" * 5000, "n": [1, 2, 3]},
    ],
    ids=lambda value: repr(value)[:40],
)
def test_stored_values_kvstore_would_write_are_read(value: object) -> None:
    assert _same(decode_value(msgpack.packb(value, use_bin_type=True)), value)


def _decoded_one_at_a_time(blobs: list[bytes]) -> list[object] | None:
    """decode_value of each blob, or None if any is refused."""
    try:
        return [decode_value(data) for data in blobs]
    except NotADatabaseError:
        return None


# Blobs a listing may read: values kvstore writes and values it refuses, some holding the byte the batch
# scan separates values with (0xc1, in a float or a bin: 5825.0 is cb 40 b6 c1 ...), some too long to scan.
_BLOBS = st.lists(
    (_ANY_DATA | st.builds(_nested, st.integers(min_value=55, max_value=70), _ANY_DATA)).map(
        lambda value: msgpack.packb(value, use_bin_type=True)
    )
    | st.sampled_from([msgpack.packb(5825.0), msgpack.packb([b"\xc1" * 3]), msgpack.packb(["x" * 5000])])
    | st.binary(max_size=12),
    max_size=8,
)


@given(_BLOBS)
def test_values_decoded_together_are_what_each_decodes_to(blobs: list[bytes]) -> None:
    """Rows decoded in one scan give what decoding them one at a time gives, refusals included."""
    expected = _decoded_one_at_a_time(blobs)
    if expected is None:
        with pytest.raises(NotADatabaseError):
            decode_values(blobs)
    else:
        decoded = decode_values(blobs)
        assert len(decoded) == len(expected)
        assert all(_same(got, want) for got, want in zip(decoded, expected, strict=True))


@pytest.mark.parametrize(
    "bad",
    [
        _nested(MAX_DEPTH + 1, 1),  # deep, next to shallow values
        _nested(33, [5825.0, _nested(33, 1)]),  # deep, its headers parted by a 0xc1 in the float
        [1.5, {b"k": 1}],  # a bytes map key
        [5825.0, 2**63],  # a uint64 past INT_MAX in a value that also holds 0xc1
        msgpack.ExtType(5, b""),
    ],
    ids=repr,
)
def test_one_value_kvstore_would_not_write_fails_the_whole_read(bad: object) -> None:
    blobs = [msgpack.packb({"n": index, "f": 5825.0}) for index in range(5)]
    blobs.insert(3, msgpack.packb(bad, use_bin_type=True))
    with pytest.raises(NotADatabaseError):
        decode_values(blobs)


def test_a_str_where_a_blob_belongs_is_refused_among_many() -> None:
    with pytest.raises(NotADatabaseError):
        decode_values([msgpack.packb(1), "not a blob", msgpack.packb(2)])  # type: ignore[list-item]


# -- instants: stored microseconds become datetimes exactly ----------------------------------------------

_MIN_US = -62_135_596_800_000_000  # 0001-01-01
_MAX_US = 253_402_300_799_999_999  # 9999-12-31 23:59:59.999999


_MICROSECONDS = (
    st.integers(min_value=_MIN_US, max_value=_MAX_US)
    | st.integers(min_value=0, max_value=2**52)
    | st.sampled_from([0, 1, 999_999, 1_000_000, 2**51 - 1, 2**51, 2**51 + 1, 1_796_053_493_673_810])
)


def _instant(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


@given(_MICROSECONDS)
def test_an_instant_is_exactly_its_microseconds(us: int) -> None:
    """The fast path (a float of seconds, below 2**51 µs) and the exact one agree to the microsecond."""
    _INSTANTS.pop(us, None)  # build it, not recall it
    moment = from_epoch_us(us)
    assert moment == _instant(us)
    assert moment.tzinfo is UTC
    assert from_epoch_us(us) is moment  # recalled now


@given(st.lists(_MICROSECONDS, max_size=20), st.lists(_MICROSECONDS, max_size=5))
def test_instants_built_together_are_each_exact(times: list[int], recalled: list[int]) -> None:
    """A listing's times, some recalled and some new, convert as one at a time would."""
    for us in times:
        _INSTANTS.pop(us, None)
    for us in recalled:
        from_epoch_us(us)
    mixed = times + recalled
    moments = instants_of(mixed)
    assert moments == [_instant(us) for us in mixed]
    assert all(moment.tzinfo is UTC for moment in moments)
