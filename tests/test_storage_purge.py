"""Purging expired entries: bounded batches, by purge_expired and by auto-purge as writes go on."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvstore import KVStore

from ._storage_support import MIN_TTL_MS, count_entries
from .conftest import FakeClock


def test_purge_expired_deletes_in_bounded_batches(
    db_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with KVStore(db_path, clock=clock, purge_batch_size=10, auto_purge_every=0) as kv:
        for i in range(35):
            ns = kv if i % 2 else kv.namespace("other")
            ns.set(f"gone/{i}", i, expire_in=MIN_TTL_MS)
        for i in range(7):
            kv.set(f"live/{i}", i)
            kv.set(f"later/{i}", i, expire_in=10 * MIN_TTL_MS)
        clock.advance(61)

        batches: list[int] = []
        purge_batch = kv._backend.purge_batch

        def recording(now_us: int, limit: int) -> int:
            assert limit == 10
            deleted = purge_batch(now_us, limit)
            batches.append(deleted)
            return deleted

        monkeypatch.setattr(kv._backend, "purge_batch", recording)
        assert kv.purge_expired() == 35
        assert batches == [10, 10, 10, 5]
        assert count_entries(db_path, f"expires_us <= {round(clock.now * 1_000_000)}") == 0
        assert count_entries(db_path) == 14
        assert kv.list("live/").keys == [f"live/{i}" for i in range(7)]
        assert len(kv.list("later/")) == 7

        batches.clear()
        assert kv.purge_expired() == 0
        assert batches == [0]


def test_purge_of_an_exact_multiple_of_the_batch(db_path: Path, clock: FakeClock) -> None:
    with KVStore(db_path, clock=clock, purge_batch_size=10, auto_purge_every=0) as kv:
        for i in range(30):
            kv.set(f"gone/{i}", i, expire_in=MIN_TTL_MS)
        clock.advance(60)  # expiry is exclusive: at exactly now + TTL the entry is gone
        assert kv.purge_expired() == 30
    assert count_entries(db_path) == 0


def test_auto_purge_removes_expired_rows_as_writes_go_on(db_path: Path, clock: FakeClock) -> None:
    with KVStore(db_path, clock=clock, auto_purge_every=5, purge_batch_size=3) as kv:
        for i in range(10):  # writes 1-10: two purges run, but nothing has expired yet
            kv.set(f"gone/{i}", i, expire_in=MIN_TTL_MS)
        assert count_entries(db_path) == 10
        clock.advance(61)

        remaining = []
        for i in range(20):  # writes 11-30: a purge of at most 3 rows after every fifth
            kv.set(f"live/{i}", i)
            remaining.append(count_entries(db_path, "key LIKE 'gone/%'"))
        assert remaining == [10] * 4 + [7] * 5 + [4] * 5 + [1] * 5 + [0]
        assert len(kv.list("live/")) == 20


def test_auto_purge_off_leaves_rows_for_purge_expired(db_path: Path, clock: FakeClock) -> None:
    with KVStore(db_path, clock=clock, auto_purge_every=0, purge_batch_size=1) as kv:
        for i in range(5):
            kv.set(f"gone/{i}", i, expire_in=MIN_TTL_MS)
        clock.advance(61)
        for i in range(50):
            kv.set(f"live/{i}", i)
        assert count_entries(db_path, "key LIKE 'gone/%'") == 5
        assert kv.purge_expired() == 5
        assert count_entries(db_path, "key LIKE 'gone/%'") == 0
