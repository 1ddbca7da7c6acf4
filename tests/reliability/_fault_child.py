"""Children for the fault tests, each run as a script: ``python _fault_child.py MODE ARGS...``.

Modes:
  file-limit PATH          purge_expired (clock an hour ahead) under RLIMIT_FSIZE, so a write fails midway;
                           prints one JSON report
  tiny-disk DIR OUT        fill a store on DIR (a 2 MiB tmpfs the parent mounted) until the disk is full,
                           free space, write again; copies the file to OUT and prints one JSON report
  fork-exit PATH           fork a child that writes (exit status 0; 3 if refused with a KVError) and leaves
                           through a normal interpreter exit: "child STATUS"; then write fresh keys forever,
                           acknowledging each: "ack KEY VS"
  fork-parent-closes PATH inherited|fresh
                           fork a child, close the parent's store, and let the child write: "ack KEY VS"
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import sqlite3
import sys
import time
from itertools import count
from pathlib import Path
from typing import Any

from kvstore import KVError, KVStore, StorageFullError


def _say(line: str) -> None:
    """One line in one write: parent and forked child share the pipe, and lines must not interleave."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _report(data: dict[str, Any]) -> None:
    _say(json.dumps(data))


def _expired(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        found: int = conn.execute("SELECT count(*) FROM kvstore_entries WHERE expires_us IS NOT NULL").fetchone()[0]
    finally:
        conn.close()
    return found


def file_limit(path: str) -> None:
    """The WAL may grow only to the size of the database file: a purge of more than that fails midway."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG instead of killing us
    report: dict[str, Any] = {"before": _expired(path)}
    with KVStore(path, clock=lambda: time.time() + 3600, auto_purge_every=0, purge_batch_size=100) as kv:
        backend = kv._backend
        purge_batch = backend.purge_batch
        batches: list[int] = []

        def recording(now_us: int, limit: int) -> int:
            deleted = purge_batch(now_us, limit)
            batches.append(deleted)
            return deleted

        backend.purge_batch = recording  # type: ignore[method-assign]
        resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path), resource.RLIM_INFINITY))
        try:
            kv.purge_expired()
            report["error"] = None
        except KVError as exc:
            report["error"] = type(exc).__name__
            report["storage_error"] = exc.error_code >= 2000
        except Exception as exc:  # the failure the test is looking for: reported, not hidden
            report["error"] = f"raw {type(exc).__module__}.{type(exc).__name__}: {exc}"
        report["batches"] = list(batches)
        report["after_failure"] = _expired(path)
        entry = kv.get("keep")
        report["readable"] = entry is not None and entry.value == "kept"
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        report["purged_later"] = kv.purge_expired()
        report["written_later"] = kv.set("later", 1).committed
    _report(report)


class _Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def tiny_disk(directory: str, out: str) -> None:
    """Fill a tiny file system: StorageFullError, still readable, and writable once space is freed."""
    ballast = Path(directory) / "ballast"
    ballast.write_bytes(b"\0" * 256 * 1024)  # space to free later, as an operator would
    path = str(Path(directory) / "kv.db")
    clock = _Clock()
    rng = random.Random(7)
    acked: dict[str, str] = {}
    report: dict[str, Any] = {}
    with KVStore(path, clock=clock, auto_purge_every=0) as kv:
        for n in count():
            key = f"fill/{n}"
            try:
                result = kv.set(key, rng.randbytes(3000), expire_in=60_000 if n % 2 else None)
            except KVError as exc:
                report["full"] = type(exc).__name__
                break
            assert result.versionstamp is not None
            acked[key] = result.versionstamp
        report["acked"] = acked
        found = kv.get_many(list(acked))
        report["readable"] = all(e is not None and e.versionstamp == acked[e.key] for e in found)
        try:  # on a full disk even a delete may need room in the WAL: it works, or says the disk is full
            report["delete_when_full"] = kv.delete("fill/0")
        except StorageFullError:
            report["delete_when_full"] = "StorageFullError"
        ballast.unlink()
        again = kv.set("after", "space was freed")
        report["written_after_freeing"] = again.committed
        report["after_versionstamp"] = again.versionstamp
        clock.now += 120
        try:  # a purge needs WAL room too; on a disk this small it may not find enough
            report["purged"] = kv.purge_expired()
        except StorageFullError:
            report["purged"] = "StorageFullError"
        report["readable_at_end"] = kv.get("after") is not None
        source = sqlite3.connect(path)
        target = sqlite3.connect(out)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
    _report(report)


def fork_exit(path: str) -> None:
    """A child forked from a process with an open store exits normally: the parent's data stays durable."""
    with KVStore(path, busy_timeout=60) as kv:
        kv.set("before-fork", 1)
        pid = os.fork()
        if pid == 0:
            try:
                kv.set("from-child", 2)
            except KVError:
                sys.exit(3)  # refused clearly: allowed
            sys.exit(0)  # finalizers run: every connection object, the inherited ones too, is freed
        _, status = os.waitpid(pid, 0)
        _say(f"child {os.waitstatus_to_exitcode(status)}")
        for n in count():
            result = kv.set(f"after/{n:06d}", n, if_not_exists=True)
            _say(f"ack after/{n:06d} {result.versionstamp}")


def fork_parent_closes(path: str, which: str) -> None:
    """A forked child is writing when its parent closes the store; the test then kills the child.

    ``which`` is "inherited" (the child uses the store object it inherited) or "fresh" (it opens a new
    KVStore on the same file). Prints "forked PID", then the child's "ack KEY VS" lines (with "parent
    closed" among them once the parent has closed its store after the child's tenth write), or
    "refused ERROR" if the child is told clearly that it cannot use the store.
    """
    kv = KVStore(path, busy_timeout=10)
    kv.set("before-fork", 1)
    written_r, written_w = os.pipe()
    closed_r, closed_w = os.pipe()
    go_r, go_w = os.pipe()  # the child waits for the parent's "forked" line, so that line always comes first
    pid = os.fork()
    if pid == 0:
        os.close(written_r)
        os.close(closed_w)
        os.close(go_w)
        os.read(go_r, 1)
        try:
            store = kv if which == "inherited" else KVStore(path, busy_timeout=10)
            for n in count():
                result = store.set(f"child/{n:06d}", n, if_not_exists=True)
                _say(f"ack child/{n:06d} {result.versionstamp}")
                if n == 9:
                    os.write(written_w, b"x")
                    os.read(closed_r, 1)  # the parent has closed its store
        except KVError as exc:
            _say(f"refused {type(exc).__name__}")
            sys.stdin.readline()
        os._exit(0)
    os.close(written_w)
    os.close(closed_r)
    os.close(go_r)
    _say(f"forked {pid}")
    os.write(go_w, b"x")
    os.read(written_r, 1)
    kv.close()  # the parent is done with the store, as when it shuts down
    _say("parent closed")
    os.write(closed_w, b"x")
    os.waitpid(pid, 0)


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "file-limit":
        file_limit(args[0])
    elif mode == "tiny-disk":
        tiny_disk(args[0], args[1])
    elif mode == "fork-exit":
        fork_exit(args[0])
    elif mode == "fork-parent-closes":
        fork_parent_closes(args[0], args[1])
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
