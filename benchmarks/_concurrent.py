"""Four processes writing at once: aggregate throughput of sets into one store.

Four fresh interpreters (multiprocessing "spawn") run every peer in turn. For each peer, each process
opens the store, warms up, waits at a barrier with the others, then writes its own keys; throughput is
all writes over the span from the first start to the last finish (``time.monotonic_ns``, one clock for
every process on the machine). Process start-up and imports are outside that span.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.queues
import multiprocessing.synchronize
import queue
import threading
import time
from pathlib import Path
from typing import Any, Final

from _config import Sizes, writer_workload
from _peers import location, make_peer
from _timing import summarize, timed

PROCESSES: Final = 4
TIMEOUT: Final = 600.0  # seconds; only a hung peer reaches it


def writer(
    jobs: list[tuple[str, str, str]],
    process: int,
    ops: int,
    warmup: int,
    barrier: multiprocessing.synchronize.Barrier,
    results: multiprocessing.queues.Queue[dict[str, Any]],
) -> None:
    """One writing process: for each peer, open, warm up, meet the others at the barrier, write."""
    workload = writer_workload(process, warmup + ops)
    for name, where, prefix in jobs:
        report: dict[str, Any] = {"peer": name, "process": process, "error": None}
        peer = op = None
        try:
            peer = make_peer(name, where, prefix)
            op = peer.set(workload)
            timed(op, 0, warmup)
        except Exception as exc:
            report["error"] = f"{type(exc).__name__}: {exc}"
        try:
            barrier.wait(timeout=TIMEOUT)
        except threading.BrokenBarrierError:
            report["error"] = report["error"] or "another process never reached the start"
        if op is not None and report["error"] is None:
            report["begin_ns"] = time.monotonic_ns()
            try:
                report["samples_ns"] = timed(op, warmup, ops)
            except Exception as exc:
                report["error"] = f"{type(exc).__name__}: {exc}"
            report["end_ns"] = time.monotonic_ns()
        if peer is not None:
            peer.close()
        results.put(report)


def run_concurrent(names: list[str], directory: Path, redis_address: str, prefix: str, sizes: Sizes) -> dict[str, Any]:
    """Throughput of ``PROCESSES`` processes writing ``sizes.writer_ops`` sets each into one store per peer."""
    directory.mkdir(parents=True, exist_ok=True)
    jobs = []
    for name in names:
        where = location(name, directory, redis_address)
        make_peer(name, where, prefix).close()  # create the file and schema before the processes race to
        jobs.append((name, where, prefix))
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    reports: multiprocessing.queues.Queue[dict[str, Any]] = context.Queue()
    args = (sizes.writer_ops, sizes.writer_warmup, barrier, reports)
    workers = [context.Process(target=writer, args=(jobs, p, *args)) for p in range(PROCESSES)]
    for worker in workers:
        worker.start()
    got: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    try:
        for _ in range(len(jobs) * PROCESSES):
            report = reports.get(timeout=TIMEOUT)
            got[report["peer"]].append(report)
    except queue.Empty:
        pass
    for worker in workers:
        worker.join(timeout=TIMEOUT)
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name, done in got.items():
        errors = [r["error"] for r in done if r["error"]]
        if errors or len(done) < PROCESSES:
            skipped[name] = "FAILED: " + (errors[0] if errors else "a writing process did not report")
            continue
        wall_ns = max(r["end_ns"] for r in done) - min(r["begin_ns"] for r in done)
        total = sum(len(r["samples_ns"]) for r in done)
        stats = summarize([s for r in done for s in r["samples_ns"]], 1)
        wall_us = wall_ns / 1_000
        stats.update(primary_us=wall_us / total, per_item_us=wall_us / total, items_per_s=total * 1e6 / wall_us)
        stats["wall_s"] = wall_ns / 1e9
        results[name] = stats
    return {
        "title": f"{PROCESSES} processes writing",
        "items_per_call": 1,
        "how": (
            f"{PROCESSES} processes each set {sizes.writer_ops:,} new keys of their own into one store at once;"
            " throughput = all sets / wall time (the median is each set's latency)"
        ),
        "warmup_calls": sizes.writer_warmup,
        "results": results,
        "skipped": skipped,
    }
