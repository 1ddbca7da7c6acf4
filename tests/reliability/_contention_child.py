"""One of the processes of the contention test: random calls on a shared store, each one recorded.

Usage: ``python _contention_child.py PATH INDEX SEED HISTORY``. The child says "ready", waits for
"go DEADLINE" on stdin (DEADLINE in ``time.monotonic_ns()``, which is system-wide on Linux), then calls
get, get_many, list, set (blind, if_not_exists, overwrite=False, compare-and-set), conditional delete,
counter increments by compare-and-set, unconditional writes and deletes of scratch keys, and
purge_expired until the deadline. Every call's start and end time, key, result and observed value go to
HISTORY as one JSON object per line (the fields of ``_history.Op``, plus "purged" records); then it
says "done N". Any exception is a failure: it is printed to stderr and the child exits with status 1.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from kvstore import KVStore, Namespace

CHAIN_KEYS = [f"c/{n}" for n in range(6)]
COUNTERS = [f"n/{n}" for n in range(3)]
SCRATCH = [f"s/{n}" for n in range(4)]
NAMESPACES = ["default", "other"]
YEAR_MS = 31_536_000_000


class Worker:
    def __init__(self, kv: KVStore, index: int, rng: random.Random) -> None:
        self.kv = kv
        self.index = index
        self.rng = rng
        self.spaces: dict[str, Namespace] = {"default": kv, "other": kv.namespace("other")}
        self.records: list[dict[str, Any]] = []
        self.serial = 0

    def tag(self) -> str:
        self.serial += 1
        return f"{self.index}:{self.serial}"

    def record(self, kind: str, ns: str, key: str, start: int, end: int, **fields: Any) -> None:
        self.records.append(
            {"kind": kind, "ns": ns, "key": key, "start": start, "end": end, "proc": self.index, **fields}
        )

    def pick(self) -> tuple[str, Namespace, str]:
        ns = self.rng.choice(NAMESPACES)
        return ns, self.spaces[ns], self.rng.choice(CHAIN_KEYS)

    def read(self, ns: str, space: Namespace, key: str) -> tuple[str, Any] | None:
        start = time.monotonic_ns()
        entry = space.get(key)
        end = time.monotonic_ns()
        if entry is None:
            self.record("seen", ns, key, start, end, vs=None)
            return None
        assert isinstance(entry.value, dict)
        self.record("seen", ns, key, start, end, vs=entry.versionstamp, tag=entry.value["w"])
        return entry.versionstamp, entry.value

    def set(
        self, ns: str, space: Namespace, key: str, mode: str, expected: str | None = None, number: int | None = None
    ) -> None:
        tag = self.tag()
        value: dict[str, Any] = {"w": tag, "pad": "x" * self.rng.randrange(200)}
        options: dict[str, Any] = {}
        if number is not None:
            value["n"] = number
        if mode == "nx":
            options["if_not_exists"] = True
        elif mode == "nox":
            options["overwrite"] = False
        elif mode == "cas":
            options["if_versionstamp"] = expected
        if self.rng.random() < 0.3:
            options["expire_in"] = YEAR_MS  # an expiry, never reached during the test
        if self.rng.random() < 0.3:
            options["metadata"] = {"by": self.index}
        start = time.monotonic_ns()
        result = space.set(key, value, **options)
        end = time.monotonic_ns()
        if result.committed:
            self.record(
                "write", ns, key, start, end, vs=result.versionstamp, tag=tag, mode=mode, expected=expected,
                created=result.created, number=number,
            )  # fmt: skip
            return
        if mode == "cas":
            assert not result.ok
            self.record("refused", ns, key, start, end, expected=expected)
        self.record("seen", ns, key, start, end, vs=result.versionstamp)

    # -- the operations ---------------------------------------------------------------------------------

    def op_get(self) -> None:
        self.read(*self.pick())

    def op_get_many(self) -> None:
        ns = self.rng.choice(NAMESPACES)
        keys = self.rng.sample(CHAIN_KEYS, self.rng.randint(1, len(CHAIN_KEYS)))
        start = time.monotonic_ns()
        entries = self.spaces[ns].get_many(keys)
        end = time.monotonic_ns()
        for key, entry in zip(keys, entries, strict=True):
            if entry is None:
                self.record("seen", ns, key, start, end, vs=None)
            else:
                assert isinstance(entry.value, dict)
                self.record("seen", ns, key, start, end, vs=entry.versionstamp, tag=entry.value["w"])

    def op_list(self) -> None:
        ns = self.rng.choice(NAMESPACES)
        start = time.monotonic_ns()
        page = self.spaces[ns].list("c/")
        end = time.monotonic_ns()
        found = {entry.key: entry for entry in page}
        assert set(found) <= set(CHAIN_KEYS), sorted(found)
        for key in CHAIN_KEYS:
            entry = found.get(key)
            if entry is None:
                self.record("seen", ns, key, start, end, vs=None)
            else:
                assert isinstance(entry.value, dict)
                self.record("seen", ns, key, start, end, vs=entry.versionstamp, tag=entry.value["w"])

    def op_blind(self) -> None:
        self.set(*self.pick(), "blind")

    def op_if_not_exists(self) -> None:
        self.set(*self.pick(), "nx")

    def op_no_overwrite(self) -> None:
        self.set(*self.pick(), "nox")

    def op_compare_and_set(self) -> None:
        ns, space, key = self.pick()
        found = self.read(ns, space, key)
        if found is None:
            self.set(ns, space, key, "nx")
        else:
            self.set(ns, space, key, "cas", expected=found[0])

    def op_delete(self) -> None:
        ns, space, key = self.pick()
        found = self.read(ns, space, key)
        if found is None:
            return
        start = time.monotonic_ns()
        deleted = space.delete(key, if_versionstamp=found[0])
        end = time.monotonic_ns()
        self.record("delete" if deleted else "refused", ns, key, start, end, expected=found[0])

    def op_increment(self) -> None:
        key = self.rng.choice(COUNTERS)
        found = self.read("default", self.kv, key)
        assert found is not None, f"counter {key} is gone"
        self.set("default", self.kv, key, "cas", expected=found[0], number=found[1]["n"] + 1)

    def op_scratch(self) -> None:
        key = self.rng.choice(SCRATCH)
        if self.rng.random() < 0.5:
            assert self.kv.set(key, self.tag()).committed
        else:
            assert type(self.kv.delete(key)) is bool

    def op_purge(self) -> None:
        start = time.monotonic_ns()
        purged = self.kv.purge_expired()
        end = time.monotonic_ns()
        self.records.append({"kind": "purged", "n": purged, "start": start, "end": end, "proc": self.index})

    def operations(self) -> list[tuple[Callable[[], None], int]]:
        return [
            (self.op_get, 18),
            (self.op_get_many, 6),
            (self.op_list, 5),
            (self.op_blind, 10),
            (self.op_if_not_exists, 8),
            (self.op_no_overwrite, 5),
            (self.op_compare_and_set, 14),
            (self.op_delete, 7),
            (self.op_increment, 20),
            (self.op_scratch, 4),
            (self.op_purge, 3),
        ]


def main(path: str, index: int, seed: int, history: str) -> None:
    with KVStore(path, busy_timeout=60.0, auto_purge_every=0, purge_batch_size=50) as kv:
        worker = Worker(kv, index, random.Random(seed))
        operations = worker.operations()
        calls = [call for call, _ in operations]
        weights = [weight for _, weight in operations]
        print("ready", flush=True)
        word, deadline = sys.stdin.readline().split()
        assert word == "go"
        while time.monotonic_ns() < int(deadline):
            worker.rng.choices(calls, weights)[0]()
    with open(history, "w") as out:
        for record in worker.records:
            out.write(json.dumps(record) + "\n")
    print(f"done {len(worker.records)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
