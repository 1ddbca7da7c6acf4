"""The HTTP part (issue 15): ``kvstore serve`` against a trivial FastAPI app on the same uvicorn, under wrk.

Both servers run as they would in production, each a process of its own on a port of its own: ``kvstore
serve`` on a temporary SQLite file, and ``_http_trivial.py`` (the same routes and body model, a constant
answer) started through the very function ``serve`` calls, so the server and its options are the same.
wrk sends GETs and PUTs of the benchmark's value (keys cycling over 1,000) at 1, 16 and 64 connections;
each configuration runs a warm-up, then short rounds alternating kvstore, trivial, kvstore, trivial ...
(who goes first rotating); the ratio is kvstore's median requests/s over the trivial app's.

Then the large-value figure: while one client PUTs (then GETs) a large list a few times in a row, small GETs
fall due every 2 ms, each timed from when it was due; the report gives their p99 beside that of small GETs
alone.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from _config import VALUE
from _http_load import KEYS, ensure_wrk, lua_script, run_python, run_wrk

Data = dict[str, Any]
HERE: Final = Path(__file__).resolve().parent
STORE: Final = "01JBENCH0000000000000000HT"  # a ULID: the store (namespace) every request names
RATIO_TARGET: Final = 0.8
P99_TARGET_MS: Final = 100.0
CONNECTIONS: Final = (1, 16, 64)
METHODS: Final = ("GET", "PUT")
PEERS: Final = ("kvstore", "trivial")
LABELS: Final = {"kvstore": "kvstore serve", "trivial": "trivial FastAPI app"}
LARGE_ITEMS: Final = 8_000_000  # the large value: a list of this many small ints (16 MB of JSON)
QUICK_LARGE_ITEMS: Final = 200_000
STARTUP_S: Final = 60.0
SMALL_EVERY_S: Final = 0.002  # a small GET falls due every 2 ms (500/s, a sixth of what a GET can do)


def ratio(kvstore: list[float], trivial: list[float]) -> float:
    """kvstore's median requests/s over the trivial app's, each over its rounds."""
    return statistics.median(kvstore) / statistics.median(trivial)


@contextmanager
def _server(command: list[str], log: Path, env: dict[str, str]) -> Iterator[str]:
    """Run a uvicorn server (its output to ``log``); yield its base URL once it answers."""
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=HERE, env=env)
    try:
        deadline = time.monotonic() + STARTUP_S
        url = None
        while url is None:
            found = re.search(r"Uvicorn running on (http://\S+)", log.read_text())
            url = found.group(1) if found else None
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)  # polling a log file for the server's own announcement
        # With workers, the supervisor announces the port before any worker listens on it: until one
        # does, connections are refused.
        while True:
            try:
                status, _ = _call(url, "GET", "/openapi.json", timeout=STARTUP_S)
                break
            except ConnectionRefusedError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.05)
        if status != 200:
            raise RuntimeError(f"the server at {url} does not answer")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _call(url: str, method: str, path: str, body: bytes | None = None, timeout: float = 600) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _load_keys(url: str) -> None:
    """PUT the KEYS keys the GETs read (each request its own connection: this is set-up, not measured)."""
    body = json.dumps({"value": VALUE}).encode()
    for n in range(KEYS):
        status, answer = _call(url, "PUT", f"/store/{STORE}/kv/bench/{n}", body)
        if status != 200:
            raise RuntimeError(f"loading bench/{n} failed: {status} {answer[:200]!r}")


Load = Callable[[str, str, int, int], Data]  # (url, method, connections, seconds) -> a run's figures


def _loader(wrk: str | None, workdir: Path) -> Load:
    body = json.dumps({"value": VALUE})
    scripts = {method: lua_script(workdir, method, STORE, body if method == "PUT" else None) for method in METHODS}

    def load(url: str, method: str, connections: int, seconds: int) -> Data:
        if wrk is not None:
            return run_wrk(wrk, url, scripts[method], connections, seconds)
        return run_python(url, method, STORE, body if method == "PUT" else None, connections, seconds)

    return load


def _measure(load: Load, urls: dict[str, str], rounds: int, seconds: int, warmup: int, progress: Any) -> Data:
    runs: Data = {}
    for method in METHODS:
        for connections in CONNECTIONS:
            for url in urls.values():
                load(url, method, connections, warmup)
            samples: dict[str, list[Data]] = {peer: [] for peer in urls}
            for index in range(rounds):
                order = list(urls)[index % 2 :] + list(urls)[: index % 2]
                for peer in order:
                    result = load(urls[peer], method, connections, seconds)
                    if result["non_2xx"] or result["socket_errors"]:
                        raise RuntimeError(f"{LABELS[peer]} {method} x{connections}: errors {result}")
                    samples[peer].append(result)
            rps = {peer: [r["rps"] for r in samples[peer]] for peer in urls}
            entry = {
                "method": method,
                "connections": connections,
                "rps": rps,
                "p99_ms": {peer: statistics.median(r["p99_ms"] for r in samples[peer]) for peer in urls},
                "ratio": ratio(rps["kvstore"], rps["trivial"]),
            }
            runs[f"{method}_{connections}"] = entry
            progress(
                f"    {method} x{connections}: kvstore {statistics.median(rps['kvstore']):,.0f}/s, trivial"
                f" {statistics.median(rps['trivial']):,.0f}/s: {entry['ratio']:.2f}x"
            )
    return runs


async def _get_on(pool: asyncio.Queue[Any], host: str, port: int, path: str) -> int:
    """One GET on an idle keep-alive connection of ``pool`` (a new one when none is idle); its status."""
    try:
        reader, writer = pool.get_nowait()
    except asyncio.QueueEmpty:
        reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    status = int((await reader.readline()).split(b" ", 2)[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    pool.put_nowait((reader, writer))
    return status


def _small_gets(url: str, until: Callable[[], bool]) -> Data:
    """Small GETs started on a fixed schedule (every SMALL_EVERY_S) until ``until()``, each timed from when
    it was due, on as many keep-alive connections as are busy: a stalled server shows in every GET that
    fell due meanwhile, not in the one a closed-loop client would have waiting."""
    host, port = url.removeprefix("http://").split(":")

    async def run() -> list[float]:
        pool: asyncio.Queue[Any] = asyncio.Queue()
        latencies: list[float] = []
        tasks: set[asyncio.Task[None]] = set()

        async def one(n: int, due: float) -> None:
            status = await _get_on(pool, host, int(port), f"/store/{STORE}/kv/bench/{n % KEYS}")
            latencies.append((time.perf_counter() - due) * 1e3)
            if status != 200:
                raise RuntimeError(f"a small GET failed: {status}")

        start = time.perf_counter()
        n = 0
        while not until():
            due = start + n * SMALL_EVERY_S
            await asyncio.sleep(max(0.0, due - time.perf_counter()))  # the schedule, not a synchronisation
            task = asyncio.create_task(one(n, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        await asyncio.gather(*tasks)
        while not pool.empty():
            pool.get_nowait()[1].close()
        return latencies

    latencies = asyncio.run(run())
    return {"requests": len(latencies), **percentiles(latencies)}


def percentiles(latencies_ms: list[float]) -> Data:
    """Nearest-rank p50 and p99, and the maximum, of latencies in milliseconds."""
    ordered = sorted(latencies_ms)

    def rank(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]

    return {"p50_ms": rank(0.50), "p99_ms": rank(0.99), "max_ms": ordered[-1]}


def _during_large(url: str, method: str, path: str, body: bytes | None, calls: int) -> Data:
    """Small GETs while another client makes ``calls`` large ``method`` calls in a row."""
    took: list[float] = []
    failures: list[str] = []
    started = threading.Event()

    def big() -> None:
        for _ in range(calls):
            started.set()
            begin = time.perf_counter()
            status, answer = _call(url, method, path, body)
            if status != 200:
                failures.append(f"{status} {answer[:200]!r}")
                return
            took.append(time.perf_counter() - begin)

    client = threading.Thread(target=big, name=f"large-{method}")
    client.start()
    started.wait()
    try:
        small = _small_gets(url, lambda: not client.is_alive())
    finally:
        client.join()
    if failures:
        raise RuntimeError(f"the large {method} failed: {failures[0]}")
    return {**small, "large_calls": len(took), "large_s": statistics.median(took)}


def _large(url: str, items: int, calls: int, seconds: float) -> Data:
    """Small GETs alone for ``seconds``, then while one client PUTs, then GETs, a list of ``items`` ints
    ``calls`` times in a row (the small GETs run from the first large call's start to the last one's end)."""
    body = json.dumps({"value": [1] * items}, separators=(",", ":")).encode()
    path = f"/store/{STORE}/kv/large"
    status, answer = _call(url, "PUT", path, body)
    if status != 200:
        raise RuntimeError(f"the large PUT failed: {status} {answer[:300]!r}")
    end = time.perf_counter() + seconds
    figures: Data = {
        "items": items,
        "body_bytes": len(body),
        "alone": _small_gets(url, lambda: time.perf_counter() > end),
    }
    for method in ("PUT", "GET"):
        figures[method.lower()] = _during_large(url, method, path, body if method == "PUT" else None, calls)
    return figures


def run_http(workdir: Path, quick: bool, workers: int, progress: Any, large_items: int | None = None) -> Data:
    """The whole part: ratios at every method and connection count, then the large-value figure."""
    workdir.mkdir(parents=True, exist_ok=True)
    wrk, note = ensure_wrk(progress)
    rounds, seconds, warmup = (1, 1, 1) if quick else (5, 2, 1)  # wrk takes whole seconds
    items = large_items or (QUICK_LARGE_ITEMS if quick else LARGE_ITEMS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
    serve = [sys.executable, "-m", "kvstore.cli", "serve", "--db", str(workdir / "http.db"), "--port", "0"]
    commands = {
        "kvstore": [*serve, "--workers", str(workers)],
        "trivial": [sys.executable, str(HERE / "_http_trivial.py"), "0", str(workers)],
    }
    load = _loader(wrk, workdir)
    with (
        _server(commands["kvstore"], workdir / "kvstore.log", env) as kv_url,
        _server(commands["trivial"], workdir / "trivial.log", env) as trivial_url,
    ):
        _load_keys(kv_url)
        runs = _measure(load, {"kvstore": kv_url, "trivial": trivial_url}, rounds, seconds, warmup, progress)
        large = _large(kv_url, items, 2 if quick else 3, seconds)
    generator = "wrk" if wrk else "a Python load generator (asyncio)"
    if wrk:
        version = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
        generator = (version.stdout or version.stderr).split(" [")[0].strip() or "wrk"
    return {
        "load_generator": generator,
        "note": note,
        "workers": workers,
        "rounds": rounds,
        "seconds": seconds,
        "runs": runs,
        "large": large,
    }


def http_targets(data: Data) -> list[Data]:
    """The part's targets, judged as the report judges the others (None when the part did not run)."""
    found = data.get("http")
    judged = []
    for method in METHODS:
        for connections in CONNECTIONS:
            run = None if found is None else found["runs"].get(f"{method}_{connections}")
            value = None if run is None else float(run["ratio"])
            judged.append(
                {"id": f"http_{method.lower()}_{connections}",
                 "target": f"kvstore serve {method} at {connections} connection{'s' * (connections > 1)}"
                 f" ≥ {RATIO_TARGET}x a trivial FastAPI app", "unit": "x trivial", "comparison": ">=",
                 "limit": RATIO_TARGET, "value": value, "pass": None if value is None else value >= RATIO_TARGET}
            )  # fmt: skip
    for method, what in (("put", "written"), ("get", "read")):
        large = None if found is None else found["large"].get(method)
        value = None if large is None else float(large["p99_ms"])
        judged.append(
            {"id": f"http_small_get_during_large_{method}", "target": f"small GET p99 while a large value is {what}"
             " over HTTP", "unit": "ms", "comparison": "<=", "limit": P99_TARGET_MS, "value": value,
             "pass": None if value is None else value <= P99_TARGET_MS}
        )  # fmt: skip
    return judged


def http_section(data: Data) -> list[str]:
    """The part's section of the Markdown report."""
    found = data.get("http")
    if not found:
        return [] if "http_skipped" not in data else ["", "## HTTP (issue 15)", "", f"Not run: {data['http_skipped']}"]
    lines = [
        "",
        "## HTTP (issue 15)",
        "",
        f"`kvstore serve` (a SQLite file) against a trivial FastAPI app on the same uvicorn with the same options"
        f" ({found['workers']} worker{'s' * (found['workers'] > 1)} each), loaded by {found['load_generator']}:"
        f" {found['rounds']} alternating rounds of {found['seconds']:g} s per row after a warm-up; medians.",
        "",
        "| Request | Connections | kvstore serve | trivial FastAPI | Ratio | kvstore p99 | trivial p99 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in found["runs"].values():
        rps, p99 = run["rps"], run["p99_ms"]
        lines.append(
            f"| {run['method']} | {run['connections']} | {statistics.median(rps['kvstore']):,.0f}/s"
            f" | {statistics.median(rps['trivial']):,.0f}/s | {run['ratio']:.2f}x | {p99['kvstore']:.2f} ms"
            f" | {p99['trivial']:.2f} ms |"
        )
    large = found["large"]
    lines += [
        "",
        f"Small GETs falling due every {SMALL_EVERY_S * 1e3:g} ms (each timed from when it was due, on as many"
        f" connections as are busy), alone, then while one client PUTs, then GETs, a list of {large['items']:,}"
        f" ints ({large['body_bytes'] / 2**20:.1f} MiB of JSON) a few times in a row:",
        "",
        "| Small GETs | GETs | p50 | p99 | max | Large calls | Large call (median) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| alone | {large['alone']['requests']:,} | {large['alone']['p50_ms']:.2f} ms"
        f" | {large['alone']['p99_ms']:.2f} ms | {large['alone']['max_ms']:.2f} ms | — | — |",
    ]
    for method, what in (("put", "during large PUTs"), ("get", "during large GETs")):
        r = large[method]
        lines.append(
            f"| {what} | {r['requests']:,} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {r['max_ms']:.2f} ms"
            f" | {r['large_calls']}"
            f" | {r['large_s']:.2f} s |"
        )
    if found.get("note"):
        lines += ["", f"Note: {found['note']}."]
    return lines
