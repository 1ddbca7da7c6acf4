"""The queue commands: ``enqueue``, and the ``queue`` group (``info``, ``peek``).

Each is a thin call of one method of the library; its docstring is its ``--help``. Values are given as for
``set`` (strict JSON, text with --text, the bytes of --file); peeked values come out as ``get`` prints them
(JSON, or base64 beside their ``encoding``).
"""

from __future__ import annotations

import base64
import sys
from typing import TYPE_CHECKING, Any, BinaryIO

import click
import msgpack

from .common import db_option, dumps, namespace_option, open_namespace, output, output_line
from .entries import _value

if TYPE_CHECKING:
    from kvstore import QueuedMessage

queue_option = click.option("--queue", "-q", default="default", show_default=True, help="The queue's name.")


def message_json(message: QueuedMessage) -> dict[str, Any]:
    """A peeked message as a JSON object: times as ISO 8601, the value as ``entry_json`` shows one."""
    data = message._asdict()
    for name in ("enqueued_at", "due_at"):
        data[name] = data[name].isoformat()
    value = message.value
    if type(value) is bytes:
        data["value"], data["encoding"] = base64.b64encode(value).decode("ascii"), "base64"
        return data
    try:
        dumps(value)
        data["encoding"] = "json"
    except (TypeError, ValueError):  # bytes inside a list or dict, NaN, an infinity: msgpack, as export does
        data["value"] = base64.b64encode(msgpack.packb(value, use_bin_type=True)).decode("ascii")
        data["encoding"] = "msgpack"
    return data


@click.command()
@db_option
@namespace_option
@queue_option
@click.argument("value", required=False)
@click.option("--text", is_flag=True, help="Enqueue VALUE as text rather than parse it as JSON.")
@click.option("--file", type=click.File("rb"), default=None, help="Enqueue the bytes of this file ('-': stdin).")
@click.option("--delay", type=float, default=None, help="Milliseconds before it is delivered (0 to 30 days).")
@click.option(
    "--key-if-undelivered",
    "keys_if_undelivered",
    multiple=True,
    help="A key the value is set at if it is never handled (repeatable, at most 10).",
)
@click.option(
    "--backoff",
    default=None,
    help="Retry intervals in milliseconds, comma-separated (at most 5 of 0 to 3600000; default Deno's).",
)
@click.option("--content-type", default=None, help="The value's content type.")
def enqueue(
    db: str,
    namespace: str | None,
    queue: str,
    value: str | None,
    text: bool,
    file: BinaryIO | None,
    delay: float | None,
    keys_if_undelivered: tuple[str, ...],
    backoff: str | None,
    content_type: str | None,
) -> None:
    """Enqueue VALUE (strict JSON, or text with --text) or the bytes of --file on --queue; print the result
    as JSON: {"ok": true, "versionstamp": ..., "message_id": ...}.

    Creates the database if it does not exist.
    """
    stored = _value(value, text, file)
    schedule: list[float] | None = None
    if backoff is not None:
        try:
            schedule = [float(part) for part in backoff.split(",") if part.strip()]
        except ValueError as exc:
            raise click.UsageError(f"--backoff is not a list of milliseconds: {exc}") from exc
    with open_namespace(db, namespace, create=True) as kv:
        result = kv.enqueue(
            stored,
            delay=delay,
            keys_if_undelivered=keys_if_undelivered,
            backoff_schedule=schedule,
            queue=queue,
            content_type=content_type,
        )
    output(result._asdict())


@click.group(name="queue")
def queue_group() -> None:
    """Inspect a queue: how many messages it holds, and the next ones due."""


@queue_group.command()
@db_option
@namespace_option
@queue_option
def info(db: str, namespace: str | None, queue: str) -> None:
    """Print the counts of --queue as JSON: {"queue", "ready", "delayed", "in_flight", "dead_letters"}."""
    with open_namespace(db, namespace) as kv:
        output(kv.queue_info(queue)._asdict())


@queue_group.command()
@db_option
@namespace_option
@queue_option
@click.option("--limit", type=click.IntRange(1), default=10, show_default=True, help="At most this many messages.")
def peek(db: str, namespace: str | None, queue: str, limit: int) -> None:
    """Print the next ready messages of --queue as JSON Lines, in delivery order, without taking them."""
    with open_namespace(db, namespace) as kv:
        for message in kv.peek_queue(queue, limit=limit):
            output_line(dumps(message_json(message)))
    sys.stdout.flush()
