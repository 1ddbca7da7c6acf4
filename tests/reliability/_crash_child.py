"""The child a crash test kills: it works on a store and acknowledges each commit on stdout, flushed.

An acknowledgement is printed only after the call that committed has returned, so everything it names
must survive the SIGKILL that may come at any moment. The child says "ready" once its imports are done and
starts only when the parent writes a line to its stdin, so the parent can start the next child while it
checks the previous one. Run as a script (``python _crash_child.py MODE ...``); it imports only kvstore.

Modes:
  write PATH TAG SYNCHRONOUS   fresh keys TAG/000000, TAG/000001, ...: "ack KEYS VS" (KEYS comma-separated); most
                               by set(if_not_exists=True), some three at a time by one atomic commit
  purge PATH OFFSET BATCH      purge_expired, the clock OFFSET s ahead: "purging", "purged N" per batch, "done N"
                               (after each batch it waits for a line from the parent)
  migrate DIR TAG              open fresh files DIR/TAG-N.db (creating and migrating them): "open N", "ack N VS"
"""

from __future__ import annotations

import sys
import time
import zlib
from itertools import count
from pathlib import Path

from kvstore import KVStore, Value


def value_for(key: str) -> dict[str, Value]:
    """The value written at ``key``: mostly small, one in eight large enough to span many pages."""
    crc = zlib.crc32(key.encode())
    size = crc % 40_000 if crc % 8 == 0 else crc % 300
    return {"key": key, "pad": (key.encode() * (size // len(key) + 1))[:size]}


def group_at(tag: str, n: int) -> list[str]:
    """The keys the writer writes next, from key number ``n``: three at once by atomic, or one by set."""
    return [f"{tag}/{m:06d}" for m in range(n, n + (3 if n % 10 == 5 else 1))]


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _start() -> None:
    _say("ready")
    if not sys.stdin.readline():
        sys.exit(0)  # the parent went away before starting this child


def write(path: str, tag: str, synchronous: str) -> None:
    _start()
    with KVStore(path, synchronous=synchronous, busy_timeout=60) as kv:
        n = 0
        while True:
            group = group_at(tag, n)
            if len(group) == 1:
                result = kv.set(group[0], value_for(group[0]), if_not_exists=True, metadata={"n": n})
                committed, stamp = result.committed, result.versionstamp
            else:
                operation = kv.atomic()
                for key in group:
                    operation.check(key, None)
                for key in group:
                    operation.set(key, value_for(key), metadata={"n": int(key.split("/")[1])})
                outcome = operation.commit()
                committed, stamp = outcome.committed, outcome.versionstamp
            if not committed:
                _say(f"refused {','.join(group)} {stamp}")
                sys.exit(3)
            _say(f"ack {','.join(group)} {stamp}")
            n += len(group)


def purge(path: str, offset: float, batch: int) -> None:
    _start()
    with KVStore(path, clock=lambda: time.time() + offset, purge_batch_size=batch, auto_purge_every=0) as kv:
        backend = kv._backend
        purge_batch = backend.purge_batch

        def reporting(now_us: int, limit: int) -> int:
            deleted = purge_batch(now_us, limit)
            _say(f"purged {deleted}")  # after the batch's transaction committed
            sys.stdin.readline()  # the parent paces the batches, to kill inside the one it chooses
            return deleted

        backend.purge_batch = reporting  # type: ignore[method-assign]
        _say("purging")
        total = kv.purge_expired()
        _say(f"done {total}")
        sys.stdin.readline()  # wait for the kill


def migrate(directory: str, tag: str) -> None:
    # Import what a migration imports before saying ready, so the kills land in database work.
    import alembic.command  # noqa: F401
    import sqlalchemy  # noqa: F401

    _start()
    for n in count():
        path = Path(directory) / f"{tag}-{n}.db"
        _say(f"open {n}")
        began = time.perf_counter_ns()
        with KVStore(path, busy_timeout=60) as kv:
            result = kv.set("marker", n, if_not_exists=True)
        elapsed = time.perf_counter_ns() - began
        _say(f"ack {n} {result.versionstamp} {elapsed}")


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "write":
        write(args[0], args[1], args[2])
    elif mode == "purge":
        purge(args[0], float(args[1]), int(args[2]))
    elif mode == "migrate":
        migrate(args[0], args[1])
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
