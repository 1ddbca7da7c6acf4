"""kvstore's benchmark suite: ``python benchmarks/run.py [--quick] [--out DIR]``.

Measures kvstore against raw sqlite3 (kvstore's own statements, schema and pragmas: the floor),
diskcache, sqlitedict and Redis (when one answers) in one run, then writes results.json, results.md
(every result with its ratios, and the targets of issue 4 with PASS / FAIL) and results.png to the
output directory. Progress goes to stderr, a line per scenario.

Each part runs in a fresh interpreter of its own (this script again, told which part by a state file), and
hands its results back as JSON: what one part leaves behind (memory, threads, caches, the collector's
generations) cannot slow the parts after it, so a full run measures each part as a run of that part alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _coldstart import run_cold_start
from _concurrency import LARGE_ITEMS, run_concurrency
from _concurrency import STEPS as CONCURRENCY_STEPS
from _concurrent import run_concurrent
from _config import Sizes, make_workload, sizes_for
from _http import run_http
from _machine import machine_info, redis_server_version
from _parts import Context, Part, Progress, in_subprocess, merge, run_part
from _peers import LABELS, NAMES, Peer, location, make_peer, unavailable
from _postgres import run_postgres
from _postgres import unavailable as postgres_unavailable
from _queue_part import STEPS as QUEUE_STEPS
from _queue_part import run_queue
from _report import evaluate_targets, render_markdown
from _report_parts import fmt_us
from _rss import run_rss
from _scale import run_purge, run_scale
from _scenarios import SCENARIOS, run_scenario

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REQUIRES = {"cold": "ops", "rss": "scale"}  # cold start opens the ops databases; RSS lists the big scale store
Data = dict[str, Any]


def _summary(results: dict[str, Any], skipped: dict[str, str]) -> str:
    parts = [f"{LABELS[name]} {fmt_us(r['primary_us'])}" for name, r in results.items()]
    parts += [f"{LABELS[name]} FAILED" for name, why in skipped.items() if why.startswith("FAILED")]
    return " | ".join(parts) or "no peer ran it"


def _run_ops(
    data: dict[str, Any], names: list[str], directory: Path, redis: str, prefix: str, sizes: Sizes, seed: int,
    progress: Progress,
) -> None:  # fmt: skip
    """The per-operation scenarios: every peer loaded with the same entries, then measured side by side."""
    directory.mkdir(parents=True, exist_ok=True)
    workload = make_workload(sizes, seed)
    peers: dict[str, Peer] = {}
    try:
        for name in names:
            begin = time.perf_counter()
            try:
                peer = make_peer(name, location(name, directory, redis), prefix)
                peer.load(workload.keys, workload.value)
            except Exception as exc:
                data["notes"].append(f"{LABELS[name]} could not be set up: {type(exc).__name__}: {exc}")
                continue
            peers[name] = peer
            progress(
                f"    loaded {len(workload.keys):,} entries into {LABELS[name]} ({time.perf_counter() - begin:.1f} s)"
            )
        for scenario in SCENARIOS:
            begin = time.perf_counter()
            result = run_scenario(scenario, peers, workload, sizes)
            data["scenarios"][scenario.id] = result
            progress.done(scenario.title, _summary(result["results"], result["skipped"]), time.perf_counter() - begin)
    finally:
        for peer in peers.values():
            peer.close()


def _part_ops(ctx: Context) -> Data:
    data: Data = {"scenarios": {}, "notes": []}
    redis, prefix = ctx.redis or "", ctx.prefix + "ops:"
    _run_ops(data, ctx.names, ctx.workdir / "ops", redis, prefix, ctx.sizes, ctx.args.seed, ctx.progress)
    return data


def _part_cold(ctx: Context) -> Data:
    begin = time.perf_counter()
    targets = {name: location(name, ctx.workdir / "ops", "") for name in ctx.names if name != "redis"}
    cold = run_cold_start(targets, make_workload(ctx.sizes, ctx.args.seed).keys[0], ctx.sizes.cold_runs)
    detail = " | ".join(f"{LABELS.get(n, n)} {r['in_process_ms']:.1f} ms" for n, r in cold["results"].items())
    ctx.progress.done("cold start (import + open + get)", detail, time.perf_counter() - begin)
    return {"cold_start": cold}


def _part_concurrent(ctx: Context) -> Data:
    begin = time.perf_counter()
    result = run_concurrent(ctx.names, ctx.workdir / "concurrent", ctx.redis or "", ctx.prefix + "writers:", ctx.sizes)
    detail = " | ".join(f"{LABELS[n]} {r['items_per_s']:,.0f} sets/s" for n, r in result["results"].items())
    ctx.progress.done(result["title"], detail, time.perf_counter() - begin)
    return {"scenarios": {"writers_4": result}}


def _part_scale(ctx: Context) -> Data:
    begin = time.perf_counter()
    scale, big_path = run_scale(ctx.workdir, ctx.sizes, ctx.args.seed, ctx.progress)
    ctx.progress.done(
        f"scale {ctx.sizes.scale_small:,} vs {ctx.sizes.scale_big:,} entries",
        f"get ratio {scale['get']['ratio']:.2f} | set ratio {scale['set']['ratio']:.2f}",
        time.perf_counter() - begin,
    )
    return {"scale": scale, "carry": {"big_path": big_path}}


def _part_rss(ctx: Context) -> Data:
    begin = time.perf_counter()
    rss = run_rss(ctx.carry["big_path"], ctx.sizes.scale_big, ctx.sizes.rss_page)
    ctx.progress.done(f"RSS listing {ctx.sizes.scale_big:,} entries", f"growth {rss['growth']:+.1%}",
                      time.perf_counter() - begin)  # fmt: skip
    return {"rss": rss}


def _part_postgres(ctx: Context) -> Data:
    begin = time.perf_counter()
    why = postgres_unavailable(ctx.args.postgres)
    if why is None:
        data: Data = {"postgres": run_postgres(ctx.args.postgres, ctx.sizes, ctx.args.seed, ctx.progress)}
        ratios = data["postgres"]["scenarios"].values()
        detail = " | ".join(f"{r['title']} {r['ratio']:.2f}x" for r in ratios if r["ratio"] is not None)
    else:
        data = {"postgres_skipped": why}
        detail = why
    ctx.progress.done("PostgreSQL: kvstore ÷ raw psycopg", detail, time.perf_counter() - begin)
    return data


def _part_purge(ctx: Context) -> Data:
    begin = time.perf_counter()
    purge = run_purge(ctx.workdir, ctx.sizes, ctx.args.seed, ctx.progress)
    ctx.progress.done(
        f"purge_expired of {ctx.sizes.purge_rows:,} rows",
        f"{purge['seconds']:.2f} s; reader p99 {fmt_us(purge['reader_during']['p99_us'])}",
        time.perf_counter() - begin,
    )
    return {"purge": purge}


def _part_concurrency(ctx: Context) -> Data:
    result = run_concurrency(
        ctx.workdir / "concurrency", ctx.args.postgres, quick=ctx.args.quick, large_items=ctx.args.large_items,
        seed=ctx.args.seed, progress=ctx.progress,
    )  # fmt: skip
    return {"concurrency": result}


def _part_http(ctx: Context) -> Data:
    begin = time.perf_counter()
    result = run_http(ctx.workdir / "http", ctx.args.quick, ctx.args.http_workers, ctx.progress, ctx.args.large_items)
    detail = " | ".join(f"{r['method']} x{r['connections']} {r['ratio']:.2f}x" for r in result["runs"].values())
    ctx.progress.done("HTTP: kvstore serve ÷ a trivial FastAPI app (issue 15)", detail, time.perf_counter() - begin)
    return {"http": result}


def _part_queue(ctx: Context) -> Data:
    return {"queue": run_queue(ctx.workdir / "queue", quick=ctx.args.quick, progress=ctx.progress)}


# Every part, in the order a run runs them, each in a process of its own (see _parts).
PARTS: dict[str, Part] = {
    "ops": _part_ops,
    "cold": _part_cold,
    "concurrent": _part_concurrent,
    "scale": _part_scale,
    "rss": _part_rss,
    "postgres": _part_postgres,
    "purge": _part_purge,
    "concurrency": _part_concurrency,
    "http": _part_http,
    "queue": _part_queue,
}
# Progress steps of a part; any other: 1.
STEPS = {"ops": len(SCENARIOS), "concurrency": CONCURRENCY_STEPS, "queue": QUEUE_STEPS}


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = sizes_for(args.quick, calls=args.calls, scale_big=args.scale_keys)
    parts = [part for part in PARTS if part not in args.skip and REQUIRES.get(part) not in args.skip]
    progress = Progress(sum(STEPS.get(part, 1) for part in parts))
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="kvstore-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    redis = None if args.no_redis else args.redis
    prefix = f"kvstore-bench:{uuid.uuid4().hex[:12]}:"
    data: dict[str, Any] = {
        "schema": 1,
        "mode": "quick" if args.quick else "full",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": args.seed,
        "sizes": dataclasses.asdict(sizes),
        "machine": {**machine_info(workdir), "workdir_is_temporary": args.workdir is None},
        "peers": {},
        "scenarios": {},
        "notes": [],
    }
    names = []
    for name in NAMES:
        why = unavailable(name, redis)
        version = data["machine"]["packages"].get(name) if name != "raw" else data["machine"]["sqlite"]
        if name == "redis" and why is None and redis is not None:
            version = f"{version} (server {redis_server_version(redis)})"
        data["peers"][name] = {"available": why is None, "version": version, "note": why}
        if why is None:
            names.append(name)
        else:
            progress(f"skipping {LABELS[name]}: {why}")
    progress(f"{data['mode']} run; databases in {workdir}")
    ctx = Context(args, sizes, workdir, names, redis, prefix, progress, carry={})
    data["failed_parts"] = []
    data["processes"] = {}  # part -> the process that ran it (its pid) and how long it took
    try:
        with tempfile.TemporaryDirectory(prefix="kvstore-bench-parts-") as scratch:
            for part in parts:
                if REQUIRES.get(part) in data["failed_parts"]:
                    progress.step += STEPS.get(part, 1)  # its steps are counted as over
                    data["notes"].append(f"the {part} part did not run: the {REQUIRES[part]} part failed")
                    continue
                fragment = in_subprocess(Path(__file__).resolve(), part, STEPS.get(part, 1), ctx, Path(scratch))
                if fragment is None:
                    data["failed_parts"].append(part)
                    data["notes"].append(f"the {part} part failed: its error is in the run's stderr")
                else:
                    merge(data, part, fragment, ctx.carry)
    finally:
        if redis is not None and "redis" in names:
            from _peers_other import delete_redis_keys

            delete_redis_keys(redis, prefix)
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    data["duration_s"] = time.time() - progress.begin
    loads = [load for load in progress.loads if load is not None]
    data["machine"]["load_average"] = {"min": min(loads), "max": max(loads)} if loads else None
    data["targets"] = evaluate_targets(data)
    return data


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts (seconds, for CI); not for quoting")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "results", help="where results go"
    )
    parser.add_argument("--workdir", help="where the databases go (default: a temporary directory, removed after)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary databases")
    parser.add_argument("--redis", default="127.0.0.1:6379", help="host:port of the Redis to compare with")
    parser.add_argument("--no-redis", action="store_true", help="leave Redis out")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("KVSTORE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help="the PostgreSQL server of the postgres and concurrency parts (each makes a schema there, dropped after)",
    )
    parser.add_argument("--calls", type=int, help="measured calls per single-key scenario (default 20,000)")
    parser.add_argument("--scale-keys", type=int, help="entries in the big scale and purge stores (default 1,000,000)")
    parser.add_argument("--skip", default="", help=f"comma-separated parts to leave out: {', '.join(PARTS)}")
    parser.add_argument("--only", default="", help="comma-separated parts to run (and those they need), no other")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--large-items",
        type=int,
        help=f"elements of the large list value that small gets run beside (concurrency part: default"
        f" {LARGE_ITEMS['full']:,}, quick: {LARGE_ITEMS['quick']:,}; the http part takes it too)",
    )
    parser.add_argument(
        "--http-workers", type=int, default=1, help="uvicorn workers of both servers of the http part (default 1)"
    )
    parser.add_argument("--part-state", help=argparse.SUPPRESS)  # set by the run for each part's process
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # a part's process gets the same options
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    only = {part.strip() for part in args.only.split(",") if part.strip()}
    if (args.skip | only) - set(PARTS):
        parser.error(f"unknown parts: {', '.join(sorted((args.skip | only) - set(PARTS)))}")
    if only:
        args.skip |= set(PARTS) - only - {REQUIRES[part] for part in only if part in REQUIRES}
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.part_state is not None:
        return run_part(args, PARTS)
    data = run(args)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "results.md").write_text(render_markdown(data))
    from _chart import write_chart

    write_chart(data, out / "results.png")
    judged = [t for t in data["targets"] if t["pass"] is not None]
    passed = sum(1 for t in judged if t["pass"])
    print(
        f"targets: {passed} of {len(judged)} pass; wrote {out / 'results.json'}, results.md, results.png",
        file=sys.stderr,
    )
    return 1 if data["failed_parts"] else 0


if __name__ == "__main__":
    sys.exit(main())
