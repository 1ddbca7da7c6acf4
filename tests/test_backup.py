"""``kv.backup(target)``: a consistent copy, made while writers go on, into a new SQLite file that opens as a store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kvstore import InvalidOptionsError, KVStore, StoreClosedError, StoreUnavailableError
from kvstore._backends.sqlite import backup as sqlite_copies

from .conftest import FakeClock


def _every_entry(kv: KVStore, namespaces: tuple[str, ...] = ("default", "users")) -> list[object]:
    return [(name, list(kv.namespace(name).iterate())) for name in namespaces]


def test_a_backup_opens_as_a_store_holding_every_entry(kv: KVStore, clock: FakeClock, tmp_path: Path) -> None:
    kv.set("products/1", {"name": "lamp"}, metadata={"v": 1})
    kv.set("blob", b"\x00\xff", content_type="application/x-thing")
    kv.set("soon", 1, expire_in=60_000, refresh_on_access=True)
    kv.namespace("users").set("ada", "Ada")
    kv.set("gone", 1, expire_in=60_000)
    clock.advance(30)
    kv.set("later", 2)
    steps: list[tuple[int, int]] = []
    target = tmp_path / "backup.db"
    kv.backup(target, progress=lambda done, total: steps.append((done, total)))
    assert steps
    assert steps[-1][0] == steps[-1][1]  # the last report: all done
    with KVStore(target, clock=clock) as copy:
        assert _every_entry(copy) == _every_entry(kv)  # versionstamps and times included
        last = max(entry.versionstamp for entry in kv.iterate())
        written = copy.set("new", 1).versionstamp
        assert written is not None
        assert written > last  # the copy's writes go on above what it holds
        assert copy.get("soon") is not None  # read at 30 s, so refreshed to expire at 90 s
        clock.advance(31)
        assert copy.get("gone") is None  # the copy keeps the expiries
        assert copy.get("soon") is not None  # and the refresh on access
    assert not _partial_files(tmp_path)  # no temporary file left beside it


def _partial_files(directory: Path) -> list[str]:
    return [name for name in os.listdir(directory) if name.endswith(".partial") or ".partial-" in name]


def test_a_backup_is_one_snapshot_while_a_writer_goes_on(
    shared_target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between two steps of the copy another store object overwrites, adds and deletes entries; each write
    commits at once, and the copy holds the database as it was when the backup began."""
    monkeypatch.setattr(sqlite_copies, "STEP_PAGES", 2)  # an SQLite backup: many small steps
    monkeypatch.setattr(sqlite_copies, "WRITE_ROWS", 2)  # a PostgreSQL one: rows written a few at a time
    with KVStore(shared_target) as kv, KVStore(shared_target) as writer:
        with kv.atomic() as op:
            for i in range(40):
                op.set(f"k/{i:02d}", {"i": i, "pad": "x" * 2000})
        before = list(kv.iterate())
        written: list[str] = []

        def write_meanwhile(done: int, total: int) -> None:
            if done < total:
                step = len(written)
                assert writer.set(f"k/{step:02d}", "changed").committed
                assert writer.set(f"new/{step:02d}", "new").committed
                assert writer.delete(f"k/{39 - step:02d}")
                written.append(f"k/{step:02d}")

        kv.backup(tmp_path / "copy.db", progress=write_meanwhile)
        assert len(written) >= 3  # the writer went on, and committed, while the copy was made
        with KVStore(tmp_path / "copy.db") as copy:
            assert list(copy.iterate()) == before
        assert kv.get(written[0]) is not None
        assert kv.get(written[0]).value == "changed"  # type: ignore[union-attr]


def test_a_backup_goes_to_a_new_sqlite_file_only(kv: KVStore, tmp_path: Path) -> None:
    kv.set("k", 1)
    existing = tmp_path / "existing.db"
    existing.write_bytes(b"keep me")
    with pytest.raises(InvalidOptionsError, match="exists"):
        kv.backup(existing)
    assert existing.read_bytes() == b"keep me"
    for target in (":memory:", "postgresql://app@db.internal/app"):
        with pytest.raises(InvalidOptionsError, match="new SQLite file"):
            kv.backup(target)
    with pytest.raises(StoreUnavailableError, match="directory"):
        kv.backup(tmp_path / "no" / "such" / "dir.db")
    assert not _partial_files(tmp_path)


def test_a_failed_backup_leaves_no_file(kv: KVStore, tmp_path: Path) -> None:
    kv.set("k", 1)
    target = tmp_path / "copy.db"

    class Stop(Exception):
        pass

    def stop(done: int, total: int) -> None:
        raise Stop

    with pytest.raises(Stop):
        kv.backup(target, progress=stop)
    assert not target.exists()
    assert not _partial_files(tmp_path)  # nor its temporary file
    kv.backup(target)  # and the name is free for the next attempt
    with KVStore(target) as copy:
        assert copy.get("k") is not None


def test_a_closed_store_makes_no_backup(kv: KVStore, tmp_path: Path) -> None:
    kv.close()
    with pytest.raises(StoreClosedError):
        kv.backup(tmp_path / "copy.db")
    assert not (tmp_path / "copy.db").exists()
