"""kvstore's benchmark suite: ``python benchmarks/run.py [--quick] [--out DIR]``.

Measures kvstore against raw sqlite3 (kvstore's own statements, schema and pragmas: the floor),
diskcache, sqlitedict and Redis (when one answers) in one run, then writes results.json, results.md
(every result with its ratios, and the targets of issue 4 with PASS / FAIL) and results.png to the
output directory. Progress goes to stderr, a line per scenario.
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
from _concurrent import run_concurrent
from _config import Sizes, make_workload, sizes_for
from _machine import load_average, machine_info, redis_server_version
from _peers import LABELS, NAMES, Peer, location, make_peer, unavailable
from _postgres import run_postgres
from _postgres import unavailable as postgres_unavailable
from _report import evaluate_targets, render_markdown
from _report_parts import fmt_us
from _rss import run_rss
from _scale import run_purge, run_scale
from _scenarios import SCENARIOS, run_scenario

PARTS = ("ops", "concurrent", "cold", "scale", "purge", "rss", "postgres")
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REQUIRES = {"cold": "ops", "rss": "scale"}  # cold start opens the ops databases; RSS lists the big scale store


class Progress:
    """One line per step on stderr, with the step number and the time since the run began."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.step = 0
        self.begin = time.perf_counter()
        self.loads = [load_average()]  # sampled after each step: shows whether other work shared the machine

    def __call__(self, line: str) -> None:
        print(f"[{time.perf_counter() - self.begin:6.1f} s] {line}", file=sys.stderr, flush=True)

    def done(self, title: str, detail: str, took: float) -> None:
        self.step += 1
        self.loads.append(load_average())
        self(f"({self.step}/{self.steps}) {title}: {detail} ({took:.1f} s)")


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


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = sizes_for(args.quick, calls=args.calls, scale_big=args.scale_keys)
    parts = [part for part in PARTS if part not in args.skip and REQUIRES.get(part) not in args.skip]
    steps = (len(SCENARIOS) if "ops" in parts else 0) + len([p for p in parts if p != "ops"])
    progress = Progress(steps)
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
    try:
        if "ops" in parts:
            _run_ops(data, names, workdir / "ops", redis or "", prefix + "ops:", sizes, args.seed, progress)
        if "cold" in parts:
            begin = time.perf_counter()
            targets = {name: location(name, workdir / "ops", "") for name in names if name != "redis"}
            cold = run_cold_start(targets, make_workload(sizes, args.seed).keys[0], sizes.cold_runs)
            data["cold_start"] = cold
            detail = " | ".join(f"{LABELS.get(n, n)} {r['in_process_ms']:.1f} ms" for n, r in cold["results"].items())
            progress.done("cold start (import + open + get)", detail, time.perf_counter() - begin)
        if "concurrent" in parts:
            begin = time.perf_counter()
            result = run_concurrent(names, workdir / "concurrent", redis or "", prefix + "writers:", sizes)
            data["scenarios"]["writers_4"] = result
            detail = " | ".join(f"{LABELS[n]} {r['items_per_s']:,.0f} sets/s" for n, r in result["results"].items())
            progress.done(result["title"], detail, time.perf_counter() - begin)
        if "scale" in parts:
            begin = time.perf_counter()
            scale, big_path = run_scale(workdir, sizes, args.seed, progress)
            data["scale"] = scale
            progress.done(
                f"scale {sizes.scale_small:,} vs {sizes.scale_big:,} entries",
                f"get ratio {scale['get']['ratio']:.2f} | set ratio {scale['set']['ratio']:.2f}",
                time.perf_counter() - begin,
            )
            if "rss" in parts:
                begin = time.perf_counter()
                data["rss"] = run_rss(big_path, sizes.scale_big, sizes.rss_page)
                progress.done(
                    f"RSS listing {sizes.scale_big:,} entries",
                    f"growth {data['rss']['growth']:+.1%}",
                    time.perf_counter() - begin,
                )
        if "postgres" in parts:
            begin = time.perf_counter()
            why = postgres_unavailable(args.postgres)
            if why is None:
                data["postgres"] = run_postgres(args.postgres, sizes, args.seed, progress)
                ratios = data["postgres"]["scenarios"].values()
                detail = " | ".join(f"{r['title']} {r['ratio']:.2f}x" for r in ratios if r["ratio"] is not None)
            else:
                data["postgres_skipped"] = detail = why
            progress.done("PostgreSQL: kvstore ÷ raw psycopg", detail, time.perf_counter() - begin)
        if "purge" in parts:
            begin = time.perf_counter()
            purge = run_purge(workdir, sizes, args.seed, progress)
            data["purge"] = purge
            progress.done(
                f"purge_expired of {sizes.purge_rows:,} rows",
                f"{purge['seconds']:.2f} s; reader p99 {fmt_us(purge['reader_during']['p99_us'])}",
                time.perf_counter() - begin,
            )
    finally:
        if redis is not None and "redis" in names:
            from _peers_other import delete_redis_keys

            delete_redis_keys(redis, prefix)
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    data["duration_s"] = time.perf_counter() - progress.begin
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
        help="the PostgreSQL server of the postgres part (a schema is created there and dropped after)",
    )
    parser.add_argument("--calls", type=int, help="measured calls per single-key scenario (default 20,000)")
    parser.add_argument("--scale-keys", type=int, help="entries in the big scale and purge stores (default 1,000,000)")
    parser.add_argument("--skip", default="", help=f"comma-separated parts to leave out: {', '.join(PARTS)}")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    if args.skip - set(PARTS):
        parser.error(f"unknown parts to skip: {', '.join(sorted(args.skip - set(PARTS)))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
