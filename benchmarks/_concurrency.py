"""The concurrency part (issue 15): many callers on one store, each figure a ratio or a latency.

In order: SQLite gets (one thread on a KVStore; AsyncKVStore and aiosqlite at 1 and 64 tasks), sets, and
sets under ``synchronous="FULL"`` (``_concurrency_sqlite``); PostgreSQL gets and sets at 1 and 64 tasks,
and 16 threads sharing one PostgreSQL KVStore (``_concurrency_pg``); small gets beside a large value, and
the event loop while another process holds the write lock (``_concurrency_latency``). Throughput is
measured in alternating rounds (``_concurrency_rounds``); the targets are judged in ``_report_concurrency``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

from _concurrency_rounds import Rounds
from _config import key_of

T = TypeVar("T")
Data = dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Scale:
    """How much the part does."""

    keys: int  # entries in every store (the same ~120-byte value at each)
    rounds: Rounds  # of every throughput group
    tasks: int  # "64 tasks"
    fair_threads: int
    fair_s: float  # how long the fairness threads commit (the issue: 10 s)
    large_ops: int  # sets and gets of the large value (each op is one set then one get)
    alone_s: float  # small gets sampled with no large value, for comparison
    hold_s: float  # how long the other process holds the write lock (the issue: 1.5 s)
    writers: int  # tasks writing while it does


FULL: Final = Scale(
    keys=10_000, rounds=Rounds(5, 1.0, 0.3), tasks=64, fair_threads=16, fair_s=10.0, large_ops=2, alone_s=1.0,
    hold_s=1.5, writers=8,
)  # fmt: skip
QUICK: Final = Scale(
    keys=1_000, rounds=Rounds(2, 0.1, 0.05), tasks=64, fair_threads=16, fair_s=1.0, large_ops=1, alone_s=0.2,
    hold_s=0.3, writers=4,
)  # fmt: skip
# Elements of the large list value: the 8 million (about 8 MB as msgpack), or a few for --quick.
LARGE_ITEMS: Final = {"full": 8_000_000, "quick": 100_000}
HITS: Final = 100_000  # the random key sequence every side walks (it wraps around)
STEPS: Final = 7  # progress lines: three SQLite groups, PostgreSQL, fairness, large value, loop stall


class Progress(Protocol):
    def __call__(self, line: str) -> None: ...

    def done(self, title: str, detail: str, took: float) -> None: ...


def _root(exc: BaseException) -> BaseException:
    """The first error inside a TaskGroup's group of errors (or the error itself)."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _rates(group: Data) -> str:
    shown = [f"{side['label']} {side['median_per_s']:,.0f}/s" for side in group["sides"].values()]
    return " | ".join(shown + [f"{label} {why}" for label, why in group["failed"].items()])


def run_concurrency(
    directory: Path, postgres_url: str, *, quick: bool, large_items: int | None, seed: int, progress: Progress
) -> Data:
    """Every figure of the part; a step that fails is noted and its figures are left out."""
    # Imported here, not with the module: run.py reads this module's constants in every process, and the
    # other parts neither need the async API nor should fail when it does not import.
    from _concurrency_latency import large_value, loop_stall
    from _concurrency_pg import fairness, postgres_groups
    from _concurrency_sqlite import get_group, load, set_group
    from _postgres import unavailable as postgres_unavailable

    scale = QUICK if quick else FULL
    items = large_items if large_items is not None else LARGE_ITEMS["quick" if quick else "full"]
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    keys = [key_of(index) for index in range(scale.keys)]
    hits = [rng.choice(keys) for _ in range(HITS)]
    result: Data = {"scale": dataclasses.asdict(scale), "large_items": items, "groups": {}, "notes": []}

    def step(title: str, work: Callable[[], T], summary: Callable[[T], str]) -> T | None:
        begin = time.perf_counter()
        try:
            value = work()
        except Exception as exc:
            error = _root(exc)
            detail = f"FAILED: {type(error).__name__}: {error}"
            result["notes"].append(f"{title}: {detail}")
            progress.done(title, detail, time.perf_counter() - begin)
            return None
        progress.done(title, summary(value), time.perf_counter() - begin)
        return value

    tasks, plan, groups = scale.tasks, scale.rounds, result["groups"]
    for ident, title, work in (
        ("sqlite_get", "concurrency: SQLite get", lambda: get_group(directory, keys, hits, tasks, plan)),
        ("sqlite_set", "concurrency: SQLite set", lambda: set_group(directory, keys, hits, tasks, plan)),
        ("sqlite_full", 'concurrency: SQLite set, synchronous="FULL"',
         lambda: set_group(directory, keys, hits, tasks, plan, "FULL")),
    ):  # fmt: skip
        group = step(title, work, _rates)
        if group is not None:
            groups[ident] = group
    why = postgres_unavailable(postgres_url)
    if why is None:
        measured = step("concurrency: PostgreSQL get and set", lambda: postgres_groups(postgres_url, keys, hits,
                        tasks, plan), lambda found: " || ".join(_rates(group) for group in found))  # fmt: skip
        for ident, group in zip(("postgres_get", "postgres_set"), measured or [], strict=False):
            groups[ident] = group
        result["fairness"] = step(
            f"concurrency: PostgreSQL, {scale.fair_threads} threads on one KVStore",
            lambda: fairness(postgres_url, scale.fair_threads, scale.fair_s),
            lambda fair: f"slowest ÷ mean {fair['ratio']:.2f}, {fair['total']:,} commits, {fair['errors']} errors",
        )
    else:
        result["postgres_skipped"] = why
        for title in ("concurrency: PostgreSQL get and set", "concurrency: PostgreSQL fairness"):
            progress.done(title, f"skipped: {why}", 0.0)
    for name in ("large", "stall"):
        load(directory / f"{name}.db", keys)
    result["large_value"] = step(
        f"concurrency: small gets beside a list of {items:,} elements",
        lambda: asyncio.run(large_value(directory / "large.db", hits, items, scale.large_ops, scale.alone_s)),
        lambda large: f"p99 {large['during']['p99_ms']:.1f} ms (alone {large['alone']['p99_ms']:.2f} ms)",
    )
    result["loop_stall"] = step(
        f"concurrency: event loop while another process holds the write lock {scale.hold_s:g} s",
        lambda: asyncio.run(loop_stall(directory / "stall.db", scale.hold_s, scale.writers)),
        lambda stall: f"worst gap {stall['worst_gap_ms']:.1f} ms, {stall['writes']:,} writes",
    )
    return result
