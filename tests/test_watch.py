"""watch(): snapshots now and on every change, from this process or another."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from kvstore import Entry, InvalidKeyError, InvalidOptionsError, KVStore, Value, Watch

from .conftest import FakeClock


def _values(snapshot: Sequence[Entry | None]) -> list[Value]:
    return [None if entry is None else entry.value for entry in snapshot]


def test_first_snapshot_comes_at_once(kv: KVStore) -> None:
    kv.set("a", 1)
    with kv.watch(["a", "b"]) as watch:
        assert isinstance(watch, Watch)
        first = next(watch)
        assert _values(first) == [1, None]
        assert first[0] is not None
        assert first[0] == kv.get("a")


def test_a_write_through_the_store_yields_a_snapshot(kv: KVStore) -> None:
    with kv.watch(["a", "b"]) as watch:
        next(watch)
        stamp = kv.set("b", 2).versionstamp
        snapshot = next(watch)
        assert _values(snapshot) == [None, 2]
        assert snapshot[1] is not None
        assert snapshot[1].versionstamp == stamp
        kv.set("b", 2)  # same value, new versionstamp: a change
        assert _values(next(watch)) == [None, 2]
        kv.delete("b")
        assert _values(next(watch)) == [None, None]


def test_changes_elsewhere_yield_nothing(kv: KVStore) -> None:
    with kv.watch(["a"]) as watch:
        next(watch)
        kv.set("unwatched", 1)
        kv.namespace("other").set("a", "other namespace")
        # The re-read those commits trigger finds the watched versionstamps unchanged: no snapshot.
        assert watch._read(kv._shared.now_us()) is None
        kv.set("a", "mine")
        assert _values(next(watch)) == ["mine"]


def test_atomic_and_delete_prefix_wake_watchers(kv: KVStore) -> None:
    with kv.watch(["n", "p/1"]) as watch:
        next(watch)
        kv.atomic().sum("n", 3).set("p/1", "x").commit()
        assert _values(next(watch)) == [3, "x"]
        kv.delete_prefix("p/")
        assert _values(next(watch)) == [3, None]


def test_a_commit_from_another_process_is_seen(shared_target: str) -> None:
    with KVStore(shared_target) as kv:
        kv.set("k", "before")
        with kv.watch(["k"], interval=0.01) as watch:
            assert _values(next(watch)) == ["before"]
            script = "import sys; from kvstore import KVStore; KVStore(sys.argv[1]).set('k', 'from another process')"
            subprocess.run([sys.executable, "-c", script, shared_target], check=True)
            assert _values(next(watch)) == ["from another process"]


def test_a_commit_from_another_store_object_in_this_process_is_seen(shared_target: str) -> None:
    with (
        KVStore(shared_target) as kv,
        KVStore(shared_target) as other,
        kv.watch(["k"], interval=0.01) as watch,
    ):
        next(watch)
        other.set("k", 1)
        assert _values(next(watch)) == [1]


def test_expiry_yields_a_snapshot(kv: KVStore, clock: FakeClock) -> None:
    kv.set("k", 1, expire_in=60_000)
    with kv.watch(["k"], interval=0.01) as watch:
        assert _values(next(watch)) == [1]
        clock.advance(60)
        assert _values(next(watch)) == [None]


def test_watching_does_not_refresh(kv: KVStore, clock: FakeClock) -> None:
    result = kv.set("k", 1, expire_in=60_000, refresh_on_access=True)
    with kv.watch(["k"]) as watch:
        snapshot = next(watch)
        assert snapshot[0] is not None
        assert snapshot[0].expires_at == result.expires_at
    clock.advance(60)
    assert kv.get("k") is None


def test_close_ends_a_waiting_iteration(kv: KVStore) -> None:
    watch = kv.watch(["k"])
    next(watch)
    outcome: list[str] = []
    started = threading.Event()

    def consume() -> None:
        started.set()
        for _ in watch:
            outcome.append("snapshot")
        outcome.append("ended")

    thread = threading.Thread(target=consume)
    thread.start()
    started.wait()
    watch.close()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert outcome == ["ended"]
    with pytest.raises(StopIteration):
        next(watch)


def test_closing_the_store_ends_watches(db_path: Path) -> None:
    kv = KVStore(db_path)
    watch = kv.watch(["k"])
    next(watch)
    kv.close()
    with pytest.raises(StopIteration):
        next(watch)


@pytest.mark.parametrize("interval", [0, -1, float("nan"), "1", 10_000])
def test_interval_must_be_sensible(kv: KVStore, interval: object) -> None:
    with pytest.raises(InvalidOptionsError, match="interval"):
        kv.watch(["k"], interval=interval)  # type: ignore[arg-type]


def test_keys_are_validated(kv: KVStore) -> None:
    with pytest.raises(InvalidKeyError):
        kv.watch(["ok", "not ok"])
    with pytest.raises(InvalidOptionsError):
        kv.watch("k")
