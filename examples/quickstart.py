"""kvstore in one minute: versionstamped, conditional writes on an embedded SQLite file."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from kvstore import KVStore

with tempfile.TemporaryDirectory() as tmp, KVStore(Path(tmp) / "app.db") as kv:
    # Every write returns a versionstamp.
    first = kv.set("products/123", {"name": "lamp", "stock": 3}, metadata={"schema": "product/v1"})
    print("set", first.key, "->", first.versionstamp, "created:", first.created)

    # Compare-and-set: succeeds only against the versionstamp we read.
    entry = kv.get("products/123")
    assert entry is not None  # None when the key has no live entry
    sold_one = {**entry.value, "stock": entry.value["stock"] - 1}  # entry.value is typed Any: no isinstance
    updated = kv.set("products/123", sold_one, if_versionstamp=entry.versionstamp)
    stale = kv.set("products/123", {"name": "lamp", "stock": 99}, if_versionstamp=entry.versionstamp)
    print("compare-and-set:", updated.committed, "| with a stale versionstamp:", stale.ok)

    # if_not_exists, and a TTL (60 s to 1 year: a timedelta, or a number of milliseconds) in another namespace.
    sessions = kv.namespace("sessions")
    hour = timedelta(hours=1)
    print("session created:", sessions.set("abc", b"\x00token", if_not_exists=True, expire_in=hour).committed)
    print("created again:", sessions.set("abc", b"other", if_not_exists=True).ok)

    # Listing in key order, paged with an opaque cursor.
    for i in range(5):
        kv.set(f"products/{i}", {"stock": i})
    page = kv.list("products/", limit=3)
    print("page 1:", page.keys)
    print("page 2:", kv.list("products/", limit=3, cursor=page.cursor).keys)
