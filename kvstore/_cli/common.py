"""What every command shares: the error contract (exit codes, problems on stderr), JSON output, and opening
the store at --db.

The contract: 0 done; 1 an error, its problem-details JSON on stderr; 2 a usage error (the command line
itself is wrong), click's usage text on stderr; 3 not done (a set whose condition failed, a delete that
found nothing: the result is on stdout); 130 interrupted; 141 stdout closed by its reader.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Final, NoReturn

import click
import msgpack

from kvstore import Entry, KVError, KVStore, Namespace, StoreUnavailableError

EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2  # click's own code for a usage error
EXIT_NOT_DONE: Final = 3
EXIT_INTERRUPTED: Final = 130  # 128 + SIGINT, as a shell reports a command Ctrl-C stopped
EXIT_PIPE_CLOSED: Final = 141  # 128 + SIGPIPE, as a shell reports a command whose reader went away


class NotFound(KVError):
    """No live entry at the key a command names."""

    status = 404
    error_code = 3404
    title = "Not found"
    slug = "not-found"


class NotStarted(KVError):
    """The server did not start (the port is taken, say): its log above says why."""

    status = 503
    error_code = 3503
    title = "Server not started"
    slug = "server-not-started"


def fail(error: KVError) -> NoReturn:
    """Print ``error`` as problem-details JSON on stderr and exit 1."""
    instance = click.get_current_context().command_path
    click.echo(json.dumps({"ok": False, "errors": [error.to_problem(instance=instance)]}), err=True)
    sys.exit(EXIT_ERROR)


class Group(click.Group):
    """The command group, with the contract's exits for Ctrl-C and for a reader that closed stdout."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            # Python would complain again when it flushes stdout at exit: point stdout at nothing first.
            with contextlib.suppress(OSError, ValueError):  # ValueError: no descriptor behind a captured stdout
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(EXIT_PIPE_CLOSED)


def _msgpack(value: Any) -> tuple[str, str]:
    return base64.b64encode(msgpack.packb(value, use_bin_type=True)).decode("ascii"), "msgpack"


def _fields(entry: Entry) -> dict[str, Any]:
    """An entry's fields for JSON: times as ISO 8601, bytes as base64 beside ``"encoding": "base64"``."""
    data = entry._asdict()
    value = entry.value
    data["value"], data["encoding"] = (
        (base64.b64encode(value).decode("ascii"), "base64") if type(value) is bytes else (value, "json")
    )
    for name in ("created_at", "updated_at", "expires_at"):
        moment: datetime | None = data[name]
        data[name] = None if moment is None else moment.isoformat()
    return data


def entry_json(entry: Entry) -> dict[str, Any]:
    """An entry as a JSON object: its fields, the value in its JSON form beside its ``encoding``: ``json``;
    ``base64`` for bytes; ``msgpack`` (base64 of its msgpack) for what JSON cannot hold (bytes inside a list
    or dict, NaN or an infinity). The forms of ``export_jsonl``: output is always JSON, and says what is stored."""
    data = _fields(entry)
    try:
        dumps(data["value"])
    except (TypeError, ValueError):
        data["value"], data["encoding"] = _msgpack(entry.value)
    return data


def entry_line(entry: Entry) -> str:
    """``entry_json`` as JSON text, the value encoded once when JSON holds it (a listing's common case): with a
    trial encoding first, as ``entry_json`` does, listing 200,000 entries took 3.24 s instead of 2.78 s."""
    data = _fields(entry)
    try:
        return dumps(data)
    except (TypeError, ValueError):
        data["value"], data["encoding"] = _msgpack(entry.value)
        return dumps(data)


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, allow_nan=False)


def output(data: Any) -> None:
    """Print ``data`` as one JSON document on stdout."""
    click.echo(dumps(data))


def output_line(text: str) -> None:
    """Print ``text`` (JSON) as one line of JSON Lines, buffered, for a listing flushes once at its end:
    ``click.echo``, which flushes every line, took 1.08 s to list 200,000 keys into a file, this 0.60 s."""
    sys.stdout.write(text + "\n")


def _missing(db: str) -> str | None:
    """The file that an SQLite ``--db`` names, if it does not exist."""
    if db.startswith("sqlite://"):
        db = db.removeprefix("sqlite:///") if db.startswith("sqlite:///") else ":memory:"
    if db == ":memory:" or "://" in db:
        return None
    path = os.path.expanduser(db)
    return None if os.path.exists(path) else path


@contextmanager
def open_store(db: str, *, create: bool = False) -> Iterator[KVStore]:
    """The store at ``db``; a KVError, on opening or inside the block, becomes a problem on stderr. Unless
    ``create``, a database file that does not exist is such an error, and nothing is created."""
    try:
        missing = None if create else _missing(db)
        if missing is not None:
            command = click.get_current_context().info_name
            raise StoreUnavailableError(
                f"database {missing!r} does not exist: {command} creates none (set, enqueue, import and migrate do)"
            )
        with KVStore(db) as kv:
            yield kv
    except KVError as error:
        fail(error)


@contextmanager
def open_namespace(db: str, namespace: str | None, *, create: bool = False) -> Iterator[Namespace]:
    """The store's default namespace, or ``namespace``; errors as for ``open_store``."""
    with open_store(db, create=create) as kv:
        yield kv if namespace is None else kv.namespace(namespace)


# A string, not a click.Path: a postgresql:// URL must reach KVStore as it was typed.
db_option = click.option(
    "--db", required=True, help="The database: a file path, or a postgresql:// URL (with the postgres extra)."
)
namespace_option = click.option("--namespace", "-n", default=None, help="A namespace (default: the default one).")
