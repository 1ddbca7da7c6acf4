"""The JSON Lines form of an entry, for export and import (pure).

One entry a line, a JSON object: ``namespace``, ``key``, ``value`` and its ``encoding``, ``metadata``,
``content_type``, ``created_at``, ``updated_at``, ``expires_at`` (ISO 8601 instants, UTC, to the
microsecond; ``expires_at`` null when the entry never expires), ``refresh_on_access``, ``ttl_us`` (the TTL
in microseconds the entry was written with, which a refresh on access extends it by) and ``versionstamp``
(the one it had; an import gives it a new one). The encoding says how ``value`` holds the stored value,
losslessly: ``json`` (the value itself), ``base64`` (bytes, the standard alphabet with padding, as over
HTTP), or ``msgpack`` (base64 of kvstore's msgpack encoding, for a value JSON cannot hold: bytes inside a
list or dict, NaN or an infinity). On import only ``key`` and ``value`` are required: the namespace
defaults to "default", the encoding to ``json``, the times to now, the content type to the value's.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from datetime import datetime
from typing import Any, Final, NoReturn

from ._backends.base import PutRow
from ._checksum import checksum, corrupt_whole, mismatch
from ._codec import (
    decode_metadata,
    decode_value,
    default_content_type,
    encode_metadata,
    encode_value,
    format_versionstamp,
    from_epoch_us,
)
from ._errors import InvalidTTLError, InvalidValueError, NotADatabaseError, ValidationError
from ._namespace import DEFAULT_NAMESPACE
from ._shown import shown
from ._validation import MAX_TTL_US, MIN_TTL_US, check_content_type, check_flag, check_key, check_namespace, to_epoch_us

FIELDS: Final = frozenset(
    {
        "namespace", "key", "value", "encoding", "metadata", "content_type", "created_at", "updated_at",
        "expires_at", "refresh_on_access", "ttl_us", "versionstamp",
    }
)  # fmt: skip
ENCODINGS: Final = ("json", "base64", "msgpack")


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _instant(us: int | None) -> str | None:
    return None if us is None else from_epoch_us(us).isoformat()


def line_of(row: PutRow) -> str:
    """The JSON line of a stored row (without its newline); a row that fails its checksum, or holds a column
    kvstore never writes, raises CorruptEntryError and is not exported."""
    namespace, key, blob, content_type, metadata, version, created_us, updated_us, expires_us, ttl_us, _, crc = row
    whole = (blob, version, metadata, content_type, created_us, updated_us, expires_us, ttl_us, crc)
    if (crc is not None and mismatch(blob, content_type, metadata, crc)) or type(content_type) is not str:
        raise corrupt_whole(key, whole)
    if (ttl_us is not None and type(ttl_us) is not int) or type(namespace) is not str or type(key) is not str:
        raise corrupt_whole(key, whole)
    try:
        return _line(row)
    except (TypeError, ValueError, OverflowError, struct.error, NotADatabaseError):
        raise corrupt_whole(key, whole) from None


def _line(row: PutRow) -> str:
    namespace, key, blob, content_type, metadata, version, created_us, updated_us, expires_us, ttl_us, refresh, _ = row
    value = decode_value(blob)
    record: dict[str, Any] = {
        "namespace": namespace,
        "key": key,
        "value": base64.b64encode(value).decode("ascii") if type(value) is bytes else value,
        "encoding": "base64" if type(value) is bytes else "json",
        "metadata": decode_metadata(metadata),
        "content_type": content_type,
        "created_at": _instant(created_us),
        "updated_at": _instant(updated_us),
        "expires_at": _instant(expires_us),
        "refresh_on_access": bool(refresh),  # an int on SQLite
        "ttl_us": ttl_us,
        "versionstamp": format_versionstamp(version),
    }
    try:
        return _dumps(record)
    except (TypeError, ValueError):  # bytes inside a list or dict, or a float JSON has no number for
        record["value"], record["encoding"] = base64.b64encode(blob).decode("ascii"), "msgpack"
        return _dumps(record)


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def row_of(line: str, now_us: int, max_value_size: int, max_metadata_size: int) -> PutRow | None:
    """The row a line describes, with version 0 (its commit draws one), or None if it expires by ``now_us``.

    Anything wrong raises a ValidationError (a subclass for a bad key, value, metadata...) saying what.
    """
    try:
        data = json.loads(line, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ValidationError(f"not a JSON object ({exc})") from exc
    if type(data) is not dict:
        raise ValidationError(f"a line is a JSON object, not {type(data).__name__}")
    unknown = data.keys() - FIELDS
    if unknown:
        raise ValidationError(f"unknown field {sorted(unknown)[0]!r}: the fields are {', '.join(sorted(FIELDS))}")
    if "key" not in data or "value" not in data:
        raise ValidationError("a line needs a key and a value")
    namespace = check_namespace(data.get("namespace", DEFAULT_NAMESPACE))
    key = check_key(data["key"])
    value = _value(data["value"], data.get("encoding", "json"))
    blob = encode_value(value, max_value_size)
    given_type = data.get("content_type")
    content_type = default_content_type(value) if given_type is None else check_content_type(given_type)
    metadata = encode_metadata(data.get("metadata"), max_metadata_size)
    created_us = _micros(data, "created_at", now_us)
    updated_us = _micros(data, "updated_at", created_us)
    expires_us = None if data.get("expires_at") is None else _micros(data, "expires_at", now_us)
    ttl_us = data.get("ttl_us")
    if ttl_us is not None and (type(ttl_us) is not int or not MIN_TTL_US <= ttl_us <= MAX_TTL_US):
        raise InvalidTTLError(f"ttl_us must be null or an int from {MIN_TTL_US} to {MAX_TTL_US}, got {shown(ttl_us)}")
    refresh = check_flag("refresh_on_access", data.get("refresh_on_access", False))
    if refresh and (ttl_us is None or expires_us is None):
        raise InvalidTTLError("refresh_on_access needs ttl_us and expires_at")
    if expires_us is not None and expires_us <= now_us:
        return None
    crc = checksum(blob, content_type, metadata)
    return namespace, key, blob, content_type, metadata, 0, created_us, updated_us, expires_us, ttl_us, refresh, crc


def _value(raw: object, encoding: object) -> object:
    if encoding == "json":
        return raw
    if encoding not in ENCODINGS:
        raise ValidationError(f"encoding must be one of {', '.join(ENCODINGS)}, got {shown(encoding)}")
    if type(raw) is not str:
        raise InvalidValueError(f"a {encoding} value is a base64 string, not {type(raw).__name__}")
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidValueError(f"the {encoding} value is not base64 ({exc})") from exc
    if encoding == "base64":
        return data
    try:
        return decode_value(data)
    except NotADatabaseError as exc:
        raise InvalidValueError(f"the msgpack value is not one kvstore stores ({exc.detail})") from exc


def _micros(data: dict[str, Any], field: str, default: int) -> int:
    """The instant ``data[field]`` (ISO 8601 with an offset) in epoch microseconds; ``default`` if absent."""
    raw = data.get(field)
    if raw is None:
        return default
    error = InvalidTTLError if field == "expires_at" else ValidationError
    if type(raw) is not str:
        raise error(f"{field} must be an ISO 8601 date and time, not {type(raw).__name__}")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise error(f"{field} is not an ISO 8601 date and time: {shown(raw)}") from exc
    if moment.utcoffset() is None:
        raise error(f"{field} must have an offset (a naive time names no instant): {shown(raw)}")
    us = to_epoch_us(moment)
    if us < 0:
        raise error(f"{field} is before 1970: {shown(raw)}")
    return us
