"""The PostgreSQL figures of the concurrency part: AsyncKVStore at 1 task against N tasks, and fairness.

Both run on the benchmark's PostgreSQL server, in a schema of their own created for the run and dropped
after it (as the postgres part does). For gets and sets, each side has an AsyncKVStore and a namespace
of its own, loaded with the same entries. Fairness: threads sharing one KVStore (and so its default pool)
each commit ``atomic().sum`` on one counter for a fixed time; the figure is the slowest thread's commits
over the mean, and every error is counted.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from typing import Any, Final

import psycopg
from _concurrency_rounds import Rounds, alternate, group_result, tasks_side
from _concurrency_sqlite import LOAD_BATCH, async_get, async_set
from _config import VALUE
from _postgres import _libpq, _schema

from kvstore import AsyncKVStore, KVStore

COUNTER: Final = "fair/counter"
MAX_ERROR_SAMPLES: Final = 5


def _load(target: str, keys: list[str], namespaces: tuple[str, ...]) -> None:
    with KVStore(target) as kv:
        for name in namespaces:
            view = kv.namespace(name)
            for start in range(0, len(keys), LOAD_BATCH):
                with view.atomic() as op:
                    for key in keys[start : start + LOAD_BATCH]:
                        op.set(key, VALUE)
    # Statistics, as autovacuum would gather soon after a bulk load (see the postgres part).
    with psycopg.connect(_libpq(target), autocommit=True) as conn:
        conn.execute("ANALYZE kvstore_entries")


def postgres_groups(url: str, keys: list[str], hits: list[str], tasks: int, plan: Rounds) -> list[dict[str, Any]]:
    """Gets, then sets: AsyncKVStore with 1 task against one with ``tasks`` tasks, in alternating rounds."""
    groups = []
    with _schema(url) as target:
        _load(target, keys, ("one", "many"))
        with asyncio.Runner() as runner:
            one, many = AsyncKVStore(target), AsyncKVStore(target)
            try:
                alone, shared = runner.run(one.namespace("one")), runner.run(many.namespace("many"))
                for title, make in (("PostgreSQL get", async_get), ("PostgreSQL set", async_set)):
                    verb = title.rsplit(" ", 1)[1]
                    labels = {"one": f"AsyncKVStore.{verb}, 1 task", "many": f"AsyncKVStore.{verb}, {tasks} tasks"}
                    sides = {
                        "one": tasks_side(runner, make(alone, hits), 1),
                        "many": tasks_side(runner, make(shared, hits), tasks),
                    }
                    rates, failed = alternate(sides, plan)
                    groups.append(group_result(title, labels, rates, failed))
            finally:
                runner.run(one.close())
                runner.run(many.close())
    return groups


def fairness(url: str, threads: int, seconds: float) -> dict[str, Any]:
    """``threads`` threads on one KVStore (default pool) committing ``atomic().sum`` for ``seconds``."""
    with _schema(url) as target, KVStore(target) as kv:
        commits = [0] * threads
        errors: list[str] = []
        start = threading.Barrier(threads + 1)
        deadline = [0.0]

        def worker(index: int) -> None:
            start.wait()
            made = 0
            while time.monotonic() < deadline[0]:
                try:
                    if kv.atomic().sum(COUNTER, 1).commit().ok:
                        made += 1
                    else:
                        errors.append("a commit without checks returned ok=False")
                except Exception as exc:  # every error is counted: the figure requires none
                    errors.append(f"{type(exc).__name__}: {exc}")
            commits[index] = made

        running = [threading.Thread(target=worker, args=(i,), name=f"fair-{i}") for i in range(threads)]
        for thread in running:
            thread.start()
        deadline[0] = time.monotonic() + seconds  # set before the barrier releases the threads
        begin = time.monotonic()
        start.wait()
        for thread in running:
            thread.join()
        took = time.monotonic() - begin
        entry = kv.get(COUNTER)
        total = sum(commits)
        if entry is None or entry.value != total:
            errors.append(f"the counter holds {None if entry is None else entry.value!r} after {total:,} commits")
    mean = statistics.fmean(commits)
    return {
        "threads": threads,
        "seconds": took,
        "commits": commits,
        "total": total,
        "per_s": total / took,
        "slowest": min(commits),
        "fastest": max(commits),
        "mean": mean,
        "ratio": min(commits) / mean if mean else 0.0,
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:MAX_ERROR_SAMPLES],
    }
