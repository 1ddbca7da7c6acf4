"""The commands on a whole store: purge, info, checkpoint, migrate, check, backup, export and import.

Each is a thin call of one method of the library; its docstring is its ``--help``. The long runs (backup,
export, import, check) draw a progress line on stderr while it is a terminal.
"""

from __future__ import annotations

import os
import sys
from typing import BinaryIO, Literal, cast

import click

from kvstore import CorruptEntryError, VerifyReport

from .common import db_option, fail, open_store, output
from .progress import Progress


@click.command()
@db_option
def purge(db: str) -> None:
    """Delete every expired entry now; print {"purged": N}."""
    with open_store(db) as kv:
        output({"purged": kv.purge_expired()})


@click.command()
@db_option
def info(db: str) -> None:
    """Print figures about the database as JSON: entries, namespaces, schema revision, size."""
    with open_store(db) as kv:
        output(kv.info()._asdict())


@click.command()
@db_option
@click.option(
    "--mode",
    type=click.Choice(["passive", "full", "restart", "truncate"]),
    default="passive",
    show_default=True,
    help="SQLite's checkpoint mode; truncate also empties the WAL file, giving its space back.",
)
def checkpoint(db: str, mode: str) -> None:
    """Copy the WAL into the database file now; print {"busy", "wal_frames", "checkpointed"} (PostgreSQL: a no-op)."""
    with open_store(db) as kv:
        output(kv.checkpoint(cast(Literal["passive", "full", "restart", "truncate"], mode))._asdict())


@click.command()
@db_option
def migrate(db: str) -> None:
    """Create the database, or upgrade its schema to this version of kvstore; print the schema revision."""
    with open_store(db, create=True) as kv:  # opening a store creates or upgrades its schema
        output({"schema_revision": kv.info().schema_revision})


@click.command()
@db_option
@click.argument("target", type=click.Path(dir_okay=False))
def backup(db: str, target: str) -> None:
    """Copy the store into the new SQLite file TARGET while writers go on; print {"target": ..., "size_bytes": N}.

    The copy is consistent (one snapshot) and opens as any store: kvstore get --db TARGET ... From SQLite it is
    SQLite's online backup; from PostgreSQL, every row and the versionstamp counter. TARGET must not exist.
    """
    unit = "rows" if "://" in db and not db.startswith("sqlite:") else "pages"
    with open_store(db) as kv, Progress("backup", unit) as progress:
        kv.backup(target, progress=progress)
    output({"target": target, "size_bytes": os.path.getsize(target)})


@click.command()
@db_option
@click.option("--quick", is_flag=True, help="SQLite's quick_check instead of integrity_check (skips index contents).")
def check(db: str, quick: bool) -> None:
    """Scan the store for damage: SQLite's integrity check, then every entry's checksum and columns.

    Prints the report as JSON: checked, damaged (namespace, key, column, problem), damaged_count,
    without_checksum, integrity (SQLite's answer; null on PostgreSQL), scan_error, ok. Exit 0 if all is sound;
    1 if anything is damaged, the report still on stdout and a corrupt-entry problem on stderr.
    """
    with open_store(db) as kv, Progress("check", "entries") as progress:
        report = kv.verify(quick=quick, progress=progress)
    output({**report._asdict(), "damaged": [entry._asdict() for entry in report.damaged], "ok": report.ok})
    if not report.ok:
        sys.stdout.flush()
        fail(CorruptEntryError(f"the store is damaged: {_summary(report)}"))


def _summary(report: VerifyReport) -> str:
    parts = [f"{report.damaged_count} of {report.checked} entries fail their checks"]
    if report.integrity not in (None, "ok"):
        parts.append(f"the integrity check found: {report.integrity.splitlines()[0][:200]}")
    if report.scan_error is not None:
        parts.append(report.scan_error)
    return "; ".join(parts)


@click.command(name="export")
@db_option
@click.option(
    "--output",
    "path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the lines to this file (written whole, then renamed into place) instead of stdout.",
)
def export_command(db: str, path: str | None) -> None:
    """Print every live entry of every namespace as JSON Lines, from one snapshot, in namespace and key order.

    A line: namespace, key, value and its encoding (json; base64 for bytes; msgpack, base64 of the stored
    msgpack, for what JSON cannot hold), metadata, content_type, created_at, updated_at, expires_at,
    refresh_on_access, ttl_us, versionstamp. Expired entries are left out. With --output, prints
    {"exported": N} once the file is in place.
    """
    with open_store(db) as kv, Progress("export", "entries") as progress:
        if path is None:
            sys.stdout.flush()
            kv.export_jsonl(sys.stdout.buffer, progress=progress)
            sys.stdout.buffer.flush()
            return
        with click.open_file(path, "wb", atomic=True) as file:
            exported = kv.export_jsonl(file, progress=progress)
    output({"exported": exported})


@click.command(name="import")
@db_option
@click.argument("source", type=click.File("rb"), default="-")
@click.option(
    "--on-existing",
    type=click.Choice(["fail", "skip", "overwrite"]),
    default="fail",
    show_default=True,
    help="At a key that holds a live entry: stop before writing anything, keep it, or replace it.",
)
def import_command(db: str, source: BinaryIO, on_existing: str) -> None:
    """Read JSON Lines (export's form) from SOURCE (default: stdin) into the store; print what was done.

    Every line is checked before anything is written, so bad input changes nothing. The entries keep their
    times, metadata, content type and expiry, and get new versionstamps; those expired by now are not
    written. Creates the database if it does not exist. Prints {"read", "imported", "skipped", "expired"}.
    """
    with open_store(db, create=True) as kv, Progress("import", "entries") as progress:
        policy = cast(Literal["fail", "skip", "overwrite"], on_existing)  # one of them: click.Choice checked it
        result = kv.import_jsonl(source, on_existing=policy, progress=progress)
    sys.stdout.flush()
    output(result._asdict())
