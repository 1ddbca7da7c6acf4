"""The schema: one source (``kvstore._schema``), alembic revisions that build it, and SQL that fits it.

Every statement the SQLite backend runs is checked against a database the migrations built, so the
hand-written SQL in ``kvstore._backends.sqlite.sql`` cannot drift from the SQLAlchemy tables.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateIndex

import kvstore
from kvstore import KVStore
from kvstore._migrate import HEAD, REVISIONS, VERSION_TABLE
from kvstore._schema import entries, metadata

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "migrations"
KVSTORE_TABLES = {"kvstore_entries", "kvstore_queue", "kvstore_versionstamp"}


def _sql_constants() -> dict[str, str]:
    """Every ``SQL_*`` string constant in every kvstore module but PostgreSQL's, as ``module.NAME -> sql``.

    PostgreSQL's statements are checked against PostgreSQL, in test_postgres.py.
    """
    found: dict[str, str] = {}
    for info in pkgutil.walk_packages(kvstore.__path__, "kvstore."):
        if info.name.startswith(("kvstore._migrations", "kvstore._backends.postgres")):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if name.startswith("SQL_") and isinstance(value, str):
                found[f"{info.name}.{name}"] = value
    return found


SQL_CONSTANTS = _sql_constants()


def _raw(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path, isolation_level=None))


def _schema_sql(path: Path) -> list[tuple[str, str, str | None]]:
    with _raw(path) as conn:
        rows: list[tuple[str, str, str | None]] = conn.execute(
            "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
    return rows


def _normalise(sql: str) -> str:
    return " ".join(sql.split())


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    """A raw connection to a database that a store created (and so migrated to head)."""
    path = tmp_path_factory.mktemp("schema") / "kv.db"
    KVStore(path).close()
    with _raw(path) as conn:
        yield conn


# -- revisions ---------------------------------------------------------------------------------------------


def _history(script: ScriptDirectory) -> tuple[str, ...]:
    return tuple(rev.revision for rev in reversed(list(script.walk_revisions("base", "heads"))))


def test_revisions_equal_alembic_history() -> None:
    script = ScriptDirectory(str(MIGRATIONS))
    assert _history(script) == REVISIONS
    assert script.get_heads() == [HEAD]
    assert REVISIONS[-1] == HEAD
    # The first revision starts from nothing; each later one follows the one before it.
    downs = []
    for rev in REVISIONS:
        found = script.get_revision(rev)
        assert found is not None
        downs.append(found.down_revision)
    assert downs == [None, *REVISIONS[:-1]]


def test_packaged_migrations_are_the_repository_migrations() -> None:
    """The migrations a store runs (``kvstore._migrations``) are the ones alembic's CLI sees."""
    packaged = Path(str(resources.files("kvstore._migrations")))
    assert _history(ScriptDirectory(str(packaged))) == REVISIONS
    repo_versions = sorted(p.name for p in (MIGRATIONS / "versions").glob("*.py"))
    assert sorted(p.name for p in (packaged / "versions").glob("*.py")) == repo_versions


def test_alembic_ini_points_at_the_migrations() -> None:
    """alembic.ini loads cleanly (pytest turns warnings into errors) and names migrations/."""
    config = Config(str(ROOT / "alembic.ini"))
    location = config.get_main_option("script_location")
    assert location is not None
    assert Path(location).resolve() == MIGRATIONS
    script = ScriptDirectory.from_config(config)
    assert _history(script) == REVISIONS


# -- the migrated schema -------------------------------------------------------------------------------------


def test_fresh_database_matches_metadata(tmp_path: Path) -> None:
    path = tmp_path / "kv.db"
    KVStore(path).close()
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
            assert compare_metadata(context, metadata) == []
            # The comparison can fail: without the expiry index, autogenerate wants to add it back.
            conn.exec_driver_sql("DROP INDEX ix_kvstore_entries_expires_us")
            diff: list[Any] = compare_metadata(context, metadata)
            assert [change[0] for change in diff] == ["add_index"]
            conn.rollback()
    finally:
        engine.dispose()


def test_indexes_match_metadata_including_partial_where(migrated: sqlite3.Connection) -> None:
    """compare_metadata ignores an index's WHERE clause; the stored DDL must still match ``_schema``."""
    stored = dict(migrated.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"))
    expected = {
        index.name: str(CreateIndex(index).compile(dialect=sqlite_dialect.dialect()))
        for table in metadata.sorted_tables
        for index in table.indexes
    }
    assert {name: _normalise(sql) for name, sql in stored.items()} == {
        name: _normalise(sql) for name, sql in expected.items()
    }
    assert "WHERE expires_us IS NOT NULL" in _normalise(stored["ix_kvstore_entries_expires_us"])


def test_tables_are_exactly_kvstores(migrated: sqlite3.Connection) -> None:
    tables = {row[0] for row in migrated.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {*KVSTORE_TABLES, VERSION_TABLE}
    assert {table.name for table in metadata.sorted_tables} == KVSTORE_TABLES


def test_versionstamp_row_starts_at_zero(migrated: sqlite3.Connection) -> None:
    assert migrated.execute("SELECT id, version FROM kvstore_versionstamp").fetchall() == [(1, 0)]
    assert migrated.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [(HEAD,)]


def test_applications_alembic_version_is_never_touched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with _raw(path) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('ae1027a6acf')")
    before = [row for row in _schema_sql(path) if row[1] == "alembic_version"]

    with KVStore(path) as kv:
        assert kv.set("k", 1).committed
    with KVStore(path) as kv:  # reopening (no migration) leaves it alone too
        assert kv.get("k") is not None

    with _raw(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("ae1027a6acf",)]
        assert conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [(HEAD,)]
    assert [row for row in _schema_sql(path) if row[1] == "alembic_version"] == before


# -- the backend's SQL against the schema --------------------------------------------------------------------


def test_sql_constants_are_found() -> None:
    """The introspection below really sees the backend's statements (and so will see new ones)."""
    names = {name.rsplit(".", 1)[1] for name in SQL_CONSTANTS}
    assert {
        "SQL_GET",
        "SQL_GET_MANY",
        "SQL_SCAN",
        "SQL_SCAN_REVERSE",
        "SQL_REFRESH",
        "SQL_CURRENT",
        "SQL_READ_VERSION",
        "SQL_RESERVE",
        "SQL_PUT",
        "SQL_ONE_REPLACE_LIVE",
        "SQL_DELETE",
        "SQL_PURGE",
        "SQL_REVISIONS",
        "SQL_HAS_VERSION_TABLE",
    } <= names


def _complete(sql: str) -> str:
    """A statement that ends in an open ``IN`` list (SQL_GET_MANY) gets a one-element list."""
    return sql + "(?)" if sql.rstrip().upper().endswith(" IN") else sql


@pytest.mark.parametrize("name", sorted(SQL_CONSTANTS))
def test_sql_constant_prepares_against_migrated_schema(migrated: sqlite3.Connection, name: str) -> None:
    sql = _complete(SQL_CONSTANTS[name])
    params = (None,) * sql.count("?")
    program = migrated.execute("EXPLAIN " + sql, params).fetchall()
    assert program, f"{name} compiled to an empty program"


def _plan(conn: sqlite3.Connection, sql: str) -> list[str]:
    sql = _complete(sql)
    return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, (None,) * sql.count("?"))]


def _unique_key_index(conn: sqlite3.Connection) -> str:
    """The name SQLite gave the unique (namespace, key) index of kvstore_entries."""
    for _seq, name, unique, _origin, _partial in conn.execute("PRAGMA index_list('kvstore_entries')"):
        columns = [row[2] for row in conn.execute(f"PRAGMA index_info('{name}')")]
        if unique and columns == ["namespace", "key"]:
            return str(name)
    raise AssertionError("no unique index on kvstore_entries (namespace, key)")


@pytest.mark.parametrize(
    "name",
    [
        "SQL_GET",
        "SQL_LOOP_GET",
        "SQL_GET_MANY",
        "SQL_CURRENT",
        "SQL_CURRENT_MANY",
        "SQL_REFRESH",
        "SQL_REPLACE_LIVE",
        "SQL_PUT_IF_VERSION",
        "SQL_ONE_REPLACE_LIVE",
        "SQL_ONE_PUT_IF_VERSION",
        "SQL_DELETE",
    ],
)
def test_point_statements_use_the_unique_key_index(migrated: sqlite3.Connection, name: str) -> None:
    from kvstore._backends.sqlite import sql as _sqlite

    plan = _plan(migrated, getattr(_sqlite, name))
    index = _unique_key_index(migrated)
    assert any(f"USING INDEX {index} (namespace=? AND key=?)" in step for step in plan), plan
    assert not any(step.startswith("SCAN kvstore_entries") for step in plan), plan


_SCANS = [
    "SQL_SCAN",
    "SQL_SCAN_AFTER",
    "SQL_SCAN_REVERSE",
    "SQL_SCAN_KEYS",
    "SQL_SCAN_KEYS_AFTER",
    "SQL_SCAN_KEYS_REVERSE",
]


@pytest.mark.parametrize("name", _SCANS)
def test_scans_walk_the_key_index_in_order(migrated: sqlite3.Connection, name: str) -> None:
    from kvstore._backends.sqlite import sql as _sqlite

    plan = _plan(migrated, getattr(_sqlite, name))
    index = _unique_key_index(migrated)
    # Both bounds of the key are part of the seek: a bound left out of it would be a row-by-row filter, and
    # paging through a listing would rescan everything before the cursor on every page.
    seek = re.compile(
        rf"SEARCH kvstore_entries USING (COVERING )?INDEX {index} \(namespace=\? AND key>=?\? AND key<\?\)"
    )
    assert any(seek.fullmatch(step) for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan  # ORDER BY key comes from the index


def test_purge_subquery_uses_the_partial_expiry_index(migrated: sqlite3.Connection) -> None:
    from kvstore._backends.sqlite.sql import SQL_PURGE

    plan = _plan(migrated, SQL_PURGE)
    assert any("INDEX ix_kvstore_entries_expires_us (expires_us<" in step for step in plan), plan
    assert not any(step.startswith("SCAN kvstore_entries") for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan  # ORDER BY expires_us comes from the index


def test_entries_columns_are_the_ones_the_sql_names() -> None:
    """Every column of kvstore_entries is written by SQL_PUT (so a new column cannot be silently left NULL)."""
    from kvstore._backends.sqlite.sql import SQL_PUT

    written = SQL_PUT.split("(", 1)[1].split(")", 1)[0]
    assert {column.strip() for column in written.split(",")} == {c.name for c in entries.columns} - {"id"}


# -- the alembic command line ----------------------------------------------------------------------------------


def _alembic(path: Path, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url=sqlite:///{path}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_alembic_cli_upgrade_and_downgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = tmp_path / "reference.db"
    KVStore(reference).close()

    path = tmp_path / "cli.db"
    with _raw(path) as conn:
        conn.execute("CREATE TABLE app_users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO app_users (name) VALUES ('ada')")
    _alembic(path, "upgrade", "head")

    def no_migration(conn: sqlite3.Connection, translate: object) -> None:
        raise AssertionError("the store migrated a database that alembic had already brought to head")

    with monkeypatch.context() as patch:
        patch.setattr("kvstore._backends.sqlite.backend.migrate", no_migration)
        with KVStore(path) as kv:
            result = kv.set("k", "v")
            assert result.committed
            assert result.versionstamp == "00000000000000010000"  # the CLI seeded version 0
    kvstore_objects = {"kvstore_entries", "kvstore_versionstamp", VERSION_TABLE}
    assert [row for row in _schema_sql(path) if row[2] is not None and row[1] != "app_users"] == [
        row for row in _schema_sql(reference) if row[2] is not None
    ]

    _alembic(path, "downgrade", "base")
    with _raw(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert not tables & KVSTORE_TABLES
        assert tables <= {*kvstore_objects, "app_users"}
        if VERSION_TABLE in tables:
            assert conn.execute(f"SELECT count(*) FROM {VERSION_TABLE}").fetchone() == (0,)
        assert conn.execute("SELECT name FROM app_users").fetchall() == [("ada",)]

    # A database downgraded to base is migrated again when a store opens it.
    with KVStore(path) as kv:
        assert kv.get("k") is None
        assert kv.set("k", "again").versionstamp == "00000000000000010000"
