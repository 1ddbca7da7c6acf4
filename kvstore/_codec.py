"""Encoding of what kvstore stores: values (msgpack), metadata (JSON), versionstamps and instants.

Values are msgpack, never pickle: decoding a database written by someone else yields plain data and
cannot run code. Only the types listed in ``Value`` are accepted, checked by exact type so that every
value reads back equal to, and of the same type as, what was written.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import truediv
from typing import Any, Final, NamedTuple, TypeAlias, cast

import msgpack

from ._errors import (
    InvalidMetadataError,
    InvalidValueError,
    NotADatabaseError,
    ValidationError,
    ValueTooLargeError,
)
from ._pieces import PIECE_BYTES, PIECE_MEMBERS, item_slices, pack, slices, unpack
from ._shown import shown

# The members of a list or mapping are Any, not Value: list and dict are invariant, so list["Value"] would
# refuse a list[str] or a dict[str, int] the store takes, and dict would refuse a TypedDict. What a
# container holds, and that a mapping is a dict, are checked when the value is written.
Value: TypeAlias = bool | int | float | str | bytes | list[Any] | Mapping[str, Any] | None
"""What ``set`` accepts: JSON-like data plus bytes, kept apart from str (a tuple or a set is refused)."""

JSON: TypeAlias = bool | int | float | str | list["JSON"] | dict[str, "JSON"] | None

MAX_DEPTH: Final = 64
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1
DEFAULT_MAX_VALUE_SIZE: Final = 16 * 1024 * 1024
DEFAULT_MAX_METADATA_SIZE: Final = 1024

CONTENT_TYPE_BINARY: Final = "application/octet-stream"
CONTENT_TYPE_TEXT: Final = "text/plain; charset=utf-8"
CONTENT_TYPE_JSON: Final = "application/json"

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class _Rules(NamedTuple):
    """What one kind of stored data may hold: its scalar types, and the error that refuses the rest."""

    what: str
    scalars: frozenset[type]
    error: type[ValidationError]
    allowed: str


_VALUE_RULES: Final = _Rules(
    "value", frozenset({type(None), bool, float, str, bytes}), InvalidValueError,
    "values are None, bool, int, float, str, bytes, list or dict",
)  # fmt: skip
# A value holds finite floats only, as metadata does: NaN and the infinities are no JSON and cannot cross the
# HTTP API. _VALUE_RULES take any float, so that what was stored before (or by another program) still reads
# back; a value being written is walked again by these rules only if its encoding may hold such a float.
_FINITE_RULES: Final = _VALUE_RULES._replace(scalars=_VALUE_RULES.scalars - {float})
# Metadata is JSON: no bytes, and floats only when finite (checked in _check).
_METADATA_RULES: Final = _Rules(
    "metadata", frozenset({type(None), bool, str}), InvalidMetadataError, "metadata must be JSON-compatible"
)


def _check(value: object, depth: int, rules: _Rules) -> bool:
    """Refuse what ``rules`` refuse in ``value``; True if it holds a large container (``_pieces``), which is
    then checked a piece at a time, letting other threads run between the pieces."""
    kind = type(value)
    if kind in rules.scalars:
        return False
    if kind is int:
        if not INT_MIN <= value <= INT_MAX:  # type: ignore[operator]
            raise rules.error(f"int {shown(value)} in the {rules.what} is outside the signed 64-bit range")
        return False
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise rules.error(f"the {rules.what} cannot hold {value!r}: JSON has no such number")
        return False
    if depth >= MAX_DEPTH:
        raise rules.error(f"the {rules.what} is nested deeper than {MAX_DEPTH} levels")
    # Scalar members, in-range ints and finite floats are accepted inline, without a call each: every value
    # read or written goes through here, and most members of a container are leaves. ``x - x == 0.0`` holds
    # for a finite float only (NaN and the infinities give NaN); under _VALUE_RULES a float is a scalar.
    scalars = rules.scalars
    large = False
    if kind is list:
        if len(value) > PIECE_MEMBERS:  # type: ignore[arg-type]
            return _check_in_pieces(value, depth, rules)
        for item in value:  # type: ignore[attr-defined]
            item_kind = type(item)
            if item_kind not in scalars and not (
                (item_kind is int and INT_MIN <= item <= INT_MAX) or (item_kind is float and item - item == 0.0)
            ):
                large = _check(item, depth + 1, rules) or large
        return large
    if kind is dict:
        if len(value) > PIECE_MEMBERS:  # type: ignore[arg-type]
            return _check_in_pieces(value, depth, rules)
        for name, item in value.items():  # type: ignore[attr-defined]
            if type(name) is not str:
                raise rules.error(f"dict keys in the {rules.what} must be str, not {type(name).__name__}")
            item_kind = type(item)
            if item_kind not in scalars and not (
                (item_kind is int and INT_MIN <= item <= INT_MAX) or (item_kind is float and item - item == 0.0)
            ):
                large = _check(item, depth + 1, rules) or large
        return large
    raise rules.error(f"the {rules.what} cannot hold a {kind.__name__}: {rules.allowed}")


def _check_in_pieces(value: object, depth: int, rules: _Rules) -> bool:
    """``_check`` of a list or dict of more than ``_pieces.PIECE_MEMBERS`` members, a piece at a time."""
    scalars = rules.scalars
    if type(value) is list:
        for piece in slices(value):
            for item in piece:
                item_kind = type(item)
                if item_kind not in scalars and not (
                    (item_kind is int and INT_MIN <= item <= INT_MAX) or (item_kind is float and item - item == 0.0)
                ):
                    _check(item, depth + 1, rules)
        return True
    for pairs in item_slices(value):  # type: ignore[arg-type]
        for name, item in pairs:
            if type(name) is not str:
                raise rules.error(f"dict keys in the {rules.what} must be str, not {type(name).__name__}")
            item_kind = type(item)
            if item_kind not in scalars and not (
                (item_kind is int and INT_MIN <= item <= INT_MAX) or (item_kind is float and item - item == 0.0)
            ):
                _check(item, depth + 1, rules)
    return True


# msgpack writes every float as 0xcb and 8 big-endian bytes, and a NaN or an infinity has all 11 exponent bits
# set: a value being written is walked for them (by _FINITE_RULES) only if its encoding holds that pattern. A
# str or bytes holds no float; other bytes may look like one, and such a value is walked, never refused unseen.
# Paired timings (a loaded 2-core machine): 100k sets of a small dict without floats 22.7 and 22.9 us each,
# within noise (one memchr, b"\xcb" in data); encode_value of a dict of 5 floats 2.1 -> 2.8 us, of 1,000
# floats +13 us for the scan, where walking every float again, as metadata is walked, cost +50 us.
_NOT_FINITE: Final = re.compile(rb"\xcb[\x7f\xff][\xf0-\xff]").search


def encode_value(value: object, max_size: int) -> bytes:
    """Check ``value`` and return its msgpack encoding, at most ``max_size`` bytes."""
    large = _check(value, 0, _VALUE_RULES)
    try:
        # A fresh packer per call: a shared msgpack.Packer is not safe across threads. A value holding a large
        # container is packed in pieces where it can be (``_pieces``), so that other threads run meanwhile.
        data = pack(value, _packb) if large else msgpack.packb(value, use_bin_type=True, strict_types=True)
    except UnicodeEncodeError as exc:
        raise InvalidValueError(f"a str in the value is not valid Unicode (lone surrogate): {exc}") from exc
    if b"\xcb" in data and type(value) is not bytes and type(value) is not str and _NOT_FINITE(data) is not None:
        _check(value, 0, _FINITE_RULES)  # a float NaN or infinite, or other bytes that look like one
    if len(data) > max_size:
        raise ValueTooLargeError(f"value encodes to {len(data)} bytes; the limit is {max_size}")
    return data


def _packb(value: object) -> bytes:
    return msgpack.packb(value, use_bin_type=True, strict_types=True)


def _no_ext(code: int, data: bytes) -> object:
    raise ValueError(f"msgpack ext type {code} is not a kvstore value")


# Decoding with str or bytes map keys only and no ext type at all (max_ext_len=0 refuses even the timestamp
# type, which never reaches ext_hook), msgpack returns nothing but Value's types, with three exceptions:
# a bytes map key, an int past INT_MAX and nesting past MAX_DEPTH. Each needs bytes of its own in the
# data: a bin header (0xc4-0xc6), a uint64 header (0xcf), or more container headers (0x80-0x9f, 0xdc-0xdf)
# than MAX_DEPTH. Finding none of them is a scan in C that costs half of walking the value in Python; bytes
# inside strings and numbers can look like headers too, and such a value is walked, never passed unseen.
_SUSPECT: Final = bytes([0xC4, 0xC5, 0xC6, 0xCF])
_HEADERS: Final = bytes([*range(0x80, 0xA0), 0xDC, 0xDD, 0xDE, 0xDF])
_SCAN_MAX: Final = 4096  # past this, walking beats scanning: a large value is mostly a few long members
_CONTAINERS: Final = (list, dict)
# A value of more than one piece is unpacked in pieces (``_pieces``): a piece of 64 KiB unpacks in 0.6 ms (ints)
# to 15 ms (65,536 empty lists, the worst case), where 256 KiB of those took 59 ms at once.
_PIECEWISE_FROM: Final = PIECE_BYTES
# A value's marks: its bytes translated to 2 (a suspect header) or 1 (a container header), every other
# byte deleted; its own 0xc1 bytes are kept too and count as headers, so they can only cause a walk. The
# value is walked if its marks hold a 2 or are more than MAX_DEPTH. Many values are scanned at once joined
# by 0xc1, a byte msgpack never uses as a type, and their marks split there into one piece per value; a
# value whose own bytes hold 0xc1 (in a number or a bin) makes a piece too many, and each value is then
# marked by itself.
_SEPARATOR: Final = b"\xc1"
_MARKS: Final = bytes(2 if b in _SUSPECT else 1 if b in _HEADERS else b for b in range(256))
_UNMARKED: Final = bytes(b for b in range(256) if b not in _SUSPECT and b not in _HEADERS and b != 0xC1)


def decode_value(data: bytes) -> Value:
    """Decode a stored value; str stays str and bytes stay bytes. A value kvstore could not have written
    (another program's row, a corrupt file) raises NotADatabaseError: only plain data ever comes back."""
    try:
        if type(data) is not bytes:
            raise TypeError(f"a {type(data).__name__} where a blob belongs")
        if len(data) < _PIECEWISE_FROM:
            result: Value = msgpack.unpackb(data, raw=False, strict_map_key=True, ext_hook=_no_ext, max_ext_len=0)
        else:
            result = unpack(data, raw=False, strict_map_key=True, ext_hook=_no_ext, max_ext_len=0)
        kind = type(result)
        if kind in _CONTAINERS:
            if len(data) > _SCAN_MAX:
                _check(result, 0, _VALUE_RULES)
            else:
                marks = data.translate(_MARKS, _UNMARKED)
                if 2 in marks or len(marks) > MAX_DEPTH:
                    _check(result, 0, _VALUE_RULES)
        elif kind is int:
            _check(result, 0, _VALUE_RULES)
    except (ValueError, TypeError, RecursionError, ValidationError) as exc:  # msgpack's errors are ValueErrors
        raise NotADatabaseError(f"a stored value is corrupt: {exc}") from exc
    return result


def decode_values(blobs: Sequence[bytes]) -> list[Value]:
    """``decode_value`` of each blob (a listing's or get_many's rows), with one scan of them all."""
    if len(blobs) < 2:
        return [decode_value(data) for data in blobs]
    unpackb = msgpack.unpackb
    try:
        joined = _SEPARATOR.join(blobs)  # a TypeError for a str (from an SQLite blob column)
        if len(joined) > (_SCAN_MAX + 1) * len(blobs):
            raise ValueError("large values: decode_value walks them")
        values: list[Value] = [
            unpackb(data, raw=False, strict_map_key=True, ext_hook=_no_ext, max_ext_len=0) for data in blobs
        ]
        marks = joined.translate(_MARKS, _UNMARKED)
        pieces = marks.split(_SEPARATOR)
        if 2 in marks or len(pieces) != len(blobs) or max(map(len, pieces)) > MAX_DEPTH:
            if len(pieces) != len(blobs):
                pieces = [data.translate(_MARKS, _UNMARKED) for data in blobs]
            for piece, value in zip(pieces, values, strict=True):
                if 2 in piece or len(piece) > MAX_DEPTH:
                    _check(value, 0, _VALUE_RULES)
    except (ValueError, TypeError, RecursionError, ValidationError):
        # One at a time, so the error names what is wrong (or large values are walked, not scanned).
        return [decode_value(data) for data in blobs]
    return values


def default_content_type(value: object) -> str:
    """The content type implied by a value's type."""
    kind = type(value)
    if kind is bytes:
        return CONTENT_TYPE_BINARY
    if kind is str:
        return CONTENT_TYPE_TEXT
    return CONTENT_TYPE_JSON


def encode_metadata(metadata: object, max_size: int) -> str | None:
    """Check ``metadata`` and return it as compact JSON (None when empty or absent)."""
    if metadata is None:
        return None
    if type(metadata) is not dict:
        raise InvalidMetadataError(f"metadata must be a dict, not {type(metadata).__name__}")
    _check(metadata, 0, _METADATA_RULES)
    if not metadata:
        return None
    text = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        size = len(text.encode())
    except UnicodeEncodeError as exc:
        raise InvalidMetadataError(f"a str in the metadata is not valid Unicode (lone surrogate): {exc}") from exc
    if size > max_size:
        raise ValueTooLargeError(f"metadata encodes to {size} bytes of JSON; the limit is {max_size}")
    return text


def decode_metadata(text: str | None) -> dict[str, JSON]:
    """Decode stored metadata; an entry without metadata has an empty dict."""
    if text is None:
        return {}
    try:
        result: dict[str, JSON] = json.loads(text)
        if type(result) is not dict:
            raise TypeError(f"a {type(result).__name__}, not an object")
        _check(result, 0, _METADATA_RULES)
    except (ValueError, TypeError, RecursionError, ValidationError) as exc:
        raise NotADatabaseError(f"stored metadata is corrupt: {exc}") from exc
    return result


# The ten bytes of a versionstamp: the commit counter (big-endian, so stamps sort as versions do) and a
# batch index of 0. Their .hex() is the fastest way to the stamp, twice as fast as "%016x0000" % version;
# hot paths inline it. Unsigned: a negative version (a row kvstore never wrote) is a struct.error, as a str or
# one past 2**64 is, so a read checks a version's type and range for nothing (a stored version is signed 64-bit).
stamp_bytes: Final = struct.Struct(">Qxx").pack


def format_versionstamp(version: int) -> str:
    """The 20-hex-digit versionstamp of a commit: 16 digits of commit counter, 4 of batch index."""
    return stamp_bytes(version).hex()


def parse_versionstamp(versionstamp: str) -> int:
    """The commit counter of a well-formed versionstamp; -1 if it can name no commit."""
    if not versionstamp.endswith("0000"):
        return -1
    return int(versionstamp[:16], 16)


# Recently built instants, by microsecond: datetimes are immutable, and entries read again and again (or
# written in one batch) share their times, so a hit saves building one. Cleared whole when full.
_INSTANTS: dict[int, datetime] = {}
_INSTANTS_MAX: Final = 4096


# Below 2**51 microseconds (the year 2041), us / 1e6 is within a quarter of a microsecond of the instant,
# and fromtimestamp rounds it back to the exact microsecond, a third faster than adding a timedelta.
_FLOAT_EXACT_US: Final = 2**51
_from_timestamp: Final = datetime.fromtimestamp


def from_epoch_us(us: int) -> datetime:
    """A UTC datetime from microseconds since the epoch, exactly."""
    moment = _INSTANTS.get(us)
    if moment is None:
        if type(us) is not int:  # a float or str from a row kvstore never wrote: on a miss only, which is rare
            raise TypeError(f"an instant is a whole number of microseconds, not a {type(us).__name__}")
        moment = _from_timestamp(us / 1e6, UTC) if 0 <= us < _FLOAT_EXACT_US else _EPOCH + timedelta(0, 0, us)
        if len(_INSTANTS) >= _INSTANTS_MAX:
            _INSTANTS.clear()
        _INSTANTS[us] = moment
    return moment


def instants_of(times: Sequence[int]) -> list[datetime]:
    """``from_epoch_us`` of each of ``times``: a listing's times, converted in C (``map``) when any is new."""
    found = list(map(_INSTANTS.get, times))
    if all(found):
        return cast("list[datetime]", found)
    if set(map(type, times)) != {int}:  # a row kvstore never wrote (see ``from_epoch_us``)
        raise TypeError("an instant is a whole number of microseconds")
    if min(times) < 0 or max(times) >= _FLOAT_EXACT_US:
        return list(map(from_epoch_us, times))
    moments = list(map(_from_timestamp, map(truediv, times, repeat(1e6)), repeat(UTC)))
    if len(times) <= _INSTANTS_MAX:  # a listing of everything at once must not keep all its instants
        if len(_INSTANTS) + len(times) > _INSTANTS_MAX:
            _INSTANTS.clear()
        _INSTANTS.update(zip(times, moments, strict=True))
    return moments
