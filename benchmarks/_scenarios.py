"""The per-operation scenarios, and the runner that measures every peer on each in alternating rounds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from _config import Sizes, Workload
from _peers import Peer, Unsupported
from _timing import Op, measure_rounds, summarize


@dataclass(frozen=True, slots=True)
class Scenario:
    id: str
    title: str
    items: int  # items (keys read or written) per call
    size: Literal["single", "multi", "batch"]
    build: Callable[[Peer, Workload], Op]
    how: str  # what one call does, for the report
    only: tuple[str, ...] | None = None  # the peers it is meant for (None: every peer)


SCENARIOS = (
    Scenario(
        "get_hit",
        "get (hit)",
        1,
        "single",
        lambda peer, w: peer.get_hit(w),
        "get of a random loaded key; the value decoded",
    ),
    Scenario("get_miss", "get (miss)", 1, "single", lambda peer, w: peer.get_miss(w), "get of an absent key"),
    Scenario(
        "set",
        "set",
        1,
        "single",
        lambda peer, w: peer.set(w),
        "overwrite of a random loaded key, committed (raw: one upsert)",
    ),
    Scenario(
        "set_tx_floor",
        "raw: kvstore's set statements",
        1,
        "single",
        lambda peer, w: peer.set_tx_floor(w),
        "raw sqlite3 only, running exactly the statements of kvstore's set: one UPDATE in autocommit that"
        " replaces the live entry if the versionstamp counter still ends the writer's block (an insert only"
        " if there is none; a transaction reserving the next block once per 1,024 sets); kvstore's own set"
        " minus this is its Python overhead",
        only=("raw",),
    ),
    Scenario(
        "set_ttl_meta",
        "set with TTL + metadata",
        1,
        "single",
        lambda peer, w: peer.set_ttl_meta(w),
        "overwrite with a 1 h TTL and a small metadata dict",
    ),
    Scenario(
        "cas",
        "compare-and-set",
        1,
        "single",
        lambda peer, w: peer.cas(w),
        "set only if the version is the one last written (raw: BEGIN IMMEDIATE; SELECT; compare; UPDATE; COMMIT)",
    ),
    Scenario(
        "if_not_exists",
        "if-not-exists",
        1,
        "single",
        lambda peer, w: peer.if_not_exists(w),
        "insert of a new key, only if absent (raw: BEGIN IMMEDIATE; SELECT; INSERT; COMMIT)",
    ),
    Scenario(
        "list_100",
        "list of 100",
        100,
        "multi",
        lambda peer, w: peer.list_100(w),
        "the 100 entries of a random prefix, decoded",
    ),
    Scenario(
        "get_many_100",
        "get_many of 100",
        100,
        "multi",
        lambda peer, w: peer.get_many_100(w),
        "100 random loaded keys in one call",
    ),
    Scenario(
        "batch_1000",
        "batch of 1,000 sets",
        1_000,
        "batch",
        lambda peer, w: peer.batch_1000(w),
        "1,000 sets in one transaction (kvstore: atomic(); raw: executemany)",
    ),
)


def _counts(scenario: Scenario, sizes: Sizes) -> tuple[int, int]:
    """(warm-up calls, measured calls)."""
    if scenario.size == "single":
        return sizes.warmup, sizes.calls
    if scenario.size == "multi":
        return sizes.warmup_100, sizes.calls_100
    return sizes.warmup_batches, sizes.batches


def run_scenario(scenario: Scenario, peers: dict[str, Peer], workload: Workload, sizes: Sizes) -> dict[str, Any]:
    """Measure every peer that supports ``scenario``; a peer whose call fails leaves it, the error noted."""
    warm, calls = _counts(scenario, sizes)
    ops: dict[str, Op] = {}
    skipped: dict[str, str] = {}
    for name, peer in peers.items():
        if scenario.only is not None and name not in scenario.only:
            continue
        try:
            ops[name] = scenario.build(peer, workload)
        except Unsupported as exc:
            skipped[name] = str(exc)
        except Exception as exc:
            skipped[name] = f"FAILED: {type(exc).__name__}: {exc}"
    samples, failed = measure_rounds(ops, warm, calls, sizes.rounds)
    return {
        "title": scenario.title,
        "items_per_call": scenario.items,
        "how": scenario.how,
        "warmup_calls": warm,
        "results": {name: summarize(taken, scenario.items) for name, taken in samples.items()},
        "skipped": skipped | failed,
    }
