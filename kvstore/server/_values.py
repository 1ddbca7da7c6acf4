"""How values cross HTTP: JSON as is, bytes as base64 with ``"encoding": "base64"`` beside the value.

A request with ``"encoding": "base64"`` stores the decoded bytes, byte for byte; a response carries a
bytes value base64-encoded with the same marker, so a value read back can be written back unchanged.
JSON has no NaN or Infinity and no bytes inside a list or dict: a request cannot make them (kvstore refuses
NaN and the infinities in every value, as in metadata), and values stored with them before, or by another
program, read back with such floats as null and such bytes as base64 strings.
"""

from __future__ import annotations

import base64
from typing import Any

from kvstore import InvalidValueError, Value

from ._models import Encoding


def from_request(value: Any, encoding: Encoding) -> Any:
    """The value to store for a request's ``value`` and ``encoding`` (a JSON value as it is: ``set`` checks it)."""
    if encoding == "base64":
        if not isinstance(value, str):
            raise InvalidValueError('with "encoding": "base64" the value must be a base64 string')
        try:
            return base64.b64decode(value, validate=True)
        except ValueError as exc:  # binascii.Error, or a str that is not ASCII
            raise InvalidValueError(f"the value is not valid base64: {exc}") from exc
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
