"""set: versionstamps, conditions, the overwrite policy, contradictions, and whole-entry replacement."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kvstore import InvalidOptionsError, InvalidVersionstampError, KVStore, SetResult, ValidationError

from .conftest import FakeClock

STAMP = re.compile(r"[0-9a-f]{20}")


def _committed(result: SetResult) -> str:
    assert result.ok
    assert result.committed
    assert result.versionstamp is not None
    return result.versionstamp


def test_versionstamp_is_20_lowercase_hex_and_strictly_grows(kv: KVStore) -> None:
    stamps = [_committed(kv.set("k", "same")) for _ in range(5)]
    stamps.append(_committed(kv.set("other", 1)))
    stamps.append(_committed(kv.namespace("ns").set("k", 1)))
    assert all(STAMP.fullmatch(stamp) for stamp in stamps)
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)


def test_versionstamps_keep_growing_after_reopen_and_deletes(shared_target: str) -> None:
    with KVStore(shared_target) as kv:
        first = _committed(kv.set("k", 1))
        kv.delete("k")
    with KVStore(shared_target) as kv:
        assert _committed(kv.set("k", 1)) > first


def test_failed_and_noop_writes_draw_no_versionstamp(kv: KVStore) -> None:
    first = _committed(kv.set("k", 1))
    assert not kv.set("k", 2, if_not_exists=True).ok
    assert not kv.set("k", 2, if_versionstamp="0" * 20).ok
    assert not kv.set("k", 2, overwrite=False).committed
    assert kv.delete("missing") is False
    assert not kv.delete("k", if_versionstamp="f" * 20)
    second = _committed(kv.set("k", 3))
    # Versionstamps are consecutive commit counters: nothing in between consumed one.
    assert int(second[:16], 16) == int(first[:16], 16) + 1


def test_set_result_fields(kv: KVStore, clock: FakeClock) -> None:
    result = kv.set("products/1", {"n": 1}, expire_in=60_000)
    assert result.ok
    assert result.committed
    assert result.created
    assert result.key == "products/1"
    assert result.content_type == "application/json"
    assert result.size_bytes == 4
    assert result.expires_at == datetime.fromtimestamp(clock.now, UTC) + timedelta(seconds=60)
    assert result.expires_at is not None
    assert result.expires_at.tzinfo is not None


def test_created_is_true_only_without_a_live_entry(kv: KVStore, clock: FakeClock) -> None:
    assert kv.set("k", 1).created
    assert not kv.set("k", 2).created
    kv.delete("k")
    assert kv.set("k", 3, expire_in=60_000).created
    clock.advance(60)
    assert kv.set("k", 4).created  # the previous entry expired


def test_if_versionstamp_commits_only_on_a_match(kv: KVStore) -> None:
    stamp = _committed(kv.set("k", 1))
    newer = _committed(kv.set("k", 2, if_versionstamp=stamp))
    stale = kv.set("k", 3, if_versionstamp=stamp)
    assert (stale.ok, stale.committed, stale.versionstamp, stale.created) == (False, False, newer, False)
    entry = kv.get("k")
    assert entry is not None
    assert (entry.value, entry.versionstamp) == (2, newer)


def test_if_versionstamp_on_a_missing_key_fails_with_none(kv: KVStore) -> None:
    result = kv.set("k", 1, if_versionstamp="0" * 20)
    assert (result.ok, result.committed, result.versionstamp) == (False, False, None)
    assert kv.get("k") is None


def test_if_not_exists(kv: KVStore) -> None:
    first = kv.set("k", 1, if_not_exists=True)
    assert (first.ok, first.committed, first.created) == (True, True, True)
    again = kv.set("k", 2, if_not_exists=True)
    assert (again.ok, again.committed, again.versionstamp, again.created) == (False, False, first.versionstamp, False)
    entry = kv.get("k")
    assert entry is not None
    assert entry.value == 1


def test_overwrite_false_is_a_policy_not_a_failure(kv: KVStore) -> None:
    first = kv.set("k", 1, overwrite=False)
    assert (first.ok, first.committed, first.created) == (True, True, True)
    kept = kv.set("k", 2, overwrite=False)
    assert (kept.ok, kept.committed, kept.versionstamp, kept.created) == (True, False, first.versionstamp, False)
    entry = kv.get("k")
    assert entry is not None
    assert entry.value == 1


def test_if_not_exists_with_overwrite_false_reports_the_failed_check(kv: KVStore) -> None:
    stamp = _committed(kv.set("k", 1))
    result = kv.set("k", 2, if_not_exists=True, overwrite=False)
    assert (result.ok, result.committed, result.versionstamp) == (False, False, stamp)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"if_versionstamp": "0" * 20, "if_not_exists": True}, "if_versionstamp and if_not_exists"),
        ({"if_versionstamp": "0" * 20, "overwrite": False}, "overwrite=False and if_versionstamp"),
        ({"expire_in": 60_000, "expire_at": datetime(2030, 1, 1, tzinfo=UTC)}, "expire_in and expire_at"),
        ({"refresh_on_access": True}, "refresh_on_access needs a TTL"),
    ],
)
def test_contradictory_options_raise_and_write_nothing(kv: KVStore, options: dict[str, object], message: str) -> None:
    stamp = _committed(kv.set("k", "before"))
    with pytest.raises(InvalidOptionsError, match=message):
        kv.set("k", "after", **options)  # type: ignore[arg-type]
    entry = kv.get("k")
    assert entry is not None
    assert (entry.value, entry.versionstamp) == ("before", stamp)


@pytest.mark.parametrize(
    "options",
    [{"if_not_exists": 1}, {"overwrite": "no"}, {"refresh_on_access": None}, {"if_not_exists": None}],
    ids=repr,
)
def test_flags_must_be_bools(kv: KVStore, options: dict[str, object]) -> None:
    with pytest.raises(InvalidOptionsError, match="must be a bool"):
        kv.set("k", 1, **options)  # type: ignore[arg-type]
    assert kv.get("k") is None


@pytest.mark.parametrize("stamp", ["", "0" * 19, "0" * 21, "A" * 20, "g" * 20, 5, b"0" * 20])
def test_malformed_versionstamps_are_rejected(kv: KVStore, stamp: object) -> None:
    kv.set("k", 1)
    with pytest.raises(InvalidVersionstampError):
        kv.set("k", 2, if_versionstamp=stamp)  # type: ignore[arg-type]
    with pytest.raises(InvalidVersionstampError):
        kv.delete("k", if_versionstamp=stamp)  # type: ignore[arg-type]
    entry = kv.get("k")
    assert entry is not None
    assert entry.value == 1


def test_set_replaces_the_whole_entry(kv: KVStore, clock: FakeClock) -> None:
    kv.set("k", b"v1", expire_in=120_000, metadata={"a": 1}, content_type="image/png", refresh_on_access=True)
    created = kv.get("k")
    assert created is not None
    clock.advance(10)
    kv.set("k", "v2")
    entry = kv.get("k")
    assert entry is not None
    assert entry.value == "v2"
    assert entry.metadata == {}
    assert entry.expires_at is None  # a set without a TTL makes the entry permanent
    assert entry.content_type == "text/plain; charset=utf-8"
    assert entry.created_at == created.created_at
    assert entry.updated_at == created.updated_at + timedelta(seconds=10)
    clock.advance(365 * 86400)
    assert kv.get("k") is not None


def test_validation_happens_before_anything_is_written(kv: KVStore) -> None:
    """A call with one bad part writes nothing at all, whichever part is bad."""
    stamp = _committed(kv.set("k", 1))
    bad_calls: list[dict[str, object]] = [
        {"value": {1}},
        {"value": 2, "metadata": {"x": {1}}},
        {"value": 2, "content_type": "nope"},
        {"value": 2, "expire_in": 1},
    ]
    for call in bad_calls:
        with pytest.raises(ValidationError):
            kv.set("k", **call)  # type: ignore[arg-type]
    entry = kv.get("k")
    assert entry is not None
    assert (entry.value, entry.versionstamp) == (1, stamp)
    assert _committed(kv.set("j", 1)) > stamp


def test_a_block_reserved_by_a_rolled_back_transaction_is_nobody_s(tmp_path: Path) -> None:
    """A transaction that reserved a block and then rolled back leaves the counter, and so the other
    writer's block, as they were: that writer goes on by one, and the next reservation starts past it."""
    path = tmp_path / "kv.db"
    with KVStore(path) as first, KVStore(path) as second:
        a = int(_committed(first.set("a", 1))[:16], 16)
        failed = second.atomic().set("x", 1).set("n", "text").sum("n", 1)
        with pytest.raises(ValidationError):
            failed.commit()  # drew a versionstamp (reserving a block) before the sum failed
        b = int(_committed(first.set("b", 2))[:16], 16)
        c = int(_committed(second.set("c", 3))[:16], 16)
        d = int(_committed(second.set("d", 4))[:16], 16)
        assert second.get("x") is None
    assert b == a + 1
    assert c > b + 1
    assert d == c + 1


def test_writers_taking_turns_on_one_file_draw_increasing_versionstamps(tmp_path: Path) -> None:
    """Each connection draws from a block of the counter: while no other writer comes between, its
    versionstamps follow on by one (a rolled-back transaction leaves no gap); a writer taking over jumps
    past the other's block. So versionstamps increase in commit order and are never reused."""
    path = tmp_path / "kv.db"
    writers: list[str] = []
    stamps: list[str] = []
    with KVStore(path) as first, KVStore(path) as second:
        for i in range(12):
            writers.append("first" if i % 3 else "second")
            stamps.append(_committed((first if i % 3 else second).set(f"k{i % 4}", i)))
        failed = first.atomic().set("x", 1).sum("k1", 1).set("k1", "text").sum("k1", 1)
        with pytest.raises(ValidationError):
            failed.commit()  # rolled back after drawing a version
        for writer, store in [("first", first), ("first", first), ("second", second), ("first", first)]:
            writers.append(writer)
            stamps.append(_committed(store.set("y", len(stamps))))
    numbers = [int(stamp[:16], 16) for stamp in stamps]
    for i in range(1, len(numbers)):
        if writers[i] == writers[i - 1]:
            assert numbers[i] == numbers[i - 1] + 1, (i, numbers)
        else:
            assert numbers[i] > numbers[i - 1] + 1, (i, numbers)  # past the other writer's block
    with closing(sqlite3.connect(path)) as raw:
        (counter,) = raw.execute("SELECT version FROM kvstore_versionstamp").fetchone()
    assert counter >= numbers[-1]  # the counter covers every versionstamp handed out
