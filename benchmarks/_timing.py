"""Per-call timing with ``time.perf_counter_ns`` and the statistics reported from it."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

Op = Callable[[int], object]
"""One measured call; it gets the call index (which picks its key) and raises if the call went wrong."""


def timed(op: Op, start: int, count: int) -> list[int]:
    """Run ``op(start) .. op(start + count - 1)``, timing each call in nanoseconds.

    The garbage collector is off during the loop (as in ``timeit``), so a collection triggered by one
    peer's garbage is not charged to whichever call happens to run next.
    """
    clock = time.perf_counter_ns
    out = [0] * count
    gc.collect()
    gc.disable()
    try:
        for j in range(count):
            begin = clock()
            op(start + j)
            out[j] = clock() - begin
    finally:
        gc.enable()
    return out


def percentile(sorted_ns: Sequence[int], fraction: float) -> float:
    """The nearest-rank percentile of already sorted samples."""
    index = min(len(sorted_ns) - 1, max(0, round(fraction * len(sorted_ns)) - 1))
    return float(sorted_ns[index])


def summarize(samples_ns: Sequence[int], items: int) -> dict[str, Any]:
    """Median, p99 and mean of per-call samples, plus the per-item cost and throughput at the median."""
    ordered = sorted(samples_ns)
    median_us = statistics.median(ordered) / 1_000
    return {
        "calls": len(ordered),
        "median_us": median_us,
        "p99_us": percentile(ordered, 0.99) / 1_000,
        "mean_us": statistics.fmean(ordered) / 1_000,
        "per_item_us": median_us / items,
        "items_per_s": items * 1_000_000 / median_us,
        "primary_us": median_us,
    }


def measure_rounds(
    ops: dict[str, Op], warmup: int, calls: int, rounds: int
) -> tuple[dict[str, list[int]], dict[str, str]]:
    """Warm every op up, then time ``calls`` calls of each in ``rounds`` rounds, rotating who goes first.

    Alternating keeps a drift of the machine (frequency, neighbours, caches) from favouring one op.
    Returns the samples of each op, and the error of each op that raised (it is dropped from then on).
    """
    ops = dict(ops)
    samples: dict[str, list[int]] = {name: [] for name in ops}
    failed: dict[str, str] = {}
    base, extra = divmod(calls, rounds)
    slices = [(0, warmup, False)]
    start = warmup
    for index in range(rounds):
        count = base + (1 if index < extra else 0)
        slices.append((start, count, True))
        start += count
    for index, (first, count, measured) in enumerate(slices):
        order = list(ops)
        shift = index % len(order) if order else 0
        for name in order[shift:] + order[:shift]:
            try:
                taken = timed(ops[name], first, count)
            except Exception as exc:
                del ops[name], samples[name]
                failed[name] = f"FAILED: {type(exc).__name__}: {exc}"
                continue
            if measured:
                samples[name].extend(taken)
    return samples, failed
