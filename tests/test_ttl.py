"""Expiry: TTL bounds at their exact edges, expired entries absent everywhere, refresh on access."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from kvstore import InvalidTTLError, KVStore, StoreBusyError

from .conftest import FakeClock, Stores

MIN_MS = 60_000
MAX_MS = 31_536_000_000


def _now(clock: FakeClock) -> datetime:
    return datetime.fromtimestamp(clock.now, UTC)


@pytest.mark.parametrize("expire_in", [MIN_MS, MAX_MS, 60_000.5, 1_000_000])
def test_expire_in_accepted(kv: KVStore, clock: FakeClock, expire_in: float) -> None:
    result = kv.set("k", 1, expire_in=expire_in)
    assert result.expires_at == _now(clock) + timedelta(milliseconds=expire_in)
    entry = kv.get("k")
    assert entry is not None
    assert entry.expires_at == result.expires_at


@pytest.mark.parametrize(
    "expire_in", [MIN_MS - 1, MAX_MS + 1, 59_999.999, 0, -60_000, float("inf"), float("nan"), 10**400, -(10**400)]
)
def test_expire_in_rejected_naming_the_bound(kv: KVStore, expire_in: float) -> None:
    with pytest.raises(InvalidTTLError, match="between 60000 and 31536000000 milliseconds"):
        kv.set("k", 1, expire_in=expire_in)
    assert kv.get("k") is None


@pytest.mark.parametrize("expire_in", [True, "60000", [60_000]], ids=repr)
def test_expire_in_must_be_a_number(kv: KVStore, expire_in: object) -> None:
    with pytest.raises(InvalidTTLError, match="number of milliseconds"):
        kv.set("k", 1, expire_in=expire_in)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "delta",
    [timedelta(seconds=60), timedelta(days=365), timedelta(hours=1)],
    ids=["now+60s", "now+1y", "now+1h"],
)
def test_expire_at_accepted(kv: KVStore, clock: FakeClock, delta: timedelta) -> None:
    expire_at = _now(clock) + delta
    assert kv.set("k", 1, expire_at=expire_at).expires_at == expire_at


@pytest.mark.parametrize(
    "delta",
    [
        timedelta(seconds=60) - timedelta(microseconds=1),
        timedelta(days=365, microseconds=1),
        timedelta(0),
        -timedelta(1),
    ],
    ids=["just-under-60s", "just-over-1y", "now", "past"],
)
def test_expire_at_rejected_naming_the_bound(kv: KVStore, clock: FakeClock, delta: timedelta) -> None:
    with pytest.raises(InvalidTTLError, match="between now \\+ 60 s and now \\+ 365 days"):
        kv.set("k", 1, expire_at=_now(clock) + delta)
    assert kv.get("k") is None


def test_expire_at_in_another_timezone_is_the_same_instant(kv: KVStore, clock: FakeClock) -> None:
    tokyo = timezone(timedelta(hours=9))
    expire_at = (_now(clock) + timedelta(minutes=5)).astimezone(tokyo)
    result = kv.set("k", 1, expire_at=expire_at)
    assert result.expires_at == expire_at
    assert result.expires_at is not None
    assert result.expires_at.utcoffset() == timedelta(0)


def test_naive_expire_at_is_rejected(kv: KVStore, clock: FakeClock) -> None:
    naive = datetime.fromtimestamp(clock.now + 3600, UTC).replace(tzinfo=None)
    with pytest.raises(InvalidTTLError, match="timezone-aware"):
        kv.set("k", 1, expire_at=naive)


def test_expire_at_must_be_a_datetime(kv: KVStore) -> None:
    with pytest.raises(InvalidTTLError, match="datetime"):
        kv.set("k", 1, expire_at="2030-01-01T00:00:00Z")  # type: ignore[arg-type]


def test_expired_entries_are_absent_to_every_operation_before_any_purge(kv: KVStore, clock: FakeClock) -> None:
    stamp = kv.set("k", "old", expire_in=MIN_MS).versionstamp
    assert stamp is not None
    clock.advance(59.999)
    assert kv.get("k") is not None  # still live a millisecond before expiry
    clock.advance(0.001)  # expiry == now: no longer "later than now"
    assert kv.get("k") is None
    assert kv.get_many(["k"]) == [None]
    assert kv.list().entries == []
    assert kv.delete("k") is False
    assert kv.delete("k", if_versionstamp=stamp) is False
    failed = kv.set("k", "new", if_versionstamp=stamp)
    assert (failed.ok, failed.versionstamp) == (False, None)
    assert kv.set("k", "new", overwrite=False).committed
    assert kv.set("j", 1, expire_in=MIN_MS).committed
    clock.advance(60)
    assert kv.set("j", 2, if_not_exists=True).committed


def test_a_set_without_ttl_makes_an_entry_permanent(kv: KVStore, clock: FakeClock) -> None:
    kv.set("k", 1, expire_in=MIN_MS)
    kv.set("k", 2)
    clock.advance(10 * 365 * 86400)
    entry = kv.get("k")
    assert entry is not None
    assert (entry.value, entry.expires_at) == (2, None)


def test_refresh_on_access_extends_by_the_original_ttl(kv: KVStore, clock: FakeClock) -> None:
    stamp = kv.set("k", 1, expire_in=100_000, refresh_on_access=True).versionstamp
    for _ in range(5):
        clock.advance(90)  # each read comes before the previous expiry
        entry = kv.get("k")
        assert entry is not None
        assert entry.expires_at == _now(clock) + timedelta(seconds=100)
        assert entry.versionstamp == stamp
    clock.advance(100)
    assert kv.get("k") is None  # unread for a whole TTL: gone


def test_refresh_with_expire_at_uses_the_ttl_it_implied(kv: KVStore, clock: FakeClock) -> None:
    kv.set("k", 1, expire_at=_now(clock) + timedelta(minutes=2), refresh_on_access=True)
    clock.advance(100)
    entry = kv.get("k")
    assert entry is not None
    assert entry.expires_at == _now(clock) + timedelta(minutes=2)


def test_get_many_refreshes_and_list_does_not(kv: KVStore, clock: FakeClock) -> None:
    kv.set("a", 1, expire_in=100_000, refresh_on_access=True)
    kv.set("b", 2, expire_in=100_000, refresh_on_access=True)
    clock.advance(50)
    listed = kv.list()
    assert [entry.expires_at for entry in listed] == [_now(clock) + timedelta(seconds=50)] * 2
    a, b = kv.get_many(["a", "b"])
    assert a is not None
    assert b is not None
    assert a.expires_at == b.expires_at == _now(clock) + timedelta(seconds=100)
    assert kv.get("a") is not None


def test_without_refresh_reads_do_not_extend(kv: KVStore, clock: FakeClock) -> None:
    result = kv.set("k", 1, expire_in=MIN_MS)
    clock.advance(30)
    entry = kv.get("k")
    assert entry is not None
    assert entry.expires_at == result.expires_at
    clock.advance(30)
    assert kv.get("k") is None


def test_purge_expired_removes_only_expired_entries(kv: KVStore, clock: FakeClock) -> None:
    for i in range(5):
        kv.set(f"short/{i}", i, expire_in=MIN_MS)
    kv.set("long", 1, expire_in=MAX_MS)
    kv.set("forever", 1)
    kv.namespace("other").set("short", 1, expire_in=MIN_MS)
    assert kv.purge_expired() == 0
    clock.advance(60)
    assert kv.purge_expired() == 6
    assert kv.purge_expired() == 0
    assert kv.list().keys == ["forever", "long"]


@pytest.mark.parametrize("batch", [1, 2**63, 10**30])
def test_any_positive_purge_batch_size_purges(stores: Stores, clock: FakeClock, batch: int) -> None:
    """A batch size past the database's integers means "all at once", as a listing's limit does."""
    with stores.fresh(clock=clock, purge_batch_size=batch) as kv:
        for i in range(3):
            kv.set(f"short/{i}", i, expire_in=MIN_MS)
        kv.set("forever", 1)
        clock.advance(60)
        assert kv.purge_expired() == 3
        assert kv.list().keys == ["forever"]


def test_a_failing_auto_purge_does_not_fail_the_committed_write(
    stores: Stores, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with stores.open(clock=clock, auto_purge_every=1) as kv:

        def busy(now_us: int, limit: int) -> int:
            raise StoreBusyError("locked")

        monkeypatch.setattr(kv._backend, "purge_batch", busy)
        result = kv.set("k", 1)
        assert result.committed
        entry = kv.get("k")
        assert entry is not None
        assert entry.versionstamp == result.versionstamp
