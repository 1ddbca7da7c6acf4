"""kv.checkpoint(): SQLite's four modes and what they report, the no-op where there is no WAL of kvstore's,
the async twin and the command; and the WAL bounds a connection gets for the disk it is on."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, Literal

import pytest

from kvstore import AsyncKVStore, CheckpointResult, InvalidOptionsError, KVStore, StorageError
from kvstore._backends.sqlite import space

from .conftest import FakeClock, sqlite_connection, store_target
from .test_cli import run

Mode = Literal["passive", "full", "restart", "truncate"]
MODES: tuple[Mode, ...] = ("passive", "full", "restart", "truncate")


def _wal(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def _hold_the_wal(kv: KVStore) -> None:
    """No automatic checkpoint on this connection: the WAL keeps every frame until asked."""
    sqlite_connection(kv).execute("PRAGMA wal_autocheckpoint = 0")


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_reports_what_sqlite_checkpointed(db_path: Path, clock: FakeClock, mode: Mode) -> None:
    with KVStore(db_path, clock=clock) as kv:
        _hold_the_wal(kv)
        for n in range(30):
            kv.set(f"k{n}", os.urandom(2000))
        result = kv.checkpoint(mode)
        assert isinstance(result, CheckpointResult)
        assert result._asdict() == {"busy": False, "wal_frames": result.wal_frames, "checkpointed": result.checkpointed}
        assert result.busy is False
        if mode == "truncate":
            assert (result.wal_frames, result.checkpointed) == (0, 0)  # SQLite reports the emptied WAL
            assert _wal(db_path) == 0
        else:
            assert result.wal_frames >= 30  # at least a frame a commit
            assert result.checkpointed == result.wal_frames
        for n in range(30):
            assert kv.get(f"k{n}") is not None


def test_passive_is_the_default_and_a_reader_keeps_frames_from_being_checkpointed(db_path: Path) -> None:
    with KVStore(db_path) as kv, KVStore(db_path) as reader:
        _hold_the_wal(kv)
        kv.set("a", 1)
        conn = sqlite_connection(reader)
        conn.execute("BEGIN")
        assert conn.execute("SELECT count(*) FROM kvstore_entries").fetchone()[0] == 1  # a snapshot at "a"
        kv.set("b", os.urandom(3000))
        held = kv.checkpoint()
        assert held.wal_frames > held.checkpointed  # the frames after the reader's snapshot wait for it
        conn.execute("COMMIT")
        assert kv.checkpoint("full").checkpointed == kv.checkpoint("passive").wal_frames


def test_truncate_gives_the_wal_files_space_back(db_path: Path) -> None:
    with KVStore(db_path) as kv:
        _hold_the_wal(kv)
        for n in range(50):
            kv.set(f"k{n}", os.urandom(4000))
        grown = _wal(db_path)
        assert grown > 50 * 4000
        assert kv.checkpoint("passive").wal_frames > 0
        assert _wal(db_path) == grown  # a passive checkpoint leaves the file at its size
        kv.checkpoint("truncate")
        assert _wal(db_path) == 0
        assert kv.set("after", 1).committed


@pytest.mark.parametrize("kind", ["memory", "postgres"])
def test_memory_and_postgresql_have_nothing_to_checkpoint(
    request: pytest.FixtureRequest, db_path: Path, kind: str
) -> None:
    with KVStore(store_target(request, kind, db_path)) as kv:
        kv.set("k", 1)
        assert [kv.checkpoint(mode) for mode in MODES] == [CheckpointResult(False, 0, 0)] * 4
        entry = kv.get("k")
        assert entry is not None


@pytest.mark.parametrize("mode", ["", "PASSIVE", "wal", None, 1, "truncate; DROP TABLE x", "x" * 10_000])
def test_a_mode_that_is_not_one_of_sqlites_is_refused(sqlite_kv: KVStore, mode: Any) -> None:
    sqlite_kv.set("k", 1)
    with pytest.raises(InvalidOptionsError, match="passive, full, restart, truncate") as caught:
        sqlite_kv.checkpoint(mode)
    assert len(caught.value.detail) < 200  # a huge argument is not repeated whole
    entry = sqlite_kv.get("k")
    assert entry is not None
    assert entry.value == 1


def test_a_checkpoint_inside_a_write_batch_is_refused_clearly(db_path: Path) -> None:
    from kvstore._group import write_batch

    with KVStore(db_path) as kv:
        with write_batch(kv):
            kv.set("k", 1)
            with pytest.raises(StorageError):  # its open transaction keeps the WAL from being checkpointed
                kv.checkpoint("truncate")
        entry = kv.get("k")
        assert entry is not None


def test_the_async_twin_checkpoints_the_same_way(db_path: Path) -> None:
    async def main() -> tuple[CheckpointResult, int]:
        async with AsyncKVStore(db_path) as kv:
            for n in range(20):
                await kv.set(f"k{n}", os.urandom(3000))
            result = await kv.checkpoint("truncate")
            return result, _wal(db_path)

    result, wal = asyncio.run(main())
    assert result == CheckpointResult(False, 0, 0)
    assert wal == 0


def test_the_checkpoint_command_prints_the_result(db_path: Path) -> None:
    with KVStore(db_path) as kv:
        kv.set("k", os.urandom(5000))
    done = run("checkpoint", "--db", str(db_path), "--mode", "truncate")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {"busy": False, "wal_frames": 0, "checkpointed": 0}
    assert _wal(db_path) == 0
    refused = run("checkpoint", "--db", str(db_path), "--mode", "sideways")
    assert refused.exit_code == 2


def test_a_connection_on_a_big_disk_keeps_sqlites_wal_bounds(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    free = 1 << 40
    monkeypatch.setattr(space, "_free", lambda path: free)
    with KVStore(db_path) as kv:
        conn = sqlite_connection(kv)
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
        assert conn.execute("PRAGMA journal_size_limit").fetchone()[0] == 64 * 1024 * 1024
        limit = conn.execute("PRAGMA max_page_count").fetchone()[0]
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        assert limit * page > free * 0.99  # the reserve is small beside the disk


def test_on_a_small_disk_the_wal_is_bounded_by_its_share_of_the_free_space(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a connection gets where 2 MiB are free."""
    free = 2 * 1024 * 1024
    monkeypatch.setattr(space, "_free", lambda path: free)
    with KVStore(db_path) as kv:
        conn = sqlite_connection(kv)
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        assert pages * page <= free // 16 or pages == 16
        assert conn.execute("PRAGMA journal_size_limit").fetchone()[0] <= max(free // 16, pages * page)
        limit = conn.execute("PRAGMA max_page_count").fetchone()[0]
        assert limit * page < os.path.getsize(db_path) + free  # a reserve is kept for deletes and checkpoints
