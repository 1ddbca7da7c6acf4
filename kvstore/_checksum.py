"""What keeps a stored entry from rotting silently: the checksum written with it, and the checks of every
column a read takes from a row (pure).

The checksum is CRC32 of the content type, the metadata (NULL told apart from any text) and the value. It
detects any burst of errors up to 32 bits and all but 1 in 2**32 of the rest: it is there for damage (a
page overwritten, a torn sector), not for tampering, which can rewrite the checksum too. Measured on the
loaded 2-core development machine (CPython 3.11, best of 7 runs, a lambda's call included): ``zlib.crc32``
0.17 us for 32 bytes and 33 us for 64 KiB (2.0 GB/s); ``zlib.adler32`` 0.13 us and 26 us, but weak on short
data, which most values are; ``hashlib.blake2b(digest_size=8)`` 0.65 us and 110 us; ``hashlib.sha256``
0.51 us and 49 us. On the busiest path, a get of a small value, CRC32 costs a third of the others.

A row that holds what kvstore never writes (another program's, or a damaged file's) raises
``CorruptEntryError`` naming the key and the column: ``corrupt`` finds which, only once a read has failed,
so the reads themselves check only what their conversions do not already refuse.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Final
from zlib import crc32

from ._codec import INT_MAX, decode_metadata, decode_value, from_epoch_us
from ._errors import CorruptEntryError, NotADatabaseError
from ._validation import MAX_TTL_US

__all__ = [
    "SEEDS",
    "checksum",
    "corrupt",
    "corrupt_whole",
    "mismatch",
    "problem",
    "seed_of",
    "verified",
    "verify_rows",
]

_NO_METADATA: Final = b"\x00"
_METADATA: Final = b"\x01"

SEEDS: Final[dict[str, int]] = {}
"""The CRC of each content type with no metadata, by content type: the state a value's CRC starts from.
Only str keys, so a lookup of anything else misses, and ``seed_of`` refuses it."""
_SEEDS_MAX: Final = 256


def seed_of(content_type: str, metadata: str | None) -> int:
    """The CRC of an entry's content type and metadata, from which its value's CRC goes on."""
    if type(content_type) is not str:
        raise TypeError(f"the content type is a {type(content_type).__name__}")
    head = crc32(content_type.encode())
    if metadata is None:
        seed = crc32(_NO_METADATA, head)
        if len(SEEDS) >= _SEEDS_MAX:
            SEEDS.clear()
        SEEDS[content_type] = seed
        return seed
    if type(metadata) is not str:
        raise TypeError(f"the metadata is a {type(metadata).__name__}")
    return crc32(metadata.encode(), crc32(_METADATA, head))


def checksum(value: bytes, content_type: str, metadata: str | None) -> int:
    """The checksum of an entry, written with it: CRC32 of content type, metadata and value (0 to 2**32 - 1)."""
    seed = SEEDS.get(content_type) if metadata is None else None
    return crc32(value, seed_of(content_type, metadata) if seed is None else seed)


def mismatch(value: bytes, content_type: str, metadata: str | None, stored: object) -> bool:
    """Whether a row's stored checksum (not None) differs from its data's; a row of the wrong types differs."""
    try:
        return checksum(value, content_type, metadata) != stored
    except (TypeError, UnicodeEncodeError):
        return True


def verified(found: Sequence[object]) -> bool:
    """Whether a stored entry's checksum (if it has one) matches its data, and its content type is text: of a
    ``Found`` or a ``Row`` (its checksum at ``CHECKSUM``)."""
    value, _, metadata, content_type, _, _, _, stored = found[:8]
    if stored is None:
        return type(content_type) is str
    try:
        return checksum(value, content_type, metadata) == stored  # type: ignore[arg-type]
    except (TypeError, UnicodeEncodeError):
        return False


def _a(value: object) -> str:
    name = type(value).__name__
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def _instant(value: object) -> bool:
    if type(value) is not int:
        return False
    try:
        from_epoch_us(value)
    except (OverflowError, ValueError, OSError):
        return False
    return True


def problem(whole: Sequence[object]) -> tuple[str, str] | None:
    """The first column of a stored entry (a ``Whole``) that is wrong, and how; None if every column is one
    kvstore writes and the checksum, if any, matches."""
    value, version, metadata, content_type, created_us, updated_us, expires_us, refresh_ttl, stored = whole[:9]
    if type(value) is not bytes:
        return "value", f"{_a(value)}, not a blob"
    if type(version) is not int or not 0 <= version <= INT_MAX:
        return "version", "not an integer from 0 to 2**63 - 1"
    if type(content_type) is not str:
        return "content_type", f"{_a(content_type)}, not text"
    if metadata is not None and type(metadata) is not str:
        return "metadata", f"{_a(metadata)}, not text"
    if stored is not None and (type(stored) is not int or not 0 <= stored < 2**32):
        return "checksum", "not an integer from 0 to 2**32 - 1"
    if stored is not None and mismatch(value, content_type, metadata, stored):
        return "checksum", "the value, metadata or content type no longer match the checksum written with them"
    for column, moment in (("created_us", created_us), ("updated_us", updated_us), ("expires_us", expires_us)):
        if not (moment is None and column == "expires_us") and not _instant(moment):
            return column, "not an instant in microseconds since the epoch (years 1 to 9999)"
    if refresh_ttl is not None and (type(refresh_ttl) is not int or not 0 < refresh_ttl <= MAX_TTL_US):
        return "ttl_us", f"not a TTL kvstore writes (1 to {MAX_TTL_US} microseconds)"
    try:
        decode_metadata(metadata)
    except NotADatabaseError as exc:
        return "metadata", exc.detail
    try:
        decode_value(value)
    except NotADatabaseError as exc:
        return "value", exc.detail
    return None


def corrupt(key: object, found: Sequence[object]) -> CorruptEntryError:
    """The error for a stored entry at ``key`` (a ``Found`` or a ``Row``) that a read failed on, naming the
    column that is wrong."""
    return corrupt_whole(key, (*found[:7], None, *found[7:8]))


def corrupt_whole(key: object, whole: Sequence[object]) -> CorruptEntryError:
    """``corrupt``, of a ``Whole`` entry."""
    column, why = problem(whole) or ("row", "not one kvstore can read")
    shown = repr(key)[:300] if type(key) is str else f"<a {type(key).__name__}>"
    detail = f"the entry at key {shown} is corrupt and was not read ({column}: {why})"
    return CorruptEntryError(detail, str(key)[:300], column)


def verify_rows(rows: Sequence[Sequence[object]], key_column: int) -> list[tuple[object, ...]]:
    """Raise CorruptEntryError for the first of ``rows`` whose checksum does not match (or whose content type
    is not text, which a checksum would have caught), or whose key (at ``key_column``) is not text; else
    return the rows' columns (``zip``), or [] if the rows differ in length."""
    seeds = SEEDS
    count = len(rows)
    # The common page (text keys, no metadata, one content type, every checksum there) checked a column at a
    # time in C (``zip``, ``map``, ``count``); any other page, or one that fails, goes row by row below, which
    # alone decides. Counted with callgrind (instructions a check of a page of 100 rows from PostgreSQL):
    # 306,000 row by row, 258,000 by column, nearly all of it the 100 calls of crc32 themselves; the columns
    # returned spare ``entries_of`` its own zip (a list of 100: 3.03 to 2.82 million, raw psycopg 2.00).
    try:
        columns = list(zip(*rows, strict=True))
    except ValueError:
        columns = []
    if len(columns) > max(key_column, 7):
        values, _, metadatas, kinds, _, _, _, sums = columns[:8]
        kind = kinds[0]
        if (
            type(kind) is str
            and metadatas.count(None) == count
            and kinds.count(kind) == count
            and set(map(type, columns[key_column])) == {str}
        ):
            start = seeds.get(kind)
            if start is None:
                start = seed_of(kind, None)
            try:
                if list(map(crc32, values, repeat(start))) == list(sums):
                    return columns
            except TypeError:
                pass  # a value that is not bytes: the loop below names it
    for row in rows:
        value, _, metadata, content_type, _, _, _, stored = row[:8]
        if type(row[key_column]) is not str:
            raise CorruptEntryError(
                f"an entry's key is a {type(row[key_column]).__name__}, not text", "", "key"
            )  # fmt: skip
        if stored is None:
            if type(content_type) is not str:
                raise corrupt(row[key_column], row)
            continue
        seed = seeds.get(content_type) if metadata is None else None  # type: ignore[call-overload]
        try:
            if seed is None:
                seed = seed_of(content_type, metadata)  # type: ignore[arg-type]
            if crc32(value, seed) != stored:  # type: ignore[arg-type]
                raise corrupt(row[key_column], row)
        except (TypeError, UnicodeEncodeError):
            raise corrupt(row[key_column], row) from None
    return columns
