"""The queue part (issue 16): kvstore's durable queue against persist-queue, litequeue, huey's SQLite storage,
raw sqlite3 (the floor) and Deno KV (when the deno package is installed).

Throughput, in alternating rounds (the first queue rotating each round): each queue enqueues N messages, one
committed call at a time (the rate is N over the time of all N); then one consumer receives and acknowledges
the N; then N more are enqueued (not timed) and 4 consumer threads in this process, sharing the queue,
receive and acknowledge them. Between rounds each queue drops what it keeps of acknowledged messages, not
timed. A figure is the median rate over the rounds. Latency: messages enqueued at a steady 500/s by one
thread, each timed from just before its enqueue until a consumer in the same process handles it; p50, p99.
The targets are judged in ``_report_queue``.
"""

from __future__ import annotations

import dataclasses
import statistics
import threading
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, Final, Protocol

from _config import VALUE
from _queue_peers import LABELS, NAMES, Consume, QueuePeer, make_queue, unavailable

Data = dict[str, Any]
CONSUMERS: Final = 4
FIGURES: Final = ("enqueue", "drain_1", "drain_4")
DISTRIBUTIONS: Final = {"kvstore": "stampkv", "persistqueue": "persist-queue", "litequeue": "litequeue",
                        "huey": "huey", "deno": "deno"}  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class Scale:
    messages: int  # per throughput round
    rounds: int
    latency_messages: int
    rate: float  # messages/s of the latency run


FULL: Final = Scale(messages=5_000, rounds=3, latency_messages=5_000, rate=500.0)
QUICK: Final = Scale(messages=300, rounds=2, latency_messages=200, rate=500.0)


class Progress(Protocol):
    def done(self, title: str, detail: str, took: float) -> None: ...


class Failed(AssertionError):
    """A queue lost or repeated messages."""


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _enqueue_all(peer: QueuePeer, first: int, count: int) -> float:
    put = peer.enqueue()
    begin = time.perf_counter()
    for index in range(first, first + count):
        put(index)
    return time.perf_counter() - begin


def _drain(consumers: list[Consume], expected: set[int]) -> float:
    """Receive and acknowledge every one of ``expected`` (ready already) with one thread per consumer."""
    seen: list[list[int]] = [[] for _ in consumers]
    errors: list[BaseException] = []
    start = threading.Barrier(len(consumers) + 1)

    def serve(consume: Consume, into: list[int]) -> None:
        start.wait()
        try:
            while (index := consume()) is not None:
                into.append(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=serve, args=pair) for pair in zip(consumers, seen, strict=True)]
    for thread in threads:
        thread.start()
    start.wait()
    begin = time.perf_counter()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - begin
    if errors:
        raise errors[0]
    got = [index for part in seen for index in part]
    if len(got) != len(expected) or set(got) != expected:
        raise Failed(f"received {len(got):,} messages ({len(set(got)):,} distinct) of {len(expected):,}")
    return took


def _python_round(peer: QueuePeer, scale: Scale, first: int) -> dict[str, float]:
    n = scale.messages
    rates = {"enqueue": n / _enqueue_all(peer, first, n)}
    rates["drain_1"] = n / _drain([peer.consumer()], set(range(first, first + n)))
    _enqueue_all(peer, first + n, n)
    consumers = [peer.consumer() for _ in range(CONSUMERS)]
    rates["drain_4"] = n / _drain(consumers, set(range(first + n, first + 2 * n)))
    peer.tidy()
    return rates


def _rounds(peer: QueuePeer, scale: Scale) -> Callable[[int], dict[str, float]]:
    return lambda first: _python_round(peer, scale, first)


def _latency(peer: QueuePeer, scale: Scale) -> list[float]:
    """Delays in ms, from just before each enqueue at a steady rate until the consumer handled it."""
    count, sent, got = scale.latency_messages, [0] * scale.latency_messages, [0] * scale.latency_messages
    left = threading.Semaphore(0)
    clock = time.perf_counter_ns

    def handled(index: int) -> None:
        got[index] = clock()
        left.release()

    stop = peer.listen(handled)
    try:
        put, step = peer.enqueue(), 1_000_000_000 / scale.rate
        begin = clock()
        for index in range(count):
            wait = begin + index * step - clock()
            if wait > 0:
                time.sleep(wait / 1e9)
            sent[index] = clock()
            put(index)
        deadline = time.monotonic() + 60.0
        for _ in range(count):
            if not left.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise Failed("not every message was handled within 60 s")
    finally:
        stop()
    return [(done - start) / 1e6 for start, done in zip(sent, got, strict=True)]


def latency_summary(delays_ms: list[float]) -> Data:
    """Count, p50, p99 and max (nearest rank) of delays in ms."""
    ordered = sorted(delays_ms)
    if not ordered:
        return {"count": 0}

    def rank(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]

    return {"count": len(ordered), "p50_ms": rank(0.5), "p99_ms": rank(0.99), "max_ms": ordered[-1]}


def run_queue(directory: Path, *, quick: bool, progress: Progress) -> Data:
    """Every figure of the part; a queue that fails leaves the part, its error noted."""
    from _queue_deno import run_deno, version
    from _queue_deno import unavailable as deno_unavailable

    scale = QUICK if quick else FULL
    result: Data = {"scale": dataclasses.asdict(scale), "consumers": CONSUMERS, "peers": {}, "rates": {},
                    "latency": {}, "failed": {}, "notes": []}  # fmt: skip
    names = []
    for name in NAMES:
        why = deno_unavailable() if name == "deno" else unavailable(name)
        result["peers"][name] = {"label": LABELS[name], "available": why is None, "note": why}
        if why is None:
            names.append(name)
    for name, dist in DISTRIBUTIONS.items():
        if name in names:
            result["peers"][name]["version"] = version() if name == "deno" else _version(dist)
    peers: dict[str, QueuePeer] = {}
    for name in [n for n in names if n != "deno"]:
        try:
            peers[name] = make_queue(name, directory / name)
        except Exception as exc:
            result["failed"][name] = f"FAILED: {type(exc).__name__}: {exc}"
    runners: dict[str, Callable[[int], dict[str, float]]] = {name: _rounds(peer, scale) for name, peer in peers.items()}
    if "deno" in names:

        def deno_round(first: int) -> dict[str, float]:
            times = run_deno(directory / "deno", "round", scale.messages, 0, VALUE)
            return {"enqueue": scale.messages / times["enqueue_s"], "drain_1": scale.messages / times["drain_s"]}

        runners["deno"] = deno_round
    rates: dict[str, dict[str, list[float]]] = {name: {figure: [] for figure in FIGURES} for name in runners}
    try:
        begin = time.perf_counter()
        for index in range(scale.rounds):
            order = list(runners)
            shift = index % len(order) if order else 0
            for name in order[shift:] + order[:shift]:
                if name in result["failed"]:
                    continue
                try:
                    for figure, rate in runners[name](index * 2 * scale.messages).items():
                        rates[name][figure].append(rate)
                except Exception as exc:
                    result["failed"][name] = f"FAILED: {type(exc).__name__}: {exc}"
        result["rates"] = {name: {f: r for f, r in got.items() if r} for name, got in rates.items()
                           if name not in result["failed"]}  # fmt: skip
        result["median"] = {name: {f: statistics.median(r) for f, r in got.items()} for name, got in
                            result["rates"].items()}  # fmt: skip
        shown = [f"{LABELS[n]} {m['enqueue']:,.0f}/{m['drain_1']:,.0f}/s" for n, m in result["median"].items()]
        progress.done("queue: enqueue / receive+ack, one consumer", " | ".join(shown), time.perf_counter() - begin)
        begin = time.perf_counter()
        for name, peer in peers.items():
            if name in result["failed"]:
                continue
            try:
                result["latency"][name] = latency_summary(_latency(peer, scale))
            except Exception as exc:
                result["failed"][name] = f"FAILED: {type(exc).__name__}: {exc}"
        if "deno" in names and "deno" not in result["failed"]:
            try:
                delays = run_deno(directory / "deno", "latency", scale.latency_messages, scale.rate, VALUE)
                result["latency"]["deno"] = latency_summary(delays["delays_ms"])
            except Exception as exc:
                result["failed"]["deno"] = f"FAILED: {type(exc).__name__}: {exc}"
        shown = [f"{LABELS[n]} {r['p99_ms']:.1f} ms" for n, r in result["latency"].items()]
        progress.done(f"queue: p99 enqueue-to-handler at {scale.rate:g}/s", " | ".join(shown),
                      time.perf_counter() - begin)  # fmt: skip
    finally:
        for peer in peers.values():
            peer.close()
    return result


STEPS: Final = 2  # progress lines: throughput, latency
