"""Export and import: every live entry of a store as JSON Lines (the form of ``_lines``), and JSON Lines into
any store, in bounded memory.

Export reads one snapshot (``Backend.dump``) a row at a time; expired entries are not exported. Import reads
its input twice: first it checks every line (and, with ``on_existing="fail"``, that no key it brings holds a
live entry), so that bad input raises before anything is written; then it writes, in batches, each one
transaction of the write path under one new versionstamp. Input that cannot seek (a pipe) is copied to a
temporary file as the first pass reads it. Memory holds one batch at a time.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any, Final

from ._backends.base import Progress, PutRow
from ._errors import InvalidOptionsError, KeyExistsError, ValidationError
from ._lines import line_of, row_of
from ._models import ImportResult
from ._shared import Shared
from ._shown import shown
from ._write import restore_batch

ON_EXISTING: Final = ("fail", "skip", "overwrite")
# A batch: at most this many entries and (past the first) bytes of values, one transaction. Importing 20,000
# entries took 43.7 us an entry at 100 a batch, 30.4 at 500, 34.6 at 2,000 on SQLite; 98.4, 61.2 and 59.2 us
# on PostgreSQL: a commit a batch dominates below 500, and a larger batch holds the write lock longer.
BATCH_ROWS: Final = 500
BATCH_BYTES: Final = 8 * 1024 * 1024
EXPORT_PROGRESS_EVERY: Final = 1000  # entries between two progress reports of an export


def export_jsonl(shared: Shared, file: IO[str] | IO[bytes], progress: Progress | None) -> int:
    """Write every live entry of every namespace to ``file``, a line each, in (namespace, key) order, from
    one snapshot; return how many."""
    if not callable(getattr(file, "write", None)):
        raise InvalidOptionsError(f"export_jsonl writes to a file object, not a {type(file).__name__}: open it first")
    write = _writer(file)
    done = 0
    with shared.backend.dump(shared.now_us()) as (total, rows):
        for row in rows:
            write(line_of(row) + "\n")
            done += 1
            if progress is not None and done % EXPORT_PROGRESS_EVERY == 0:
                progress(done, total)
    if progress is not None:
        progress(done, done)
    return done


def _writer(file: IO[Any]) -> Callable[[str], object]:
    """``file.write`` for text; for a binary file, a write that encodes the text as UTF-8 first."""
    try:
        file.write("")
    except TypeError:  # a binary file
        return lambda text: file.write(text.encode())
    return file.write


def import_jsonl(
    shared: Shared, file: IO[str] | IO[bytes], on_existing: str, progress: Progress | None
) -> ImportResult:
    """Read entries from ``file`` (JSON Lines) into their namespaces; see the module docstring.

    ``on_existing`` says what happens at a key that holds a live entry: "fail" (KeyExistsError, found before
    anything is written, but for a key another writer creates meanwhile or one the input brings twice in
    different batches), "skip" (the entry stays, and the first of a key brought twice wins) or "overwrite"
    (the last wins).
    """
    if type(on_existing) is not str or on_existing not in ON_EXISTING:
        raise InvalidOptionsError(f"on_existing must be one of {', '.join(ON_EXISTING)}, got {shown(on_existing)}")
    if not callable(getattr(file, "read", None)):
        raise InvalidOptionsError(f"import_jsonl reads a file object, not a {type(file).__name__}: open it first")
    with _twice(file) as (first, again):
        total = 0
        for batch in _batches(shared, first, on_existing):  # checked (and looked up) only
            total += batch.read
            if on_existing == "fail":
                _check_absent(shared, batch)
            if progress is not None:
                progress(total, 0)
        read = imported = skipped = expired = 0
        for batch in _batches(shared, again(), on_existing):
            rows = [row for row, _ in batch.rows.values()]
            left = restore_batch(shared.group, rows, on_existing, shared.now_us())
            if left and on_existing == "fail":
                line = batch.rows[(left[0][0], left[0][1])][1]
                raise KeyExistsError(
                    f"line {line}: {_name(left[0])} holds a live entry (brought by an earlier line, or written"
                    f" since the import began); the entries of the lines before {batch.first} were imported"
                )
            written = len(rows) - len(left)
            if written:
                shared.committed()
            read += batch.read
            imported += written
            skipped += len(left) + batch.twice
            expired += batch.expired
            if progress is not None:
                progress(read, total)
    return ImportResult(read, imported, skipped, expired)


def _name(row: PutRow) -> str:
    return f"key {row[1]!r} of namespace {row[0]!r}"


class _Batch:
    """Entries of the input, checked, of distinct keys: each row with its line number; how many entries it
    read, how many of them had expired, and how many were dropped as a later line of a key (skip mode)."""

    __slots__ = ("expired", "first", "read", "rows", "twice")

    def __init__(self, first: int) -> None:
        self.first = first
        self.rows: dict[tuple[str, str], tuple[PutRow, int]] = {}
        self.read = self.expired = self.twice = 0


def _batches(shared: Shared, lines: Iterable[str | bytes], on_existing: str) -> Iterator[_Batch]:
    """The input's entries in batches (at most ``BATCH_ROWS`` entries and, past the first, ``BATCH_BYTES`` of
    values). A bad line raises its ValidationError, and in "fail" mode a key brought twice KeyExistsError,
    each naming the line."""
    batch = _Batch(1)
    size = 0
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            text = raw.decode() if isinstance(raw, bytes) else raw
            row = row_of(text, shared.now_us(), shared.max_value_size, shared.max_metadata_size)
        except UnicodeDecodeError as exc:
            raise ValidationError(f"line {number}: not UTF-8 ({exc}); nothing was imported") from exc
        except ValidationError as exc:
            raise type(exc)(f"line {number}: {exc.detail}; nothing was imported") from exc
        batch.read += 1
        if row is None:
            batch.expired += 1
            continue
        slot = (row[0], row[1])
        if slot in batch.rows:
            if on_existing == "fail":
                raise KeyExistsError(f"line {number}: {_name(row)} is brought twice; nothing was imported")
            if on_existing == "skip":
                batch.twice += 1
                continue
        batch.rows[slot] = row, number
        size += len(row[2])
        if len(batch.rows) >= BATCH_ROWS or size >= BATCH_BYTES:
            yield batch
            batch, size = _Batch(number + 1), 0
    if batch.read:
        yield batch


def _check_absent(shared: Shared, batch: _Batch) -> None:
    """Raise KeyExistsError if a key of ``batch`` holds a live entry (one read per namespace of it)."""
    keys: dict[str, list[str]] = {}
    for namespace, key in batch.rows:
        keys.setdefault(namespace, []).append(key)
    now_us = shared.now_us()
    for namespace, wanted in keys.items():
        found = shared.backend.get_many(namespace, wanted, now_us)
        if found:
            row, line = batch.rows[(namespace, found[0][-1])]
            raise KeyExistsError(f"line {line}: {_name(row)} holds a live entry; nothing was imported")


@contextmanager
def _twice(file: IO[Any]) -> Iterator[tuple[Iterable[Any], Callable[[], Iterable[Any]]]]:
    """The input's lines for a first pass, and a function that gives them again for a second: ``file``
    itself, sought back, if it can seek; else a temporary copy the first pass makes as it reads."""
    try:
        start = file.tell() if file.seekable() else None
    except OSError:  # a pipe may say it seeks, and fail
        start = None
    if start is not None:

        def rewound() -> Iterable[Any]:
            file.seek(start)
            return file

        yield file, rewound
        return
    with tempfile.TemporaryFile() as spool:

        def copied() -> Iterator[Any]:
            for line in file:
                spool.write(line.encode() if isinstance(line, str) else line)
                yield line

        def spooled() -> Iterable[Any]:
            spool.seek(0)
            return spool

        yield copied(), spooled
