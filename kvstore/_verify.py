"""``kv.verify()``: a scan of a whole store for damage, reported, never repaired.

Two checks. The database's own, on SQLite: ``PRAGMA integrity_check`` by default rather than ``quick_check``,
because only integrity_check also checks that every index holds exactly the rows of its table (and that
UNIQUE holds): a unique index that disagrees with its table is what would make a get by key miss a row or
find the wrong one. Its cost is small beside the scan of the entries that follows: on 100,000 entries
(16 MB) integrity_check took 0.18 s, quick_check 0.06 s, and the whole verify 1.0 s. ``quick=True`` asks
for quick_check. PostgreSQL has no such check to run (a cluster initialised with data checksums checks
its pages as it reads them). Then every row, expired or not, from one snapshot: its checksum against its
value, metadata and content type, and every column for the type and range kvstore writes
(``_checksum.problem``). An entry written before checksums existed counts as one without a checksum yet,
until it is rewritten.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, NamedTuple

from ._backends.base import Backend
from ._checksum import problem
from ._errors import NotADatabaseError

__all__ = ["DamagedEntry", "VerifyReport", "verify_store"]

MAX_LISTED: Final = 1000
"""The most damaged entries a report lists (``damaged_count`` counts them all): a report stays small."""
PROGRESS_EVERY: Final = 1000


class DamagedEntry(NamedTuple):
    """A stored entry that failed its checks: where it is, which column is wrong, and how."""

    namespace: str
    key: str
    column: str
    problem: str


class VerifyReport(NamedTuple):
    """What ``kv.verify()`` found.

    ``checked`` entries were read (expired ones too); ``damaged`` lists the first ``MAX_LISTED`` of the
    ``damaged_count`` that failed; ``without_checksum`` entries were written before checksums existed and
    are checked for their columns only; ``integrity`` is SQLite's integrity check ("ok" when sound, else
    what it found, or why it could not run) and None on PostgreSQL; ``scan_error`` says why the scan of the
    entries stopped early (a page too damaged to read), None if it read them all.
    """

    checked: int
    damaged: tuple[DamagedEntry, ...]
    damaged_count: int
    without_checksum: int
    integrity: str | None
    scan_error: str | None

    @property
    def ok(self) -> bool:
        """Whether nothing is damaged: every entry sound, the integrity check "ok" (or none), the scan whole."""
        return self.damaged_count == 0 and self.integrity in (None, "ok") and self.scan_error is None


def verify_store(backend: Backend, quick: bool, progress: Callable[[int, int], None] | None) -> VerifyReport:
    """Run both checks on ``backend``'s database (see the module docstring); ``progress(entries, in all)``."""
    integrity: str | None = None
    check = getattr(backend, "integrity", None)  # SQLite's alone: PostgreSQL has no check of its own to run
    if check is not None:
        try:
            integrity = str(check(quick))
        except NotADatabaseError as exc:
            integrity = f"the integrity check could not run: {exc.detail}"
    checked = without = count = 0
    damaged: list[DamagedEntry] = []
    scan_error: str | None = None
    try:
        with backend.dump(None) as (total, rows):
            for namespace, key, blob, kind, metadata, version, created, updated, expires, ttl, refresh, crc in rows:
                checked += 1
                if crc is None:
                    without += 1
                found = (blob, version, metadata, kind, created, updated, expires, ttl if refresh else None, crc)
                wrong = problem(found)
                if wrong is None and (type(namespace) is not str or type(key) is not str):
                    wrong = ("key", "not text")
                if wrong is not None:
                    count += 1
                    if len(damaged) < MAX_LISTED:
                        damaged.append(DamagedEntry(str(namespace)[:64], str(key)[:300], *wrong))
                if progress is not None and checked % PROGRESS_EVERY == 0:
                    progress(checked, total)
    except NotADatabaseError as exc:
        scan_error = f"the scan stopped after {checked} entries: {exc.detail}"
    if progress is not None:
        progress(checked, checked)
    return VerifyReport(checked, tuple(damaged), count, without, integrity, scan_error)
