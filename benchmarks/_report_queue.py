"""The queue part's figures judged against issue 16's targets, and its section of the report."""

from __future__ import annotations

from typing import Any

Data = dict[str, Any]

# (id, what, figure, peer, at least this many times the peer's rate)
_RATIOS: list[tuple[str, str, str, str, float]] = [
    ("queue_enqueue_vs_persistqueue", "enqueue ÷ persist-queue", "enqueue", "persistqueue", 1.0),
    ("queue_enqueue_vs_raw", "enqueue ÷ raw sqlite3 (insert)", "enqueue", "raw", 0.7),
    ("queue_drain_vs_persistqueue", "receive + ack, 1 consumer ÷ persist-queue", "drain_1", "persistqueue", 2.0),
    ("queue_drain_vs_raw", "receive + ack, 1 consumer ÷ raw sqlite3 (claim, then delete)", "drain_1", "raw", 0.5),
    ("queue_enqueue_vs_deno", "enqueue ÷ Deno KV", "enqueue", "deno", 1.0),
    ("queue_drain_vs_deno", "receive + ack, 1 consumer ÷ Deno KV", "drain_1", "deno", 1.0),
]
P99_LIMIT_MS = 5.0


def ratio(part: Data, figure: str, peer: str) -> float | None:
    """kvstore's median rate of ``figure`` over ``peer``'s (None unless both ran)."""
    medians = part.get("median", {})
    mine = medians.get("kvstore", {}).get(figure)
    theirs = medians.get(peer, {}).get(figure)
    return None if mine is None or not theirs else float(mine / theirs)


def _left_out(part: Data, peer: str) -> bool:
    """A peer that was not installed is left out on purpose (not run); one that failed fails its targets."""
    return not part.get("peers", {}).get(peer, {}).get("available", False)


def queue_targets(data: Data) -> list[dict[str, Any]]:
    """Each target of the part with its value and PASS / FAIL, as ``_report.evaluate_targets`` lists them."""
    part = data.get("queue")
    if not part:
        return []
    judged = []
    for ident, text, figure, peer, limit in _RATIOS:
        value = ratio(part, figure, peer)
        passed = (None if _left_out(part, peer) else False) if value is None else value >= limit
        judged.append({"id": ident, "target": f"queue: {text}", "unit": "x", "comparison": ">=", "limit": limit,
                       "value": value, "pass": passed})  # fmt: skip
    rate = part["scale"]["rate"]
    p99 = part.get("latency", {}).get("kvstore", {}).get("p99_ms")
    judged.append({"id": "queue_p99_delay", "target": f"queue: p99 enqueue-to-handler delay at {rate:g}/s, one"
                   " process", "unit": "ms", "comparison": "<=", "limit": P99_LIMIT_MS, "value": p99,
                   "pass": False if p99 is None else p99 <= P99_LIMIT_MS})  # fmt: skip
    return judged


def _measured(target: Data) -> str:
    value = target["value"]
    if value is None:
        return "not run" if target["pass"] is None else "failed (see the notes)"
    return f"{value:.2f} ms" if target["unit"] == "ms" else f"{value:.2f}x"


def _verdict(passed: bool | None) -> str:
    return "not run" if passed is None else "**PASS**" if passed else "**FAIL**"


def queue_section(data: Data) -> list[str]:
    """The Markdown section of the queue part (nothing if it did not run)."""
    part = data.get("queue")
    if not part:
        return []
    scale = part["scale"]
    lines = [
        "",
        "## Queues (issue 16)",
        "",
        f"{scale['messages']:,} messages per round, {scale['rounds']} rounds alternating between the queues (who"
        " goes first rotating); each figure is the median over the rounds. Enqueue: one committed call at a time."
        " Receive + ack: the messages ready, then one consumer (or"
        f" {part['consumers']} threads in one process sharing the queue) receives and acknowledges each. Latency:"
        f" {scale['latency_messages']:,} messages enqueued at a steady {scale['rate']:g}/s, each timed from just"
        " before its enqueue to its handler in the same process (persist-queue, raw sqlite3 and kvstore wake on"
        " an enqueue; litequeue and huey are polled every millisecond). Deno KV times inside Deno; it has one"
        " listener per database, so no 4-consumer figure. Each library runs with its defaults: persist-queue and"
        " huey set no synchronous pragma, so SQLite's default FULL applies (a sync per commit), while kvstore,"
        " litequeue and raw sqlite3 run synchronous=NORMAL in WAL mode.",
        "",
        "| Target | Measured | Limit | Result |",
        "| --- | ---: | ---: | --- |",
    ]
    for target in queue_targets(data):
        sign = "≥" if target["comparison"] == ">=" else "≤"
        limit = f"{sign} {target['limit']:g}" + (" ms" if target["unit"] == "ms" else "x")
        lines.append(f"| {target['target']} | {_measured(target)} | {limit} | {_verdict(target['pass'])} |")
    lines += ["", "| Queue | Enqueue/s | Receive + ack/s, 1 consumer | 4 consumers | p50 | p99 | max |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for name, peer in part["peers"].items():
        if name in part.get("failed", {}) or not peer["available"]:
            continue
        rates, delay = part.get("median", {}).get(name, {}), part.get("latency", {}).get(name, {})
        cells = [f"{rates[f]:,.0f}" if f in rates else "—" for f in ("enqueue", "drain_1", "drain_4")]
        cells += [f"{delay[k]:.2f} ms" if k in delay else "—" for k in ("p50_ms", "p99_ms", "max_ms")]
        lines.append(f"| {peer['label']} | {' | '.join(cells)} |")
    notes = [*part.get("notes", []), *[f"{part['peers'][n]['label']}: {why}" for n, why in part["failed"].items()]]
    notes += [f"{p['label']} not measured: {p['note']}" for p in part["peers"].values() if not p["available"]]
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    return lines
