"""HTTP load for the http part: wrk (installed with apt-get when missing), or a Python stand-in without it.

wrk drives keep-alive connections from one thread in C, so it costs the machine far less than the servers
it measures; its Lua script picks each request's key (and carries the PUT body). Without wrk (not
installed and no way to install it), a load generator in Python (asyncio, raw sockets, keep-alive) does
the same job less cheaply: the report says which one ran.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Final

Data = dict[str, Any]
KEYS: Final = 1_000  # requests cycle over this many keys, loaded before the GETs

_UNITS: Final = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def ensure_wrk(progress: Any) -> tuple[str | None, str | None]:
    """wrk's path (installing the Debian package when it is missing and this runs as root), and a note."""
    found = shutil.which("wrk")
    if found:
        return found, None
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        why = "no apt-get" if apt is None else "not root"
        return None, f"wrk is not installed ({why}: `sudo apt-get install -y wrk`); a Python load generator ran"
    progress("    wrk is not installed: apt-get install -y wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in ([apt, "install", "-y", "wrk"], [apt, "update"], [apt, "install", "-y", "wrk"]):
        done = subprocess.run(step, capture_output=True, text=True, env=env, timeout=600, check=False)
        if done.returncode == 0 and step[1] == "install":
            break
    found = shutil.which("wrk")
    if found:
        return found, None
    return None, "wrk could not be installed with apt-get; a Python load generator ran"


def lua_script(directory: Path, method: str, store: str, body: str | None) -> Path:
    """A wrk script sending ``method`` to ``/store/STORE/kv/bench/N``, N cycling over KEYS keys."""
    quoted = "nil" if body is None else "[==[" + body + "]==]"
    script = directory / f"{method.lower()}.lua"
    script.write_text(
        f"local n = 0\n"
        f"local body = {quoted}\n"
        f'local headers = {{["Content-Type"] = "application/json"}}\n'
        f"request = function()\n"
        f"  n = (n + 1) % {KEYS}\n"
        f'  return wrk.format("{method}", "/store/{store}/kv/bench/" .. n, headers, body)\n'
        f"end\n"
    )
    return script


def _ms(text: str) -> float:
    """A wrk duration (``812.00us``, ``1.20ms``, ``2.01s``) in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> Data:
    """Requests per second, latency percentiles and errors from wrk's report (run with ``--latency``)."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in ([\d.]+\w+),", output)
    if rate is None or total is None:
        raise ValueError(f"no wrk report in: {output[-500:]!r}")
    percentiles = {f"p{int(p)}_ms": _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", output, re.M)}
    if "p99_ms" not in percentiles:
        raise ValueError(f"no latency distribution in wrk's report (run it with --latency): {output[-800:]!r}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "requests": int(total.group(1)),
        "seconds": _ms(total.group(2)) / 1e3,
        "rps": float(rate.group(1)),
        **percentiles,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(int(n) for n in sockets.groups()) if sockets else 0,
    }


def run_wrk(wrk: str, url: str, script: Path, connections: int, seconds: int) -> Data:
    """One wrk run: one thread, ``connections`` keep-alive connections, for ``seconds``."""
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "30s", "-s", str(script)]
    done = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr.strip()[-500:]}")
    return parse_wrk(done.stdout)


async def _client(host: str, port: int, requests: list[bytes], until: float, latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    bad = 0
    index = 0
    try:
        while time.perf_counter() < until:
            begin = time.perf_counter()
            writer.write(requests[index % len(requests)])
            index += 1
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append((time.perf_counter() - begin) * 1e3)
            bad += not status.split(b" ", 2)[1].startswith(b"2")
    finally:
        writer.close()
    return bad


def run_python(url: str, method: str, store: str, body: str | None, connections: int, seconds: float) -> Data:
    """The stand-in for wrk: the same requests, over ``connections`` asyncio connections."""
    host, port = url.removeprefix("http://").split(":")
    payload = b"" if body is None else body.encode()
    requests = [
        f"{method} /store/{store}/kv/bench/{n} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
        for n in range(KEYS)
    ]
    latencies: list[float] = []

    async def main() -> list[int]:
        until = time.perf_counter() + seconds
        return await asyncio.gather(*(_client(host, int(port), requests, until, latencies) for _ in range(connections)))

    begin = time.perf_counter()
    bad = sum(asyncio.run(main()))
    took = time.perf_counter() - begin
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": took,
        "rps": len(latencies) / took,
        **{f"p{p}_ms": latencies[min(len(latencies) - 1, len(latencies) * p // 100)] for p in (50, 75, 90, 99)},
        "non_2xx": bad,
        "socket_errors": 0,
    }
