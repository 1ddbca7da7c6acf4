"""The other stores a Python user picks: diskcache, sqlitedict, and Redis through redis-py.

Each is used the way its documentation suggests, with the closest equivalent of every scenario; where
there is none, the scenario is skipped with the reason (``Unsupported``). diskcache and sqlitedict
pickle values; Redis gets the value as msgpack bytes, encoded and decoded inside the measured call.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import msgpack
from _config import BATCH, TTL_MS, Workload
from _peers import Failed, Peer, Unsupported
from _timing import Op


class DiskcachePeer(Peer):
    """``diskcache.Cache`` with its defaults: WAL, synchronous=NORMAL, like kvstore."""

    name = "diskcache"

    def __init__(self, directory: str) -> None:
        import diskcache  # type: ignore[import-untyped]

        self.cache: Any = diskcache.Cache(directory)

    def load(self, keys: list[str], value: object) -> None:
        for start in range(0, len(keys), BATCH):
            with self.cache.transact():
                for key in keys[start : start + BATCH]:
                    self.cache.set(key, value)

    def close(self) -> None:
        self.cache.close()

    def get_hit(self, w: Workload) -> Op:
        get, hits = self.cache.get, w.hits

        def op(i: int) -> None:
            if get(hits[i]) is None:
                raise Failed(hits[i])

        return op

    def get_miss(self, w: Workload) -> Op:
        get, misses = self.cache.get, w.misses

        def op(i: int) -> None:
            if get(misses[i]) is not None:
                raise Failed(misses[i])

        return op

    def set(self, w: Workload) -> Op:
        put, hits, value = self.cache.set, w.hits, w.value

        def op(i: int) -> None:
            put(hits[i], value)

        return op

    def set_ttl_meta(self, w: Workload) -> Op:
        """``expire`` in seconds; the metadata travels as the entry's ``tag`` (JSON text)."""
        put, hits, value, meta = self.cache.set, w.hits, w.value, w.metadata

        def op(i: int) -> None:
            put(hits[i], value, expire=TTL_MS / 1000, tag=json.dumps(meta, separators=(",", ":")))

        return op

    def cas(self, w: Workload) -> Op:
        """Under ``transact()`` (BEGIN IMMEDIATE): get (version, value), compare the version, set."""
        cache, hits, value = self.cache, w.hits, w.value
        counter = itertools.count(1)
        expected = dict.fromkeys(set(hits), 0)
        self.load_versioned(list(expected), value)

        def op(i: int) -> None:
            key = hits[i]
            with cache.transact():
                current = cache.get(key)
                if current is None or current[0] != expected[key]:
                    raise Failed(key)
                new = next(counter)
                cache.set(key, (new, value))
            expected[key] = new

        return op

    def load_versioned(self, keys: list[str], value: object) -> None:
        with self.cache.transact():
            for key in keys:
                self.cache.set(key, (0, value))

    def if_not_exists(self, w: Workload) -> Op:
        add, fresh, value = self.cache.add, w.fresh, w.value

        def op(i: int) -> None:
            if not add(fresh[i], value):
                raise Failed(fresh[i])

        return op

    def list_100(self, w: Workload) -> Op:
        """No prefix or range read: the first 100 keys of ``iterkeys()`` (key order), and a get of each."""
        cache = self.cache

        def op(i: int) -> None:
            keys = list(itertools.islice(cache.iterkeys(), 100))
            if None in [cache.get(key) for key in keys]:
                raise Failed(i)

        return op

    def get_many_100(self, w: Workload) -> Op:
        """No multi-get: 100 gets."""
        get, groups = self.cache.get, w.groups

        def op(i: int) -> None:
            if None in [get(key) for key in groups[i]]:
                raise Failed(i)

        return op

    def batch_1000(self, w: Workload) -> Op:
        cache, keys, value = self.cache, w.batch, w.value

        def op(i: int) -> None:
            with cache.transact():
                for key in keys:
                    cache.set(key, value)

        return op


class SqlitedictPeer(Peer):
    """``SqliteDict`` in WAL mode, committing after every write (as ``autocommit=True`` would).

    sqlitedict sets ``synchronous=OFF`` itself; it is set back to NORMAL here, like the other SQLite peers.
    """

    name = "sqlitedict"

    def __init__(self, path: str) -> None:
        from sqlitedict import SqliteDict  # type: ignore[import-untyped]

        self.d: Any = SqliteDict(path, tablename="bench", journal_mode="WAL", autocommit=False)
        self.d.conn.execute("PRAGMA synchronous = NORMAL")
        self.d.commit()

    def load(self, keys: list[str], value: object) -> None:
        for key in keys:
            self.d[key] = value
        self.d.commit()

    def close(self) -> None:
        self.d.close()

    def get_hit(self, w: Workload) -> Op:
        get, hits = self.d.get, w.hits

        def op(i: int) -> None:
            if get(hits[i]) is None:
                raise Failed(hits[i])

        return op

    def get_miss(self, w: Workload) -> Op:
        get, misses = self.d.get, w.misses

        def op(i: int) -> None:
            if get(misses[i]) is not None:
                raise Failed(misses[i])

        return op

    def set(self, w: Workload) -> Op:
        d, hits, value = self.d, w.hits, w.value

        def op(i: int) -> None:
            d[hits[i]] = value
            d.commit()

        return op

    def list_100(self, w: Workload) -> Op:
        raise Unsupported("no range read: items() streams the whole table, in insertion order")

    def get_many_100(self, w: Workload) -> Op:
        """No multi-get: 100 gets."""
        get, groups = self.d.get, w.groups

        def op(i: int) -> None:
            if None in [get(key) for key in groups[i]]:
                raise Failed(i)

        return op

    def batch_1000(self, w: Workload) -> Op:
        d, keys, value = self.d, w.batch, w.value

        def op(i: int) -> None:
            for key in keys:
                d[key] = value
            d.commit()

        return op


def delete_redis_keys(address: str, prefix: str) -> int:
    """Delete the keys this run wrote (those under ``prefix``, and only those); return how many."""
    import redis

    host, _, port = address.rpartition(":")
    client = redis.Redis(host=host, port=int(port))
    deleted = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += client.delete(*batch)
                batch.clear()
        if batch:
            deleted += client.delete(*batch)
    finally:
        client.close()
    return deleted


class RedisPeer(Peer):
    """redis-py over loopback TCP; every key carries the run's prefix (``delete_redis_keys`` removes them)."""

    name = "redis"

    def __init__(self, address: str, prefix: str) -> None:
        import redis

        host, _, port = address.rpartition(":")
        self.r: Any = redis.Redis(host=host, port=int(port))
        self.prefix = prefix

    def keys(self, keys: list[str]) -> list[str]:
        return [self.prefix + key for key in keys]

    def load(self, keys: list[str], value: object) -> None:
        data = msgpack.packb(value)
        for start in range(0, len(keys), BATCH):
            pipe = self.r.pipeline(transaction=False)
            for key in self.keys(keys[start : start + BATCH]):
                pipe.set(key, data)
            pipe.execute()

    def close(self) -> None:
        self.r.close()

    def get_hit(self, w: Workload) -> Op:
        get, hits, unpack = self.r.get, self.keys(w.hits), msgpack.unpackb

        def op(i: int) -> None:
            data = get(hits[i])
            if data is None:
                raise Failed(hits[i])
            unpack(data)

        return op

    def get_miss(self, w: Workload) -> Op:
        get, misses = self.r.get, self.keys(w.misses)

        def op(i: int) -> None:
            if get(misses[i]) is not None:
                raise Failed(misses[i])

        return op

    def set(self, w: Workload) -> Op:
        put, hits, value, pack = self.r.set, self.keys(w.hits), w.value, msgpack.packb

        def op(i: int) -> None:
            put(hits[i], pack(value))

        return op

    def set_ttl_meta(self, w: Workload) -> Op:
        """SET ... EX; the metadata is packed with the value, as [value, metadata]."""
        put, hits, value, meta, pack = self.r.set, self.keys(w.hits), w.value, w.metadata, msgpack.packb
        seconds = TTL_MS // 1000

        def op(i: int) -> None:
            put(hits[i], pack([value, meta]), ex=seconds)

        return op

    def cas(self, w: Workload) -> Op:
        """WATCH; GET [version, value]; compare; MULTI; SET; EXEC (optimistic, as Redis does CAS)."""
        r, hits, value, pack, unpack = self.r, self.keys(w.hits), w.value, msgpack.packb, msgpack.unpackb
        counter = itertools.count(1)
        expected = dict.fromkeys(set(hits), 0)
        pipe = r.pipeline(transaction=False)
        for key in expected:
            pipe.set(key, pack([0, value]))
        pipe.execute()

        def op(i: int) -> None:
            key = hits[i]
            with r.pipeline() as tx:
                tx.watch(key)
                current = tx.get(key)
                if current is None or unpack(current)[0] != expected[key]:
                    raise Failed(key)
                new = next(counter)
                tx.multi()
                tx.set(key, pack([new, value]))
                tx.execute()
            expected[key] = new

        return op

    def if_not_exists(self, w: Workload) -> Op:
        put, fresh, value, pack = self.r.set, self.keys(w.fresh), w.value, msgpack.packb

        def op(i: int) -> None:
            if not put(fresh[i], pack(value), nx=True):
                raise Failed(fresh[i])

        return op

    def list_100(self, w: Workload) -> Op:
        raise Unsupported("no ordered range read: SCAN is unordered (a sorted-set index would be extra work)")

    def get_many_100(self, w: Workload) -> Op:
        """MGET of 100 keys, each value decoded."""
        mget, groups, unpack = self.r.mget, [self.keys(g) for g in w.groups], msgpack.unpackb

        def op(i: int) -> None:
            found = mget(groups[i])
            if None in found:
                raise Failed(i)
            for data in found:
                unpack(data)

        return op

    def batch_1000(self, w: Workload) -> Op:
        """1,000 SETs in one MULTI/EXEC pipeline."""
        r, keys, value, pack = self.r, self.keys(w.batch), w.value, msgpack.packb

        def op(i: int) -> None:
            pipe = r.pipeline(transaction=True)
            for key in keys:
                pipe.set(key, pack(value))
            pipe.execute()

        return op
