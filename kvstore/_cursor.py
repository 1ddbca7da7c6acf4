"""List cursors: opaque to callers, documented for operators.

A cursor is URL-safe base64 (no padding) of the compact JSON
``{"v":1,"p":PREFIX,"s":START,"e":END,"r":REVERSE,"k":LAST_KEY}`` (START and END are null when not given):
the last key returned, and the listing it belongs to. Paging resumes strictly after (or, in reverse,
before) that key, so entries written or deleted between pages never make the listing skip or repeat a key
that was there all along.
"""

from __future__ import annotations

import binascii
import json
from typing import NamedTuple

from ._errors import InvalidCursorError, ValidationError
from ._validation import check_key

_VERSION = 1


class Listing(NamedTuple):
    """What identifies a listing: a cursor from one listing cannot continue another."""

    prefix: str
    start: str | None
    end: str | None
    reverse: bool


def encode_cursor(listing: Listing, last_key: str) -> str:
    """The cursor that resumes ``listing`` after ``last_key``."""
    prefix, start, end, reverse = listing
    data = {"v": _VERSION, "p": prefix, "s": start, "e": end, "r": reverse, "k": last_key}
    text = json.dumps(data, separators=(",", ":"))
    # base64 is imported here and in decode_cursor, at first use: only a listing that pages needs it, and at
    # module level it cost 2.4 million instructions (callgrind) of every ``import kvstore``.
    import base64

    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: object, listing: Listing) -> str:
    """The last key named by ``cursor``, which must belong to ``listing``."""
    if type(cursor) is not str or not cursor or len(cursor) > 2048:
        raise InvalidCursorError("cursor must be a non-empty string returned by list")
    import base64  # on first use, as in encode_cursor

    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError) as exc:  # RecursionError: deeply nested JSON
        raise InvalidCursorError("cursor is not one that list returned") from exc
    if not isinstance(data, dict) or data.get("v") != _VERSION:
        raise InvalidCursorError("cursor is not one that list returned")
    found = (data.get("p"), data.get("s"), data.get("e"), data.get("r"))
    if found != tuple(listing) or type(data.get("r")) is not bool:
        raise InvalidCursorError("cursor belongs to a listing with another prefix, range or direction")
    last_key = data.get("k")
    try:
        check_key(last_key)
    except ValidationError as exc:
        raise InvalidCursorError("cursor is not one that list returned") from exc
    assert isinstance(last_key, str)
    if not last_key.startswith(listing.prefix):
        raise InvalidCursorError("cursor is not one that list returned")
    return last_key
