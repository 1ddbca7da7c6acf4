"""KVStore: opening a database, its lifecycle, and store-wide maintenance."""

from __future__ import annotations

import math
import os
import stat
import time
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType
from typing import IO, Final, Literal, Self

from ._backends import Backend, open_backend
from ._codec import DEFAULT_MAX_METADATA_SIZE, DEFAULT_MAX_VALUE_SIZE, format_versionstamp
from ._errors import ConfigurationError, InvalidOptionsError, StoreUnavailableError
from ._models import CheckpointResult, ImportResult, StoreInfo
from ._namespace import DEFAULT_NAMESPACE, Namespace
from ._shared import Shared
from ._shown import shown
from ._validation import MAX_ROWS, Seconds, check_flag, seconds_of
from ._verify import VerifyReport, verify_store

_SYNCHRONOUS: Final = ("NORMAL", "FULL")
_CHECKPOINT_MODES: Final = ("passive", "full", "restart", "truncate")


_POSTGRES_SCHEMES: Final = ("postgresql", "postgres", "postgresql+psycopg")


def _parse_target(target: str | os.PathLike[str]) -> tuple[str, str]:
    """("sqlite", path or ``:memory:``) or ("postgresql", URL) for a file path or an SQLAlchemy URL."""
    if issubclass(type(target), os.PathLike):  # not isinstance(): that would ask the object its __class__
        return "sqlite", _sqlite_location(os.fspath(target))
    if type(target) is not str:
        raise ConfigurationError(f"a store is opened from a path or URL string, not {type(target).__name__}")
    if not target:
        raise ConfigurationError('an empty target names no database: give a path, ":memory:" or a URL')
    if "\x00" in target:
        raise ConfigurationError("a database path or URL cannot contain a NUL character")
    if "://" not in target:
        return "sqlite", _sqlite_location(target)
    if target.split("://", 1)[0] in _POSTGRES_SCHEMES:
        return "postgresql", target  # handed to libpq as it is: its query parameters are libpq's
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(target)
    except ArgumentError as exc:
        raise ConfigurationError(f"cannot parse database URL: {exc}") from exc
    if url.get_backend_name() != "sqlite" or url.get_driver_name() not in ("pysqlite", "sqlite"):
        raise ConfigurationError(
            f"unsupported database {url.drivername!r}: kvstore opens SQLite paths, sqlite:// URLs and"
            " postgresql:// (or postgresql+psycopg://) URLs"
        )
    if url.query:
        raise ConfigurationError("sqlite URLs take no query parameters here: pass options to KVStore instead")
    return "sqlite", _sqlite_location(url.database or ":memory:")


def _sqlite_location(path: str) -> str:
    """``:memory:``, or the file ``path`` with ``~`` expanded, in a directory that exists; a name that looks
    like a mistyped ``:memory:`` is refused rather than made into a file of that name."""
    if path == ":memory:":
        return path
    bare = path.strip()
    if ":" in (bare[:1], bare[-1:]) and os.path.basename(bare) == bare and bare.strip(": ").lower().startswith("mem"):
        raise ConfigurationError(
            f'{path!r} looks like a mistyped ":memory:": give ":memory:" exactly for an in-memory store, or'
            f" {os.path.join('.', bare)!r} for a file of that name"
        )
    path = os.path.expanduser(path)
    directory = os.path.dirname(path) or "."
    try:
        found = "a directory" if stat.S_ISDIR(os.stat(directory).st_mode) else "not a directory"
    except (FileNotFoundError, NotADirectoryError):
        found = "missing"
    except OSError:
        return path  # not ours to look into (no permission, say): SQLite reports what it finds
    if found != "a directory":
        raise StoreUnavailableError(
            f"database {path!r} cannot be opened: its directory {directory!r} is {found} (kvstore creates the"
            " database file, never its directories)"
        )
    return path


def _seconds(name: str, value: object, *, positive: bool = True) -> float:
    """A duration option in seconds (a timedelta, or a number of seconds), finite and positive (or >= 0)."""
    seconds = seconds_of(value)
    if seconds is None or not math.isfinite(seconds) or seconds < 0 or (positive and seconds == 0):
        what = "positive" if positive else "non-negative"
        raise ConfigurationError(
            f"{name} must be a datetime.timedelta or a {what} number of seconds, got {shown(value)}"
        )
    return seconds


def _positive_int(name: str, value: object) -> int:
    if type(value) is not int or value < 1:
        raise ConfigurationError(f"{name} must be a positive int, got {shown(value)}")
    return value


class KVStore(Namespace):
    """A persistent key-value store: the default namespace, and the door to the others.

    ``target`` is a file path, ``":memory:"``, an SQLAlchemy URL (``sqlite:///app.db``), or a PostgreSQL
    URL (``postgresql+psycopg://user@host/db``, with the ``postgres`` extra). Opening creates the schema, or
    upgrades an older one. ``clock`` supplies every "now" (epoch seconds). Durations are a
    ``datetime.timedelta`` or a number of **seconds**: ``busy_timeout`` bounds how long a writer waits for the
    write lock. SQLite only: ``synchronous="FULL"`` makes commits survive power loss, not only crashes, at
    some cost per write. PostgreSQL only: ``pool_size`` connections at most, a caller waits up to
    ``pool_timeout`` for a free one, and a new connection up to ``connect_timeout``.
    ``max_checks``, ``max_mutations`` and ``max_commit_size`` (bytes of keys, values and metadata) bound an
    atomic commit.
    """

    __slots__ = ("_backend", "_target")

    def __init__(
        self,
        target: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: timedelta | Seconds = 5.0,
        synchronous: str = "NORMAL",
        max_value_size: int = DEFAULT_MAX_VALUE_SIZE,
        max_metadata_size: int = DEFAULT_MAX_METADATA_SIZE,
        purge_batch_size: int = 500,
        auto_purge_every: int = 1000,
        max_checks: int = 1000,
        max_mutations: int = 10_000,
        max_commit_size: int = 64 * 1024 * 1024,
        pool_size: int = 10,
        pool_timeout: timedelta | Seconds = 30.0,
        connect_timeout: timedelta | Seconds = 10.0,
    ) -> None:
        kind, location = _parse_target(target)
        if not callable(clock):
            raise ConfigurationError("clock must be a callable returning epoch seconds")
        busy = _seconds("busy_timeout", busy_timeout, positive=False)
        if type(synchronous) is not str or synchronous.upper() not in _SYNCHRONOUS:
            raise ConfigurationError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, got {shown(synchronous)}")
        if type(auto_purge_every) is not int or auto_purge_every < 0:
            raise ConfigurationError(
                f"auto_purge_every must be an int >= 0 (0 turns it off), got {shown(auto_purge_every)}"
            )
        # Every option is checked before the database is opened: a bad one must leave no file behind.
        value_size = _positive_int("max_value_size", max_value_size)
        metadata_size = _positive_int("max_metadata_size", max_metadata_size)
        checks = _positive_int("max_checks", max_checks)
        mutations = _positive_int("max_mutations", max_mutations)
        commit_size = _positive_int("max_commit_size", max_commit_size)
        purge_size = min(_positive_int("purge_batch_size", purge_batch_size), MAX_ROWS)
        size = _positive_int("pool_size", pool_size)
        waits = _seconds("pool_timeout", pool_timeout), _seconds("connect_timeout", connect_timeout)
        if kind == "postgresql":
            from ._backends.postgres import display_url

            self._target = display_url(location)
        else:
            self._target = location
        self._backend: Backend = open_backend(
            kind,
            location,
            busy_timeout=busy,
            synchronous=synchronous.upper(),
            pool_size=size,
            pool_timeout=waits[0],
            connect_timeout=waits[1],
        )
        shared = Shared(
            self._backend,
            clock=clock,
            max_value_size=value_size,
            max_metadata_size=metadata_size,
            max_checks=checks,
            max_mutations=mutations,
            max_commit_size=commit_size,
            purge_batch_size=purge_size,
            auto_purge_every=auto_purge_every,
        )
        super().__init__(shared, DEFAULT_NAMESPACE)

    def __repr__(self) -> str:
        return f"<KVStore {self._target!r}{' closed' if self.closed else ''}>"  # a PostgreSQL password masked

    def purge_expired(self) -> int:
        """Delete every expired entry in every namespace, in bounded batches; return how many."""
        shared = self._shared
        total = 0
        while True:
            deleted = self._backend.purge_batch(shared.now_us(), shared.purge_batch_size)
            total += deleted
            if deleted < shared.purge_batch_size:
                return total

    def checkpoint(self, mode: Literal["passive", "full", "restart", "truncate"] = "passive") -> CheckpointResult:
        """Copy the WAL's commits into the database file now, in one of SQLite's modes: "passive" (what no
        reader or writer holds up), "full" (waits for the writers), "restart" (also for readers, so the next
        writer starts the WAL over), "truncate" (as restart, then empties the WAL file, giving its space back).

        A write that finds the disk full runs a "truncate" checkpoint itself and is tried once more. In memory
        and on PostgreSQL (which checkpoints its own WAL) it does nothing and reports (False, 0, 0).
        """
        if type(mode) is not str or mode not in _CHECKPOINT_MODES:
            got = repr(mode[:40]) if type(mode) is str else f"a {type(mode).__name__}"  # bounded: never a huge repr
            raise InvalidOptionsError(f"mode must be one of {', '.join(_CHECKPOINT_MODES)}, got {got}")
        return CheckpointResult(*self._backend.checkpoint(mode))

    def info(self) -> StoreInfo:
        """Figures about the database: entries live and expired, namespaces, schema, size (one snapshot)."""
        live, expired, namespaces, version, revision, size, journal = self._backend.stats(self._shared.now_us())
        return StoreInfo(
            target=self._target,
            schema_revision=revision,
            entries=live,
            expired=expired,
            namespaces=namespaces,
            last_versionstamp=format_versionstamp(version) if version else None,
            size_bytes=size,
            journal_mode=journal,
        )

    def backup(self, target: str | os.PathLike[str], *, progress: Callable[[int, int], None] | None = None) -> None:
        """Copy the store, consistently and while writers go on, into the new SQLite file ``target``.

        ``KVStore(target)`` opens the copy. From SQLite it is SQLite's online backup, all of it from one
        snapshot, in steps that call ``progress(pages copied, pages in all)``; from PostgreSQL, every row and
        the versionstamp counter from one REPEATABLE READ snapshot (``progress(rows copied, rows in all)``).
        It is written beside ``target`` and renamed to it once complete; an existing ``target`` is refused.
        """
        kind, path = _parse_target(target)
        if kind != "sqlite" or path == ":memory:":
            raise InvalidOptionsError(f"a backup is written to a new SQLite file; {shown(target)} names none")
        if os.path.lexists(path):
            raise InvalidOptionsError(f"the backup target {path!r} exists: a backup is written to a new file only")
        self._backend.backup(path, progress)

    def verify(self, *, quick: bool = False, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
        """Scan the whole store for damage and report it (nothing is repaired): SQLite's integrity check
        (``quick``: its quick_check), then every entry's checksum and columns, from one snapshot, calling
        ``progress(entries checked, entries in all)`` as it goes. ``report.ok`` says whether all is sound."""
        check_flag("quick", quick)
        return verify_store(self._backend, quick, progress)

    def export_jsonl(self, file: IO[str] | IO[bytes], *, progress: Callable[[int, int], None] | None = None) -> int:
        """Write every live entry of every namespace to ``file`` (text, or binary for UTF-8) as JSON Lines, in
        namespace and key order, from one snapshot; return how many. Expired entries are left out.

        A line holds the namespace, key, value (bytes and what JSON cannot hold as base64, marked by its
        ``encoding``), metadata, content type, times, expiry and versionstamp: README, "Export and import".
        ``progress(entries written, entries in all)`` is called every 1,000 entries and at the end.
        """
        # Imported on first use: with tempfile, which it needs, it added 5.5 ms to every import of kvstore.
        from ._transfer import export_jsonl

        return export_jsonl(self._shared, file, progress)

    def import_jsonl(
        self,
        file: IO[str] | IO[bytes],
        *,
        on_existing: Literal["fail", "skip", "overwrite"] = "fail",
        progress: Callable[[int, int], None] | None = None,
    ) -> ImportResult:
        """Read JSON Lines (``export_jsonl``'s form) from ``file`` into the store, in bounded memory.

        Every line is checked before anything is written, so bad input changes nothing; then the entries are
        written in batches, each one transaction under one new versionstamp, keeping their times, metadata,
        content type and expiry. Entries expired by now are not written. At a key holding a live entry,
        ``on_existing`` is "fail" (``KeyExistsError``, raised before anything is written, but for a key that
        another writer creates meanwhile or that the input brings twice, 500 entries or more apart), "skip" or
        "overwrite". ``progress(entries, 0)`` is called while checking, ``progress(entries done, entries in
        all)`` while writing.
        """
        from ._transfer import import_jsonl  # on first use, as export_jsonl's

        return import_jsonl(self._shared, file, on_existing, progress)

    def close(self) -> None:
        """Close every connection; using the store afterwards raises StoreClosedError, and watches end.
        Queue listeners are closed first, their running handlers waited for."""
        shared = self._shared
        for listener in list(shared.listeners):
            listener.close()
        self._backend.close()
        with shared.changed:
            shared.changed.notify_all()

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._backend.closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
