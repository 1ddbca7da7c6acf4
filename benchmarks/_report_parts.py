"""Sections of the Markdown report besides the two main tables: header, cold start, scale, purge, memory."""

from __future__ import annotations

from typing import Any

from _peers import LABELS

Data = dict[str, Any]


def fmt_us(us: float) -> str:
    """A duration given in microseconds, with three significant digits and a fitting unit."""
    for scale, unit in ((1e6, "s"), (1e3, "ms"), (1.0, "µs")):
        if us >= scale or unit == "µs":
            value = us / scale
            return f"{value:.3g} {unit}" if value < 1000 else f"{value:,.0f} {unit}"
    raise AssertionError


def _load(value: dict[str, float] | None) -> str:
    return "unknown" if value is None else f"{value['min']:.1f} to {value['max']:.1f}"


def header(data: Data) -> list[str]:
    m = data["machine"]
    sizes = data["sizes"]
    mode = "quick (--quick: small counts, for CI; not for quoting)" if data["mode"] == "quick" else "full"
    peers = data["peers"]
    available = ", ".join(
        f"{LABELS[name]} {info['version'] or ''}".strip() for name, info in peers.items() if info["available"]
    )
    missing = [f"{LABELS[name]}: {info['note']}" for name, info in peers.items() if not info["available"]]
    memory = f", {m['memory_gib']:.0f} GiB RAM" if m.get("memory_gib") else ""
    lines = [
        f"# kvstore benchmark: {mode} run",
        "",
        f"Run {data['started']} in {data['duration_s']:.0f} s, every peer on the same machine in the same run.",
        "",
        f"- **Machine:** {m['cpu']}, {m['cores']} cores ({m['cores_usable']} usable){memory}; {m['os']}",
        f"- **Software:** {m['python']}, SQLite {m['sqlite']}; peers: {available}",
        f"- **kvstore measured:** commit {m.get('kvstore_commit') or 'unknown'}",
        f"- **Databases in:** {_where(m)}",
        f"- **Load average (1 min, after each step):** {_load(m.get('load_average'))} on {m['cores']} cores (the"
        " run keeps about one core busy; more means other work shared the machine: absolute times suffer,"
        " ratios less, since peers alternate in rounds)",
        f"- **Counts:** {sizes['keys']:,} entries loaded per peer; {sizes['calls']:,} measured calls per"
        f" single-key scenario ({sizes['warmup']:,} warm-up), {sizes['calls_100']:,} per 100-key scenario,"
        f" {sizes['batches']:,} batches of 1,000; {sizes['rounds']} alternating rounds per scenario",
    ]
    lines += [f"- **Not run:** {note}" for note in missing]
    return lines


def _cold_start(data: Data) -> list[str]:
    cold = data.get("cold_start")
    if not cold:
        return []
    results = cold["results"]
    diskcache = results.get("diskcache")
    lines = [
        "",
        "## Cold start",
        "",
        f"A new process running `import kvstore; KVStore(path).get(key)` on an existing database, and each"
        f" peer's equivalent; median of {cold['runs']} runs each. *In process* is from before the import to"
        " after the get (the target's basis); *whole process* adds interpreter start-up and exit, which"
        " `python -c pass` shows alone.",
        "",
        "| Peer | In process | Whole process | In process x diskcache |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in ("python", "raw", "kvstore", "diskcache", "sqlitedict"):
        r = results.get(name)
        if r is None:
            continue
        label = "python -c pass" if name == "python" else LABELS[name]
        ratio = (
            "—" if diskcache is None or name == "python" else f"{r['in_process_ms'] / diskcache['in_process_ms']:.2f}x"
        )
        lines.append(f"| {label} | {r['in_process_ms']:.1f} ms | {r['process_ms']:.1f} ms | {ratio} |")
    lines += [f"- {LABELS.get(name, name)}: {why}" for name, why in cold.get("skipped", {}).items()]
    return lines


def _scale(data: Data) -> list[str]:
    scale = data.get("scale")
    if not scale:
        return []
    small, big = scale["small_entries"], scale["big_entries"]
    lines = [
        "",
        "## Scale",
        "",
        f"kvstore get and set (overwrite) of random keys, {scale['calls']:,} calls each, in a store of"
        f" {small:,} and one of {big:,} entries (built with atomic() batches at"
        f" {scale['build_entries_per_s']['big']:,.0f} entries/s).",
        "",
        f"| Operation | {small:,} entries | {big:,} entries | Ratio | p99 at {small:,} | p99 at {big:,} |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in ("get", "set"):
        r = scale[name]
        lines.append(
            f"| {name} | {fmt_us(r['small_median_us'])} | {fmt_us(r['big_median_us'])} | {r['ratio']:.2f} |"
            f" {fmt_us(r['small_p99_us'])} | {fmt_us(r['big_p99_us'])} |"
        )
    return lines


def _purge(data: Data) -> list[str]:
    purge = data.get("purge")
    if not purge:
        return []
    idle, during = purge["reader_idle"], purge["reader_during"]
    return [
        "",
        "## purge_expired",
        "",
        f"{purge['rows']:,} expired entries (the store's clock moved past their TTL),"
        f" {purge['purged']:,} purged in {purge['seconds']:.2f} s ({purge['rows_per_s']:,.0f} rows/s, in kvstore's"
        f" bounded batches); {purge['expired_after']:,} expired rows left. A reader thread on the same store"
        " object timed gets of live keys, first alone, then while the purge ran:",
        "",
        "| Reader | Gets | p50 | p99 | max |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| alone | {idle['gets']:,} | {fmt_us(idle['p50_us'])} | {fmt_us(idle['p99_us'])}"
        f" | {fmt_us(idle['max_us'])} |",
        f"| during the purge | {during['gets']:,} | {fmt_us(during['p50_us'])} | {fmt_us(during['p99_us'])}"
        f" | {fmt_us(during['max_us'])} |",
    ]


def _rss(data: Data) -> list[str]:
    rss = data.get("rss")
    if not rss:
        return []
    return [
        "",
        "## Memory while listing",
        "",
        f"A fresh process listed all {rss['entries']:,} entries of the big store, {rss['page_size']:,} per page"
        f" (limit + cursor), sampling its RSS after each of {rss['pages']:,} pages. RSS after opening"
        f" {rss['opened_mib']:.1f} MiB, after the first page {rss['first_page_mib']:.1f} MiB; baseline (after"
        f" {rss['baseline_after']:,} entries) {rss['baseline_mib']:.1f} MiB, peak afterwards {rss['peak_mib']:.1f} MiB,"
        f" at the end {rss['final_mib']:.1f} MiB: growth {rss['growth']:+.1%}.",
        "",
        f"The listing took {rss['list_s']:.1f} s ({rss['entries'] / rss['list_s']:,.0f} entries/s); a page took"
        f" {rss['first_pages_ms']:.1f} ms (median) among the first pages and {rss['last_pages_ms']:.1f} ms among"
        " the last. Pages that slow down as the cursor advances mean the listing as a whole is quadratic.",
    ]


def extra_sections(data: Data) -> list[str]:
    lines = _cold_start(data) + _scale(data) + _purge(data) + _rss(data)
    notes = data.get("notes", [])
    if notes:
        lines += ["", "## Notes", "", *[f"- {note}" for note in notes]]
    return lines


def _where(m: dict[str, Any]) -> str:
    """Where the databases were, without this machine's paths (the report is meant to be quoted)."""
    kind = "a temporary directory" if m.get("workdir_is_temporary", True) else "the --workdir directory"
    filesystem = m.get("workdir_filesystem")
    # _machine reports "TYPE (DEVICE on MOUNT POINT)": keep the type only.
    return f"{kind} on {filesystem.split(' (')[0]}" if filesystem else f"{kind} (filesystem unknown)"
