"""The ``kvstore`` command: serve a store over HTTP, or read and write one from the shell.

This module holds the group and ``serve``; the other commands live in ``kvstore._cli`` (``entries``: get, set,
delete, list, count, delete-prefix, watch; ``store``: purge, info, migrate, backup, export, import; ``queue``:
enqueue, queue info, queue peek), with what
they share (``common``: the error contract, JSON output, opening --db) and the progress line (``progress``).
Every data command takes ``--db`` and prints JSON on stdout; the exit codes are the group's help below.
"""

from __future__ import annotations

try:
    import click
except ImportError:  # the console script is installed with the package, click only with the cli extra
    raise SystemExit(
        'kvstore\'s command line needs the cli extra: pip install "stampkv[cli]" (in a checkout: pip install ".[cli]")'
    ) from None

from kvstore import ConfigurationError, KVError, KVStore, __version__

from ._cli import entries, queue, store
from ._cli.common import Group, NotStarted, db_option, fail


@click.group(cls=Group)
@click.version_option(version=__version__)  # not package_name: the distribution is not named kvstore
def main() -> None:
    """kvstore: an embedded key-value store on SQLite (or PostgreSQL), from the shell or over HTTP.

    Every command takes --db (a file path, or a postgresql:// URL); all but serve print JSON on stdout: one
    document, or JSON Lines for list, watch, export and queue peek. Only set, enqueue, import and migrate
    create a database.

    \b
    Exit codes:
      0    done
      1    an error: its problem-details JSON {"ok": false, "errors": [...]} is on stderr
      2    a usage error (a bad option, argument or VALUE): click's usage text is on stderr
      3    not done: a set whose condition failed, a delete that found nothing (the result is on stdout)
      130  interrupted (Ctrl-C)
      141  stdout was closed by its reader (a pipe into head, say)
    """


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
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Worker processes; each opens its own store on the same --db (a file or PostgreSQL).",
)
@click.option("--access-log", is_flag=True, help="Log every request (off by default: it costs more than a get).")
@click.option(
    "--head-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds a connection has to send a complete request head (after it opens or after an answer).",
)
def serve(
    db: str,
    host: str,
    port: int,
    tokens: tuple[str, ...],
    max_body_size: int | None,
    workers: int,
    access_log: bool,
    head_timeout: float,
) -> None:
    """Serve the store at --db over HTTP: both seed APIs, with OpenAPI at /openapi.json."""
    try:
        from kvstore.server import DEFAULT_MAX_BODY_SIZE, Token
        from kvstore.server import serve as serve_http
    except ImportError as exc:
        fail(ConfigurationError(f'serving needs the server extra: pip install "stampkv[server]" ({exc})'))
    if db == ":memory:" and workers > 1:
        raise click.UsageError("--workers > 1 needs a database file or PostgreSQL: each worker opens its own store")
    parsed = []
    for spec in tokens:
        secret, _, stores = spec.partition(":")
        parsed.append(Token(secret, frozenset(s for s in stores.split(",") if s) if stores else None))
    if not parsed:
        click.echo("warning: no --token given: anyone who can reach the port can read and write", err=True)
    limit = max_body_size or DEFAULT_MAX_BODY_SIZE
    try:  # opened here first, so that a store that cannot be opened is one line, not a worker's traceback
        KVStore(db).close()
    except KVError as error:
        fail(error)
    try:
        serve_http(
            db,
            host=host,
            port=port,
            workers=workers,
            tokens=parsed or None,
            max_body_size=limit,
            access_log=access_log,
            head_timeout=head_timeout,
        )
    except SystemExit as exc:  # uvicorn exits 3 (1 with workers) when it cannot start: the port is taken, say
        if exc.code not in (0, None):
            fail(NotStarted(f"the server did not start on {host}:{port} (uvicorn exited {exc.code}; its log says why)"))
        raise


for _command in (
    entries.get,
    entries.set_command,
    entries.delete,
    entries.list_command,
    entries.count,
    entries.delete_prefix,
    entries.watch,
    store.purge,
    store.info,
    store.checkpoint,
    store.migrate,
    store.check,
    store.backup,
    store.export_command,
    store.import_command,
    queue.enqueue,
    queue.queue_group,
):
    main.add_command(_command)
del _command


if __name__ == "__main__":
    main()
