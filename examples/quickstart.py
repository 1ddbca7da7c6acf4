"""kvstore in one minute: versionstamped, conditional writes on an embedded SQLite file."""

from __future__ import annotations

import tempfile
from pathlib import Path

from kvstore import KVStore

with tempfile.TemporaryDirectory() as tmp, KVStore(Path(tmp) / "app.db") as kv:
    # Every write returns a versionstamp.
    first = kv.set("products/123", {"name": "lamp", "stock": 3}, metadata={"schema": "product/v1"})
    print("set", first.key, "->", first.versionstamp, "created:", first.created)

    # Compare-and-set: succeeds only against the versionstamp we read.
    entry = kv.get("products/123")
    assert entry is not None
    assert isinstance(entry.value, dict)
    updated = kv.set("products/123", {**entry.value, "stock": 2}, if_versionstamp=entry.versionstamp)
    stale = kv.set("products/123", {"name": "lamp", "stock": 99}, if_versionstamp=entry.versionstamp)
    print("compare-and-set:", updated.committed, "| with a stale versionstamp:", stale.ok)

    # if_not_exists, and a TTL (milliseconds, 60 s to 1 year) on a session in another namespace.
    sessions = kv.namespace("sessions")
    print("session created:", sessions.set("abc", b"\x00token", if_not_exists=True, expire_in=3_600_000).committed)
    print("created again:", sessions.set("abc", b"other", if_not_exists=True).ok)

    # Listing in key order, paged with an opaque cursor.
    for i in range(5):
        kv.set(f"products/{i}", {"stock": i})
    page = kv.list("products/", limit=3)
    print("page 1:", page.keys)
    print("page 2:", kv.list("products/", limit=3, cursor=page.cursor).keys)
