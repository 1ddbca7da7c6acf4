"""The commands on the entries of one namespace: get, set, delete, list, count, delete-prefix and watch.

Each is a thin call of one method of the library; its docstring is its ``--help``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import BinaryIO, NoReturn

import click

from kvstore import Entry, Value

from .common import (
    EXIT_NOT_DONE,
    NotFound,
    db_option,
    dumps,
    entry_json,
    entry_line,
    fail,
    namespace_option,
    open_namespace,
    output,
    output_line,
)


@click.command()
@db_option
@namespace_option
@click.argument("key")
@click.option("--raw", is_flag=True, help="Print only the value: bytes and text as they are, JSON otherwise.")
def get(db: str, namespace: str | None, key: str, raw: bool) -> None:
    """Print the live entry at KEY as JSON; exit 1 with a not-found problem if there is none."""
    with open_namespace(db, namespace) as kv:
        entry = kv.get(key)
    if entry is None:
        fail(NotFound(f"no live entry at key {key!r}"))
    if not raw:
        output(entry_json(entry))
    elif isinstance(entry.value, bytes):
        sys.stdout.buffer.write(entry.value)
        sys.stdout.flush()
    elif isinstance(entry.value, str):
        click.echo(entry.value, nl=False)
    else:
        output(entry_json(entry)["value"])


def _not_json(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _value(value: str | None, text: bool, file: BinaryIO | None) -> Value:
    if file is not None:
        if value is not None or text:
            raise click.UsageError("--file stores the bytes of a file: give no VALUE and no --text with it")
        return file.read()
    if value is None:
        raise click.UsageError("give a VALUE, or --file")
    if text:
        return value
    try:
        parsed: Value = json.loads(value, parse_constant=_not_json)  # NaN and Infinity are no JSON
    except ValueError as exc:
        raise click.UsageError(f"VALUE is not JSON ({exc}); pass --text to store it as text") from exc
    return parsed


@click.command(name="set")
@db_option
@namespace_option
@click.argument("key")
@click.argument("value", required=False)
@click.option("--text", is_flag=True, help="Store VALUE as text rather than parse it as JSON.")
@click.option("--file", type=click.File("rb"), default=None, help="Store the bytes of this file ('-': stdin).")
@click.option("--expire-in", type=float, default=None, help="TTL in milliseconds (60000 to 31536000000).")
@click.option("--expire-at", default=None, help="Expiry as an ISO 8601 date and time; UTC unless it has an offset.")
@click.option("--refresh-on-access", is_flag=True, help="Each get pushes the expiry out again.")
@click.option("--if-versionstamp", default=None, help="Write only if the entry is at this versionstamp.")
@click.option("--if-not-exists", is_flag=True, help="Write only if no live entry exists.")
@click.option("--no-overwrite", is_flag=True, help="Keep a live entry as it is (not an error).")
@click.option("--metadata", default=None, help="A JSON object stored with the entry.")
@click.option("--content-type", default=None, help="The value's content type.")
def set_command(
    db: str,
    namespace: str | None,
    key: str,
    value: str | None,
    text: bool,
    file: BinaryIO | None,
    expire_in: float | None,
    expire_at: str | None,
    refresh_on_access: bool,
    if_versionstamp: str | None,
    if_not_exists: bool,
    no_overwrite: bool,
    metadata: str | None,
    content_type: str | None,
) -> None:
    """Write VALUE (strict JSON, or text with --text) or the bytes of --file at KEY; print the result as JSON.

    Creates the database if it does not exist. Exits 3 when a condition (--if-versionstamp, --if-not-exists)
    failed.
    """
    stored = _value(value, text, file)
    try:
        meta = None if metadata is None else json.loads(metadata)
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"--metadata is not JSON: {exc}") from exc
    try:
        moment = None if expire_at is None else datetime.fromisoformat(expire_at)
    except ValueError as exc:
        raise click.UsageError(f"--expire-at is not an ISO 8601 date and time: {exc}") from exc
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    with open_namespace(db, namespace, create=True) as kv:
        result = kv.set(
            key,
            stored,
            if_versionstamp=if_versionstamp,
            if_not_exists=if_not_exists,
            overwrite=not no_overwrite,
            expire_in=expire_in,
            expire_at=moment,
            refresh_on_access=refresh_on_access,
            metadata=meta,
            content_type=content_type,
        )
    data = result._asdict()
    data["expires_at"] = None if result.expires_at is None else result.expires_at.isoformat()
    output(data)
    if not result.ok:
        sys.exit(EXIT_NOT_DONE)


@click.command()
@db_option
@namespace_option
@click.argument("key")
@click.option("--if-versionstamp", default=None, help="Delete only if the entry is at this versionstamp.")
def delete(db: str, namespace: str | None, key: str, if_versionstamp: str | None) -> None:
    """Delete the live entry at KEY; print {"deleted": true|false} (exit 3 when nothing was deleted)."""
    with open_namespace(db, namespace) as kv:
        deleted = kv.delete(key, if_versionstamp=if_versionstamp)
    output({"deleted": deleted})
    if not deleted:
        sys.exit(EXIT_NOT_DONE)


@click.command(name="list")
@db_option
@namespace_option
@click.argument("prefix", default="")
@click.option("--start", default=None, help="Only keys from this one on (inclusive).")
@click.option("--end", default=None, help="Only keys before this one (exclusive).")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many entries.")
@click.option("--cursor", default=None, help="Continue the listing that printed this cursor.")
@click.option("--reverse", is_flag=True, help="Descending key order.")
@click.option("--keys-only", is_flag=True, help="Print only the keys, as JSON strings (no value is read).")
@click.option("--page-size", type=click.IntRange(1), default=500, show_default=True, help="Entries read per query.")
def list_command(
    db: str,
    namespace: str | None,
    prefix: str,
    start: str | None,
    end: str | None,
    limit: int | None,
    cursor: str | None,
    reverse: bool,
    keys_only: bool,
    page_size: int,
) -> None:
    """Print the live entries under PREFIX as JSON Lines, one entry a line, in key order.

    The listing streams: it is read a page at a time, in constant memory, however long. With --limit, when
    entries are left, a last line {"cursor": ...} gives the --cursor that continues it.
    """
    with open_namespace(db, namespace) as kv:
        size = page_size if limit is None else min(page_size, limit)
        listing = kv.iterate(
            prefix, start=start, end=end, reverse=reverse, keys_only=keys_only, page_size=size, cursor=cursor
        )
        items: Iterator[Entry | str] = listing
        for item in islice(items, limit):
            output_line(dumps(item) if isinstance(item, str) else entry_line(item))
        if limit is not None and listing.cursor is not None:
            output_line(dumps({"cursor": listing.cursor}))
        sys.stdout.flush()


@click.command()
@db_option
@namespace_option
@click.argument("prefix", default="")
@click.option("--start", default=None, help="Only keys from this one on (inclusive).")
@click.option("--end", default=None, help="Only keys before this one (exclusive).")
def count(db: str, namespace: str | None, prefix: str, start: str | None, end: str | None) -> None:
    """Print how many live entries list would print for PREFIX: {"count": N}."""
    with open_namespace(db, namespace) as kv:
        output({"count": kv.count(prefix, start=start, end=end)})


@click.command(name="delete-prefix")
@db_option
@namespace_option
@click.argument("prefix")
@click.option("--batch-size", type=click.IntRange(1), default=None, help="Rows per transaction.")
def delete_prefix(db: str, namespace: str | None, prefix: str, batch_size: int | None) -> None:
    """Delete every entry whose key starts with PREFIX ('' for all), in short transactions; print {"deleted": N}."""
    with open_namespace(db, namespace) as kv:
        output({"deleted": kv.delete_prefix(prefix, batch_size=batch_size)})


@click.command()
@db_option
@namespace_option
@click.argument("keys", metavar="KEY...", nargs=-1, required=True)
@click.option(
    "--interval",
    type=click.FloatRange(0, 3600, min_open=True),
    default=0.05,
    show_default=True,
    help="Seconds between two looks for commits from other processes.",
)
@click.option("--limit", type=click.IntRange(1), default=None, help="Stop after this many snapshots.")
def watch(db: str, namespace: str | None, keys: tuple[str, ...], interval: float, limit: int | None) -> None:
    """Print a snapshot of KEY... now and whenever one of them changes: a JSON array a line, one entry
    (or null) for each key, in order. Runs until interrupted, or --limit snapshots."""
    with open_namespace(db, namespace) as kv, kv.watch(keys, interval=interval) as snapshots:
        for snapshot in islice(snapshots, limit):
            output_line(dumps([None if entry is None else entry_json(entry) for entry in snapshot]))
            sys.stdout.flush()  # a watcher reads each snapshot as it comes
