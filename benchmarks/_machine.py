"""What the run measured on: CPU, cores, memory, OS, Python, SQLite, library versions, the disk."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _filesystem(path: Path) -> str | None:
    """The type of the filesystem holding ``path`` (from /proc/mounts: the longest matching mount point)."""
    try:
        with open("/proc/mounts") as mounts:
            entries = [line.split() for line in mounts]
    except OSError:
        return None
    resolved = str(path.resolve())
    best: tuple[int, str] | None = None
    for fields in entries:
        point = fields[1]
        if (resolved == point or resolved.startswith(point.rstrip("/") + "/")) and (
            best is None or len(point) > best[0]
        ):
            best = (len(point), f"{fields[2]} ({fields[0]} on {point})")
    return None if best is None else best[1]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _checkout() -> str | None:
    """The commit of the kvstore checkout measured, marked "+ local changes" when kvstore/ differs from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "status", "--porcelain", "--", "kvstore"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit} + local changes to kvstore/" if changes else commit


def load_average() -> float | None:
    """The 1-minute load average: above 0 means something else (or the run itself) kept cores busy."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def machine_info(workdir: Path) -> dict[str, Any]:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": sys.executable,
        "sqlite": sqlite3.sqlite_version,
        "kvstore_commit": _checkout(),
        "workdir": str(workdir),
        "workdir_filesystem": _filesystem(workdir),
        "packages": {
            "kvstore": _version("stampkv"),  # kvstore's distribution; "kvstore" on the index is another project
            **{name: _version(name) for name in ("msgpack", "diskcache", "sqlitedict", "redis", "matplotlib")},
        },
    }


def redis_server_version(address: str) -> str | None:
    try:
        import redis

        host, _, port = address.rpartition(":")
        client = redis.Redis(host=host, port=int(port), socket_timeout=2)
        try:
            info = client.info("server")
        finally:
            client.close()
        return str(info.get("redis_version"))
    except Exception:
        return None
