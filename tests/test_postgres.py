"""The PostgreSQL backend itself: schema and statements, URLs, the pool, the write lock, retries, errors, fork.

Everything a store promises is tested on PostgreSQL by the store fixtures (conftest.py); this file covers
what only PostgreSQL has. Synchronisation is by events and barriers; nothing sleeps to wait for a peer.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from psycopg import errors as pg_errors

from kvstore import (
    ConfigurationError,
    KVStore,
    ReadOnlyStoreError,
    SchemaVersionError,
    StoreBusyError,
    StoreClosedError,
    StoreUnavailableError,
)
from kvstore._backends.postgres import PostgresBackend
from kvstore._backends.postgres import sql as statements
from kvstore._migrate import HEAD, VERSION_TABLE
from kvstore._schema import metadata

from .conftest import FakeClock, libpq_url

WAIT = 60.0


@pytest.fixture
def raw(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain autocommit connection to the test's schema, migrated to head by opening a store once."""
    KVStore(pg_url).close()
    with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn:
        yield conn


def _backend(kv: KVStore) -> PostgresBackend:
    backend = kv._backend
    assert isinstance(backend, PostgresBackend)
    return backend


# -- schema and statements -------------------------------------------------------------------------------------


def test_migrated_schema_matches_metadata(pg_url: str) -> None:
    KVStore(pg_url).close()
    engine = sqlalchemy.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
            assert compare_metadata(context, metadata) == []
            assert conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [(HEAD,)]
            assert conn.exec_driver_sql("SELECT id, version FROM kvstore_versionstamp").fetchall() == [(1, 0)]
    finally:
        engine.dispose()


def test_keys_compare_bytewise(raw: psycopg.Connection[Any]) -> None:
    """The "C" collation: PostgreSQL orders keys as SQLite and Python do, whatever the database's locale."""
    collations = raw.execute(
        "SELECT column_name, collation_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = 'kvstore_entries'"
        " AND column_name IN ('namespace', 'key') ORDER BY column_name"
    ).fetchall()
    assert collations == [("key", "C"), ("namespace", "C")]


def test_listing_order_is_python_order(kv: KVStore) -> None:
    keys = ["b", "B", "a-1", "a_1", "a.1", "a/1", "A", "0", "z", "Z9", "a"]
    for key in keys:
        kv.set(key, 1)
    assert kv.list().keys == sorted(keys)
    assert kv.list(reverse=True).keys == sorted(keys, reverse=True)


_CONSTANTS = sorted(name for name in vars(statements) if name.startswith("SQL_"))


@pytest.mark.parametrize("name", _CONSTANTS)
def test_every_statement_plans_against_the_migrated_schema(raw: psycopg.Connection[Any], name: str) -> None:
    sql: str = getattr(statements, name)
    plan = raw.execute("EXPLAIN " + sql, (None,) * sql.count("%s")).fetchall()
    assert plan, name


def _plan(conn: psycopg.Connection[Any], sql: str, params: tuple[object, ...]) -> str:
    # A near-empty table would be read whole; with sequential scans off, the plan shows what the indexes serve.
    conn.execute("SET enable_seqscan = off")
    return "\n".join(row[0] for row in conn.execute("EXPLAIN " + sql, params))


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("SQL_GET", ("ns", "k", 0)),
        ("SQL_CURRENT", ("ns", "k", 0)),
        ("SQL_GET_MANY", ("ns", ["a", "b"], 0)),
        ("SQL_REFRESH", (1, "ns", "k", 1, 0)),
        ("SQL_DELETE", ("ns", "k")),
    ],
)
def test_point_statements_use_the_unique_key_index(
    raw: psycopg.Connection[Any], name: str, params: tuple[object, ...]
) -> None:
    plan = _plan(raw, getattr(statements, name), params)
    assert "uq_kvstore_entries_namespace_key" in plan, plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.parametrize("name", ["SQL_SCAN", "SQL_SCAN_REVERSE", "SQL_SCAN_KEYS", "SQL_SCAN_KEYS_REVERSE"])
def test_scans_walk_the_key_index_in_order(raw: psycopg.Connection[Any], name: str) -> None:
    plan = _plan(raw, getattr(statements, name), ("ns", "a", "b", "a", 0, 10))
    assert "Index Scan" in plan, plan
    assert "uq_kvstore_entries_namespace_key" in plan, plan
    assert "Sort" not in plan, plan  # ORDER BY key comes from the index


@pytest.mark.parametrize("name", ["SQL_SCAN", "SQL_SCAN_REVERSE"])
def test_a_page_deep_in_a_listing_reads_what_the_first_page_reads(
    pg_url: str, raw: psycopg.Connection[Any], name: str
) -> None:
    """Both lower (or upper) bounds are index conditions: a deep page seeks, it does not rescan the listing."""
    with KVStore(pg_url) as kv, kv.atomic() as op:
        for i in range(3000):
            op.set(f"p/{i:05d}", i)
    raw.execute("ANALYZE kvstore_entries")
    sql = getattr(statements, name)
    reverse = name.endswith("REVERSE")
    first = _buffers(raw, sql, ("default", "p/", "p0", "p0" if reverse else "", 0, 11))
    deep = _buffers(raw, sql, ("default", "p/", "p0", "p/00010" if reverse else "p/02990", 0, 11))
    assert 0 < deep <= 2 * first, (first, deep)


def _buffers(conn: psycopg.Connection[Any], sql: str, params: tuple[object, ...]) -> int:
    """Shared buffers one run of ``sql`` touched: a count of work, not a timing."""
    plan = "\n".join(row[0] for row in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params))
    return int(plan.split("Buffers: shared hit=", 1)[1].split()[0])


def test_purge_walks_the_partial_expiry_index(raw: psycopg.Connection[Any]) -> None:
    plan = _plan(raw, statements.SQL_PURGE, (0, 10, 0))
    assert "ix_kvstore_entries_expires_us" in plan, plan


# -- opening: URLs, credentials, unreachable servers, newer schemas --------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_every_postgres_url_scheme_opens(pg_url: str, scheme: str) -> None:
    url = scheme + "://" + pg_url.split("://", 1)[1]
    with KVStore(url) as kv:
        assert kv.set("k", scheme).committed
    with KVStore(pg_url) as kv:
        entry = kv.get("k")
        assert entry is not None
        assert entry.value == scheme


def test_info_names_the_database_without_its_password(pg_url: str) -> None:
    url = pg_url.replace("postgres@", "postgres:secret@", 1)  # trust authentication ignores the password
    with KVStore(url) as kv:
        kv.set("k", 1)
        info = kv.info()
    assert "secret" not in info.target
    assert "postgres:***@" in info.target
    assert (info.entries, info.namespaces, info.schema_revision, info.journal_mode) == (1, 1, HEAD, "postgresql")
    assert info.last_versionstamp == "00000000000000010000"
    assert info.size_bytes is not None
    assert info.size_bytes > 0


def test_unreachable_server_is_a_clear_error(postgres_server: str) -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    url = "postgresql://postgres:secret@127.0.0.1:1/test"
    with pytest.raises(StoreUnavailableError, match="cannot connect to PostgreSQL") as caught:
        KVStore(url, connect_timeout=2)
    assert "secret" not in str(caught.value)
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)


def test_unknown_role_or_database_is_a_clear_error(postgres_server: str) -> None:
    base = postgres_server.rsplit("/", 1)[0]
    role = base.replace("postgres@", "no_such_role_kvstore@", 1) + "/test"
    with pytest.raises(StoreUnavailableError, match="no_such_role_kvstore"):
        KVStore(role)
    with pytest.raises(StoreUnavailableError, match="no_such_database_kvstore"):
        KVStore(base + "/no_such_database_kvstore")


def test_a_newer_schema_is_refused_untouched(raw: psycopg.Connection[Any], pg_url: str) -> None:
    raw.execute(f"UPDATE {VERSION_TABLE} SET version_num = '9999'")
    with pytest.raises(SchemaVersionError, match="9999"):
        KVStore(pg_url)
    assert raw.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [("9999",)]
    assert raw.execute("SELECT count(*) FROM kvstore_entries").fetchone() == (0,)


def test_other_tables_in_the_schema_are_left_alone(pg_url: str) -> None:
    with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('app_revision')")
        with KVStore(pg_url) as kv:
            assert kv.set("k", 1).committed
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("app_revision",)]


# -- the pool and the write lock -----------------------------------------------------------------------------------


def test_a_caller_waits_for_a_pooled_connection_then_gives_up(pg_url: str) -> None:
    with KVStore(pg_url, pool_size=1, pool_timeout=0.2) as kv:
        inside, release = threading.Event(), threading.Event()

        def hold(_: object) -> None:
            inside.set()
            assert release.wait(WAIT)

        holder = threading.Thread(target=_backend(kv).transact, args=(hold,))
        holder.start()
        try:
            assert inside.wait(WAIT)
            with pytest.raises(StoreBusyError, match="pool timeout"):
                kv.get("k")
        finally:
            release.set()
            holder.join(WAIT)
        assert kv.set("k", "after").committed  # the connection came back to the pool


def test_a_held_write_lock_makes_writers_wait_then_fail_cleanly(raw: psycopg.Connection[Any], pg_url: str) -> None:
    with KVStore(pg_url, busy_timeout=0.2) as kv:
        first = kv.set("k", "first")
        with raw.transaction():
            raw.execute(statements.SQL_LOCK)  # another writer, mid-transaction
            with pytest.raises(StoreBusyError):
                kv.set("k", "second")
            entry = kv.get("k")  # readers never wait for the write lock
            assert entry is not None
            assert entry.value == "first"
        second = kv.set("k", "second")  # the lock is free again
        assert second.committed
        assert first.versionstamp is not None
        assert second.versionstamp is not None
        # The refused write drew no versionstamp.
        assert int(second.versionstamp[:16], 16) == int(first.versionstamp[:16], 16) + 1


def test_serialization_failures_are_retried_inside_the_library(pg_url: str) -> None:
    with KVStore(pg_url) as kv:
        attempts: list[int] = []

        def flaky(tx: Any) -> str:
            attempts.append(1)
            if len(attempts) < 3:
                raise pg_errors.SerializationFailure("could not serialize access")
            version = tx.next_version()
            tx.put(("default", "k", b"\x01", "application/json", None, version, 0, 0, None, None, False, None))
            return "done"

        assert _backend(kv).transact(flaky) == "done"
        assert len(attempts) == 3
        assert kv.get("k") is not None


def test_retries_are_bounded_and_end_in_a_kverror(pg_url: str) -> None:
    with KVStore(pg_url) as kv:
        attempts: list[int] = []

        def always(_: Any) -> None:
            attempts.append(1)
            raise pg_errors.DeadlockDetected("deadlock detected")

        with pytest.raises(StoreBusyError) as caught:
            _backend(kv).transact(always)
        assert isinstance(caught.value.__cause__, pg_errors.DeadlockDetected)
        assert 1 < len(attempts) <= 10
        assert kv.info().last_versionstamp is None  # nothing committed


def test_a_read_only_server_serves_reads_and_refuses_writes(pg_url: str, clock: FakeClock) -> None:
    with KVStore(pg_url, clock=clock) as kv:
        kv.set("k", "kept")
    read_only = pg_url + "%20-cdefault_transaction_read_only%3Don"
    with KVStore(read_only, clock=clock) as kv:
        entry = kv.get("k")
        assert entry is not None
        assert entry.value == "kept"
        with pytest.raises(ReadOnlyStoreError):
            kv.set("k", "changed")
        with pytest.raises(ReadOnlyStoreError):
            kv.delete("k")
    with KVStore(pg_url) as kv:
        entry = kv.get("k")
        assert entry is not None
        assert entry.value == "kept"


def test_a_dropped_connection_is_replaced_for_the_next_read(pg_url: str) -> None:
    name = "kvstore_test_dropped"
    with KVStore(f"{pg_url}&application_name={name}") as kv:
        kv.set("k", 1)
        with psycopg.connect(libpq_url(pg_url), autocommit=True) as admin:
            ended = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,)
            ).fetchall()
        assert ended  # the store's pooled connection is gone (a server restart looks the same)
        assert ended == [(True,)] * len(ended)
        entry = kv.get("k")  # the read is retried on a new connection
        assert entry is not None
        assert entry.value == 1
        assert kv.set("k", 2).committed


def test_closed_store_refuses_calls(pg_url: str) -> None:
    kv = KVStore(pg_url)
    kv.close()
    assert kv.closed
    with pytest.raises(StoreClosedError):
        kv.get("k")
    with pytest.raises(StoreClosedError):
        kv.set("k", 1)
    kv.close()  # twice is fine


@pytest.mark.skipif(not hasattr(os, "fork"), reason="this platform has no os.fork")
def test_a_forked_child_gets_fresh_connections_and_the_parent_keeps_its_own(pg_url: str) -> None:
    with KVStore(pg_url) as kv:
        kv.set("parent", 1)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: use the inherited store, report, and leave without cleanup
            status = 1
            try:
                entry = kv.get("parent")
                result = kv.set("child", 2)
                status = 0 if entry is not None and entry.value == 1 and result.committed else 2
            finally:
                os.write(write, bytes([status]))
                os._exit(0)
        os.close(write)
        assert os.read(read, 1) == b"\x00"
        os.close(read)
        os.waitpid(pid, 0)
        # The parent's pooled connection still works: the child neither used nor closed it.
        entry = kv.get("child")
        assert entry is not None
        assert entry.value == 2
        assert kv.set("parent", 3).committed


@pytest.mark.parametrize("options", [{"pool_size": 0}, {"pool_timeout": -1.0}, {"connect_timeout": 0}], ids=repr)
def test_bad_pool_options_are_refused_before_connecting(
    raw: psycopg.Connection[Any], pg_url: str, options: Any
) -> None:
    name = "kvstore_test_refused"
    with pytest.raises(ConfigurationError):
        KVStore(f"{pg_url}&application_name={name}", **options)
    opened = raw.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)).fetchone()
    assert opened == (0,)
