"""The one write path: checks, then mutations, in one transaction under one versionstamp.

``set`` and ``delete`` (with or without conditions) are one-mutation atomics through ``commit``; the
multi-key ``atomic`` builder uses it too. Inputs arrive validated and encoded: inside the transaction
there is only SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._backend import Backend, Current, Transaction
from ._codec import format_versionstamp, parse_versionstamp


@dataclass(frozen=True, slots=True)
class Check:
    """Commit only if the live entry at ``key`` has ``versionstamp`` (None: only if there is none)."""

    namespace: str
    key: str
    versionstamp: str | None


@dataclass(frozen=True, slots=True)
class Put:
    """Write an entry whole; with ``overwrite=False``, leave a live entry alone instead."""

    namespace: str
    key: str
    value: bytes
    content_type: str
    metadata: str | None
    expires_us: int | None
    ttl_us: int | None
    refresh_on_access: bool
    overwrite: bool = True


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove the entry at ``key``."""

    namespace: str
    key: str


Mutation = Put | Delete


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a commit did.

    ``ok`` is False when a check failed; ``failed`` then lists (check index, current versionstamp) and
    nothing was written. Otherwise ``previous[i]`` is the live versionstamp mutation i found (None: no live
    entry), ``applied[i]`` whether it wrote, and ``versionstamp`` the commit's, None if nothing was written.
    """

    ok: bool
    versionstamp: str | None
    failed: list[tuple[int, str | None]]
    previous: list[str | None]
    applied: list[bool]


def _stamp(current: Current | None) -> str | None:
    return None if current is None else format_versionstamp(current[0])


def commit(backend: Backend, checks: Sequence[Check], mutations: Sequence[Mutation], now_us: int) -> Outcome:
    """Apply ``mutations`` if every check holds, atomically; a versionstamp is drawn only if one writes."""
    wanted = [None if c.versionstamp is None else parse_versionstamp(c.versionstamp) for c in checks]

    def body(tx: Transaction) -> Outcome:
        # What each key holds now, as this transaction's own mutations change it.
        live: dict[tuple[str, str], Current | None] = {}

        def current(namespace: str, key: str) -> Current | None:
            slot = (namespace, key)
            if slot not in live:
                live[slot] = tx.current(namespace, key, now_us)
            return live[slot]

        failed: list[tuple[int, str | None]] = []
        for index, check in enumerate(checks):
            found = current(check.namespace, check.key)
            if (found is None) != (wanted[index] is None) or (found is not None and found[0] != wanted[index]):
                failed.append((index, _stamp(found)))
        if failed:
            return Outcome(False, None, failed, [], [])

        version: int | None = None
        previous: list[str | None] = []
        applied: list[bool] = []
        for mutation in mutations:
            found = current(mutation.namespace, mutation.key)
            previous.append(_stamp(found))
            if isinstance(mutation, Put):
                if found is not None and not mutation.overwrite:
                    applied.append(False)
                    continue
                if version is None:
                    version = tx.next_version()
                created_us = now_us if found is None else found[1]
                tx.put(
                    mutation.namespace,
                    mutation.key,
                    mutation.value,
                    mutation.content_type,
                    mutation.metadata,
                    version,
                    created_us,
                    now_us,
                    mutation.expires_us,
                    mutation.ttl_us,
                    mutation.refresh_on_access,
                )
                live[(mutation.namespace, mutation.key)] = (version, created_us)
            else:
                if found is None:
                    applied.append(False)
                    continue
                if version is None:
                    version = tx.next_version()
                tx.delete(mutation.namespace, mutation.key)
                live[(mutation.namespace, mutation.key)] = None
            applied.append(True)
        return Outcome(True, None if version is None else format_versionstamp(version), [], previous, applied)

    return backend.transact(body)
