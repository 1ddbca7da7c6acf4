"""Shared fixtures: a controllable clock, and stores on a temporary file, in memory and on PostgreSQL.

PostgreSQL tests use the server at KVSTORE_TEST_POSTGRES_URL (default: the local test server), each test
in a schema of its own, dropped afterwards. Without a server they skip, except under CI=true, where they
fail: CI must never pass by skipping them.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from kvstore import KVStore
from kvstore._backends.sqlite import SQLiteBackend

# A quick default; CI selects "thorough" (KVSTORE_HYPOTHESIS_PROFILE=thorough in .ci/run). Thorough is 300
# examples a property: at 600 the CI run took 28 to 30 minutes on a 2-core machine, over its budget.
# function_scoped_fixture: the store fixtures here are factories or stores that examples may share on purpose.
_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
settings.register_profile("quick", max_examples=60, deadline=None, suppress_health_check=_SUPPRESSED)
settings.register_profile(
    "thorough", max_examples=300, deadline=None, suppress_health_check=_SUPPRESSED, print_blob=True
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


POSTGRES_URL = os.environ.get("KVSTORE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def libpq_url(url: str) -> str:
    """The libpq form of an SQLAlchemy-style PostgreSQL URL, for psycopg.connect."""
    return "postgresql://" + url.split("://", 1)[1]


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL URL to test against; skips (fails under CI=true) when no server answers."""
    try:
        import psycopg

        with psycopg.connect(libpq_url(POSTGRES_URL), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # ImportError without the extra, OperationalError without a server
        reason = f"no PostgreSQL at KVSTORE_TEST_POSTGRES_URL={POSTGRES_URL!r}: {type(exc).__name__}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs PostgreSQL: {reason}")
        pytest.skip(reason)
    return POSTGRES_URL


def create_schema(server: str) -> tuple[str, str]:
    """A new, empty PostgreSQL schema on ``server``: (its name, a URL that puts it first on the search_path)."""
    import psycopg

    schema = f"kvtest_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(libpq_url(server), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in server else "?"
    return schema, f"{server}{separator}options=-csearch_path%3D{schema}"


def drop_schema(server: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(libpq_url(server), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg_url(postgres_server: str) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL schema (first on the search_path), dropped after the test."""
    schema, url = create_schema(postgres_server)
    try:
        yield url
    finally:
        drop_schema(postgres_server, schema)


def store_target(request: pytest.FixtureRequest, kind: str, db_path: Path) -> str:
    """The database a test parameter names: "file", "memory" or "postgres"."""
    if kind == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return url
    return str(db_path) if kind == "file" else ":memory:"


@pytest.fixture(params=["file", "memory", "postgres"])
def kv(request: pytest.FixtureRequest, clock: FakeClock, db_path: Path) -> Iterator[KVStore]:
    """A store with a fake clock, on a temporary file, in memory and on PostgreSQL."""
    with KVStore(store_target(request, request.param, db_path), clock=clock) as store:
        yield store


@pytest.fixture(params=["file", "memory"])
def sqlite_kv(request: pytest.FixtureRequest, clock: FakeClock, db_path: Path) -> Iterator[KVStore]:
    """A store on SQLite only, for tests of SQLite itself (pragmas, page limits, file modes)."""
    with KVStore(store_target(request, request.param, db_path), clock=clock) as store:
        yield store


@pytest.fixture(params=["file", "postgres"])
def shared_target(request: pytest.FixtureRequest, db_path: Path) -> str:
    """A database that several stores, threads and processes can open at once: a file, or PostgreSQL."""
    return store_target(request, request.param, db_path)


def sqlite_connection(store: KVStore) -> sqlite3.Connection:
    """White-box: the calling thread's connection of a store on SQLite."""
    backend = store._backend
    assert isinstance(backend, SQLiteBackend)
    return backend._conn()


class Stores:
    """Opens stores with any options on one database of one kind (a file, memory, PostgreSQL).

    ``open`` opens the database as it is (so a test can reopen it); ``fresh`` empties it first, for tests
    (hypothesis examples, say) that need a new database each time.
    """

    def __init__(self, kind: str, target: str, directory: Path) -> None:
        self.kind = kind
        self.target = target
        self._directory = directory
        self._files = 0

    def open(self, **options: Any) -> KVStore:
        return KVStore(self.target, **options)

    def fresh(self, **options: Any) -> KVStore:
        if self.kind == "file":
            self._files += 1
            return KVStore(str(self._directory / f"fresh-{self._files}.db"), **options)
        store = KVStore(self.target, **options)
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(libpq_url(self.target), autocommit=True) as conn:
                conn.execute("TRUNCATE kvstore_entries, kvstore_queue")
                conn.execute("UPDATE kvstore_versionstamp SET version = 0")
        return store


@pytest.fixture(params=["file", "memory", "postgres"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    """Stores on a temporary file, in memory and on PostgreSQL, opened with the options a test chooses."""
    return Stores(request.param, store_target(request, request.param, tmp_path / "kv.db"), tmp_path)
