"""A connection's block of reserved versionstamps: drawn from without touching the counter row.

A write transaction reads the counter row (``sql.SQL_READ_VERSION``) under the write lock. If the counter
still equals this block's end, no other connection has reserved since, and the block's next version is
this connection's to take; otherwise (or when the block is used up) the transaction reserves the next
``BLOCK`` versions by moving the counter (``sql.SQL_RESERVE``). So the counter is written once per
``BLOCK`` commits of one connection, and versions still increase in commit order across connections.
"""

from __future__ import annotations

from typing import Final

# Versionstamps per reserved block: one counter write per this many commits of one connection, and at most
# this large a gap where another connection takes over.
BLOCK: Final = 1024


class VersionBlock:
    """The next version to draw and the block's end (-1: no block). Only its methods change them."""

    __slots__ = ("_saved_end", "_saved_next", "end", "next")

    def __init__(self) -> None:
        self.next = 0
        self.end = -1
        self._saved_next = 0
        self._saved_end = -1

    def begin(self) -> None:
        """A transaction starts: remember where the block stood, to roll back to."""
        self._saved_next = self.next
        self._saved_end = self.end

    def draw(self, counter: int) -> tuple[int, int | None]:
        """This transaction's version, given the counter row's value; and the new block end to write to
        the counter row, if a block had to be reserved (None if the version came from this block)."""
        version = self.next
        reserve = None
        if counter != self.end or version > counter:
            version = counter + 1
            self.end = reserve = counter + BLOCK
        self.next = version + 1
        return version, reserve

    def available(self) -> int | None:
        """The version a one-statement write (outside a transaction) may try, or None: no block is left."""
        return self.next if self.next <= self.end else None

    def used(self, version: int) -> None:
        """A one-statement write committed with ``version``."""
        self.next = version + 1

    def mark(self) -> tuple[int, int]:
        """Where the block stands, for a savepoint to roll back to (``restore``)."""
        return self.next, self.end

    def restore(self, mark: tuple[int, int]) -> None:
        """The transaction rolled back to the savepoint taken at ``mark``: so did its draws and the counter
        row (a block reserved since is undone with it), so the block is as it stood then."""
        self.next, self.end = mark

    def rollback(self) -> None:
        """The transaction rolled back: nothing it drew was used, and any block it reserved was undone."""
        self.next = self._saved_next
        self.end = self._saved_end

    def forfeit(self) -> None:
        """A write failed so that it may or may not have committed: never draw from this block again (after
        a transaction, ``rollback`` first)."""
        self.end = -1
