"""Rows written by something else: every column a read takes is checked for the type and range kvstore writes,
and a bad one raises CorruptEntryError naming the key and the column, never a raw struct.error, OverflowError
or TypeError, and never a value of the wrong type handed back."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore import AsyncKVStore, CorruptEntryError, KVError, KVStore

# A table with no declared types, as another program may have made it: SQLite then keeps every value as it was
# given (kvstore's own table would turn the int 42 into the text '42' in a TEXT column).
_LOOSE: Final = """
ALTER TABLE kvstore_entries RENAME TO kvstore_entries_typed;
CREATE TABLE kvstore_entries (id INTEGER PRIMARY KEY, namespace, key, value, content_type, metadata, version,
    created_us, updated_us, expires_us, ttl_us, refresh_on_access, checksum);
INSERT INTO kvstore_entries SELECT * FROM kvstore_entries_typed;
DROP TABLE kvstore_entries_typed;
CREATE UNIQUE INDEX uq_kvstore_entries_namespace_key ON kvstore_entries (namespace, key);
CREATE INDEX ix_kvstore_entries_expires_us ON kvstore_entries (expires_us) WHERE expires_us IS NOT NULL;
"""

# What the red team wrote, and more of its kind: (column, what it holds instead).
CASES: Final = [
    ("version", "abc"),
    ("version", -5),
    ("version", 1.5),
    ("created_us", 2**63 - 1),
    ("created_us", -(2**63)),
    ("created_us", 1.25),
    ("created_us", "then"),
    ("updated_us", 2**63 - 1),
    ("expires_us", "never"),
    ("expires_us", 2**63 - 1),
    ("content_type", 42),
    ("content_type", b"application/json"),
    ("metadata", 42),
    ("metadata", "[1, 2]"),
    ("value", "a str, not a blob"),
    ("value", 7),
    ("checksum", "abc"),
    ("checksum", -1),
    ("checksum", 2**40),
]
# A bad checksum is a damaged row's own column, named as such; any other column, written behind kvstore's back
# into a row with a checksum, is caught by the checksum when it is covered (value, metadata, content type).
_COVERED: Final = {"value", "metadata", "content_type"}


def _crafted(path: Path, column: str, bad: object, *, keep_checksum: bool = False) -> None:
    with KVStore(path) as kv:
        kv.set("before", "fine")
        kv.set("k", {"a": 1}, expire_in=3_600_000)
        kv.set("z", "fine")
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.executescript(_LOOSE)
        if not keep_checksum and column != "checksum":
            conn.execute("UPDATE kvstore_entries SET checksum = NULL WHERE key = 'k'")  # as if written before 0003
        conn.execute(f"UPDATE kvstore_entries SET {column} = ? WHERE key = 'k'", (bad,))


def _reads(kv: KVStore) -> dict[str, Callable[[], object]]:
    async def loop_get() -> object:
        async with AsyncKVStore(kv._target) as store:
            return await store.get("k")

    return {
        "get": lambda: kv.get("k"),
        "get_many": lambda: kv.get_many(["before", "k"]),
        "list": kv.list,
        "iterate": lambda: list(kv.iterate()),
        "mapping": lambda: kv.mapping().get("k"),
        "export": lambda: kv.export_jsonl(io.StringIO()),
        "sum": lambda: kv.atomic().sum("k", 1).commit(),
        "async get": lambda: asyncio.run(loop_get()),
    }


@pytest.mark.parametrize(("column", "bad"), CASES, ids=[f"{c}={b!r}"[:40] for c, b in CASES])
def test_a_bad_column_is_a_corrupt_entry_naming_key_and_column(tmp_path: Path, column: str, bad: object) -> None:
    path = tmp_path / "crafted.db"
    _crafted(path, column, bad)
    with KVStore(path) as kv:
        for name, read in _reads(kv).items():  # sum too: it reads the stored integer through the same checks
            with pytest.raises(CorruptEntryError) as caught:
                read()
            assert (caught.value.key, caught.value.column) == ("k", column), name
            assert "'k'" in caught.value.detail
        # The row's neighbours read as ever, and verify names the row.
        assert kv.get("before") is not None
        assert kv.get("z") is not None
        report = kv.verify()
        assert [(entry.key, entry.column) for entry in report.damaged] == [("k", column)]
        assert not report.ok


@pytest.mark.parametrize("column", sorted(_COVERED))
def test_a_covered_column_changed_under_a_checksum_fails_the_checksum(tmp_path: Path, column: str) -> None:
    path = tmp_path / "crafted.db"
    good = {"value": b"\x01", "metadata": '{"b":2}', "content_type": "text/plain"}[column]
    _crafted(path, column, good, keep_checksum=True)  # well formed, but not what the checksum was taken of
    with KVStore(path) as kv, pytest.raises(CorruptEntryError) as caught:
        kv.get("k")
    assert (caught.value.key, caught.value.column) == ("k", "checksum")


def test_a_bad_refresh_ttl_is_a_corrupt_entry(tmp_path: Path) -> None:
    path = tmp_path / "crafted.db"
    _crafted(path, "ttl_us", "soon")
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("UPDATE kvstore_entries SET refresh_on_access = 1 WHERE key = 'k'")
    with KVStore(path) as kv:
        for read in (lambda: kv.get("k"), lambda: kv.get_many(["k"])):
            with pytest.raises(CorruptEntryError) as caught:
                read()
            assert (caught.value.key, caught.value.column) == ("k", "ttl_us")


_HOSTILE = (
    st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=8)
    | st.binary(max_size=8)
    | st.none()
    | st.just(2**63 - 1)
    | st.just(-(2**63))
)


@given(
    st.sampled_from(["version", "created_us", "updated_us", "expires_us", "content_type", "metadata", "value"]),
    _HOSTILE.filter(lambda v: not isinstance(v, int) or -(2**63) <= v < 2**63),
)
def test_whatever_a_column_holds_a_read_answers_truly_or_raises_a_kverror(
    tmp_path_factory: pytest.TempPathFactory, column: str, bad: object
) -> None:
    path = tmp_path_factory.mktemp("hostile") / "crafted.db"
    _crafted(path, column, bad)
    with KVStore(path) as kv:
        for name, read in _reads(kv).items():
            try:
                got = read()
            except KVError:
                continue
            if name == "get" and got is not None:  # what came back is an entry of kvstore's own types
                entry = kv.get("k")
                assert entry is not None
                assert type(entry.content_type) is str
                assert type(entry.versionstamp) is str
                assert entry.created_at.year >= 1
