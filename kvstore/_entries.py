"""Stored rows become entries: one at a time (``entry_of``, every read of one key) or a page at a time
(``entries_of``, built a column at a time)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import repeat

from ._backends.base import Found, Row
from ._codec import _INSTANTS, decode_metadata, decode_value, decode_values, from_epoch_us, instants_of, stamp_bytes
from ._models import Entry, new_tuple


def entries_of(rows: list[Row]) -> list[Entry]:
    """The Entries of stored rows, each at the key the row holds: what ``entry_of`` makes of each row,
    built a column at a time in C (``map`` and ``zip``), with every value decoded in one scan."""
    if not rows:
        return []
    count = len(rows)
    blobs, versions, metadata, content_types, created, updated, expires, _, keys = zip(*rows, strict=True)
    created_at = instants_of(created)
    updated_at = created_at if updated == created else instants_of(updated)
    if expires.count(None) == count:
        expires_at: Iterable[datetime | None] = repeat(None, count)
    else:
        expires_at = [None if us is None else from_epoch_us(us) for us in expires]
    # A dict for each entry's metadata, even an empty one: entries must not share a mutable dict.
    metas = map(dict.copy, repeat({}, count)) if metadata.count(None) == count else map(decode_metadata, metadata)
    stamps = map(bytes.hex, map(stamp_bytes, versions))  # format_versionstamp, inlined
    columns = (keys, decode_values(blobs), stamps, metas, content_types, map(len, blobs), created_at, updated_at)
    return list(map(new_tuple, repeat(Entry), zip(*columns, expires_at, strict=True)))


def entry_of(key: str, found: Found) -> Entry:
    """The Entry at ``key`` of a stored entry. Every read of one key builds its entry here, so the common
    cases are inlined: no metadata, and instants recently built (see ``_codec.from_epoch_us``)."""
    # One unpack (a single bytecode) names every column, and costs less than five indexes.
    value, version, metadata, content_type, created_us, updated_us, expires_us, _ = found
    created_at = _INSTANTS.get(created_us) or from_epoch_us(created_us)
    return new_tuple(
        Entry,
        (
            key,
            decode_value(value),
            stamp_bytes(version).hex(),  # format_versionstamp, inlined
            {} if metadata is None else decode_metadata(metadata),
            content_type,
            len(value),
            created_at,
            created_at if updated_us == created_us else _INSTANTS.get(updated_us) or from_epoch_us(updated_us),
            None if expires_us is None else from_epoch_us(expires_us),
        ),
    )
