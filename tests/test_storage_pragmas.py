"""The SQLite pragmas a store sets (journal mode, synchronous) and the synchronous values it refuses."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from kvstore import ConfigurationError, KVStore

from ._storage_support import pragma, raw


def test_file_store_uses_wal_and_normal_synchronous(db_path: Path) -> None:
    with KVStore(db_path) as kv:
        assert pragma(kv, "journal_mode") == "wal"
        assert pragma(kv, "synchronous") == 1  # NORMAL
    with raw(db_path) as conn:  # WAL persists in the file
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("value", ["FULL", "full", "Full"])
def test_synchronous_full_on_every_connection(db_path: Path, value: str) -> None:
    with KVStore(db_path, synchronous=value) as kv:
        assert pragma(kv, "synchronous") == 2  # FULL
        with ThreadPoolExecutor(1) as pool:  # another thread gets its own connection, configured alike
            assert pool.submit(pragma, kv, "synchronous").result() == 2


def test_memory_store_has_no_wal() -> None:
    with KVStore(":memory:") as kv:
        assert pragma(kv, "journal_mode") == "memory"


@pytest.mark.parametrize("value", ["OFF", "EXTRA", "NORMAL; DROP TABLE x", "", 1, None])
def test_bad_synchronous_is_a_configuration_error(db_path: Path, value: Any) -> None:
    with pytest.raises(ConfigurationError, match="synchronous"):
        KVStore(db_path, synchronous=value)
    assert not db_path.exists()
