"""Every entry carries a checksum of its value, metadata and content type: written by every write path, checked
by every read path; a mismatch raises CorruptEntryError naming the key, and the data never comes back."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, Final

import httpx
import msgpack
import pytest
from alembic import command
from alembic.config import Config
from hypothesis import given
from hypothesis import strategies as st

from kvstore import AsyncKVStore, CorruptEntryError, KVError, KVStore, NotADatabaseError
from kvstore._checksum import checksum, seed_of
from kvstore._migrate import HEAD

from .conftest import FakeClock

ROOT: Final = Path(__file__).resolve().parent.parent
# Bytes that appear nowhere else in a database file: a value made of them can be found there and damaged.
PATTERN: Final = bytes(range(256)) * 12


def _rows(kv: KVStore) -> list[tuple[Any, ...]]:
    """White-box: every stored row (a PutRow: its checksum last), on any backend."""
    with kv._backend.dump(None) as (_, rows):
        return list(rows)


def _assert_every_checksum_matches(kv: KVStore) -> int:
    rows = _rows(kv)
    for _, key, value, content_type, metadata, *_, crc in rows:
        assert crc == checksum(value, content_type, metadata), key
    return len(rows)


def _raw(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path, isolation_level=None))


def _damage_value(path: Path, key: str) -> bytes:
    """Flip every bit of the first byte of ``key``'s stored value bytes past its msgpack header, with SQL
    that leaves the checksum as it was (what a bad disk does); return the damaged stored bytes."""
    with _raw(path) as conn:
        (blob,) = conn.execute("SELECT value FROM kvstore_entries WHERE key = ?", (key,)).fetchone()
        damaged = blob[:-1] + bytes([blob[-1] ^ 0xFF])
        conn.execute("UPDATE kvstore_entries SET value = ? WHERE key = ?", (damaged, key))
    return bytes(damaged)


# -- the checksum itself ------------------------------------------------------------------------------------------


@given(st.binary(max_size=64), st.sampled_from(["application/json", "text/plain"]), st.none() | st.text(max_size=20))
def test_the_checksum_covers_value_content_type_and_metadata(value: bytes, kind: str, metadata: str | None) -> None:
    crc = checksum(value, kind, metadata)
    assert 0 <= crc < 2**32
    assert crc == checksum(value, kind, metadata)  # the cached seed gives what a fresh one does
    assert crc == checksum(value, kind, metadata) == _fresh(value, kind, metadata)
    assert checksum(value + b"x", kind, metadata) != crc
    assert checksum(value, kind + "x", metadata) != crc
    assert checksum(value, kind, (metadata or "") + "x") != crc
    assert checksum(value, kind, "" if metadata is None else None) != crc  # no metadata is not empty metadata


def _fresh(value: bytes, kind: str, metadata: str | None) -> int:
    import zlib

    return zlib.crc32(value, seed_of(kind, metadata))


# -- every write path writes it ------------------------------------------------------------------------------------


def test_every_write_path_writes_a_matching_checksum(kv: KVStore, clock: FakeClock) -> None:
    kv.set("plain", "v")
    kv.set("plain", {"again": [1, 2]})  # the one-statement replace
    kv.set("meta", b"\x00\x01", metadata={"owner": "ada"}, content_type="image/png", expire_in=120_000)
    kv.set("cas", 1, if_not_exists=True)
    stamp = kv.get("cas")
    assert stamp is not None
    kv.set("cas", 2, if_versionstamp=stamp.versionstamp)
    kv.set("kept", 1, overwrite=False)
    op = kv.atomic().set("a1", 1, metadata={"n": 1}).set("a2", "two").delete("plain")
    assert op.commit().ok
    bulk = kv.atomic()
    for i in range(20):  # past _write.BULK_FROM: the puts go out in runs
        bulk.set(f"bulk{i}", i)
    assert bulk.commit().ok
    assert kv.atomic().sum("counter", 5).commit().ok  # a new key
    assert kv.atomic().sum("counter", 5).max("counter", 100).commit().ok  # an existing one
    kv.set("ttl", 1, expire_in=60_000, refresh_on_access=True, metadata={"r": True})
    clock.advance(1)
    assert kv.get("ttl") is not None  # the refresh rewrites the expiry only: the checksum still matches
    written = _assert_every_checksum_matches(kv)
    exported = io.StringIO()
    assert kv.export_jsonl(exported) == written
    kv.delete_prefix("")
    exported.seek(0)
    assert kv.import_jsonl(exported).imported == written
    assert _assert_every_checksum_matches(kv) == written
    counter = kv.get("counter")
    assert counter is not None
    assert counter.value == 100


def test_a_backup_copies_the_checksums(kv: KVStore, tmp_path: Path) -> None:
    """SQLite's online backup copies pages; PostgreSQL's backup writes rows: either way the checksums go too."""
    for i in range(5):
        kv.set(f"k{i}", {"i": i}, metadata={"i": i})
    target = tmp_path / "copy.db"
    kv.backup(target)
    with KVStore(target) as copy:
        assert _assert_every_checksum_matches(copy) == 5
        assert [row[-1] for row in _rows(copy)] == [row[-1] for row in _rows(kv)]
        assert copy.verify().ok


# -- every read path checks it -------------------------------------------------------------------------------------


@pytest.fixture(params=[False, True], ids=["plain", "refreshed-on-access"])
def damaged(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[tuple[Path, KVStore]]:
    """A file store whose entry "bad" has one byte of its value changed behind its back; "good" is sound.
    Refreshed on access, "bad" is read whole (its TTL and checksum) by another statement than a plain get's."""
    path = tmp_path / "kv.db"
    with KVStore(path, clock=clock) as kv:
        if request.param:
            kv.set("bad", b"\x01" * 100, expire_in=3_600_000, refresh_on_access=True)
        else:
            kv.set("bad", b"\x01" * 100)
        kv.set("good", "fine")
        kv.set("counter", 7)
    _damage_value(path, "bad")
    with KVStore(path, clock=clock) as kv:
        yield path, kv


def _refused(read: Callable[[], object], key: str = "bad") -> CorruptEntryError:
    with pytest.raises(CorruptEntryError) as caught:
        read()
    assert caught.value.key == key
    assert caught.value.column == "checksum"
    assert repr(key) in caught.value.detail
    assert isinstance(caught.value, NotADatabaseError)  # what code that catches corruption catches already
    return caught.value


def test_every_read_of_a_damaged_entry_raises_and_returns_nothing(damaged: tuple[Path, KVStore]) -> None:
    _, kv = damaged
    _refused(lambda: kv.get("bad"))
    _refused(lambda: kv.get_many(["good", "bad"]))
    _refused(kv.list)
    _refused(lambda: list(kv.iterate()))
    _refused(lambda: kv.mapping()["bad"])
    _refused(lambda: kv.export_jsonl(io.StringIO()))
    watch = kv.watch(["good", "bad"])
    try:
        _refused(lambda: next(iter(watch)))
    finally:
        watch.close()
    # The sound entries still read, and a listing that stops before the damaged one too.
    good = kv.get("good")
    assert good is not None
    assert good.value == "fine"
    assert kv.list(start="c").keys == ["counter", "good"]


def test_a_checksum_column_holding_the_refresh_marker_is_refused(tmp_path: Path) -> None:
    """A point read returns -1 in the checksum's place for an entry refreshed on access; a row that holds -1
    itself (not refreshed on access) is read whole, then fails its checksum like any other wrong one."""
    path = tmp_path / "kv.db"
    with KVStore(path) as kv:
        kv.set("bad", "x")
    with _raw(path) as conn:
        conn.execute("UPDATE kvstore_entries SET checksum = -1 WHERE key = 'bad'")
    with KVStore(path) as kv:
        _refused(lambda: kv.get("bad"))
        _refused(lambda: kv.get_many(["bad"]))
        _refused(kv.list)


def test_arithmetic_on_a_damaged_integer_fails_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "kv.db"
    with KVStore(path) as kv:
        kv.set("n", 2**40)
    _damage_value(path, "n")
    with _raw(path) as conn:
        before = conn.execute("SELECT value, checksum, version FROM kvstore_entries").fetchall()
    with KVStore(path) as kv:
        _refused(lambda: kv.atomic().sum("n", 1).commit(), "n")
    with _raw(path) as conn:
        assert conn.execute("SELECT value, checksum, version FROM kvstore_entries").fetchall() == before


def test_a_rewrite_heals_a_damaged_entry(damaged: tuple[Path, KVStore]) -> None:
    _, kv = damaged
    kv.set("bad", "rewritten")
    entry = kv.get("bad")
    assert entry is not None
    assert entry.value == "rewritten"
    assert kv.verify().ok


def test_the_async_store_checks_on_the_loop_and_on_its_threads(damaged: tuple[Path, KVStore]) -> None:
    path, _ = damaged

    async def main() -> None:
        async with AsyncKVStore(path) as kv:
            _refused_async = pytest.raises(CorruptEntryError)
            with _refused_async:
                await kv.get("bad")  # a short get: read and checked on the loop itself
            with pytest.raises(CorruptEntryError):
                await kv.get_many(["bad"])
            with pytest.raises(CorruptEntryError):
                await kv.list()
            good = await kv.get("good")
            assert good is not None
            assert good.value == "fine"

    asyncio.run(main())


def test_the_http_service_answers_a_damaged_entry_with_a_problem(tmp_path: Path) -> None:
    from kvstore.server import create_app

    from .test_server import AUTH, TOKEN, serve

    path = tmp_path / "kv.db"
    app = create_app(path, tokens=[TOKEN])
    with serve(app) as url, httpx.Client(base_url=url, headers=AUTH) as http:
        assert http.put("/kv/user/alice", json={"value": "x" * 64}).status_code in (200, 201)
        assert http.get("/kv/user/alice").status_code == 200
        _damage_value(path, "alice")
        answer = http.get("/kv/user/alice")  # the fast path's GET
    assert answer.status_code == 500
    assert [problem["type"] for problem in answer.json()["errors"]] == ["urn:kvstore:problem:corrupt-entry"]
    assert "x" * 64 not in answer.text


# -- damage the way a disk does it: bytes of a page overwritten ----------------------------------------------------


@given(st.integers(min_value=0, max_value=len(PATTERN) - 64), st.binary(min_size=64, max_size=64))
def test_64_bytes_overwritten_inside_a_page_never_come_back_changed(offset: int, junk: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "kv.db"
        with KVStore(path) as kv:
            kv.set("before", "x")
            kv.set("k", PATTERN)
            kv.set("z", "y")
        data = bytearray(path.read_bytes())
        start = data.find(PATTERN)
        assert start > 0
        assert data.find(PATTERN, start + 1) == -1
        data[start + offset : start + offset + 64] = junk
        path.write_bytes(bytes(data))
        changed = junk != PATTERN[offset : offset + 64]
        with KVStore(path) as kv:
            if changed:
                with pytest.raises(CorruptEntryError) as caught:
                    kv.get("k")
                assert caught.value.key == "k"
                report = kv.verify()
                assert [(entry.key, entry.column) for entry in report.damaged] == [("k", "checksum")]
                assert report.integrity == "ok"  # SQLite's own check sees nothing wrong: only the checksum does
            else:
                entry = kv.get("k")
                assert entry is not None
                assert entry.value == PATTERN
            assert kv.get("before") is not None
            assert kv.get("z") is not None


# -- entries written before there were checksums --------------------------------------------------------------------


def _alembic_upgrade(path: Path, revision: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.cmd_opts = argparse.Namespace(x=[f"url=sqlite:///{path}"])
    command.upgrade(config, revision)


_OLD_INSERT: Final = (
    "INSERT INTO kvstore_entries (namespace, key, value, content_type, metadata, version, created_us, updated_us,"
    " expires_us, ttl_us, refresh_on_access) VALUES ('default', ?, ?, 'application/json', ?, ?, 0, 0, NULL, NULL, 0)"
)


@pytest.mark.parametrize("revision", ["0001", "0002"])
def test_a_store_written_before_checksums_is_upgraded_and_reads_as_before(tmp_path: Path, revision: str) -> None:
    path = tmp_path / "old.db"
    _alembic_upgrade(path, revision)
    with _raw(path) as conn:
        for i in range(3):
            conn.execute(_OLD_INSERT, (f"k{i}", msgpack.packb(i), None if i else '{"m":1}', i + 1))
        conn.execute("UPDATE kvstore_versionstamp SET version = 3")
    with KVStore(path) as kv:
        assert kv.info().schema_revision == HEAD
        assert [entry.value for entry in kv.list().entries] == [0, 1, 2]
        first = kv.get("k0")
        assert first is not None
        assert first.metadata == {"m": 1}
        report = kv.verify()
        assert (report.checked, report.without_checksum, report.damaged_count, report.ok) == (3, 3, 0, True)
        kv.set("k1", "rewritten")
        assert kv.verify().without_checksum == 2
        assert [row[-1] is None for row in _rows(kv)] == [True, False, True]


def test_without_a_checksum_a_bad_content_type_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "kv.db"
    with KVStore(path) as kv:
        kv.set("k", 1)
    with _raw(path) as conn:
        # A blob stays a blob in a TEXT column (SQLite's affinity turns the int 42 into the text '42').
        conn.execute("UPDATE kvstore_entries SET checksum = NULL, content_type = X'3432'")
    with KVStore(path) as kv, pytest.raises(CorruptEntryError) as caught:
        kv.get("k")
    assert caught.value.column == "content_type"


def test_damage_never_escapes_as_anything_but_a_kvstore_error(tmp_path: Path) -> None:
    """A page of random bytes inside the table: every read either answers the truth or raises a KVError."""
    path = tmp_path / "kv.db"
    written = {f"k{i:03}": os.urandom(40) for i in range(300)}
    with KVStore(path) as kv:
        for key, value in written.items():
            kv.set(key, value)
    data = bytearray(path.read_bytes())
    page = 4096
    middle = (len(data) // page // 2) * page
    data[middle : middle + page] = os.urandom(page)
    path.write_bytes(bytes(data))
    try:
        kv = KVStore(path)
    except KVError:
        return  # refusing to open is an answer too
    with kv:
        for key, value in written.items():
            try:
                entry = kv.get(key)
            except KVError:
                continue
            assert entry is None or entry.value == value
        assert not kv.verify().ok
