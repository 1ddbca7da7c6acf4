"""The issue's targets, judged on a run's results, and the Markdown report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from _http import http_section, http_targets
from _peers import LABELS, NAMES
from _postgres import LIMIT as POSTGRES_LIMIT
from _postgres import postgres_section, postgres_targets
from _report_concurrency import concurrency_section, concurrency_targets
from _report_parts import extra_sections, fmt_us, header
from _report_queue import queue_section, queue_targets

Data = dict[str, Any]


def _primary(data: Data, scenario: str, peer: str) -> float | None:
    result = data.get("scenarios", {}).get(scenario, {}).get("results", {}).get(peer)
    return None if result is None else float(result["primary_us"])


def _ratio(data: Data, scenario: str, peer: str, base: str) -> float | None:
    mine, theirs = _primary(data, scenario, peer), _primary(data, scenario, base)
    return None if mine is None or theirs is None else mine / theirs


def _cold_ratio(data: Data) -> float | None:
    results = data.get("cold_start", {}).get("results", {})
    if "kvstore" not in results or "diskcache" not in results:
        return None
    return float(results["kvstore"]["in_process_ms"] / results["diskcache"]["in_process_ms"])


def _batch_share(data: Data) -> float | None:
    ratio = _ratio(data, "batch_1000", "kvstore", "raw")
    return None if ratio is None else 1 / ratio


def _purge_p99_ms(data: Data) -> float | None:
    purge = data.get("purge")
    if not purge:
        return None
    if purge["expired_after"] != 0 or purge["purged"] != purge["rows"]:
        return float("inf")  # a purge that left expired rows behind fails whatever the latency
    return float(purge["reader_during"]["p99_us"]) / 1_000


def _get(path: tuple[str, ...]) -> Callable[[Data], float | None]:
    def read(data: Data) -> float | None:
        node: Any = data
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return float(node)

    return read


# (id, what, measured as, comparison, limit, how the value is read)
_TARGETS: list[tuple[str, str, str, str, float, Callable[[Data], float | None]]] = [
    ("get_vs_raw", "get (hit) ≤ 1.5x raw select + msgpack decode", "x raw", "<=", 1.5,
     lambda d: _ratio(d, "get_hit", "kvstore", "raw")),
    ("get_vs_diskcache", "get (hit) faster than diskcache.get", "x diskcache", "<", 1.0,
     lambda d: _ratio(d, "get_hit", "kvstore", "diskcache")),
    ("set_vs_raw", "set ≤ 2x raw single upsert", "x raw", "<=", 2.0, lambda d: _ratio(d, "set", "kvstore", "raw")),
    ("set_vs_diskcache", "set at least 2x faster than diskcache.set", "x diskcache", "<=", 0.5,
     lambda d: _ratio(d, "set", "kvstore", "diskcache")),
    ("cas_vs_raw", "compare-and-set ≤ 1.5x raw read-compare-write", "x raw", "<=", 1.5,
     lambda d: _ratio(d, "cas", "kvstore", "raw")),
    ("if_not_exists_vs_raw", "if-not-exists ≤ 1.5x raw read-compare-write", "x raw", "<=", 1.5,
     lambda d: _ratio(d, "if_not_exists", "kvstore", "raw")),
    ("batch_vs_raw", "batch of 1,000 ≥ 50% of raw executemany throughput", "of raw throughput", ">=", 0.5,
     _batch_share),
    ("cold_start", "cold start ≤ 2x diskcache (import + open + get, in process)", "x diskcache", "<=", 2.0,
     _cold_ratio),
    ("scale_get", "get median, big store ÷ small store ≤ 1.5", "ratio", "<=", 1.5, _get(("scale", "get", "ratio"))),
    ("scale_set", "set median, big store ÷ small store ≤ 1.5", "ratio", "<=", 1.5, _get(("scale", "set", "ratio"))),
    ("purge_p99", "reader p99 get < 5 ms during purge_expired (all expired rows gone)", "ms", "<", 5.0,
     _purge_p99_ms),
    ("rss_flat", "RSS flat within 10% while listing every entry", "growth", "<=", 0.10, _get(("rss", "growth"))),
]  # fmt: skip


def evaluate_targets(data: Data) -> list[dict[str, Any]]:
    """Each target with its measured value and PASS / FAIL (None when its part did not run)."""
    judged = []
    for ident, text, unit, comparison, limit, read in _TARGETS:
        value = read(data)
        passed = None
        if value is not None:
            passed = value < limit if comparison == "<" else value <= limit if comparison == "<=" else value >= limit
        judged.append(
            {"id": ident, "target": text, "unit": unit, "comparison": comparison, "limit": limit, "value": value,
             "pass": passed}
        )  # fmt: skip
    for ident, text, ratio in postgres_targets(data):
        judged.append(
            {"id": ident, "target": text, "unit": "x raw psycopg", "comparison": "<=", "limit": POSTGRES_LIMIT,
             "value": ratio, "pass": None if ratio is None else ratio <= POSTGRES_LIMIT}
        )  # fmt: skip
    judged += http_targets(data)
    judged += concurrency_targets(data)
    judged += queue_targets(data)
    return judged


def _fmt_rate(per_s: float) -> str:
    return f"{per_s:,.0f}/s"


def _fmt_ratio(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}x"


def _fmt_value(target: dict[str, Any]) -> str:
    value = target["value"]
    if value is None:
        return "not run"
    if value == float("inf"):
        return "expired rows left"
    if target["unit"] == "growth":
        return f"{value:+.1%}"
    if target["unit"] == "of raw throughput":
        return f"{value:.0%} of raw"
    if target["unit"] == "ms":
        return f"{value:.2f} ms"
    return f"{value:.2f}{target['unit'].removeprefix('ratio')}"


def _fmt_limit(target: dict[str, Any]) -> str:
    limit, comparison = target["limit"], target["comparison"].replace("<=", "≤").replace(">=", "≥")
    if target["unit"] == "growth":
        return f"{comparison} {limit:.0%}"
    if target["unit"] == "of raw throughput":
        return f"{comparison} {limit:.0%}"
    if target["unit"] == "ms":
        return f"{comparison} {limit:g} ms"
    return f"{comparison} {limit:g}x"


def _verdict(passed: bool | None) -> str:
    return "not run" if passed is None else "**PASS**" if passed else "**FAIL**"


def ops_table(data: Data) -> list[str]:
    lines = [
        "| Scenario | Peer | Median per call | p99 per call | Throughput | x raw sqlite3 | x diskcache |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    notes: list[str] = []
    for ident, scenario in data.get("scenarios", {}).items():
        results = scenario["results"]
        first = True
        for peer in NAMES:
            if peer not in results:
                continue
            r = results[peer]
            title = f"{scenario['title']}" if first else ""
            first = False
            lines.append(
                f"| {title} | {LABELS[peer]} | {fmt_us(r['median_us'])} | {fmt_us(r['p99_us'])}"
                f" | {_fmt_rate(r['items_per_s'])} | {_fmt_ratio(_ratio(data, ident, peer, 'raw'))}"
                f" | {_fmt_ratio(_ratio(data, ident, peer, 'diskcache'))} |"
            )
        reasons: dict[str, list[str]] = {}
        for peer, why in scenario.get("skipped", {}).items():
            reasons.setdefault(why, []).append(LABELS[peer])
        notes += [f"- {scenario['title']}, {', '.join(peers)}: {why}" for why, peers in reasons.items()]
    if notes:
        lines += ["", "Not measured (no equivalent in that library, or the call failed):", "", *notes]
    return lines


def scenarios_list(data: Data) -> list[str]:
    return [f"- **{s['title']}**: {s['how']}." for s in data.get("scenarios", {}).values()]


def targets_table(data: Data) -> list[str]:
    lines = ["| Target | Measured | Limit | Result |", "| --- | ---: | ---: | --- |"]
    for target in data.get("targets", []):
        lines.append(
            f"| {target['target']} | {_fmt_value(target)} | {_fmt_limit(target)} | {_verdict(target['pass'])} |"
        )
    return lines


def render_markdown(data: Data) -> str:
    """The whole report: machine, per-operation table, targets, cold start, scale, purge and memory."""
    lines = header(data)
    lines += ["", "## Per-operation results", ""]
    lines += [
        "Median and p99 of each call, timed one by one with `time.perf_counter_ns`; throughput is items per"
        " second at the median (entries for list / get_many, sets for the batch; for 4 processes writing,"
        " all sets over the wall time). x raw sqlite3 and x diskcache divide the peer's time by theirs on"
        " the same scenario: below 1.00x is faster.",
        "",
        *ops_table(data),
        "",
        "What one call of each scenario does (every peer stores the same ~120-byte value):",
        "",
        *scenarios_list(data),
        "",
        "## Targets (issue 4)",
        "",
        *targets_table(data),
    ]
    lines += extra_sections(data)
    lines += postgres_section(data)
    lines += http_section(data)
    lines += concurrency_section(data)
    lines += queue_section(data)
    return "\n".join(lines) + "\n"
