"""kvstore at scale: get and set on a small and a big store, and purge_expired under a reader's eye."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from _config import METADATA, VALUE, Sizes, Workload, key_of
from _peers_sqlite import KVStorePeer
from _timing import measure_rounds, percentile, summarize

from kvstore import KVStore

LOAD_BATCH: Final = 5_000  # sets per atomic() commit while building a big store
PURGE_TTL_MS: Final = 60_000  # the shortest TTL kvstore allows


class Clock:
    """A clock moved by hand: the purge run writes entries "now", then jumps past their expiry."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def build(
    kv: KVStore,
    count: int,
    progress: Callable[[str], None],
    *,
    key: Callable[[int], str] = key_of,
    ttl_ms: int | None = None,
) -> float:
    """Bulk-load ``count`` entries through ``atomic()`` batches; return the seconds it took."""
    begin = time.perf_counter()
    step = max(LOAD_BATCH, count // 4)
    for start in range(0, count, LOAD_BATCH):
        with kv.atomic() as op:
            for index in range(start, min(count, start + LOAD_BATCH)):
                op.set(key(index), VALUE, expire_in=ttl_ms)
        done = min(count, start + LOAD_BATCH)
        if done % step < LOAD_BATCH and done < count:
            progress(f"    loaded {done:,} of {count:,} entries ({time.perf_counter() - begin:.0f} s)")
    return time.perf_counter() - begin


def _random_keys(count: int, calls: int, rng: random.Random) -> Workload:
    hits = [key_of(rng.randrange(count)) for _ in range(calls)]
    return Workload(VALUE, METADATA, [], hits, [], [], [], [], [])


def run_scale(directory: Path, sizes: Sizes, seed: int, progress: Callable[[str], None]) -> tuple[dict[str, Any], str]:
    """Median get and set of random keys in a store of ``scale_small`` and one of ``scale_big`` entries.

    Returns the results and the big store's path (the RSS run lists it afterwards).
    """
    rng = random.Random(seed)
    paths = {"small": str(directory / "scale-small.db"), "big": str(directory / "scale-big.db")}
    counts = {"small": sizes.scale_small, "big": sizes.scale_big}
    build_s: dict[str, float] = {}
    for size, path in paths.items():
        with KVStore(path) as kv:
            progress(f"    building the {counts[size]:,}-entry store")
            build_s[size] = build(kv, counts[size], progress)
    peers = {size: KVStorePeer(path) for size, path in paths.items()}
    calls = sizes.scale_calls
    warm = max(1, calls // 10)
    try:
        workloads = {size: _random_keys(counts[size], warm + calls, rng) for size in paths}
        gets = {size: peers[size].get_hit(workloads[size]) for size in paths}
        sets = {size: peers[size].set(workloads[size]) for size in paths}
        got, get_failed = measure_rounds(gets, warm, calls, sizes.rounds)
        put, set_failed = measure_rounds(sets, warm, calls, sizes.rounds)
    finally:
        for peer in peers.values():
            peer.close()
    if get_failed or set_failed:
        raise RuntimeError(f"scale run failed: {get_failed | set_failed}")
    result: dict[str, Any] = {
        "small_entries": counts["small"],
        "big_entries": counts["big"],
        "calls": calls,
        "build_s": build_s,
        "build_entries_per_s": {size: counts[size] / build_s[size] for size in paths},
    }
    for name, samples in (("get", got), ("set", put)):
        small, big = summarize(samples["small"], 1), summarize(samples["big"], 1)
        result[name] = {
            "small_median_us": small["median_us"],
            "big_median_us": big["median_us"],
            "small_p99_us": small["p99_us"],
            "big_p99_us": big["p99_us"],
            "ratio": big["median_us"] / small["median_us"],
        }
    return result, paths["big"]


def _read_loop(kv: KVStore, keys: list[str], stop: threading.Event, out: list[int], limit: int) -> None:
    clock = time.perf_counter_ns
    index = 0
    while not stop.is_set() and len(out) < limit:
        key = keys[index % len(keys)]
        begin = clock()
        if kv.get(key) is None:
            raise AssertionError(f"reader lost {key}")
        out.append(clock() - begin)
        index += 1


def run_purge(directory: Path, sizes: Sizes, seed: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """``purge_expired`` of ``purge_rows`` expired entries while a reader thread times gets of live keys.

    The store's clock is moved past the entries' expiry rather than sleeping. The reader first runs alone
    (its latency without a purge), then alongside the purge until it ends.
    """
    rng = random.Random(seed)
    clock = Clock()
    with KVStore(directory / "purge.db", clock=clock) as kv:
        progress(f"    building {sizes.purge_rows:,} entries with a {PURGE_TTL_MS // 1000} s TTL")
        build_s = build(kv, sizes.purge_rows, progress, key=lambda i: f"expiring/{i:08d}", ttl_ms=PURGE_TTL_MS)
        build(kv, sizes.purge_readers, progress)  # permanent: the reader's keys
        readers = [key_of(rng.randrange(sizes.purge_readers)) for _ in range(10_000)]
        clock.now += 2 * PURGE_TTL_MS / 1000
        expired_before = kv.info().expired
        idle: list[int] = []
        _read_loop(kv, readers, threading.Event(), idle, max(2_000, sizes.calls // 4))
        during: list[int] = []
        stop = threading.Event()
        reader = threading.Thread(target=_read_loop, args=(kv, readers, stop, during, 50_000_000), daemon=True)
        reader.start()
        begin = time.perf_counter()
        purged = kv.purge_expired()
        seconds = time.perf_counter() - begin
        stop.set()
        reader.join()
        expired_after = kv.info().expired
    if not during:
        raise RuntimeError("the reader thread recorded no get while the purge ran")

    def latency(samples: list[int]) -> dict[str, float]:
        ordered = sorted(samples)
        return {
            "gets": len(ordered),
            "p50_us": percentile(ordered, 0.50) / 1_000,
            "p99_us": percentile(ordered, 0.99) / 1_000,
            "max_us": ordered[-1] / 1_000,
        }

    return {
        "rows": sizes.purge_rows,
        "expired_before": expired_before,
        "purged": purged,
        "expired_after": expired_after,
        "seconds": seconds,
        "rows_per_s": purged / seconds if seconds else 0.0,
        "build_s": build_s,
        "reader_idle": latency(idle),
        "reader_during": latency(during),
    }
