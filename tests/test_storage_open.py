"""Opening an existing database: files kvstore refuses are left untouched; foreign tables and locks are kept."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kvstore import KVStore, NotADatabaseError, SchemaVersionError
from kvstore._migrate import HEAD, VERSION_TABLE

from ._storage_support import MIN_TTL_MS, digest, raw, recorded_revisions


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
@pytest.mark.parametrize("revisions", [["9999"], [HEAD, "9999"]])
def test_unknown_revision_is_refused_and_left_untouched(
    tmp_path: Path, journal_mode: str, revisions: list[str]
) -> None:
    path = tmp_path / "newer.db"
    with KVStore(path) as kv:
        kv.set("k", "v")
    with raw(path) as conn:
        conn.execute(f"PRAGMA journal_mode = {journal_mode}")
        conn.execute(f"DELETE FROM {VERSION_TABLE}")
        conn.executemany(f"INSERT INTO {VERSION_TABLE} VALUES (?)", [(rev,) for rev in revisions])
    before, files = digest(path), _siblings(path)
    assert files == ["newer.db"]

    with pytest.raises(SchemaVersionError, match="9999") as caught:
        KVStore(path)
    assert caught.value.error_code == 2005

    assert digest(path) == before
    assert _siblings(path) == files  # no -wal or -shm left behind
    with raw(path) as conn:  # the journal mode was not switched either
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == journal_mode


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(random.Random(2).randbytes(8192), id="random-8k"),
        pytest.param(b"name,value\nalpha,1\n", id="csv"),
        pytest.param(b"\x00" * 4096, id="zeros"),
        pytest.param(b"SQLite format 3\x00" + b"\xff" * 84, id="bad-header"),
        pytest.param(b"{", id="one-byte"),
    ],
)
def test_file_that_is_not_sqlite_is_refused_and_left_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content)

    with pytest.raises(NotADatabaseError) as caught:
        KVStore(path)
    assert caught.value.error_code == 2004

    assert path.read_bytes() == content
    assert _siblings(path) == ["notes.txt"]


def test_foreign_tables_and_data_survive(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with raw(path) as conn:
        conn.executescript(
            """
            CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, data BLOB);
            CREATE INDEX ix_users_name ON users (name);
            CREATE VIEW user_names AS SELECT name FROM users;
            CREATE TABLE audit (n INTEGER);
            CREATE TRIGGER users_audit AFTER INSERT ON users BEGIN INSERT INTO audit VALUES (new.id); END;
            INSERT INTO users (name, data) VALUES ('ada', x'00ff'), ('bob', NULL);
            """
        )

    def snapshot() -> tuple[list[tuple[Any, ...]], ...]:
        with raw(path) as conn:
            schema = conn.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'kvstore%'"
                " AND tbl_name NOT LIKE 'kvstore%' ORDER BY name"
            ).fetchall()
            users = conn.execute("SELECT * FROM users ORDER BY id").fetchall()
            audit = conn.execute("SELECT * FROM audit ORDER BY n").fetchall()
        return schema, users, audit

    before = snapshot()
    with KVStore(path) as kv:
        for i in range(50):
            kv.set(f"k/{i}", {"i": i}, expire_in=MIN_TTL_MS if i % 2 else None)
        kv.delete("k/0")
        kv.purge_expired()
        assert len(kv.list("k/")) == 49
    with KVStore(path) as kv:
        assert kv.get("k/1") is not None
    assert snapshot() == before
    assert recorded_revisions(path) == [HEAD]


_READ_AND_CLOSE = (
    "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); print(c.execute(sys.argv[2]).fetchall()); c.close()"
)


def _in_another_process(path: Path, sql: str) -> str:
    """Run one query on ``path`` from a fresh process (which closes its connection, and so may checkpoint)."""
    result = subprocess.run(
        [sys.executable, "-c", _READ_AND_CLOSE, str(path), sql], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_opening_a_second_store_keeps_the_first_stores_locks(db_path: Path) -> None:
    """Opening must not open and close the file behind SQLite's back.

    Closing any descriptor of a file drops every POSIX lock this process holds on it. Another process
    closing its connection would then think itself the last one, checkpoint and delete the WAL, and the
    first store's later commits would go to an unlinked file: lost.
    """
    first = KVStore(db_path)
    try:
        first.set("a", 1)
        KVStore(db_path).close()  # a second store on the same file, in the same process
        KVStore(str(db_path)).close()
        _in_another_process(db_path, "SELECT count(*) FROM kvstore_entries")
        # The first store's shared lock held: the other process did not take the WAL away.
        assert (db_path.parent / f"{db_path.name}-wal").exists()
        first.set("b", 2)
        assert _in_another_process(db_path, "SELECT key FROM kvstore_entries ORDER BY key") == "[('a',), ('b',)]"
    finally:
        first.close()
