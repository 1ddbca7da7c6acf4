"""Two processes racing atomic transfers between two counters never break their constant sum."""

from __future__ import annotations

import multiprocessing
import random
from multiprocessing.synchronize import Barrier

import pytest

from kvstore import KVStore

TOTAL = 1_000
TRANSFERS = 150


def _transfer(
    path: str, seed: int, barrier: Barrier, results: multiprocessing.Queue[tuple[int, int, set[int]]]
) -> None:
    """Move random amounts between "a" and "b" with check-and-set commits; report commits, retries, sums seen."""
    rng = random.Random(seed)
    committed = retries = 0
    sums: set[int] = set()
    with KVStore(path, busy_timeout=30) as kv:
        barrier.wait()
        while committed < TRANSFERS:
            a, b = kv.get_many(["a", "b"])
            assert a is not None
            assert b is not None
            assert isinstance(a.value, int)
            assert isinstance(b.value, int)
            sums.add(a.value + b.value)
            amount = rng.randint(-50, 50)
            result = (
                kv.atomic()
                .check("a", a.versionstamp)
                .check("b", b.versionstamp)
                .set("a", a.value - amount)
                .set("b", b.value + amount)
                .commit()
            )
            if result.ok:
                committed += 1
            else:
                retries += 1
    results.put((committed, retries, sums))


@pytest.mark.slow
def test_racing_transfers_keep_the_sum(shared_target: str) -> None:
    path = shared_target
    with KVStore(path) as kv:
        kv.atomic().set("a", TOTAL).set("b", 0).commit()
        start = kv.get("a")
        assert start is not None
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results: multiprocessing.Queue[tuple[int, int, set[int]]] = context.Queue()
    workers = [context.Process(target=_transfer, args=(path, seed, barrier, results)) for seed in (1, 2)]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert [committed for committed, _, _ in reports] == [TRANSFERS, TRANSFERS]
    assert set().union(*(sums for _, _, sums in reports)) == {TOTAL}
    with KVStore(path) as kv:
        a, b = kv.get_many(["a", "b"])
        assert a is not None
        assert b is not None
        assert isinstance(a.value, int)
        assert isinstance(b.value, int)
        assert a.value + b.value == TOTAL
        # Every committed transfer drew a versionstamp of its own, greater than the one before (on SQLite
        # there are gaps where one writer takes over from the other: see kvstore._backends.sqlite.block).
        assert int(a.versionstamp[:16], 16) - int(start.versionstamp[:16], 16) >= 2 * TRANSFERS
