"""Contention: 8 processes mixing every operation on one file, and a check of the recorded history.

Each process (``_contention_child``) runs random get, get_many, list, set (blind, if_not_exists,
overwrite=False, compare-and-set), conditional delete, counter increment and purge_expired calls for
KVSTORE_CONTENTION_SECONDS (30 by default; CI keeps the default) with a 60 s busy timeout, recording
every call. The test then requires that no call raised (so no "database is locked" reached a caller),
that the history passes ``_history.check_history`` (one chain of versionstamps per key, consistent with
real time; see that module), that the counters equal their committed increments, and that purges
deleted each expired row exactly once.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any, Final

import pytest

from kvstore import KVStore

from ._contention_child import CHAIN_KEYS, COUNTERS, NAMESPACES
from ._history import Op, check_history
from ._support import WAIT, Child, integrity, raw, seed

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

PROCESSES: Final = 8
SECONDS: Final = float(os.environ.get("KVSTORE_CONTENTION_SECONDS", "30"))
EXPIRED: Final = 3000  # rows that expired long ago, for the processes' purges


def _op(record: dict[str, Any]) -> Op:
    return Op(**record)


def _seed_store(path: Path) -> list[Op]:
    """Expired junk to purge, and the counters at 0 (recorded as the first writes of their chains)."""
    with KVStore(path, clock=lambda: time.time() - 7200, auto_purge_every=0) as past:
        junk = past.namespace("junk")
        for n in range(EXPIRED):
            junk.set(f"j/{n}", n, expire_in=60_000)
    setup = []
    with KVStore(path) as kv:
        for key in COUNTERS:
            start = time.monotonic_ns()
            result = kv.set(key, {"w": f"setup:{key}", "n": 0})
            end = time.monotonic_ns()
            setup.append(
                Op("write", "default", key, start, end, result.versionstamp, f"setup:{key}", "blind", None, True, 0, -1)
            )
    return setup


def _final_reads(path: Path) -> list[Op]:
    """A read of every key after all the processes stopped: it must see the last of each chain."""
    reads = []
    with KVStore(path) as kv:
        for ns in NAMESPACES:
            space = kv.namespace(ns)
            for key in CHAIN_KEYS + (COUNTERS if ns == "default" else []):
                start = time.monotonic_ns()
                entry = space.get(key)
                end = time.monotonic_ns()
                if entry is None:
                    reads.append(Op("seen", ns, key, start, end, proc=-1))
                else:
                    assert isinstance(entry.value, dict)
                    reads.append(Op("seen", ns, key, start, end, entry.versionstamp, str(entry.value["w"]), proc=-1))
    return reads


def test_eight_processes_mixing_every_operation(tmp_path: Path) -> None:
    path = tmp_path / "contended.db"
    chosen = seed()
    print(f"KVSTORE_RELIABILITY_SEED={chosen}")  # shown when the test fails
    rng = random.Random(chosen)
    ops = _seed_store(path)
    children = [
        Child(
            "_contention_child.py", str(path), str(index), str(rng.randrange(2**32)), str(tmp_path / f"h{index}.jsonl")
        )
        for index in range(PROCESSES)
    ]
    try:
        for child in children:
            child.expect("ready")
        deadline = time.monotonic_ns() + int(SECONDS * 1e9)
        for child in children:  # the barrier: every process is ready before any starts
            child.send(f"go {deadline}")
        for child in children:
            line = child.readline(timeout=SECONDS + WAIT)
            assert line is not None, f"a process failed: {child.stderr()}"
            assert line.startswith("done"), line
            assert child.proc.wait(WAIT) == 0, child.stderr()
    finally:
        for child in children:
            child.close()

    purged = 0
    for index in range(PROCESSES):
        with open(tmp_path / f"h{index}.jsonl") as lines:
            for line in lines:
                record = json.loads(line)
                if record["kind"] == "purged":
                    purged += record["n"]
                else:
                    ops.append(_op(record))
    ops += _final_reads(path)

    print(f"{len(ops)} recorded calls, {purged} rows purged by the processes")
    assert check_history(ops) == []

    # No lost update: each counter's value is the number of increments that committed.
    increments = {key: 0 for key in COUNTERS}
    for op in ops:
        if op.kind == "write" and op.key in increments and op.proc >= 0:
            increments[op.key] += 1
    with KVStore(path) as kv:
        for key in COUNTERS:
            entry = kv.get(key)
            assert entry is not None
            assert isinstance(entry.value, dict)
            assert entry.value["n"] == increments[key]
        assert min(increments.values()) > 0
    # Every expired row was purged exactly once, by one process or the final purge.
    with raw(path) as conn:
        left: int = conn.execute("SELECT count(*) FROM kvstore_entries WHERE namespace = 'junk'").fetchone()[0]
    assert purged + left == EXPIRED
    with KVStore(path) as kv:
        assert kv.purge_expired() == left
    assert integrity(path) == [("ok",)]
    kinds = {op.kind for op in ops}
    assert kinds == {"write", "delete", "seen", "refused"}, kinds  # the mix really happened
