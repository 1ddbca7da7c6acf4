"""A checker for histories of concurrent calls on one store.

No maintained Python linearizability checker exists, so this is a small one, specialised to kvstore:
versionstamps already name the order the database committed writes in, and the checker verifies that
this order is one the callers could have observed. Every rule is a consequence of linearizability, so a
violation is always a bug (the checker is sound); it does not search for a linearization (it is not
complete). Times are ``time.monotonic_ns()`` values, which are system-wide on Linux, so histories
recorded by different processes can be compared.

The ops:

- ``write``: a committed ``set``; ``vs`` is its versionstamp, ``tag`` identifies the value it wrote,
  ``created`` is what the result said, ``mode`` is blind / nx (if_not_exists) / nox (overwrite=False) /
  cas (``expected`` is the if_versionstamp), ``number`` a counter value (counters are only ever CAS'd).
- ``delete``: a committed ``delete(key, if_versionstamp=expected)``.
- ``seen``: an observation of the key's live versionstamp (None: no live entry), by get / get_many /
  list, or as reported by a set that did not write; ``tag`` is the value's tag when the value was read.
- ``refused``: a conditional set or delete whose condition on ``expected`` failed.

The rules, for each key (a namespace and a key):

1. Committed writes have distinct versionstamps, in every key of the database.
2. Real time: if write A returned before write B was called, A's versionstamp is smaller (all keys).
3. In versionstamp order a key's writes form one chain: a write over a live entry says created=False
   and, when it is a compare-and-set, expected exactly the previous versionstamp (no lost update); a
   write after a delete, or the first, says created=True and is not a compare-and-set; if_not_exists and
   overwrite=False commit only when there was no live entry. A delete removes a version of this key,
   at most once, and the next write cannot have returned before the delete was called.
4. A read that sees version V: V was committed to this key with the tag read; V's write was called
   before the read returned; and what replaced V (the next write, or its delete) had not returned
   before the read was called. A read that sees nothing overlaps a time when the key may have been empty.
5. A refused condition on V: V was not certainly the live version for the whole call.
6. Counters: along a counter's chain the numbers go 0, 1, 2, ...: every committed increment counted.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Kind = Literal["write", "delete", "seen", "refused"]


@dataclass(frozen=True, slots=True)
class Op:
    """One recorded call (or one key's part of a multi-key read)."""

    kind: Kind
    ns: str
    key: str
    start: int
    end: int
    vs: str | None = None
    tag: str | None = None
    mode: str = ""
    expected: str | None = None
    created: bool = False
    number: int | None = None
    proc: int = 0


Slot = tuple[str, str]


def _slot(op: Op) -> Slot:
    return (op.ns, op.key)


def _check_real_time(writes: Sequence[Op]) -> list[str]:
    """Rule 2, in O(n log n): walk down the versionstamps, keeping the earliest return of those above."""
    problems = []
    earliest: Op | None = None
    for write in sorted(writes, key=lambda op: op.vs or "", reverse=True):
        if earliest is not None and earliest.end < write.start:
            problems.append(f"real time: {earliest.vs} returned before {write.vs} was called, yet is greater")
        if earliest is None or write.end < earliest.end:
            earliest = write
    return problems


class _Chain:
    """One key's committed writes in versionstamp order, with the deletes between them."""

    def __init__(self, slot: Slot, writes: list[Op], deletes: list[Op]) -> None:
        self.slot = slot
        self.writes = sorted(writes, key=lambda op: op.vs or "")
        self.index = {op.vs: i for i, op in enumerate(self.writes)}
        self.deleted: dict[str, Op] = {}
        self.problems: list[str] = []
        for delete in deletes:
            if delete.expected is None or delete.expected not in self.index:
                self.problems.append(f"{slot}: delete of {delete.expected}, which was never written here")
            elif delete.expected in self.deleted:
                self.problems.append(f"{slot}: {delete.expected} deleted twice")
            else:
                self.deleted[delete.expected] = delete
                if delete.end < self.writes[self.index[delete.expected]].start:
                    self.problems.append(f"{slot}: {delete.expected} deleted before its write was called")
        # The times the key may have been empty: before the first write returned, and from each delete's
        # call to the next write's return. Sorted by opening, with the latest closing so far.
        gaps: list[tuple[float, float]] = [(-math.inf, self.writes[0].end if self.writes else math.inf)]
        for i, write in enumerate(self.writes):
            if write.vs in self.deleted:
                after = self.writes[i + 1].end if i + 1 < len(self.writes) else math.inf
                gaps.append((self.deleted[write.vs].start, after))
        gaps.sort()
        self.gap_opens = [opens for opens, _ in gaps]
        self.gap_closes_max = list(itertools.accumulate((closes for _, closes in gaps), max))

    def successor_start_end(self, i: int) -> tuple[float, float]:
        """When what replaced write i was called and returned (inf: nothing replaced it)."""
        write = self.writes[i]
        if write.vs in self.deleted:
            delete = self.deleted[write.vs]
            return delete.start, delete.end
        if i + 1 < len(self.writes):
            following = self.writes[i + 1]
            return following.start, following.end
        return math.inf, math.inf

    def check_links(self) -> list[str]:
        """Rule 3 (and 6 for counters)."""
        problems = list(self.problems)
        for i, write in enumerate(self.writes):
            where = f"{self.slot} {write.vs} (process {write.proc}, {write.mode})"
            previous = self.writes[i - 1] if i else None
            gone = previous is None or previous.vs in self.deleted
            if gone:
                if not write.created:
                    problems.append(f"{where}: created=False, but there was no live entry")
                if write.mode == "cas":
                    problems.append(f"{where}: a compare-and-set committed with no live entry")
                if previous is not None and write.end < self.deleted[str(previous.vs)].start:
                    problems.append(f"{where}: returned before the delete it follows was called")
            else:
                assert previous is not None
                if write.created:
                    problems.append(f"{where}: created=True over the live {previous.vs}")
                if write.mode in ("nx", "nox"):
                    problems.append(f"{where}: committed over the live {previous.vs}")
                if write.mode == "cas" and write.expected != previous.vs:
                    problems.append(f"{where}: lost update: expected {write.expected}, but {previous.vs} was live")
            if write.number is not None:
                wanted = 0 if previous is None else (previous.number or 0) + 1
                if write.number != wanted:
                    problems.append(f"{where}: counter wrote {write.number}, expected {wanted}")
        return problems

    def check_seen(self, read: Op) -> list[str]:
        """Rule 4."""
        where = f"{self.slot} read by process {read.proc}"
        if read.vs is None:
            # Some gap may overlap the read: among the gaps that open before the read returns, the one
            # that closes last must close after the read was called.
            before = bisect.bisect_left(self.gap_opens, read.end)
            if before == 0 or self.gap_closes_max[before - 1] <= read.start:
                return [f"{where}: saw no entry while one was certainly live"]
            return []
        if read.vs not in self.index:
            return [f"{where}: saw {read.vs}, which was never committed to this key"]
        i = self.index[read.vs]
        write = self.writes[i]
        problems = []
        if read.tag is not None and read.tag != write.tag:
            problems.append(f"{where}: {read.vs} holds {read.tag!r}, but {write.tag!r} was written with it")
        if write.start > read.end:
            problems.append(f"{where}: saw {read.vs} before its write was called")
        _, replaced = self.successor_start_end(i)
        if replaced < read.start:
            problems.append(f"{where}: stale read of {read.vs}, replaced before the read was called")
        return problems

    def check_refused(self, refused: Op) -> list[str]:
        """Rule 5."""
        if refused.expected not in self.index:
            return []
        i = self.index[refused.expected]
        replaced_from, _ = self.successor_start_end(i)
        if self.writes[i].end < refused.start and replaced_from > refused.end:
            return [f"{self.slot}: condition on {refused.expected} refused while it was certainly live"]
        return []


def check_history(ops: Iterable[Op]) -> list[str]:
    """Every violation of the rules above in ``ops``; an empty list when the history is consistent."""
    by_kind: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        by_kind[op.kind].append(op)
    writes = by_kind["write"]
    problems: list[str] = []

    stamps: dict[str | None, Op] = {}
    for write in writes:
        if write.vs is None or write.vs in stamps:
            problems.append(f"{_slot(write)}: versionstamp {write.vs} is missing or already committed")
        stamps[write.vs] = write
    problems += _check_real_time(writes)

    grouped: dict[Slot, dict[str, list[Op]]] = defaultdict(lambda: defaultdict(list))
    for op in (*writes, *by_kind["delete"], *by_kind["seen"], *by_kind["refused"]):
        grouped[_slot(op)][op.kind].append(op)
    for slot, kinds in grouped.items():
        chain = _Chain(slot, kinds["write"], kinds["delete"])
        problems += chain.check_links()
        for read in kinds["seen"]:
            problems += chain.check_seen(read)
        for refused in kinds["refused"]:
            problems += chain.check_refused(refused)
    return problems
