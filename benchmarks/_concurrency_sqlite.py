"""The SQLite groups of the concurrency part: gets (sync, AsyncKVStore, aiosqlite), sets, and sets under FULL.

Every side has a store file of its own, loaded the same way (the same keys, the same ~120-byte value),
and every side reads or writes the same random key sequence. "sync" is one thread calling a KVStore;
"N tasks" are N tasks on one event loop sharing one AsyncKVStore (or one aiosqlite connection).
"""

from __future__ import annotations

import asyncio
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgpack
from _concurrency_rounds import AsyncOp, Rounds, Side, alternate, group_result, sync_side, tasks_side
from _config import VALUE
from _peers import Failed
from _peers_sqlite import NS, now_us

from kvstore import AsyncKVStore, AsyncNamespace, KVStore

# The aiosqlite peer runs kvstore's own statement for a get on kvstore's schema, as the raw sqlite3 peer
# of the ops part does: "the same SELECT" as AsyncKVStore.get. Only the peer uses this internal.
from kvstore._backends.sqlite.sql import SQL_GET

if TYPE_CHECKING:
    import aiosqlite

LOAD_BATCH: Final = 1_000


def load(path: Path, keys: list[str], synchronous: str = "NORMAL") -> None:
    """A new store file holding ``VALUE`` at every key (atomic() batches, not measured)."""
    with KVStore(path, synchronous=synchronous) as kv:
        for start in range(0, len(keys), LOAD_BATCH):
            with kv.atomic() as op:
                for key in keys[start : start + LOAD_BATCH]:
                    op.set(key, VALUE)


def _sync_get(kv: KVStore, hits: list[str]) -> Side:
    get, count = kv.get, len(hits)

    def op(i: int) -> None:
        if get(hits[i % count]) is None:
            raise Failed(hits[i % count])

    return sync_side(op)


def _sync_set(kv: KVStore, hits: list[str]) -> Side:
    put, count = kv.set, len(hits)

    def op(i: int) -> None:
        if not put(hits[i % count], VALUE).committed:
            raise Failed(hits[i % count])

    return sync_side(op)


def async_get(kv: AsyncNamespace, hits: list[str]) -> AsyncOp:
    """An AsyncKVStore.get of the ``i``-th key of ``hits`` (which must be there)."""
    get, count = kv.get, len(hits)

    async def op(i: int) -> None:
        if await get(hits[i % count]) is None:
            raise Failed(hits[i % count])

    return op


def async_set(kv: AsyncNamespace, hits: list[str]) -> AsyncOp:
    """An AsyncKVStore.set (an overwrite) of the ``i``-th key of ``hits``."""
    put, count = kv.set, len(hits)

    async def op(i: int) -> None:
        if not (await put(hits[i % count], VALUE)).committed:
            raise Failed(hits[i % count])

    return op


def _aiosqlite_get(conn: aiosqlite.Connection, hits: list[str]) -> AsyncOp:
    # execute_fetchall: one hop to aiosqlite's thread per call (execute + fetchone + close would be three),
    # the cheapest way aiosqlite offers to run one SELECT.
    fetch, count = conn.execute_fetchall, len(hits)

    async def op(i: int) -> None:
        row = next(iter(await fetch(SQL_GET, (NS, hits[i % count], now_us()))), None)
        if row is None:
            raise Failed(hits[i % count])
        msgpack.unpackb(row[0])

    return op


async def _aiosqlite_open(path: Path) -> aiosqlite.Connection:
    import aiosqlite

    # kvstore's connection pragmas (WAL is a property of the file, set when it was loaded).
    conn = await aiosqlite.connect(path, isolation_level=None)
    await conn.execute("PRAGMA synchronous = NORMAL")
    await conn.execute("PRAGMA journal_size_limit = 67108864")
    return conn


def _has_aiosqlite() -> bool:
    try:
        import aiosqlite  # noqa: F401
    except ImportError:
        return False
    return True


def get_group(directory: Path, keys: list[str], hits: list[str], tasks: int, plan: Rounds) -> dict[str, Any]:
    """Gets: one thread on a KVStore; AsyncKVStore at 1 and ``tasks`` tasks; aiosqlite at 1 and ``tasks``."""
    with_aiosqlite = _has_aiosqlite()
    files = ("sync", "async", "aiosqlite") if with_aiosqlite else ("sync", "async")
    paths = {name: directory / f"get-{name}.db" for name in files}
    for path in paths.values():
        load(path, keys)
    labels = {
        "sync": "KVStore.get, one thread",
        "async_1": "AsyncKVStore.get, 1 task",
        "async_n": f"AsyncKVStore.get, {tasks} tasks",
        "aiosqlite_1": "aiosqlite, the same SELECT, 1 task",
        "aiosqlite_n": f"aiosqlite, the same SELECT, {tasks} tasks",
    }
    with asyncio.Runner() as runner, KVStore(paths["sync"]) as kv:
        akv = AsyncKVStore(paths["async"])
        conn = None
        try:
            runner.run(akv.open())
            sides = {
                "sync": _sync_get(kv, hits),
                "async_1": tasks_side(runner, async_get(akv, hits), 1),
                "async_n": tasks_side(runner, async_get(akv, hits), tasks),
            }
            if with_aiosqlite:
                conn = runner.run(_aiosqlite_open(paths["aiosqlite"]))
                sides["aiosqlite_1"] = tasks_side(runner, _aiosqlite_get(conn, hits), 1)
                sides["aiosqlite_n"] = tasks_side(runner, _aiosqlite_get(conn, hits), tasks)
            rates, failed = alternate(sides, plan)
        finally:
            if conn is not None:
                runner.run(conn.close())
            runner.run(akv.close())
    result = group_result("SQLite get", labels, rates, failed)
    if with_aiosqlite:
        result["peer"] = f"aiosqlite {metadata.version('aiosqlite')}"
    else:
        result["note"] = "aiosqlite is not installed (pip install -e '.[bench]'): its sides did not run"
    return result


def set_group(
    directory: Path, keys: list[str], hits: list[str], tasks: int, plan: Rounds, synchronous: str = "NORMAL"
) -> dict[str, Any]:
    """Sets (overwrites): one thread on a KVStore against ``tasks`` tasks on an AsyncKVStore."""
    paths = {name: directory / f"set-{synchronous.lower()}-{name}.db" for name in ("sync", "async")}
    for path in paths.values():
        load(path, keys, synchronous)
    labels = {"sync": "KVStore.set, one thread", "async_n": f"AsyncKVStore.set, {tasks} tasks"}
    with asyncio.Runner() as runner, KVStore(paths["sync"], synchronous=synchronous) as kv:
        akv = AsyncKVStore(paths["async"], synchronous=synchronous)
        try:
            runner.run(akv.open())
            sides = {"sync": _sync_set(kv, hits), "async_n": tasks_side(runner, async_set(akv, hits), tasks)}
            rates, failed = alternate(sides, plan)
        finally:
            runner.run(akv.close())
    return group_result(f'SQLite set, synchronous="{synchronous}"', labels, rates, failed)
