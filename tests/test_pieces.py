"""msgpack in pieces (``kvstore._pieces``) is msgpack at once: the same bytes packed, the same values (and
the same refusals) unpacked. The piece sizes are shrunk here so that small values take the piecewise path."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore import NotADatabaseError, ValidationError, _codec, _pieces

_OPTIONS: dict[str, Any] = {"raw": False, "strict_map_key": True, "max_ext_len": 0}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=40) | st.dictionaries(st.text(max_size=8), inner, max_size=40),
    max_leaves=120,
)


# A value example costs about 50 ms (nested values, packed several ways): at most 100 of them per property.
_VALUES = settings(max_examples=min(100, settings().max_examples))


def packb(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True, strict_types=True)


@pytest.fixture(autouse=True)
def tiny_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_pieces, "PIECE_MEMBERS", 3)
    monkeypatch.setattr(_codec, "PIECE_MEMBERS", 3)
    monkeypatch.setattr(_pieces, "PIECE_BYTES", 5)
    monkeypatch.setattr(_codec, "_PIECEWISE_FROM", 16)


@_VALUES
@given(values)
def test_packing_in_pieces_gives_the_bytes_of_packing_at_once(value: Any) -> None:
    assert _pieces.pack(value, packb) == packb(value)


@_VALUES
@given(values)
def test_unpacking_in_pieces_gives_the_value_of_unpacking_at_once(value: Any) -> None:
    data = packb(value)
    # Packed again, so that types count too: 1, 1.0 and True are equal, but not the same bytes.
    assert packb(_pieces.unpack(data, **_OPTIONS)) == packb(msgpack.unpackb(data, **_OPTIONS)) == data


@_VALUES
@given(values)
def test_the_codec_round_trips_large_values_through_the_pieces(value: Any) -> None:
    data = _codec.encode_value(value, 1 << 20)
    assert data == packb(value)
    assert packb(_codec.decode_value(data)) == data


# Values the store refuses, among ones it takes: each refusal must be the same, found in pieces or at once.
refused = st.sampled_from([(1, 2), {1}, 2**64, float("nan"), b"\x00", object()])
maybe_bad = st.recursive(
    scalars | refused,
    lambda inner: (
        st.lists(inner, max_size=12) | st.dictionaries(st.text(max_size=4) | st.integers(0, 3), inner, max_size=12)
    ),
    max_leaves=40,
)


def _checked(value: Any) -> tuple[str, str]:
    try:
        _codec._check(value, 0, _codec._VALUE_RULES)
    except ValidationError as exc:
        return type(exc).__name__, str(exc)
    return "ok", ""


@_VALUES
@given(maybe_bad)
def test_checking_in_pieces_refuses_what_checking_at_once_refuses(value: Any) -> None:
    in_pieces = _checked(value)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_codec, "PIECE_MEMBERS", 1 << 30)
        assert _checked(value) == in_pieces


def _outcome(unpack: Any, data: bytes) -> tuple[str, bytes | None]:
    try:
        return "value", packb(unpack(data))
    except (ValueError, TypeError, RecursionError):  # msgpack's refusals (its errors are ValueErrors)
        return "refused", None


@given(st.binary(max_size=64))
def test_unpacking_in_pieces_refuses_what_unpacking_at_once_refuses(data: bytes) -> None:
    at_once = _outcome(lambda blob: msgpack.unpackb(blob, **_OPTIONS), data)
    assert _outcome(lambda blob: _pieces.unpack(blob, **_OPTIONS), data) == at_once


@pytest.mark.parametrize("data", [packb(list(range(40)))[:-3], packb(list(range(40))) + b"\x01", b"\xc1" * 20])
def test_truncated_extended_or_invalid_data_is_a_corrupt_value_either_way(data: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - msgpack's errors are ValueErrors of several kinds
        _pieces.unpack(data, **_OPTIONS)
    with pytest.raises(NotADatabaseError):
        _codec.decode_value(data)
