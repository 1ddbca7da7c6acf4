"""atomic(): many checks and mutations, committed all or nothing under one versionstamp."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Literal, Self

from ._codec import JSON, Value
from ._errors import AtomicLimitError, AtomicReusedError, InvalidValueError
from ._models import CommitResult, FailedCheck
from ._mutations import Arith, Check, Delete, Enqueue, Mutation, build_put
from ._queue import build_enqueue
from ._shared import Shared
from ._shown import shown
from ._validation import Milliseconds, check_key, check_versionstamp
from ._write import commit


class AtomicOperation:
    """A transaction builder: ``kv.atomic().check(k, v).set(k, x).delete(j).commit()``.

    Checks are evaluated first, against live entries only; then every mutation applies, in order, or none
    does. As a context manager it commits on a clean exit (the outcome is in ``result``) and discards the
    operation if the block raises. Each call is validated when it is made, against the store's limits.
    """

    __slots__ = ("_checks", "_done", "_mutations", "_namespace", "_result", "_shared", "_size")

    def __init__(self, shared: Shared, namespace: str) -> None:
        self._shared = shared
        self._namespace = namespace
        self._checks: list[Check] = []
        self._mutations: list[Mutation] = []
        self._size = 0
        self._done = False
        self._result: CommitResult | None = None

    def check(self, key: str, versionstamp: str | None) -> Self:
        """Commit only if the live entry at ``key`` has ``versionstamp``; None means "must be absent"."""
        self._open()
        check_key(key)
        if versionstamp is not None:
            check_versionstamp(versionstamp, "versionstamp")
        limit = self._shared.max_checks
        if len(self._checks) >= limit:
            raise AtomicLimitError(f"an atomic commit may hold at most {limit} checks")
        self._checks.append(Check(self._namespace, key, versionstamp))
        self._grow(len(key))
        return self

    def set(
        self,
        key: str,
        value: Value,
        *,
        expire_in: timedelta | Milliseconds | None = None,
        expire_at: datetime | None = None,
        refresh_on_access: bool = False,
        metadata: Mapping[str, JSON] | None = None,
        content_type: str | None = None,
    ) -> Self:
        """Write ``value`` at ``key``, replacing the whole entry (the options are those of ``kv.set``: ``expire_in``
        is a timedelta or a number of **milliseconds**)."""
        self._open()
        shared = self._shared
        # Positional, as in ``kv.set``: a batch makes this call once per set.
        put = build_put(
            self._namespace, key, value, shared.now_us, shared.max_value_size, shared.max_metadata_size,
            expire_in, expire_at, refresh_on_access, metadata, content_type,
        )  # fmt: skip
        return self._add(put, len(key) + len(put.value) + len(put.metadata or ""))

    def delete(self, key: str) -> Self:
        """Remove the entry at ``key`` (nothing happens if there is none)."""
        self._open()
        return self._add(Delete(self._namespace, check_key(key)), len(key))

    def sum(self, key: str, operand: int) -> Self:
        """Add ``operand`` to the integer at ``key`` (a missing entry counts as 0)."""
        return self._arith(key, "sum", operand)

    def min(self, key: str, operand: int) -> Self:
        """Keep the smaller of ``operand`` and the integer at ``key`` (a missing entry becomes ``operand``)."""
        return self._arith(key, "min", operand)

    def max(self, key: str, operand: int) -> Self:
        """Keep the larger of ``operand`` and the integer at ``key`` (a missing entry becomes ``operand``)."""
        return self._arith(key, "max", operand)

    def enqueue(
        self,
        value: Value,
        *,
        delay: timedelta | Milliseconds | None = None,
        keys_if_undelivered: Iterable[str] = (),
        backoff_schedule: Iterable[timedelta | Milliseconds] | None = None,
        queue: str = "default",
        content_type: str | None = None,
    ) -> Self:
        """Add a message to ``queue`` if and only if the commit succeeds (the options are ``kv.enqueue``'s)."""
        self._open()
        shared = self._shared
        message = build_enqueue(
            self._namespace, value, shared.max_value_size, delay, keys_if_undelivered, backoff_schedule, queue,
            content_type,
        )  # fmt: skip
        return self._add(message, len(message.value))

    def commit(self) -> CommitResult:
        """Apply everything or nothing; a failed check is a result (``ok=False``), not an exception."""
        self._open()
        self._done = True
        shared = self._shared
        outcome = commit(shared.group, self._checks, self._mutations, shared.now_us(), shared.backend.queue)
        failed = tuple(FailedCheck(i, self._checks[i].key, stamp) for i, stamp in outcome.failed)
        ids = tuple(m.message_id for m in self._mutations if type(m) is Enqueue) if outcome.ok else ()
        self._result = CommitResult(outcome.ok, outcome.versionstamp, failed, ids)
        if outcome.versionstamp is not None:
            shared.committed()
        return self._result

    @property
    def result(self) -> CommitResult | None:
        """The outcome once committed, else None."""
        return self._result

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None and not self._done:
            self.commit()
        self._done = True

    def _arith(self, key: str, op: Literal["sum", "min", "max"], operand: int) -> Self:
        self._open()
        check_key(key)
        if type(operand) is not int:
            raise InvalidValueError(f"{op} takes an int operand, not {type(operand).__name__}")
        if not -(2**63) <= operand < 2**63:
            raise InvalidValueError(f"{op} operand {shown(operand)} is outside the signed 64-bit range")
        return self._add(Arith(self._namespace, key, op, operand), len(key) + 8)

    def _add(self, mutation: Mutation, size: int) -> Self:
        limit = self._shared.max_mutations
        if len(self._mutations) >= limit:
            raise AtomicLimitError(f"an atomic commit may hold at most {limit} mutations")
        self._grow(size)
        self._mutations.append(mutation)
        return self

    def _grow(self, size: int) -> None:
        limit = self._shared.max_commit_size
        if self._size + size > limit:
            raise AtomicLimitError(f"an atomic commit may carry at most {limit} bytes of keys and values")
        self._size += size

    def _open(self) -> None:
        if self._done:
            raise AtomicReusedError("this atomic operation was already committed or discarded")
