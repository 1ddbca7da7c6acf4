"""The event loop never blocks: while another process holds an SQLite file's write lock, the loop runs on,
reads are answered, and the writes wait on their thread until the lock comes free."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from kvstore import AsyncKVStore

from ._aio_support import run

# Takes the write lock, says so, and keeps it until told to let go (a line on stdin).
_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


def test_the_loop_runs_and_reads_answer_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"

    async def scenario() -> None:
        async with AsyncKVStore(path, busy_timeout=60) as kv:
            for i in range(3):
                await kv.set(f"k{i}", i)
            holder = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _HOLDER, str(path), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
            )
            assert holder.stdin is not None
            assert holder.stdout is not None
            try:
                assert await holder.stdout.readline() == b"held\n"
                writes = [asyncio.create_task(kv.set(f"w{i}", i)) for i in range(8)]
                ticks = 0
                for round_ in range(200):  # the loop turns, and reads are answered, all the while
                    entry = await kv.get(f"k{round_ % 3}")
                    assert entry is not None
                    assert entry.value == round_ % 3
                    await asyncio.sleep(0)
                    ticks += 1
                assert [e.value for e in await kv.get_many(["k0", "k2"]) if e] == [0, 2]
                assert (await kv.list_keys()).keys == ["k0", "k1", "k2"]
                assert await kv.count() == 3
                assert ticks == 200
                assert not any(write.done() for write in writes)  # they wait for the lock, off the loop
            finally:
                holder.stdin.write(b"go\n")
                await holder.stdin.drain()
                assert await holder.wait() == 0
            assert all([(await write).committed for write in writes])
            assert await kv.count("w") == 8

    run(scenario)
