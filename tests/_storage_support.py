"""Helpers shared by the tests/test_storage_*.py files: raw looks at an SQLite file, and constants."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Final

from kvstore import KVStore
from kvstore._migrate import VERSION_TABLE

from .conftest import sqlite_connection

MIN_TTL_MS: Final = 60_000
FIRST_VERSIONSTAMP: Final = "00000000000000010000"


def raw(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path, isolation_level=None))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def count_entries(path: Path, where: str = "1") -> int:
    with raw(path) as conn:
        count: int = conn.execute(f"SELECT count(*) FROM kvstore_entries WHERE {where}").fetchone()[0]
    return count


def recorded_revisions(path: Path) -> list[str]:
    with raw(path) as conn:
        return [row[0] for row in conn.execute(f"SELECT version_num FROM {VERSION_TABLE}")]


def versionstamp_counter(path: Path) -> int:
    """The versionstamp counter: the end of the last block of versionstamps reserved, so at least every one
    handed out."""
    with raw(path) as conn:
        rows = conn.execute("SELECT id, version FROM kvstore_versionstamp").fetchall()
    assert len(rows) == 1
    assert rows[0][0] == 1
    version: int = rows[0][1]
    return version


def pragma(kv: KVStore, name: str) -> object:
    value: object = sqlite_connection(kv).execute(f"PRAGMA {name}").fetchone()[0]
    return value
