"""KVStore.info(): figures about a database, read in one snapshot."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from kvstore import KVStore, StoreInfo
from kvstore._migrate import HEAD

from .conftest import FakeClock


def test_info_of_a_file_store(db_path: Path, clock: FakeClock) -> None:
    with KVStore(db_path, clock=clock) as kv:
        empty = kv.info()
        assert isinstance(empty, StoreInfo)
        assert (empty.entries, empty.expired, empty.namespaces, empty.last_versionstamp) == (0, 0, 0, None)
        assert empty.schema_revision == HEAD
        assert empty.journal_mode == "wal"
        assert empty.target == str(db_path)
        # The logical size: pages written so far, some of which may still sit in the WAL.
        with closing(sqlite3.connect(db_path)) as raw:
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert empty.size_bytes == db_path.stat().st_size
        kv.set("a", 1)
        last = kv.namespace("other").set("b", 2, expire_in=60_000).versionstamp
        clock.advance(60)
        info = kv.info()
        assert (info.entries, info.expired, info.namespaces, info.last_versionstamp) == (1, 1, 2, last)
        kv.purge_expired()
        assert (kv.info().entries, kv.info().expired, kv.info().namespaces) == (1, 0, 1)
        # The greatest versionstamp of an entry still stored: the purged one's is gone with it.
        kept = kv.get("a")
        assert kept is not None
        assert kv.info().last_versionstamp == kept.versionstamp


def test_info_of_a_memory_store() -> None:
    with KVStore(":memory:") as kv:
        kv.set("a", 1)
        info = kv.info()
        assert (info.entries, info.size_bytes, info.journal_mode, info.target) == (1, None, "memory", ":memory:")
