"""Shared fixtures: a controllable clock and stores on a temporary file or in memory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from kvstore import KVStore

# A quick default; CI selects "thorough" (KVSTORE_HYPOTHESIS_PROFILE=thorough in .ci/run).
settings.register_profile("quick", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "thorough", max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("KVSTORE_HYPOTHESIS_PROFILE", "quick"))

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z: a fixed, ordinary "now"


class FakeClock:
    """A clock the test moves by hand; every "now" the store uses comes from it."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "kv.db"


@pytest.fixture(params=["file", "memory"])
def kv(request: pytest.FixtureRequest, clock: FakeClock, db_path: Path) -> Iterator[KVStore]:
    """A store with a fake clock, on a temporary file and in memory."""
    target = str(db_path) if request.param == "file" else ":memory:"
    with KVStore(target, clock=clock) as store:
        yield store
