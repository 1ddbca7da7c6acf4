"""Memory while listing a big store page by page, measured in a fresh process.

The child (``python _rss.py PATH PAGE``) imports only kvstore, opens the store, lists every entry with
``limit`` and ``cursor``, keeping one page at a time, and samples its resident set size after each page.
It also times each page, so a listing whose pages slow down as it goes shows up too.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

WARM_FRACTION: Final = 0.01  # the baseline is taken once 1% of the entries have been listed


def rss_bytes() -> int:
    """This process's resident set size now (Linux /proc); elsewhere its peak, which still shows growth."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def _child(path: str, page_size: int) -> dict[str, Any]:
    from kvstore import KVStore

    kv = KVStore(path)
    opened = rss_bytes()
    samples: list[tuple[int, int, int]] = []  # (entries listed so far, RSS bytes, ns this page took)
    listed = 0
    cursor: str | None = None
    while True:
        begin = time.perf_counter_ns()
        page = kv.list("", limit=page_size, cursor=cursor)
        took = time.perf_counter_ns() - begin
        listed += len(page)
        samples.append((listed, rss_bytes(), took))
        cursor = page.cursor
        if cursor is None:
            break
    kv.close()
    return {"opened": opened, "samples": samples}


def run_rss(path: str, entries: int, page_size: int) -> dict[str, Any]:
    """List the ``entries`` of the store at ``path`` in a child process; RSS growth after warm-up."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__)), path, str(page_size)],
        capture_output=True,
        text=True,
        timeout=3_600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the listing process failed: {done.stderr.strip()[-2000:]}")
    child = json.loads(done.stdout)
    samples: list[list[int]] = child["samples"]
    listed = samples[-1][0]
    if listed != entries:
        raise RuntimeError(f"listed {listed:,} entries, expected {entries:,}")
    warm = next(i for i, (count, _, _) in enumerate(samples) if count >= WARM_FRACTION * entries)
    baseline = samples[warm][1]
    peak = max(rss for _, rss, _ in samples[warm:])
    step = max(1, len(samples) // 200)
    page_ms = [took / 1e6 for _, _, took in samples]
    ends = max(1, min(10, len(page_ms) // 10))  # the first and last 10 pages (fewer for a short listing)
    return {
        "entries": listed,
        "page_size": page_size,
        "pages": len(samples),
        "opened_mib": child["opened"] / 2**20,
        "first_page_mib": samples[0][1] / 2**20,
        "baseline_after": samples[warm][0],
        "baseline_mib": baseline / 2**20,
        "peak_mib": peak / 2**20,
        "final_mib": samples[-1][1] / 2**20,
        "growth": (peak - baseline) / baseline,
        "list_s": sum(page_ms) / 1_000,
        "first_pages_ms": statistics.median(page_ms[:ends]),
        "last_pages_ms": statistics.median(page_ms[-ends:]),
        # (entries listed, RSS MiB, ms the page took), at most ~200 points, the last page included
        "curve": [(count, rss / 2**20, took / 1e6) for count, rss, took in [*samples[::step], samples[-1]]],
    }


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], int(sys.argv[2]))))
