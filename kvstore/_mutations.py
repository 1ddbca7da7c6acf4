"""What a commit is made of: the check and the three mutations, the outcome a commit reports, and the
validation that turns one ``set`` call (of ``kv.set`` or ``atomic().set``) into a ``Put`` before anything
is written (pure).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal

from ._checksum import checksum
from ._codec import default_content_type, encode_metadata, encode_value
from ._validation import (
    check_content_type,
    check_key,
    check_set_options,
    to_epoch_us,
    ttl_from_expire_at,
    ttl_from_expire_in,
)


class Check:
    """Commit only if the live entry at ``key`` has ``versionstamp`` (None: only if there is none)."""

    __slots__ = ("key", "namespace", "versionstamp")

    def __init__(self, namespace: str, key: str, versionstamp: str | None) -> None:
        self.namespace = namespace
        self.key = key
        self.versionstamp = versionstamp


class Put:
    """Write an entry whole; with ``overwrite=False``, leave a live entry alone instead.

    The expiry is ``deadline_us`` when the caller named an instant, else commit time + ``ttl_us``; the
    checksum, written with the entry, is computed here, before any transaction.
    """

    # Plain slotted classes rather than dataclasses: one is built per mutation, and a dataclass costs a
    # millisecond of import time each.
    __slots__ = (
        "checksum", "content_type", "deadline_us", "key", "metadata", "namespace", "overwrite", "refresh_on_access",
        "ttl_us", "value",
    )  # fmt: skip

    def __init__(
        self,
        namespace: str,
        key: str,
        value: bytes,
        content_type: str,
        metadata: str | None,
        ttl_us: int | None,
        deadline_us: int | None,
        refresh_on_access: bool,
        overwrite: bool = True,
    ) -> None:
        self.namespace = namespace
        self.key = key
        self.value = value
        self.content_type = content_type
        self.metadata = metadata
        self.ttl_us = ttl_us
        self.deadline_us = deadline_us
        self.refresh_on_access = refresh_on_access
        self.overwrite = overwrite
        self.checksum = checksum(value, content_type, metadata)

    def expires_us(self, now_us: int) -> int | None:
        if self.deadline_us is not None:
            return self.deadline_us
        return None if self.ttl_us is None else now_us + self.ttl_us


class Delete:
    """Remove the entry at ``key``."""

    __slots__ = ("key", "namespace")

    def __init__(self, namespace: str, key: str) -> None:
        self.namespace = namespace
        self.key = key


class Arith:
    """Combine the integer at ``key`` with ``operand`` (an absent entry becomes ``operand``); the rest stays."""

    __slots__ = ("key", "namespace", "op", "operand")

    def __init__(self, namespace: str, key: str, op: Literal["sum", "min", "max"], operand: int) -> None:
        self.namespace = namespace
        self.key = key
        self.op = op
        self.operand = operand


class Enqueue:
    """Add a message to ``queue``, due ``delay_us`` after commit time (built by ``_queue.build_enqueue``)."""

    __slots__ = ("backoff", "content_type", "delay_us", "keys", "message_id", "namespace", "queue", "value")

    def __init__(
        self,
        namespace: str,
        queue: str,
        message_id: str,
        value: bytes,
        content_type: str,
        delay_us: int,
        backoff: str,
        keys: str | None,
    ) -> None:
        self.namespace = namespace
        self.queue = queue
        self.message_id = message_id
        self.value = value
        self.content_type = content_type
        self.delay_us = delay_us
        self.backoff = backoff
        self.keys = keys


Mutation = Put | Delete | Arith | Enqueue


class Outcome:
    """What a commit did.

    ``ok`` is False when a check failed; ``failed`` then lists (check index, current versionstamp) and
    nothing was written. Otherwise ``found[i]`` says whether mutation i found a live entry (None for a put
    of a bulk commit, which writes without looking), ``applied[i]`` whether it wrote, ``kept[i]`` is the
    versionstamp of the live entry a mutation left alone (None if it wrote or found none), and
    ``versionstamp`` the commit's, None if nothing was written.
    """

    __slots__ = ("applied", "failed", "found", "kept", "ok", "versionstamp")

    def __init__(
        self,
        ok: bool,
        versionstamp: str | None,
        failed: list[tuple[int, str | None]],
        found: list[bool | None],
        applied: list[bool],
        kept: list[str | None],
    ) -> None:
        self.ok = ok
        self.versionstamp = versionstamp
        self.failed = failed
        self.found = found
        self.applied = applied
        self.kept = kept


def build_put(
    namespace: str,
    key: str,
    value: object,
    clock: Callable[[], int],
    max_value_size: int,
    max_metadata_size: int,
    expire_in: object = None,
    expire_at: object = None,
    refresh_on_access: object = False,
    metadata: object = None,
    content_type: object = None,
    if_versionstamp: object = None,
    if_not_exists: object = False,
    overwrite: object = True,
) -> Put:
    """Validate and encode one set (the options are those of ``kv.set``); raises a ValidationError before
    anything is written. ``clock`` is read only if an ``expire_at`` needs checking against now.

    The Put's ``overwrite`` is False only for ``overwrite=False`` without ``if_not_exists``: with it, finding
    a live entry fails the check rather than leaving the entry alone."""
    plain = (
        expire_in is None
        and expire_at is None
        and refresh_on_access is False
        and metadata is None
        and content_type is None
    )
    # A plain set with the default flags (the commonest set, and every set of a bulk batch) needs only its
    # key and value checked: the option checks look for contradictions that the defaults cannot hold.
    if not plain or if_versionstamp is not None or if_not_exists is not False or overwrite is not True:
        check_set_options(
            if_versionstamp=if_versionstamp,
            if_not_exists=if_not_exists,
            overwrite=overwrite,
            expire_in=expire_in,
            expire_at=expire_at,
            refresh_on_access=refresh_on_access,
        )
    check_key(key)
    keeps = overwrite is False and if_not_exists is False
    if plain:
        data = encode_value(value, max_value_size)
        return Put(namespace, key, data, default_content_type(value), None, None, None, False, not keeps)
    ttl_us = deadline_us = None
    if expire_in is not None:
        ttl_us = ttl_from_expire_in(expire_in)
    elif expire_at is not None:
        ttl_us = ttl_from_expire_at(expire_at, clock())
        assert isinstance(expire_at, datetime)
        deadline_us = to_epoch_us(expire_at)
    data = encode_value(value, max_value_size)
    kind = default_content_type(value) if content_type is None else check_content_type(content_type)
    meta = encode_metadata(metadata, max_metadata_size)
    return Put(namespace, key, data, kind, meta, ttl_us, deadline_us, refresh_on_access is True, not keeps)
