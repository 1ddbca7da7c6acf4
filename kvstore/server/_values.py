"""How values cross HTTP: JSON as is, bytes as base64 with ``"encoding": "base64"`` beside the value.

A request with ``"encoding": "base64"`` stores the decoded bytes, byte for byte; a response carries a
bytes value base64-encoded with the same marker, so a value read back can be written back unchanged.
JSON has no NaN or Infinity and no bytes inside a list or dict: a request cannot make them (kvstore refuses
NaN and the infinities in every value, as in metadata), and values stored with them before, or by another
program, read back with such floats as null and such bytes as base64 strings.
"""

from __future__ import annotations

import base64
from typing import Any, Final

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


# What ``_jsonable`` changes or looks into. A list or dict holding none of these is shared, not copied: its types
# are looked at in C, where copying it called ``_jsonable`` on every member. Under callgrind: 1,840 instructions
# a member of a 200,000-int list before, 250 now; 8,370 a two-member dict of a 50,000-dict list before, 3,200
# now (wall, loaded machine: 1.9 s before, 0.35 s now, for an 8,000,000-int list).
_LOOKED_INTO: Final = frozenset((bytes, list, dict))


def _jsonable(value: Value) -> Any:
    if type(value) is bytes:
        return base64.b64encode(value).decode("ascii")
    if type(value) is list:
        if _LOOKED_INTO.isdisjoint(map(type, value)):
            return value
        return [_jsonable(item) for item in value]
    if type(value) is dict:
        if _LOOKED_INTO.isdisjoint(map(type, value.values())):
            return value
        return {name: _jsonable(item) for name, item in value.items()}
    return value


def to_response(value: Value) -> tuple[Any, Encoding]:
    """A stored value as a response's ``value`` and ``encoding``."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii"), "base64"
    return _jsonable(value), "json"
