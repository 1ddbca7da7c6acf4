"""The concurrency part's figures judged against issue 15's targets, and its section of the report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Data = dict[str, Any]


def side_ratio(part: Data, group: str, mine: str, theirs: str) -> float | None:
    """Median ops/s of side ``mine`` over that of side ``theirs`` in ``group`` (None unless both ran)."""
    sides = part.get("groups", {}).get(group, {}).get("sides", {})
    a = sides.get(mine, {}).get("median_per_s")
    b = sides.get(theirs, {}).get("median_per_s")
    return None if a is None or not b else float(a / b)


def _scale(part: Data, name: str) -> Any:
    return part["scale"][name]


def _fairness(part: Data) -> float | None:
    fair = part.get("fairness")
    return None if not fair else float(fair["ratio"])


def _large_p99(part: Data) -> float | None:
    large = part.get("large_value")
    return None if not large else float(large["during"]["p99_ms"])


def _stall(part: Data) -> float | None:
    stall = part.get("loop_stall")
    return None if not stall else float(stall["worst_gap_ms"])


def _no_error(part: Data) -> bool:
    return bool(part.get("fairness")) and part["fairness"]["errors"] == 0


def _waited(part: Data) -> bool:
    return bool(part.get("loop_stall")) and part["loop_stall"]["writes_waited"]


Text = Callable[[Data], str]
Read = Callable[[Data], float | None]
Also = Callable[[Data], bool]  # a condition besides the limit (no error; the writes did wait for the lock)

# (id, what, unit, comparison, limit, how the value is read, what else must hold)
_FIGURES: list[tuple[str, Text, str, str, float, Read, Also | None]] = [
    ("aio_get_1_vs_sync", lambda p: "AsyncKVStore.get, 1 task ÷ sync KVStore.get (SQLite file)", "x sync", ">=",
     0.5, lambda p: side_ratio(p, "sqlite_get", "async_1", "sync"), None),
    ("aio_get_n_vs_sync", lambda p: f"AsyncKVStore.get, {_scale(p, 'tasks')} tasks ÷ sync get", "x sync", ">=", 0.8,
     lambda p: side_ratio(p, "sqlite_get", "async_n", "sync"), None),
    ("aio_set_n_vs_sync", lambda p: f"AsyncKVStore.set, {_scale(p, 'tasks')} tasks ÷ sync set", "x sync", ">=", 0.8,
     lambda p: side_ratio(p, "sqlite_set", "async_n", "sync"), None),
    ("full_set_n_vs_1", lambda p: f'synchronous="FULL" set, {_scale(p, "tasks")} AsyncKVStore tasks ÷ one caller',
     "x one caller", ">=", 5.0, lambda p: side_ratio(p, "sqlite_full", "async_n", "sync"), None),
    ("postgres_aio_get_n_vs_1", lambda p: f"PostgreSQL AsyncKVStore.get, {_scale(p, 'tasks')} tasks ÷ 1 task",
     "x 1 task", ">=", 3.0, lambda p: side_ratio(p, "postgres_get", "many", "one"), None),
    ("postgres_aio_set_n_vs_1", lambda p: f"PostgreSQL AsyncKVStore.set, {_scale(p, 'tasks')} tasks ÷ 1 task",
     "x 1 task", ">=", 5.0, lambda p: side_ratio(p, "postgres_set", "many", "one"), None),
    ("postgres_fairness", lambda p: f"PostgreSQL, {_scale(p, 'fair_threads')} threads on one KVStore doing"
     f" atomic().sum for {_scale(p, 'fair_s'):g} s, default pool: slowest thread ÷ mean, and no error"
     + ("" if not p.get("fairness") or _no_error(p) else f" ({p['fairness']['errors']:,} errors)"),
     "x mean", ">=", 0.5, _fairness, _no_error),
    ("large_value_p99", lambda p: f"a small get while a large value is read or written ({p['large_items']:,}-element"
     " list): p99 of small gets", "ms", "<=", 100.0, _large_p99, None),
    ("loop_stall", lambda p: "worst event-loop stall while another process holds the write lock"
     f" {_scale(p, 'hold_s'):g} s" + ("" if not p.get("loop_stall") or _waited(p) else
     " (the writes did not wait for the lock)"), "ms", "<=", 20.0, _stall, _waited),
    ("aio_get_1_vs_aiosqlite", lambda p: "AsyncKVStore.get ÷ aiosqlite running the same SELECT, 1 task",
     "x aiosqlite", ">", 1.0, lambda p: side_ratio(p, "sqlite_get", "async_1", "aiosqlite_1"), None),
    ("aio_get_n_vs_aiosqlite", lambda p: f"AsyncKVStore.get ÷ aiosqlite running the same SELECT,"
     f" {_scale(p, 'tasks')} tasks", "x aiosqlite", ">", 1.0,
     lambda p: side_ratio(p, "sqlite_get", "async_n", "aiosqlite_n"), None),
]  # fmt: skip


_NEEDS_POSTGRES = {"postgres_aio_get_n_vs_1", "postgres_aio_set_n_vs_1", "postgres_fairness"}
_NEEDS_AIOSQLITE = {"aio_get_1_vs_aiosqlite", "aio_get_n_vs_aiosqlite"}


def _left_out(part: Data, ident: str) -> bool:
    """Whether a figure with no value was left out on purpose (no PostgreSQL server, no aiosqlite installed)
    rather than lost to an error, which fails it."""
    if ident in _NEEDS_POSTGRES:
        return "postgres_skipped" in part
    if ident in _NEEDS_AIOSQLITE:
        return "note" in part["groups"].get("sqlite_get", {})
    return False


def passes(value: float, comparison: str, limit: float) -> bool:
    """Whether ``value`` meets ``limit`` under ``comparison`` (one of <, <=, >, >=)."""
    return {"<": value < limit, "<=": value <= limit, ">": value > limit, ">=": value >= limit}[comparison]


def concurrency_targets(data: Data) -> list[dict[str, Any]]:
    """Each figure of the part with its value and PASS / FAIL, as ``_report.evaluate_targets`` lists them."""
    part = data.get("concurrency")
    if not part:
        return []
    judged = []
    for ident, text, unit, comparison, limit, read, also in _FIGURES:
        value = read(part)
        if value is None:
            passed = None if _left_out(part, ident) else False
        else:
            passed = passes(value, comparison, limit) and (also is None or also(part))
        judged.append(
            {"id": ident, "target": text(part), "unit": unit, "comparison": comparison, "limit": limit,
             "value": value, "pass": passed}
        )  # fmt: skip
    return judged


def _measured(target: Data) -> str:
    value = target["value"]
    if value is None:
        return "not run" if target["pass"] is None else "failed (see the notes)"
    return f"{value:,.1f} ms" if target["unit"] == "ms" else f"{value:.2f}{target['unit']}"


def _limit(target: Data) -> str:
    sign = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}[target["comparison"]]
    return f"{sign} {target['limit']:g} ms" if target["unit"] == "ms" else f"{sign} {target['limit']:g}x"


def _verdict(passed: bool | None) -> str:
    return "not run" if passed is None else "**PASS**" if passed else "**FAIL**"


def _sides(part: Data) -> list[str]:
    lines = ["| Group | Side | Median ops/s | Each round (ops/s) |", "| --- | --- | ---: | --- |"]
    for group in part["groups"].values():
        first = True
        for side in group["sides"].values():
            rounds = ", ".join(f"{rate:,.0f}" for rate in side["rates"])
            lines.append(f"| {group['title'] if first else ''} | {side['label']} | {side['median_per_s']:,.0f} |"
                         f" {rounds} |")  # fmt: skip
            first = False
        lines += [f"| {group['title']} | {label} | — | {why} |" for label, why in group["failed"].items()]
    return lines


def _times(count: int) -> str:
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def _latencies(part: Data) -> list[str]:
    lines = []
    large = part.get("large_value")
    if large:
        alone, during = large["alone"], large["during"]
        lines += [
            "",
            f"**Small gets beside a large value.** One small get was started every {large['pace_ms']:g} ms (each"
            " timed from when it was due, so a get that could not start still counts its wait), first alone, then"
            f" while one task set and got a list of {large['items']:,} elements {_times(large['ops'])} (sets took"
            f" {', '.join(f'{s:.2f}' for s in large['set_s'])} s, gets {', '.join(f'{s:.2f}' for s in large['get_s'])}"
            " s).",
            "",
            "| Small gets | Count | p50 | p99 | max |",
            "| --- | ---: | ---: | ---: | ---: |",
            *[f"| {name} | {r['count']:,} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {r['max_ms']:.2f} ms |"
              for name, r in (("alone", alone), ("beside the large value", during))],
        ]  # fmt: skip
    stall = part.get("loop_stall")
    if stall:
        lines += [
            "",
            f"**The event loop while another process holds the write lock.** A second process took SQLite's write"
            f" lock (BEGIN IMMEDIATE) and held it {stall['hold_s']:g} s while {stall['writers']} tasks wrote; a"
            f" ticker sleeping {stall['tick_ms']:g} ms woke {stall['ticks']:,} times, the longest gap between"
            f" wake-ups {stall['worst_gap_ms']:.1f} ms. {stall['writes']:,} writes, the longest"
            f" {stall['longest_write_s']:.2f} s" + (" (they waited for the lock)." if stall["writes_waited"] else
            ": the writes did not wait for the lock, so the figure measured nothing."),
        ]  # fmt: skip
    fair = part.get("fairness")
    if fair:
        errors = f"{fair['errors']:,} errors" + (f": {'; '.join(fair['error_samples'])}" if fair["errors"] else "")
        lines += [
            "",
            f"**PostgreSQL, {fair['threads']} threads on one KVStore.** Each committed atomic().sum on one counter"
            f" for {fair['seconds']:.1f} s: {fair['total']:,} commits ({fair['per_s']:,.0f}/s); per thread"
            f" slowest {fair['slowest']:,}, mean {fair['mean']:,.0f}, fastest {fair['fastest']:,}; {errors}.",
        ]
    return lines


def _peer(part: Data) -> str:
    peer = part["groups"].get("sqlite_get", {}).get("peer")
    return f" The async peer: {peer}, running kvstore's own SELECT of a get and decoding the value." if peer else ""


def concurrency_section(data: Data) -> list[str]:
    """The Markdown section of the concurrency part (nothing if it did not run)."""
    part = data.get("concurrency")
    if not part:
        return []
    plan = part["scale"]["rounds"]
    lines = [
        "",
        "## Concurrency (issue 15)",
        "",
        f"Ops/s of each side in alternating rounds ({plan['rounds']} rounds of {plan['seconds']:g} s per side after"
        " a warm-up round, who goes first rotating); a ratio is the median ops/s of one side over the median of"
        f" the other. Every store holds {part['scale']['keys']:,} entries of the same ~120-byte value, one file"
        ' (or PostgreSQL namespace) per side; every side reads or writes the same random keys. "sync" is one'
        " thread calling a KVStore; N tasks share one AsyncKVStore (or one aiosqlite connection) on one event"
        f" loop.{_peer(part)}",
        "",
        "| Figure | Measured | Target | Result |",
        "| --- | ---: | ---: | --- |",
    ]
    for target in concurrency_targets(data):
        lines.append(f"| {target['target']} | {_measured(target)} | {_limit(target)} | {_verdict(target['pass'])} |")
    lines += ["", *_sides(part), *_latencies(part)]
    notes = [*part.get("notes", []), *[g["note"] for g in part["groups"].values() if "note" in g]]
    if "postgres_skipped" in part:
        notes.append(f"PostgreSQL figures not measured: {part['postgres_skipped']}")
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    return lines
