"""How values cross HTTP: JSON as is, bytes as base64 with ``"encoding": "base64"`` beside the value.

A request with ``"encoding": "base64"`` stores the decoded bytes, byte for byte; a response carries a
bytes value base64-encoded with the same marker, so a value read back can be written back unchanged.
JSON has no NaN or Infinity and no bytes inside a list or dict: a request cannot make them, and values
that Python code stored with them read back with such floats as null and such bytes as base64 strings.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from kvstore import InvalidValueError, Value

from ._models import Encoding

_MAX_DEPTH = 80  # past kvstore's own nesting limit, which then refuses the value


def _check_finite(value: Any, depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidValueError(f"JSON numbers must be finite, got {value!r}")
    if isinstance(value, list):
        for item in value:
            _check_finite(item, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _check_finite(item, depth + 1)


def from_request(value: Any, encoding: Encoding) -> Any:
    """The value to store for a request's ``value`` and ``encoding``."""
    if encoding == "base64":
        if not isinstance(value, str):
            raise InvalidValueError('with "encoding": "base64" the value must be a base64 string')
        try:
            return base64.b64decode(value, validate=True)
        except ValueError as exc:  # binascii.Error, or a str that is not ASCII
            raise InvalidValueError(f"the value is not valid base64: {exc}") from exc
    _check_finite(value)
    return value


def _jsonable(value: Value) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {name: _jsonable(item) for name, item in value.items()}
    return value


def to_response(value: Value) -> tuple[Any, Encoding]:
    """A stored value as a response's ``value`` and ``encoding``."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii"), "base64"
    return _jsonable(value), "json"
