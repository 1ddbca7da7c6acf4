"""kvstore from asyncio: the same API as coroutines, with ``async for`` over a listing."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path

from kvstore import AsyncKVStore


async def main(path: Path) -> None:
    async with AsyncKVStore(path) as kv:
        first = await kv.set("products/1", {"name": "lamp", "stock": 3})
        swapped = await kv.set("products/1", {"name": "lamp", "stock": 2}, if_versionstamp=first.versionstamp)
        print("compare-and-set:", swapped.committed)

        # Many tasks at once: the writes waiting together commit as one transaction, the event loop never blocks.
        await asyncio.gather(*(kv.set(f"products/{i}", {"stock": i}) for i in range(2, 6)))
        print("keys:", [entry.key async for entry in kv.iterate("products/", page_size=2)])

        sessions = await kv.namespace("sessions")
        await sessions.set("abc", b"\x00token", expire_in=timedelta(hours=1))
        entry = await sessions.get("abc")
        print("session:", entry.value if entry else None)


with tempfile.TemporaryDirectory() as tmp:
    asyncio.run(main(Path(tmp) / "app.db"))
