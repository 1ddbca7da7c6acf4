"""A commit's mutations as the rows its transaction writes, and sum / min / max applied (pure)."""

from __future__ import annotations

from ._backends.base import PutRow, QueueRow
from ._codec import INT_MAX, INT_MIN
from ._errors import InvalidValueError
from ._mutations import Arith, Enqueue, Put

__all__ = ["combined_value", "put_row", "queue_row", "stamped"]


def combined_value(mutation: Arith, stored: object) -> int:
    """What sum / min / max leaves at a key holding ``stored``; InvalidValueError if it is no int or overflows."""
    if type(stored) is not int:
        raise InvalidValueError(
            f"{mutation.op} needs an integer at {mutation.key!r}, but it holds a {type(stored).__name__}"
        )
    if mutation.op == "sum":
        result = stored + mutation.operand
        if not INT_MIN <= result <= INT_MAX:
            raise InvalidValueError(f"sum at {mutation.key!r} would leave the signed 64-bit range")
        return result
    return min(stored, mutation.operand) if mutation.op == "min" else max(stored, mutation.operand)


def stamped(row: PutRow, version: int) -> PutRow:
    """``row`` under ``version``."""
    return (*row[:5], version, *row[6:])


def put_row(mutation: Put, version: int, created_us: int, now_us: int) -> PutRow:
    """The row a put writes: created at ``created_us``, updated now, under ``version``."""
    return (
        mutation.namespace,
        mutation.key,
        mutation.value,
        mutation.content_type,
        mutation.metadata,
        version,
        created_us,
        now_us,
        mutation.expires_us(now_us),
        mutation.ttl_us,
        mutation.refresh_on_access,
        mutation.checksum,
    )


def queue_row(mutation: Enqueue, version: int, now_us: int) -> QueueRow:
    """The queue row an enqueue writes: due after its delay."""
    return (
        mutation.message_id,
        mutation.namespace,
        mutation.queue,
        mutation.value,
        mutation.content_type,
        version,
        now_us,
        now_us + mutation.delay_us,
        mutation.backoff,
        mutation.keys,
    )
