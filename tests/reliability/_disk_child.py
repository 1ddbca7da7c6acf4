"""Children for the disk-fault tests, each run as a script: ``python _disk_child.py MODE DIR``.

Each works on DIR/kv.db (DIR is a tiny file system the parent mounted) and prints one JSON report; a child
killed by a signal (SIGBUS) is what the parent looks for. Values are 3000 random bytes.

Modes:
  fill-in-wal DIR   beside a 512 KiB ballast file, fill a store whose WAL is never checkpointed until the disk
                    is full, then exit without closing: the whole store is left in its WAL
  open DIR          open the store and read every key listed in DIR/../keys.json: {"open": "ok", "found": N},
                    or the error's class and detail
  capacity DIR      fill until full, delete every other entry, fill again
  freed DIR         beside a 384 KiB ballast file, fill until full, delete the ballast, fill again, close and
                    open again, and read back everything acknowledged
  async-capacity DIR  capacity through AsyncKVStore (its writes commit in write_batch transactions)
  crash DIR         write a few entries and exit without closing, the WAL and its index left behind
  integrity DIR     PRAGMA integrity_check with plain sqlite3 (which, unlike kvstore, may map a WAL index
                    on a full disk: here a SIGBUS kills the child, not the test)
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any, Final

from kvstore import AsyncKVStore, KVError, KVStore, StorageFullError
from kvstore._backends.sqlite import SQLiteBackend

VALUE: Final = 3000


def _report(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def _fill(kv: KVStore, prefix: str) -> list[str]:
    """Write until StorageFullError; the keys acknowledged."""
    acked: list[str] = []
    while True:
        key = f"{prefix}/{len(acked):05d}"
        try:
            kv.set(key, os.urandom(VALUE))
        except StorageFullError:
            return acked
        acked.append(key)


def _found(kv: KVStore, keys: list[str]) -> int:
    return sum(entry is not None for entry in kv.get_many(keys)) if keys else 0


def fill_in_wal(directory: Path) -> None:
    (directory / "ballast").write_bytes(b"\0" * 512 * 1024)
    kv = KVStore(directory / "kv.db")
    backend = kv._backend
    assert isinstance(backend, SQLiteBackend)
    conn = backend._conn()
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # what SQLite's defaults amount to on a disk this small
    conn.execute("PRAGMA max_page_count = 4294967294")
    acked = _fill(kv, "wal")
    (directory.parent / "keys.json").write_text(json.dumps(acked))
    _report({"acked": len(acked), "wal_bytes": os.path.getsize(directory / "kv.db-wal")})
    os._exit(0)  # no close: no checkpoint, the WAL stays as it is


def open_store(directory: Path) -> None:
    keys_file = directory.parent / "keys.json"
    keys: list[str] = json.loads(keys_file.read_text()) if keys_file.exists() else []
    try:
        with KVStore(directory / "kv.db") as kv:
            _report({"open": "ok", "found": _found(kv, keys)})
    except KVError as exc:
        _report({"open": type(exc).__name__, "detail": exc.detail})


def capacity(directory: Path) -> None:
    fs = os.statvfs(directory)
    with KVStore(directory / "kv.db") as kv:
        acked = _fill(kv, "fill")
        failures = 0
        for key in acked[::2]:
            try:
                assert kv.delete(key)
            except StorageFullError:
                failures += 1
        refilled = _fill(kv, "refill")
        kept = [key for n, key in enumerate(acked) if n % 2]
        _report(
            {
                "filled": len(acked),
                "fs_bytes": fs.f_blocks * fs.f_frsize,
                "deleted": len(acked[::2]),
                "delete_failures": failures,
                "refilled": len(refilled),
                "readable": _found(kv, kept + refilled) == len(kept) + len(refilled),
            }
        )


def async_capacity(directory: Path) -> None:
    async def run() -> dict[str, Any]:
        async with AsyncKVStore(directory / "kv.db") as kv:

            async def fill(prefix: str) -> list[str]:
                acked: list[str] = []
                while True:
                    key = f"{prefix}/{len(acked):05d}"
                    try:
                        await kv.set(key, os.urandom(VALUE))
                    except StorageFullError:
                        return acked
                    acked.append(key)

            acked = await fill("fill")
            failures = 0
            for key in acked[::2]:
                try:
                    assert await kv.delete(key)
                except StorageFullError:
                    failures += 1
            refilled = await fill("refill")
            return {"filled": len(acked), "delete_failures": failures, "refilled": len(refilled)}

    _report(asyncio.run(run()))


def freed(directory: Path) -> None:
    ballast = directory / "ballast"
    ballast.write_bytes(b"\0" * 384 * 1024)
    with KVStore(directory / "kv.db") as kv:
        before = _fill(kv, "before")
        ballast.unlink()
        after = _fill(kv, "after")
    report: dict[str, Any] = {"before": len(before), "after": len(after), "freed": 384 * 1024}
    try:
        with KVStore(directory / "kv.db") as kv:
            report["reopened"] = _found(kv, before + after) == len(before) + len(after)
    except KVError as exc:
        report["reopened"] = type(exc).__name__
    _report(report)


def crash(directory: Path) -> None:
    kv = KVStore(directory / "kv.db")
    for n in range(20):
        kv.set(f"crash/{n}", n)
    (directory.parent / "keys.json").write_text(json.dumps([f"crash/{n}" for n in range(20)]))
    _report({"wal_bytes": os.path.getsize(directory / "kv.db-wal")})
    os._exit(0)


def integrity(directory: Path) -> None:
    conn = sqlite3.connect(directory / "kv.db")
    try:
        _report({"integrity": [row[0] for row in conn.execute("PRAGMA integrity_check")]})
    finally:
        conn.close()


def main(argv: list[str]) -> None:
    mode, directory = argv
    modes = {
        "fill-in-wal": fill_in_wal,
        "open": open_store,
        "capacity": capacity,
        "async-capacity": async_capacity,
        "freed": freed,
        "crash": crash,
        "integrity": integrity,
    }
    modes[mode](Path(directory))


if __name__ == "__main__":
    main(sys.argv[1:])
