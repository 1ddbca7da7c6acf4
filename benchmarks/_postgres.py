"""kvstore on PostgreSQL against raw psycopg running kvstore's own statements (issue 6: within 1.5x).

Both sides run in one fresh schema of the benchmark server, each in a namespace of its own loaded with the
same entries (so neither side's writes change what the other reads), with psycopg 3 and its server-side
prepared statements; raw psycopg uses one autocommit connection, kvstore its pool. The
raw side of each scenario runs exactly the statements kvstore's call runs (``kvstore._backends.postgres.sql``), so
the ratio is kvstore's own overhead: Python, the pool, validation, encoding and the result objects.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgpack
import psycopg
from _config import Sizes, Workload, make_workload
from _report_parts import fmt_us
from _timing import Op, measure_rounds, summarize

from kvstore import KVStore
from kvstore._backends.postgres import sql as q
from kvstore._checksum import checksum

Data = dict[str, Any]
LIMIT = 1.5
NAMESPACE = "raw"  # raw psycopg's namespace; kvstore's is the default one
KIND = "application/json"


def crc(value: bytes) -> int:
    """The entry checksum kvstore's rows carry: the raw psycopg peer writes the same rows, so it pays it too."""
    return checksum(value, KIND, None)


# (id, title, what raw psycopg runs)
SCENARIOS: list[tuple[str, str, str]] = [
    ("get_hit", "get (hit)", "SQL_GET + msgpack decode"),
    ("get_miss", "get (miss)", "SQL_GET"),
    ("set", "set", "BEGIN; SQL_LOCK; SQL_NEXT_VERSION; SQL_REPLACE_LIVE (else SQL_PUT); COMMIT"),
    ("cas", "compare-and-set", "BEGIN; SQL_LOCK; SQL_NEXT_VERSION; SQL_PUT_IF_VERSION; COMMIT"),
    ("if_not_exists", "if-not-exists", "BEGIN; SQL_LOCK; SQL_NEXT_VERSION; SQL_PUT_IF_ABSENT; COMMIT (a new key)"),
    ("list_100", "list of 100", "SQL_SCAN with LIMIT 101 + decode"),
    ("get_many_100", "get_many of 100", "SQL_GET_MANY with 100 keys + decode"),
]


def _libpq(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def unavailable(url: str) -> str | None:
    """Why PostgreSQL cannot be measured, or None."""
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"no PostgreSQL answers at {url}: {str(exc).strip()}"
    return None


@contextmanager
def _schema(url: str) -> Iterator[str]:
    """A fresh schema for the run (dropped after it), and the URL that puts it first on the search_path."""
    name = f"kvstore_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(_libpq(url), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


def _one(row: tuple[Any, ...] | None) -> int:
    assert row is not None
    return int(row[0])


class _Raw:
    """kvstore's statements through one plain psycopg connection."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(_libpq(url), autocommit=True)

    def get(self, key: str) -> object:
        row = self.conn.execute(q.SQL_GET, (NAMESPACE, key, _now_us())).fetchone()
        return None if row is None else msgpack.unpackb(row[0], raw=False)

    def set(self, key: str, value: bytes) -> int:
        """kvstore's plain set: lock, draw a version, replace the live entry in place (else insert)."""
        now = _now_us()
        with self.conn.transaction():
            self.conn.execute(q.SQL_LOCK)
            version = _one(self.conn.execute(q.SQL_NEXT_VERSION).fetchone())
            replace = (value, KIND, None, version, now, None, None, False, crc(value), NAMESPACE, key, now)
            if self.conn.execute(q.SQL_REPLACE_LIVE, replace).rowcount != 1:
                self.conn.execute(
                    q.SQL_PUT, (NAMESPACE, key, value, KIND, None, version, now, now, None, None, False, crc(value))
                )
        return version

    def put_if(self, key: str, value: bytes, expected: int | None) -> int | None:
        """kvstore's conditional set: lock, draw a version, check and write in one statement; roll back
        (and read the current version, as kvstore does to report it) when the check fails."""
        now = _now_us()
        with self.conn.transaction():
            self.conn.execute(q.SQL_LOCK)
            version = _one(self.conn.execute(q.SQL_NEXT_VERSION).fetchone())
            if expected is None:
                row = (NAMESPACE, key, value, KIND, None, version, now, now, None, None, False, crc(value), now)
                done = self.conn.execute(q.SQL_PUT_IF_ABSENT, row).rowcount == 1
            else:
                params = (value, KIND, None, version, now, None, None, False, crc(value), NAMESPACE, key, expected, now)
                done = self.conn.execute(q.SQL_PUT_IF_VERSION, params).rowcount == 1
            if done:
                return version
            self.conn.execute(q.SQL_CURRENT, (NAMESPACE, key, now)).fetchone()
            raise psycopg.Rollback  # the transaction block rolls back and swallows it
        return None

    def version(self, key: str) -> int:
        row = self.conn.execute(q.SQL_CURRENT, (NAMESPACE, key, _now_us())).fetchone()
        assert row is not None
        return int(row[0])

    def scan(self, prefix: str) -> list[object]:
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        rows = self.conn.execute(q.SQL_SCAN, (NAMESPACE, prefix, end, "", _now_us(), 101)).fetchall()
        return [msgpack.unpackb(row[0], raw=False) for row in rows]

    def get_many(self, keys: list[str]) -> list[object]:
        rows = self.conn.execute(q.SQL_GET_MANY, (NAMESPACE, keys, _now_us())).fetchall()
        return [msgpack.unpackb(row[0], raw=False) for row in rows]


def _now_us() -> int:
    return round(time.time() * 1_000_000)


def _ops(scenario: str, kv: KVStore, raw: _Raw, work: Workload, encoded: bytes) -> dict[str, Op]:
    """The kvstore and raw calls of one scenario; each raises if its call did not do what it should."""

    def check(ok: object) -> None:
        if not ok:
            raise AssertionError(f"{scenario}: a call did not do what it should")

    if scenario == "get_hit":
        return {"kvstore": lambda i: check(kv.get(work.hits[i])), "raw": lambda i: check(raw.get(work.hits[i]))}
    if scenario == "get_miss":
        return {
            "kvstore": lambda i: check(kv.get(work.misses[i]) is None),
            "raw": lambda i: check(raw.get(work.misses[i]) is None),
        }
    if scenario == "set":
        return {
            "kvstore": lambda i: check(kv.set(work.hits[i], work.value).committed),
            "raw": lambda i: check(raw.set(work.hits[i], encoded) > 0),
        }
    if scenario == "cas":
        stamps: dict[str, str] = {}

        def kv_cas(i: int) -> None:
            key = work.hits[i]
            stamp = stamps.get(key)
            if stamp is None:
                entry = kv.get(key)
                assert entry is not None
                stamp = entry.versionstamp
            result = kv.set(key, work.value, if_versionstamp=stamp)
            check(result.committed)
            assert result.versionstamp is not None
            stamps[key] = result.versionstamp

        versions: dict[str, int] = {}

        def raw_cas(i: int) -> None:
            key = work.hits[i]
            expected = versions.get(key)
            if expected is None:
                expected = raw.version(key)
            written = raw.put_if(key, encoded, expected)
            check(written is not None)
            assert written is not None
            versions[key] = written

        return {"kvstore": kv_cas, "raw": raw_cas}
    if scenario == "if_not_exists":
        return {
            "kvstore": lambda i: check(kv.set("kv/" + work.fresh[i], work.value, if_not_exists=True).committed),
            "raw": lambda i: check(raw.put_if("raw/" + work.fresh[i], encoded, None) is not None),
        }
    if scenario == "list_100":
        return {
            "kvstore": lambda i: check(len(kv.list(work.prefixes[i], limit=100).entries) == 100),
            "raw": lambda i: check(len(raw.scan(work.prefixes[i])) == 100),
        }
    return {
        "kvstore": lambda i: check(None not in kv.get_many(work.groups[i])),
        "raw": lambda i: check(len(raw.get_many(work.groups[i])) == 100),
    }


def run_postgres(url: str, sizes: Sizes, seed: int, progress: Callable[[str], None]) -> Data:
    """Every scenario, kvstore against raw psycopg, in alternating rounds on one schema."""
    work = make_workload(sizes, seed)
    encoded = msgpack.packb(work.value)
    results: Data = {}
    with psycopg.connect(_libpq(url)) as conn:
        server = f"PostgreSQL {conn.info.server_version // 10000}.{conn.info.server_version % 10000}"
    with _schema(url) as target, KVStore(target) as kv:
        raw = _Raw(target)
        try:
            begin = time.perf_counter()
            for view in (kv, kv.namespace(NAMESPACE)):
                for start in range(0, len(work.keys), 1_000):
                    with view.atomic() as op:
                        for key in work.keys[start : start + 1_000]:
                            op.set(key, work.value)
            # Statistics, as autovacuum would gather soon after a bulk load: without them the planner
            # guesses, and both sides would be measured on a plan no running server keeps.
            raw.conn.execute("ANALYZE kvstore_entries")
            progress(f"    loaded 2 x {len(work.keys):,} entries into PostgreSQL ({time.perf_counter() - begin:.1f} s)")
            for ident, title, how in SCENARIOS:
                many = ident.endswith("_100")
                calls, warmup = (sizes.calls_100, sizes.warmup_100) if many else (sizes.calls, sizes.warmup)
                begin = time.perf_counter()
                samples, failed = measure_rounds(_ops(ident, kv, raw, work, encoded), warmup, calls, sizes.rounds)
                items = 100 if many else 1
                measured = {name: summarize(taken, items) for name, taken in samples.items()}
                ratio = None
                if "kvstore" in measured and "raw" in measured:
                    ratio = measured["kvstore"]["median_us"] / measured["raw"]["median_us"]
                results[ident] = {"title": title, "raw_runs": how, "results": measured, "failed": failed,
                                  "ratio": ratio}  # fmt: skip
                shown = " | ".join(f"{name} {fmt_us(r['median_us'])}" for name, r in measured.items())
                progress(f"    PostgreSQL {title}: {shown} ({time.perf_counter() - begin:.1f} s)")
        finally:
            raw.conn.close()
    return {"url": url, "server": server, "limit": LIMIT, "scenarios": results}


def postgres_targets(data: Data) -> list[tuple[str, str, float | None]]:
    """(id, target text, kvstore ÷ raw psycopg) for each PostgreSQL scenario that ran."""
    scenarios = data.get("postgres", {}).get("scenarios", {})
    return [
        (f"postgres_{ident}", f"PostgreSQL {result['title']} ≤ {LIMIT}x raw psycopg", result["ratio"])
        for ident, result in scenarios.items()
    ]


def postgres_section(data: Data) -> list[str]:
    """The Markdown section of the PostgreSQL runs (nothing if they did not run)."""
    pg = data.get("postgres")
    if not pg:
        note = data.get("postgres_skipped")
        return ["", "## PostgreSQL", "", f"Not measured: {note}"] if note else []
    lines = [
        "",
        "## PostgreSQL (issue 6)",
        "",
        f"kvstore on {pg['server']} (on this machine, over loopback) against raw psycopg running kvstore's own"
        " statements on the same schema and entries; medians of calls timed one by one. The target is"
        f" kvstore within {LIMIT}x of raw psycopg.",
        "",
        "| Scenario | kvstore | raw psycopg | p99 kvstore | p99 raw | Ratio | Result | Raw runs |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for result in pg["scenarios"].values():
        mine, theirs = result["results"].get("kvstore"), result["results"].get("raw")
        if mine is None or theirs is None:
            lines.append(f"| {result['title']} | — | — | — | — | — | FAILED: {result['failed']} | |")
            continue
        ratio = result["ratio"]
        verdict = "**PASS**" if ratio <= LIMIT else "**FAIL**"
        lines.append(
            f"| {result['title']} | {fmt_us(mine['median_us'])} | {fmt_us(theirs['median_us'])}"
            f" | {fmt_us(mine['p99_us'])} | {fmt_us(theirs['p99_us'])} | {ratio:.2f}x | {verdict}"
            f" | {result['raw_runs']} |"
        )
    return lines
