"""Durations: a ``datetime.timedelta`` wherever one is taken; a number keeps its unit, which every signature names.

``expire_in`` is in milliseconds, every other duration (watch interval, busy, pool and connect timeouts) in
seconds. A timedelta means what it says whichever the unit, so ``expire_in=timedelta(days=1)`` is a day,
where ``expire_in=86400`` is 86.4 s.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore import (
    AsyncAtomicOperation,
    AsyncKVStore,
    AsyncNamespace,
    AtomicOperation,
    ConfigurationError,
    InvalidOptionsError,
    InvalidTTLError,
    KVStore,
    Namespace,
)
from kvstore._backends.sqlite import SQLiteBackend
from kvstore._validation import MAX_TTL_US, MIN_TTL_US, timedelta_us, ttl_from_expire_in

from .conftest import FakeClock, Stores

DAY = timedelta(days=1)


def _now(clock: FakeClock) -> datetime:
    return datetime.fromtimestamp(clock.now, UTC)


def test_expire_in_takes_a_timedelta_that_means_what_it_says(kv: KVStore, clock: FakeClock) -> None:
    day = kv.set("day", 1, expire_in=DAY)
    assert day.expires_at == _now(clock) + DAY
    in_ms = kv.set("in-ms", 1, expire_in=DAY // timedelta(milliseconds=1))  # the same day as a number
    assert in_ms.expires_at == day.expires_at
    entry = kv.get("day")
    assert entry is not None
    assert entry.expires_at == day.expires_at
    clock.advance(DAY.total_seconds() - 1)
    assert kv.get("day") is not None
    clock.advance(1)
    assert kv.get("day") is None


def test_a_timedelta_keeps_its_microseconds(kv: KVStore, clock: FakeClock) -> None:
    odd = timedelta(minutes=2, microseconds=7)
    assert kv.set("k", "v", expire_in=odd).expires_at == _now(clock) + odd


def test_atomic_set_takes_a_timedelta(kv: KVStore, clock: FakeClock) -> None:
    assert kv.atomic().set("a", 1, expire_in=timedelta(hours=1)).commit().ok
    entry = kv.get("a")
    assert entry is not None
    assert entry.expires_at == _now(clock) + timedelta(hours=1)


@pytest.mark.parametrize(
    "expire_in",
    [timedelta(seconds=59, microseconds=999_999), timedelta(days=365, microseconds=1), -DAY, timedelta(0)],
    ids=["under-60s", "over-365d", "negative", "zero"],
)
def test_a_timedelta_out_of_bounds_is_refused_and_writes_nothing(kv: KVStore, expire_in: timedelta) -> None:
    with pytest.raises(InvalidTTLError, match="between 60 s and 365 days"):
        kv.set("k", 1, expire_in=expire_in)
    with pytest.raises(InvalidTTLError):
        kv.atomic().set("k", 1, expire_in=expire_in)
    assert kv.get("k") is None


def test_a_number_is_milliseconds_and_the_error_says_so(kv: KVStore) -> None:
    with pytest.raises(InvalidTTLError, match=r"got 3600 ms: a number is milliseconds; a datetime\.timedelta says"):
        kv.set("hour", 1, expire_in=3600)  # an hour meant in seconds is 3.6 s: refused, not silently short
    assert kv.get("hour") is None


@given(st.timedeltas(min_value=-timedelta(days=800), max_value=timedelta(days=800)))
def test_expire_in_bounds_a_timedelta_by_its_exact_length(expire_in: timedelta) -> None:
    ttl_us = timedelta_us(expire_in)
    assert ttl_us == expire_in // timedelta(microseconds=1)
    if MIN_TTL_US <= ttl_us <= MAX_TTL_US:
        assert ttl_from_expire_in(expire_in) == ttl_us
    else:
        with pytest.raises(InvalidTTLError):
            ttl_from_expire_in(expire_in)


def test_watch_interval_takes_a_timedelta(kv: KVStore) -> None:
    kv.set("k", 1)
    with kv.watch(["k"], interval=timedelta(milliseconds=20)) as watch:
        assert watch._interval == 0.02
        first = next(watch)
        assert [entry.value if entry else None for entry in first] == [1]


@pytest.mark.parametrize(
    "interval", [timedelta(0), -timedelta(seconds=1), timedelta(hours=1, microseconds=1), True, "1s", float("nan")]
)
def test_a_bad_watch_interval_is_refused(kv: KVStore, interval: object) -> None:
    with pytest.raises(InvalidOptionsError, match="interval"):
        kv.watch(["k"], interval=interval)  # type: ignore[arg-type]


def test_store_timeouts_take_timedeltas(stores: Stores) -> None:
    with stores.open(
        busy_timeout=timedelta(seconds=2), pool_timeout=timedelta(seconds=3), connect_timeout=timedelta(seconds=4)
    ) as kv:
        backend = kv._backend
        if isinstance(backend, SQLiteBackend):
            assert backend._busy_timeout == 2.0
        else:  # PostgreSQL
            assert (backend._busy_ms, backend._pool_timeout, backend._connect_timeout) == (2000, 3.0, 4)  # type: ignore[attr-defined]
        assert kv.set("k", 1).committed


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("busy_timeout", -timedelta(seconds=1)),
        ("busy_timeout", True),
        ("pool_timeout", timedelta(0)),
        ("pool_timeout", 10**400),
        ("connect_timeout", -timedelta(microseconds=1)),
        ("connect_timeout", "10s"),
    ],
)
def test_a_bad_timeout_is_refused_before_anything_is_created(tmp_path: Path, option: str, value: object) -> None:
    path = tmp_path / "kv.db"
    with pytest.raises(ConfigurationError, match=f"{option} must be a datetime.timedelta or a"):
        KVStore(path, **{option: value})  # type: ignore[arg-type]
    assert not path.exists()


def test_a_zero_busy_timeout_is_still_allowed(tmp_path: Path) -> None:
    with KVStore(tmp_path / "kv.db", busy_timeout=timedelta(0)) as kv:
        backend = kv._backend
        assert isinstance(backend, SQLiteBackend)
        assert backend._busy_timeout == 0.0


def test_async_store_takes_timedeltas_too(tmp_path: Path) -> None:
    async def main() -> tuple[datetime | None, datetime | None, list[object]]:
        async with AsyncKVStore(tmp_path / "kv.db", busy_timeout=timedelta(seconds=1)) as kv:
            written = await kv.set("k", 1, expire_in=timedelta(minutes=5))
            await kv.atomic().set("a", 2, expire_in=timedelta(minutes=5)).commit()
            entry = await kv.get("a")
            with pytest.raises(InvalidOptionsError):
                kv.watch(["k"], interval=timedelta(0))  # refused when called, not at the first await
            async with kv.watch(["k", "a"], interval=timedelta(milliseconds=10)) as watch:
                snapshot = await anext(watch)
            assert entry is not None
            return written.expires_at, entry.expires_at, [e.value if e else None for e in snapshot]

    set_expiry, atomic_expiry, values = asyncio.run(main())
    assert set_expiry is not None
    assert atomic_expiry is not None
    assert atomic_expiry - set_expiry < timedelta(minutes=1)  # both five minutes from their own "now"
    assert values == [1, 2]


DURATIONS: list[tuple[Callable[..., object], str, str]] = [
    (Namespace.set, "expire_in", "Milliseconds"),
    (AtomicOperation.set, "expire_in", "Milliseconds"),
    (AsyncNamespace.set, "expire_in", "Milliseconds"),
    (AsyncAtomicOperation.set, "expire_in", "Milliseconds"),
    (Namespace.watch, "interval", "Seconds"),
    (AsyncNamespace.watch, "interval", "Seconds"),
    *(
        (cls.__init__, option, "Seconds")
        for cls in (KVStore, AsyncKVStore)
        for option in ("busy_timeout", "pool_timeout", "connect_timeout")
    ),
]


@pytest.mark.parametrize(("function", "parameter", "unit"), DURATIONS, ids=lambda x: getattr(x, "__qualname__", x))
def test_every_duration_names_its_unit_in_its_signature(
    function: Callable[..., object], parameter: str, unit: str
) -> None:
    annotation = str(inspect.signature(function).parameters[parameter].annotation)
    assert "timedelta" in annotation
    assert unit in annotation
