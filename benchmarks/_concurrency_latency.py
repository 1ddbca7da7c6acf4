"""Latency figures of the concurrency part: small gets beside a large value, and the event loop's stalls.

Both use an AsyncKVStore on a store file loaded like the others.

- Large value: small gets are started on a fixed schedule (one every ``PACE_S``), each timed from the
  moment it was due, while one task sets and gets a large list. A get that could not even start, because
  the loop or the store was busy, still counts its wait: a closed loop of callers would instead stop
  asking while blocked and hide the wait in a handful of samples. Each sample also holds the loop's timer
  lateness in waking the pacer (measured here: about 0.7 ms at the median with nothing else running).
  The cyclic collector's passes meanwhile are counted by generation, with the longest one's CPU time: a
  pass over the large list holds the GIL 30-40 ms (kvstore builds such a list with the collector held off
  and ages it after, ``kvstore._gcpause``, so that only full passes walk it).
- Loop stall: another process takes the write lock (``BEGIN IMMEDIATE``) and holds it while tasks write;
  a ticker coroutine sleeping ``TICK_S`` at a time records the longest gap between its wake-ups.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from _config import VALUE
from _peers import Failed
from _timing import percentile

from kvstore import AsyncKVStore, Value

PACE_S: Final = 0.001  # 1,000 small gets a second: a fraction of what one AsyncKVStore serves
TICK_S: Final = 0.001
LARGE_KEY: Final = "large/value"
# The other process: takes SQLite's write lock, says so, holds it, lets go. Its sleep is the hold itself.
HOLDER: Final = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
print("released", flush=True)
"""


def latency_summary(samples_ns: Sequence[int]) -> dict[str, float]:
    """Count, p50, p99 and max of latencies in nanoseconds, in milliseconds (nearest rank)."""
    ordered = sorted(samples_ns)
    if not ordered:
        return {"count": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    return {
        "count": len(ordered),
        "p50_ms": percentile(ordered, 0.50) / 1e6,
        "p99_ms": percentile(ordered, 0.99) / 1e6,
        "max_ms": ordered[-1] / 1e6,
    }


async def _paced_gets(kv: AsyncKVStore, hits: list[str], stop: asyncio.Event, out: list[int]) -> None:
    """Start a get of the next key every ``PACE_S`` until ``stop``; record each one's time since it was due."""
    clock, pace_ns, count = time.perf_counter_ns, int(PACE_S * 1e9), len(hits)

    async def one(index: int, due: int) -> None:
        if await kv.get(hits[index % count]) is None:
            raise Failed(hits[index % count])
        out.append(clock() - due)

    begin = clock()
    index = 0
    async with asyncio.TaskGroup() as group:
        while not stop.is_set():
            due = begin + index * pace_ns
            ahead = due - clock()
            if ahead > 0:
                await asyncio.sleep(ahead / 1e9)
                continue
            group.create_task(one(index, due))  # late ones start at once, still timed from when they were due
            index += 1


async def _large_ops(kv: AsyncKVStore, big: list[Value], ops: int, stop: asyncio.Event) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"set_s": [], "get_s": []}
    try:
        for _ in range(ops):
            begin = time.perf_counter()
            if not (await kv.set(LARGE_KEY, big)).committed:
                raise Failed("the large set did not commit")
            timings["set_s"].append(time.perf_counter() - begin)
            begin = time.perf_counter()
            entry = await kv.get(LARGE_KEY)
            if entry is None or not isinstance(entry.value, list) or len(entry.value) != len(big):
                raise Failed("the large get did not return the list")
            timings["get_s"].append(time.perf_counter() - begin)
    finally:
        stop.set()
    return timings


class _Collections:
    """The cyclic collector's passes while installed (``gc.callbacks``): how many, and the longest in CPU time of
    the thread that ran it (a pass holds the GIL throughout; CPU time leaves out waits for a core)."""

    def __init__(self) -> None:
        self.passes = [0, 0, 0]  # by generation
        self.longest_ms = 0.0
        self._began: dict[int, float] = {}

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began[threading.get_ident()] = time.thread_time()
            return
        began = self._began.pop(threading.get_ident(), None)
        if began is not None:
            self.passes[info["generation"]] += 1
            self.longest_ms = max(self.longest_ms, (time.thread_time() - began) * 1000)

    def summary(self) -> dict[str, Any]:
        return {"passes_by_generation": self.passes, "longest_cpu_ms": self.longest_ms}


async def large_value(path: Path, hits: list[str], items: int, ops: int, alone_s: float) -> dict[str, Any]:
    """Paced small gets alone for ``alone_s``, then while one task sets and gets an ``items``-list ``ops`` times."""
    big: list[Value] = [index % 100 for index in range(items)]  # small ints: about one byte each as msgpack
    async with AsyncKVStore(path) as kv:
        alone: list[int] = []
        stop = asyncio.Event()
        pacer = asyncio.create_task(_paced_gets(kv, hits, stop, alone))
        await asyncio.sleep(alone_s)  # how long the baseline is sampled, not a wait for anything
        stop.set()
        await pacer
        during: list[int] = []
        stop = asyncio.Event()
        collections = _Collections()
        gc.callbacks.append(collections)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(_paced_gets(kv, hits, stop, during))
                large = group.create_task(_large_ops(kv, big, ops, stop))
        finally:
            gc.callbacks.remove(collections)
    return {
        "items": items,
        "ops": ops,
        "pace_ms": PACE_S * 1000,
        "alone": latency_summary(alone),
        "during": latency_summary(during),
        "collector": collections.summary(),
        **large.result(),
    }


async def loop_stall(path: Path, hold_s: float, writers: int) -> dict[str, Any]:
    """The worst gap between a ticker's wake-ups while ``writers`` tasks write and another process holds
    the write lock for ``hold_s``."""
    async with AsyncKVStore(path) as kv:
        await kv.set("stall/warm-up", VALUE)  # the store's connection is open before the lock is taken
        holder = await asyncio.create_subprocess_exec(
            sys.executable, "-c", HOLDER, str(path), str(hold_s), stdout=asyncio.subprocess.PIPE
        )
        assert holder.stdout is not None
        if await holder.stdout.readline() != b"locked\n":
            raise RuntimeError("the process meant to hold the write lock did not take it")
        writes: list[float] = []
        ticks = {"count": 0, "worst_s": 0.0}
        writing, ticking = asyncio.Event(), asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not ticking.is_set():
                await asyncio.sleep(TICK_S)
                now = time.perf_counter()
                ticks["count"] += 1
                ticks["worst_s"] = max(ticks["worst_s"], now - last)
                last = now

        async def writer(number: int) -> None:
            made = 0
            while not writing.is_set():
                begin = time.perf_counter()
                if not (await kv.set(f"stall/{number}/{made}", VALUE)).committed:
                    raise Failed("a write did not commit")
                writes.append(time.perf_counter() - begin)
                made += 1

        tick = asyncio.create_task(ticker())
        async with asyncio.TaskGroup() as group:
            for number in range(writers):
                group.create_task(writer(number))
            released = await holder.stdout.readline()
            await holder.wait()
            writing.set()
        ticking.set()
        await tick
    if released != b"released\n" or holder.returncode != 0:
        raise RuntimeError(f"the lock holder failed (exit code {holder.returncode})")
    return {
        "hold_s": hold_s,
        "writers": writers,
        "tick_ms": TICK_S * 1000,
        "ticks": ticks["count"],
        "worst_gap_ms": ticks["worst_s"] * 1000,
        "writes": len(writes),
        "longest_write_s": max(writes),
        # The writes must have waited for the lock, or the figure measured a loop with nothing to wait for.
        "writes_waited": max(writes) >= hold_s / 2,
    }
