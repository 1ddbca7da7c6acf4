"""``kv.verify()`` and ``kvstore check``: a scan of a whole store that reports damage and repairs nothing."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvstore import DamagedEntry, InvalidOptionsError, KVStore, VerifyReport
from kvstore.cli import main


def _damage(path: Path, key: str) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        (blob,) = conn.execute("SELECT value FROM kvstore_entries WHERE key = ?", (key,)).fetchone()
        conn.execute("UPDATE kvstore_entries SET value = ? WHERE key = ?", (blob[:-1] + bytes([blob[-1] ^ 1]), key))


def test_a_sound_store_verifies_ok(kv: KVStore) -> None:
    for i in range(25):
        kv.set(f"k{i}", {"i": i}, metadata={"n": i} if i % 2 else None)
    kv.namespace("other").set("x", b"bytes")
    calls: list[tuple[int, int]] = []
    report = kv.verify(progress=lambda done, total: calls.append((done, total)))
    assert isinstance(report, VerifyReport)
    assert (report.checked, report.damaged, report.damaged_count, report.without_checksum) == (26, (), 0, 0)
    assert report.scan_error is None
    assert report.ok
    assert calls[-1] == (26, 26)
    if kv.info().target.startswith("postgresql"):
        assert report.integrity is None  # PostgreSQL checks its own pages as it reads them
    else:
        assert report.integrity == "ok"
    assert kv.verify(quick=True).ok


def test_verify_names_each_damaged_entry_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "kv.db"
    with KVStore(path) as kv:
        for key in ("a", "b", "c", "d"):
            kv.set(key, key * 10)
    _damage(path, "b")
    _damage(path, "d")
    before = path.read_bytes()
    with KVStore(path) as kv:
        report = kv.verify()
        assert report.damaged == (
            DamagedEntry("default", "b", "checksum", report.damaged[0].problem),
            DamagedEntry("default", "d", "checksum", report.damaged[1].problem),
        )
        assert "checksum" in report.damaged[0].problem
        assert (report.checked, report.damaged_count, report.ok) == (4, 2, False)
        assert report.integrity == "ok"
    assert path.read_bytes() == before


def test_verify_counts_expired_entries_too(kv: KVStore, clock: object) -> None:
    kv.set("short", 1, expire_in=60_000)
    kv.set("long", 2)
    clock.advance(120)  # type: ignore[attr-defined]
    assert kv.verify().checked == 2  # an expired row not yet purged is still bytes on disk


def test_verify_refuses_a_quick_that_is_not_a_bool(kv: KVStore) -> None:
    with pytest.raises(InvalidOptionsError):
        kv.verify(quick="yes")  # type: ignore[arg-type]


def test_the_check_command_reports_and_exits_by_the_contract(tmp_path: Path) -> None:
    path = tmp_path / "kv.db"
    with KVStore(path) as kv:
        kv.set("a", "fine")
        kv.set("b", "soon damaged")
    runner = CliRunner()
    sound = runner.invoke(main, ["check", "--db", str(path)])
    assert sound.exit_code == 0, sound.output
    assert json.loads(sound.stdout)["ok"] is True

    _damage(path, "b")
    damaged = runner.invoke(main, ["check", "--db", str(path)])
    assert damaged.exit_code == 1
    report = json.loads(damaged.stdout)
    assert (report["ok"], report["damaged_count"], report["checked"]) == (False, 1, 2)
    assert [(entry["key"], entry["column"]) for entry in report["damaged"]] == [("b", "checksum")]
    problem = json.loads(damaged.stderr)["errors"][0]
    assert problem["type"] == "urn:kvstore:problem:corrupt-entry"
    assert "1 of 2 entries" in problem["detail"]


def test_the_async_store_verifies_too(tmp_path: Path) -> None:
    import asyncio

    from kvstore import AsyncKVStore

    path = tmp_path / "kv.db"
    with KVStore(path) as kv:
        kv.set("a", 1)
    _damage(path, "a")

    async def main_() -> VerifyReport:
        async with AsyncKVStore(path) as kv:
            report: VerifyReport = await kv.verify()
            return report

    report = asyncio.run(main_())
    assert [entry.key for entry in report.damaged] == ["a"]
