"""What the queue API returns: an enqueue's result, a queue's figures, a message looked at but not taken.

No ``from __future__ import annotations`` here, as in ``_models``: the annotations stay types.
"""

from datetime import datetime
from typing import Any, NamedTuple

__all__ = ["EnqueueResult", "QueueInfo", "QueuedMessage"]


class EnqueueResult(NamedTuple):
    """The outcome of ``enqueue``: the commit's ``versionstamp`` and the new message's id (a ULID)."""

    ok: bool
    versionstamp: str
    message_id: str


class QueueInfo(NamedTuple):
    """How many messages of ``queue`` are ready (due now, or leased with the lease run out), delayed (due
    later), in flight (leased) and dead letters (kept until ``clear_dead_letters``), in one snapshot."""

    queue: str
    ready: int
    delayed: int
    in_flight: int
    dead_letters: int


class QueuedMessage(NamedTuple):
    """A ready message as ``peek_queue`` sees it, not taken: ``attempt`` is the number its next delivery
    will carry (1 if it was never delivered); times are UTC-aware."""

    id: str
    value: Any
    attempt: int
    queue: str
    enqueued_at: datetime
    due_at: datetime
    content_type: str
