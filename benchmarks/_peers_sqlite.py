"""kvstore, and the floor: raw sqlite3 running kvstore's own statements on kvstore's schema and pragmas."""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from typing import Final, cast

import msgpack
from _config import BATCH, TTL_MS, Workload
from _peers import Failed, Peer
from _timing import Op

from kvstore import KVStore, Value
from kvstore._backends.sqlite.block import BLOCK
from kvstore._backends.sqlite.sql import (
    SQL_CURRENT,
    SQL_GET,
    SQL_GET_MANY,
    SQL_ONE_PUT_IF_ABSENT,
    SQL_ONE_REPLACE_LIVE,
    SQL_PUT,
    SQL_READ_VERSION,
    SQL_RESERVE,
    SQL_SCAN,
)
from kvstore._checksum import checksum

NS: Final = "default"
CONTENT_TYPE: Final = "application/json"


def crc(data: bytes) -> int:
    """The entry checksum kvstore's rows carry (no metadata): the raw peer writes the same rows, so it pays it too."""
    return checksum(data, CONTENT_TYPE, None)


def sum_of(data: bytes, metadata: str) -> int:
    """The entry checksum of a row with metadata."""
    return checksum(data, CONTENT_TYPE, metadata)


TTL_US: Final = TTL_MS * 1_000
# The raw read-compare-write's write: the "SELECT version; compare; UPDATE".
SQL_CAS_UPDATE: Final = (
    "UPDATE kvstore_entries SET value = ?, version = ?, updated_us = ?, expires_us = NULL, ttl_us = NULL,"
    " metadata = NULL, checksum = ? WHERE namespace = ? AND key = ?"
)


class KVStorePeer(Peer):
    name = "kvstore"

    def __init__(self, path: str) -> None:
        self.kv = KVStore(path)

    def load(self, keys: list[str], value: object) -> None:
        for start in range(0, len(keys), BATCH):
            with self.kv.atomic() as op:
                for key in keys[start : start + BATCH]:
                    op.set(key, cast(Value, value))  # the peers share one value, built as a Value

    def close(self) -> None:
        self.kv.close()

    def get_hit(self, w: Workload) -> Op:
        get, hits = self.kv.get, w.hits

        def op(i: int) -> None:
            if get(hits[i]) is None:
                raise Failed(hits[i])

        return op

    def get_miss(self, w: Workload) -> Op:
        get, misses = self.kv.get, w.misses

        def op(i: int) -> None:
            if get(misses[i]) is not None:
                raise Failed(misses[i])

        return op

    def set(self, w: Workload) -> Op:
        put, hits, value = self.kv.set, w.hits, w.value

        def op(i: int) -> None:
            put(hits[i], value)

        return op

    def set_ttl_meta(self, w: Workload) -> Op:
        put, hits, value, meta = self.kv.set, w.hits, w.value, w.metadata

        def op(i: int) -> None:
            put(hits[i], value, expire_in=TTL_MS, metadata=meta)

        return op

    def cas(self, w: Workload) -> Op:
        stamps: dict[str, str] = {}
        for key in set(w.hits):
            entry = self.kv.get(key)
            assert entry is not None
            stamps[key] = entry.versionstamp
        put, hits, value = self.kv.set, w.hits, w.value

        def op(i: int) -> None:
            key = hits[i]
            result = put(key, value, if_versionstamp=stamps[key])
            if not result.committed or result.versionstamp is None:
                raise Failed(key)
            stamps[key] = result.versionstamp

        return op

    def if_not_exists(self, w: Workload) -> Op:
        put, fresh, value = self.kv.set, w.fresh, w.value

        def op(i: int) -> None:
            if not put(fresh[i], value, if_not_exists=True).committed:
                raise Failed(fresh[i])

        return op

    def list_100(self, w: Workload) -> Op:
        listing, prefixes = self.kv.list, w.prefixes

        def op(i: int) -> None:
            if len(listing(prefixes[i], limit=100)) != 100:
                raise Failed(prefixes[i])

        return op

    def get_many_100(self, w: Workload) -> Op:
        get_many, groups = self.kv.get_many, w.groups

        def op(i: int) -> None:
            if None in get_many(groups[i]):
                raise Failed(i)

        return op

    def batch_1000(self, w: Workload) -> Op:
        atomic, keys, value = self.kv.atomic, w.batch, w.value

        def op(i: int) -> None:
            with atomic() as tx:
                for key in keys:
                    tx.set(key, value)
            if tx.result is None or not tx.result.ok:
                raise Failed(i)

        return op


def now_us() -> int:
    return int(time.time() * 1_000_000)


class RawPeer(Peer):
    """sqlite3 by hand on a database kvstore created (same tables and indexes), with kvstore's pragmas."""

    name = "raw"

    def __init__(self, path: str) -> None:
        KVStore(path).close()  # kvstore's migrations create the schema; the connection below does the rest
        conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA journal_size_limit = 67108864")
        self.conn = conn
        self.version = itertools.count(1)

    def load(self, keys: list[str], value: object) -> None:
        for start in range(0, len(keys), BATCH):
            self._upsert_many(keys[start : start + BATCH], value)

    def close(self) -> None:
        self.conn.close()

    def get_hit(self, w: Workload) -> Op:
        execute, hits = self.conn.execute, w.hits

        def op(i: int) -> None:
            row = execute(SQL_GET, (NS, hits[i], now_us())).fetchone()
            if row is None:
                raise Failed(hits[i])
            msgpack.unpackb(row[0])

        return op

    def get_miss(self, w: Workload) -> Op:
        execute, misses = self.conn.execute, w.misses

        def op(i: int) -> None:
            if execute(SQL_GET, (NS, misses[i], now_us())).fetchone() is not None:
                raise Failed(misses[i])

        return op

    def set(self, w: Workload) -> Op:
        """One upsert in autocommit: the single statement that is the floor of any set."""
        execute, hits, value, version = self.conn.execute, w.hits, w.value, self.version

        def op(i: int) -> None:
            now = now_us()
            data = msgpack.packb(value)
            execute(
                SQL_PUT, (NS, hits[i], data, CONTENT_TYPE, None, next(version), now, now, None, None, False, crc(data))
            )

        return op

    def set_tx_floor(self, w: Workload) -> Op:
        """Exactly the statements of kvstore's set: with a block of versionstamps reserved (a transaction
        that moves the counter, once per BLOCK sets), one UPDATE in autocommit replaces the live entry if the
        counter still ends the block (an insert follows only when there is no live entry)."""
        execute, hits, value = self.conn.execute, w.hits, w.value
        block = [0, -1]  # the next versionstamp, the block's end

        def reserve() -> None:
            execute("BEGIN IMMEDIATE")
            counter = execute(SQL_READ_VERSION).fetchone()[0]
            execute(SQL_RESERVE, (counter + BLOCK,))
            execute("COMMIT")
            block[:] = [counter + 1, counter + BLOCK]

        def op(i: int) -> None:
            key, now = hits[i], now_us()
            data = msgpack.packb(value)
            if block[0] > block[1]:
                reserve()
            version, end = block
            sum_ = crc(data)
            replace = (data, CONTENT_TYPE, None, version, now, None, None, False, sum_, NS, key, now, end)
            if execute(SQL_ONE_REPLACE_LIVE, replace).rowcount != 1:
                row = (NS, key, data, CONTENT_TYPE, None, version, now, now, None, None, False, sum_, end, now)
                if execute(SQL_ONE_PUT_IF_ABSENT, row).rowcount != 1:
                    raise Failed(key)
            block[0] = version + 1

        return op

    def set_ttl_meta(self, w: Workload) -> Op:
        execute, hits, value, meta, version = self.conn.execute, w.hits, w.value, w.metadata, self.version

        def op(i: int) -> None:
            now = now_us()
            data = msgpack.packb(value)
            text = json.dumps(meta, separators=(",", ":"))
            row = (
                NS,
                hits[i],
                data,
                CONTENT_TYPE,
                text,
                next(version),
                now,
                now,
                now + TTL_US,
                TTL_US,
                False,
                sum_of(data, text),
            )
            execute(SQL_PUT, row)

        return op

    def cas(self, w: Workload) -> Op:
        """BEGIN IMMEDIATE; SELECT version; compare; UPDATE; COMMIT."""
        execute, hits, value, version = self.conn.execute, w.hits, w.value, self.version
        now = now_us()
        expected = {key: execute(SQL_CURRENT, (NS, key, now)).fetchone()[0] for key in set(hits)}

        def op(i: int) -> None:
            key, now = hits[i], now_us()
            data = msgpack.packb(value)
            execute("BEGIN IMMEDIATE")
            row = execute(SQL_CURRENT, (NS, key, now)).fetchone()
            if row is None or row[0] != expected[key]:
                execute("ROLLBACK")
                raise Failed(key)
            new = next(version)
            execute(SQL_CAS_UPDATE, (data, new, now, crc(data), NS, key))
            execute("COMMIT")
            expected[key] = new

        return op

    def if_not_exists(self, w: Workload) -> Op:
        """BEGIN IMMEDIATE; SELECT version (none); INSERT; COMMIT."""
        execute, fresh, value, version = self.conn.execute, w.fresh, w.value, self.version

        def op(i: int) -> None:
            key, now = fresh[i], now_us()
            data = msgpack.packb(value)
            execute("BEGIN IMMEDIATE")
            if execute(SQL_CURRENT, (NS, key, now)).fetchone() is not None:
                execute("ROLLBACK")
                raise Failed(key)
            execute(SQL_PUT, (NS, key, data, CONTENT_TYPE, None, next(version), now, now, None, None, False, crc(data)))
            execute("COMMIT")

        return op

    def list_100(self, w: Workload) -> Op:
        execute, prefixes, unpack = self.conn.execute, w.prefixes, msgpack.unpackb

        def op(i: int) -> None:
            prefix = prefixes[i]
            end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
            rows = execute(SQL_SCAN, (NS, prefix, end, now_us(), 101)).fetchall()
            if len([unpack(row[0]) for row in rows[:100]]) != 100:
                raise Failed(prefix)

        return op

    def get_many_100(self, w: Workload) -> Op:
        execute, groups, unpack = self.conn.execute, w.groups, msgpack.unpackb
        sql = SQL_GET_MANY + "(" + ", ".join("?" * 100) + ")"

        def op(i: int) -> None:
            keys = groups[i]
            found = {row[-1]: unpack(row[0]) for row in execute(sql, (NS, now_us(), *keys))}
            if None in [found.get(key) for key in keys]:
                raise Failed(i)

        return op

    def batch_1000(self, w: Workload) -> Op:
        write, keys, value = self._upsert_many, w.batch, w.value

        def op(i: int) -> None:
            write(keys, value)

        return op

    def _upsert_many(self, keys: list[str], value: object) -> None:
        """executemany of the upsert, values encoded, in one BEGIN IMMEDIATE transaction."""
        now, stamp, pack = now_us(), next(self.version), msgpack.packb
        data = pack(value)
        rows = [(NS, key, data, CONTENT_TYPE, None, stamp, now, now, None, None, False, crc(data)) for key in keys]
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(SQL_PUT, rows)
        conn.execute("COMMIT")
