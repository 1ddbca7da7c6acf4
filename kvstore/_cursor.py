"""List cursors: opaque to callers, documented for operators.

A cursor is URL-safe base64 (no padding) of the compact JSON ``{"v":1,"p":PREFIX,"r":REVERSE,"k":LAST_KEY}``:
the last key returned, and the listing it belongs to. Paging resumes strictly after (or, in reverse,
before) that key, so entries written or deleted between pages never make the listing skip or repeat a key
that was there all along.
"""

from __future__ import annotations

import base64
import binascii
import json

from ._errors import InvalidCursorError, ValidationError
from ._validation import check_key

_VERSION = 1


def encode_cursor(prefix: str, reverse: bool, last_key: str) -> str:
    """The cursor that resumes a listing after ``last_key``."""
    text = json.dumps({"v": _VERSION, "p": prefix, "r": reverse, "k": last_key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: object, prefix: str, reverse: bool) -> str:
    """The last key named by ``cursor``, which must belong to a listing of ``prefix`` in this direction."""
    if type(cursor) is not str or not cursor or len(cursor) > 1024:
        raise InvalidCursorError("cursor must be a non-empty string returned by list")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursorError("cursor is not one that list returned") from exc
    if not isinstance(data, dict) or data.get("v") != _VERSION:
        raise InvalidCursorError("cursor is not one that list returned")
    if data.get("p") != prefix or data.get("r") is not reverse:
        raise InvalidCursorError("cursor belongs to a listing with another prefix or direction")
    last_key = data.get("k")
    try:
        check_key(last_key)
    except ValidationError as exc:
        raise InvalidCursorError("cursor is not one that list returned") from exc
    assert isinstance(last_key, str)
    if not last_key.startswith(prefix):
        raise InvalidCursorError("cursor is not one that list returned")
    return last_key
