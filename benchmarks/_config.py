"""Run sizes (full and --quick), the stored value, the key layout, and the per-scenario key sequences."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any, Final

# About 120 bytes as msgpack: every peer stores this same value (each with its own serializer).
VALUE: Final[dict[str, Any]] = {
    "name": "desk lamp",
    "stock": 3,
    "price": 19.99,
    "tags": ["home", "light", "office"],
    "description": "x" * 64,
}
METADATA: Final[dict[str, Any]] = {"owner": "bench", "schema": 1}
TTL_MS: Final = 3_600_000  # an hour: the "set with TTL" entries stay live for the whole run
GROUP: Final = 100  # keys per prefix group: ``list`` of one group returns exactly 100 entries
BATCH: Final = 1_000  # sets per batch transaction


def key_of(index: int) -> str:
    """The ``index``-th loaded key: 100 keys share each prefix ``bench/NNNNN/``."""
    return f"bench/{index // GROUP:05d}/{index % GROUP:02d}"


def group_prefix(group: int) -> str:
    return f"bench/{group:05d}/"


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much each part of a run does."""

    keys: int  # entries loaded into every peer before the per-operation scenarios
    calls: int  # measured calls of each single-key scenario
    warmup: int  # unmeasured calls first
    calls_100: int  # measured calls of list / get_many of 100
    warmup_100: int
    batches: int  # measured batches of 1,000 sets
    warmup_batches: int
    rounds: int  # measured calls are split into rounds that alternate between peers
    writer_ops: int  # sets per process in the 4-process run
    writer_warmup: int
    cold_runs: int  # fresh processes per peer in the cold-start run
    scale_small: int
    scale_big: int
    scale_calls: int
    purge_rows: int
    purge_readers: int  # permanent keys the reader thread reads while the purge runs
    rss_page: int  # entries per page while listing the big store


FULL: Final = Sizes(
    keys=10_000,
    calls=20_000,
    warmup=2_000,
    calls_100=2_000,
    warmup_100=100,
    batches=50,
    warmup_batches=3,
    rounds=5,
    writer_ops=5_000,
    writer_warmup=200,
    cold_runs=20,
    scale_small=10_000,
    scale_big=1_000_000,
    scale_calls=20_000,
    purge_rows=1_000_000,
    purge_readers=1_000,
    rss_page=1_000,
)

QUICK: Final = Sizes(
    keys=2_000,
    calls=2_000,
    warmup=200,
    calls_100=200,
    warmup_100=20,
    batches=10,
    warmup_batches=2,
    rounds=4,
    writer_ops=500,
    writer_warmup=50,
    cold_runs=5,
    scale_small=1_000,
    scale_big=20_000,
    scale_calls=2_000,
    purge_rows=20_000,
    purge_readers=200,
    rss_page=500,
)


def sizes_for(quick: bool, *, calls: int | None = None, scale_big: int | None = None) -> Sizes:
    """The sizes of a run, with the command line's overrides."""
    sizes = QUICK if quick else FULL
    if calls is not None:
        sizes = replace(sizes, calls=calls, warmup=max(1, calls // 10))
    if scale_big is not None:
        sizes = replace(sizes, scale_big=scale_big, purge_rows=scale_big)
    return sizes


@dataclass(frozen=True, slots=True)
class Workload:
    """The keys each scenario touches, one per call index, the same for every peer."""

    value: dict[str, Any]
    metadata: dict[str, Any]
    keys: list[str]  # every loaded key
    hits: list[str]  # a loaded key per call (random)
    misses: list[str]  # an absent key per call
    fresh: list[str]  # a new key per call, never reused
    prefixes: list[str]  # a 100-key prefix per call (random)
    groups: list[list[str]]  # 100 random loaded keys per call
    batch: list[str]  # the 1,000 keys every batch writes


def make_workload(sizes: Sizes, seed: int) -> Workload:
    rng = random.Random(seed)
    keys = [key_of(i) for i in range(sizes.keys)]
    single = sizes.warmup + sizes.calls
    multi = sizes.warmup_100 + sizes.calls_100
    return Workload(
        value=VALUE,
        metadata=METADATA,
        keys=keys,
        hits=[rng.choice(keys) for _ in range(single)],
        misses=[f"miss/{i:07d}" for i in range(single)],
        fresh=[f"new/{i:07d}" for i in range(single)],
        prefixes=[group_prefix(rng.randrange(sizes.keys // GROUP)) for _ in range(multi)],
        groups=[rng.sample(keys, GROUP) for _ in range(multi)],
        batch=[f"batch/{i:04d}" for i in range(BATCH)],
    )


def writer_workload(process: int, count: int) -> Workload:
    """What one process of the concurrent-writers run writes: keys of its own, each once."""
    keys = [f"writer{process}/{i:07d}" for i in range(count)]
    return Workload(VALUE, METADATA, keys, keys, [], [], [], [], [])
