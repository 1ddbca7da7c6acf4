"""The queue's revision (0002) upgrades a store written before queues existed, in place, on both dialects."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy
from alembic import command
from alembic.config import Config

from kvstore import KVStore, QueueInfo
from kvstore._migrate import HEAD, VERSION_TABLE

from .conftest import FakeClock

ROOT = Path(__file__).resolve().parent.parent


def _write_at_revision_0001(url: str) -> None:
    """A database as kvstore's first schema left it, holding one entry (written with that schema's columns)."""
    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("path_separator", "os")
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.exec_driver_sql(
            "INSERT INTO kvstore_entries (namespace, key, value, content_type, metadata, version, created_us,"
            " updated_us, expires_us, ttl_us, refresh_on_access)"
            " VALUES ('default', 'old', '\\x01'::bytea, 'application/json', NULL, 1, 0, 0, NULL, NULL, false)"
            if url.startswith("postgresql")
            else "INSERT INTO kvstore_entries (namespace, key, value, content_type, metadata, version, created_us,"
            " updated_us, expires_us, ttl_us, refresh_on_access)"
            " VALUES ('default', 'old', x'01', 'application/json', NULL, 1, 0, 0, NULL, NULL, 0)"
        )
        connection.exec_driver_sql("UPDATE kvstore_versionstamp SET version = 1")
    with engine.connect() as connection:
        tables = set(sqlalchemy.inspect(connection).get_table_names())
        assert "kvstore_queue" not in tables
        assert "kvstore_entries" in tables
        assert connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalar() == "0001"
    engine.dispose()


@pytest.mark.parametrize("kind", ["file", "postgres"])
def test_a_store_of_revision_0001_is_upgraded_in_place(
    kind: str, tmp_path: Path, clock: FakeClock, request: pytest.FixtureRequest
) -> None:
    if kind == "postgres":
        target: str = request.getfixturevalue("pg_url")
        url = target
    else:
        target = str(tmp_path / "old.db")
        url = f"sqlite:///{target}"
    _write_at_revision_0001(url)
    with KVStore(target, clock=clock) as kv:
        assert kv.info().schema_revision == HEAD
        entry = kv.get("old")
        assert entry is not None
        assert entry.value == 1
        result = kv.enqueue("new")
        assert result.versionstamp > entry.versionstamp  # the counter carried on
        assert kv.queue_info() == QueueInfo("default", 1, 0, 0, 0)
        message = kv.receive()
        assert message is not None
        assert message.value == "new"
        message.ack()
    with KVStore(target, clock=clock) as kv:  # opened again: at head, nothing to migrate
        assert kv.info().schema_revision == HEAD
        assert kv.queue_info() == QueueInfo("default", 0, 0, 0, 0)
