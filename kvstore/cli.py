"""The ``kvstore`` command: serve a store over HTTP, or read and write one from the shell.

Every data command takes ``--db PATH`` and prints JSON on stdout. An error prints its problem-details
JSON on stderr and exits 1; a set whose condition failed, or a delete that found nothing, prints its
result and exits 3. Bytes print as base64 beside ``"encoding": "base64"``, as over HTTP.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, BinaryIO, NoReturn

try:
    import click
except ImportError:  # the console script is installed with the package, click only with the cli extra
    raise SystemExit('kvstore\'s command line needs the cli extra: pip install "kvstore[cli]"') from None

from kvstore import Entry, KVError, KVStore, Namespace, Value

EXIT_ERROR = 1
EXIT_NOT_DONE = 3


class _NotFound(KVError):
    status = 404
    error_code = 3404
    title = "Not found"
    slug = "not-found"


def _fail(error: KVError, instance: str) -> NoReturn:
    click.echo(json.dumps({"ok": False, "errors": [error.to_problem(instance=instance)]}), err=True)
    sys.exit(EXIT_ERROR)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _print(data: Any) -> None:
    click.echo(json.dumps(_jsonable(data), ensure_ascii=False))


def _entry(entry: Entry) -> dict[str, Any]:
    data = entry._asdict()
    data["encoding"] = "base64" if isinstance(entry.value, bytes) else "json"
    return data


@contextmanager
def _open(db: str) -> Iterator[KVStore]:
    """Open the store; a KVError, on opening or inside the block, becomes a problem on stderr."""
    try:
        with KVStore(db) as kv:
            yield kv
    except KVError as error:
        _fail(error, click.get_current_context().command_path)


@contextmanager
def _store(db: str, namespace: str | None) -> Iterator[Namespace]:
    """The store's default namespace, or ``namespace``; errors as for ``_open``."""
    with _open(db) as kv:
        yield kv if namespace is None else kv.namespace(namespace)


# A string, not a click.Path: a postgresql:// URL must reach KVStore as it was typed.
db_option = click.option(
    "--db", required=True, help="The database: a file path, or a postgresql:// URL (with the postgres extra)."
)
namespace_option = click.option("--namespace", "-n", default=None, help="A namespace (default: the default one).")


@click.group()
@click.version_option(package_name="kvstore")
def main() -> None:
    """kvstore: an embedded key-value store on SQLite (or PostgreSQL), from the shell or over HTTP."""


@main.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8901, show_default=True, type=click.IntRange(0, 65535), help="The port.")
@click.option(
    "--token",
    "tokens",
    multiple=True,
    envvar="KVSTORE_TOKENS",
    help="A bearer token, or TOKEN:STORE,STORE to limit it to those stores. Repeatable; without any, no auth.",
)
@click.option("--max-body-size", type=click.IntRange(1), default=None, help="Largest request body in bytes.")
def serve(db: str, host: str, port: int, tokens: tuple[str, ...], max_body_size: int | None) -> None:
    """Serve the store at --db over HTTP: both seed APIs, with OpenAPI at /openapi.json."""
    try:
        import uvicorn

        from kvstore.server import DEFAULT_MAX_BODY_SIZE, Token, create_app
    except ImportError as exc:
        raise click.ClickException(f'serving needs the server extra: pip install "kvstore[server]" ({exc})') from exc
    parsed = []
    for spec in tokens:
        secret, _, stores = spec.partition(":")
        parsed.append(Token(secret, frozenset(s for s in stores.split(",") if s) if stores else None))
    if not parsed:
        click.echo("warning: no --token given: anyone who can reach the port can read and write", err=True)
    app = create_app(db, tokens=parsed or None, max_body_size=max_body_size or DEFAULT_MAX_BODY_SIZE)
    uvicorn.run(app, host=host, port=port)


@main.command()
@db_option
@namespace_option
@click.argument("key")
@click.option("--raw", is_flag=True, help="Print only the value: bytes and text as they are, JSON otherwise.")
def get(db: str, namespace: str | None, key: str, raw: bool) -> None:
    """Print the live entry at KEY as JSON; exit 1 with a not-found problem if there is none."""
    with _store(db, namespace) as kv:
        entry = kv.get(key)
    if entry is None:
        _fail(_NotFound(f"no live entry at key {key!r}"), click.get_current_context().command_path)
    if not raw:
        _print(_entry(entry))
    elif isinstance(entry.value, bytes):
        sys.stdout.buffer.write(entry.value)
        sys.stdout.flush()
    elif isinstance(entry.value, str):
        click.echo(entry.value, nl=False)
    else:
        _print(entry.value)


def _value(value: str | None, text: bool, file: BinaryIO | None) -> Value:
    if file is not None:
        return file.read()
    if value is None:
        raise click.UsageError("give a VALUE, or --file")
    if text:
        return value
    try:
        parsed: Value = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"VALUE is not JSON ({exc}); pass --text to store it as text") from exc
    return parsed


@main.command(name="set")
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
    """Write VALUE (JSON, or text with --text, or bytes with --file) at KEY; print the result as JSON."""
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
    with _store(db, namespace) as kv:
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
    _print(result._asdict())
    if not result.ok:
        sys.exit(EXIT_NOT_DONE)


@main.command()
@db_option
@namespace_option
@click.argument("key")
@click.option("--if-versionstamp", default=None, help="Delete only if the entry is at this versionstamp.")
def delete(db: str, namespace: str | None, key: str, if_versionstamp: str | None) -> None:
    """Delete the live entry at KEY; print {"deleted": true|false} (exit 3 when nothing was deleted)."""
    with _store(db, namespace) as kv:
        deleted = kv.delete(key, if_versionstamp=if_versionstamp)
    _print({"deleted": deleted})
    if not deleted:
        sys.exit(EXIT_NOT_DONE)


@main.command(name="list")
@db_option
@namespace_option
@click.argument("prefix", default="")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many entries.")
@click.option("--cursor", default=None, help="Continue after the page that returned this cursor.")
@click.option("--reverse", is_flag=True, help="Descending key order.")
@click.option("--keys-only", is_flag=True, help="Print only the keys.")
def list_command(
    db: str, namespace: str | None, prefix: str, limit: int | None, cursor: str | None, reverse: bool, keys_only: bool
) -> None:
    """Print the live entries under PREFIX as JSON: {"entries": [...], "cursor": ...}."""
    entries: list[Any]
    with _store(db, namespace) as kv:
        if keys_only:  # no value is read
            keys = kv.list_keys(prefix, limit=limit, cursor=cursor, reverse=reverse)
            entries, next_cursor = keys.keys, keys.cursor
        else:
            page = kv.list(prefix, limit=limit, cursor=cursor, reverse=reverse)
            entries, next_cursor = [_entry(e) for e in page], page.cursor
    _print({"entries": entries, "cursor": next_cursor})


@main.command()
@db_option
def purge(db: str) -> None:
    """Delete every expired entry now; print {"purged": N}."""
    with _open(db) as kv:
        _print({"purged": kv.purge_expired()})


@main.command()
@db_option
def info(db: str) -> None:
    """Print figures about the database as JSON: entries, namespaces, schema revision, size."""
    with _open(db) as kv:
        _print(dataclasses.asdict(kv.info()))


@main.command()
@db_option
def migrate(db: str) -> None:
    """Create the database, or upgrade its schema to this version of kvstore; print the schema revision."""
    with _open(db) as kv:  # opening a store creates or upgrades its schema
        _print({"schema_revision": kv.info().schema_revision})


if __name__ == "__main__":
    main()
