"""Cold start: a new Python process that imports a store, opens an existing database and reads one key.

Each run is a fresh ``python -c``. Two times are kept: inside the process, from before the import to
after the get (what the library costs, the target's basis), and the whole process as the parent sees
it (interpreter start-up and exit included; ``python -c pass`` shows that part alone). Runs alternate
between peers; one unmeasured run per peer first warms the OS cache and the bytecode caches.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from typing import Any

from _peers_sqlite import NS

from kvstore._backends.sqlite.sql import SQL_GET

_SNIPPETS = {
    "python": "pass",
    "raw": (
        "import sqlite3, msgpack\n"
        "row = sqlite3.connect(PATH).execute(SQL, (NS, KEY, int(time.time() * 1e6))).fetchone()\n"
        "assert msgpack.unpackb(row[0]) is not None"
    ),
    "kvstore": "import kvstore\nassert kvstore.KVStore(PATH).get(KEY) is not None",
    "diskcache": "import diskcache\nassert diskcache.Cache(PATH).get(KEY) is not None",
    "sqlitedict": "from sqlitedict import SqliteDict\nassert SqliteDict(PATH, tablename='bench')[KEY] is not None",
}


def _program(name: str, where: str, key: str) -> str:
    body = _SNIPPETS[name]
    return (
        "import time\n"
        f"PATH, KEY, SQL, NS = {where!r}, {key!r}, {SQL_GET!r}, {NS!r}\n"
        "_t0 = time.perf_counter()\n"
        f"{body}\n"
        "print(time.perf_counter() - _t0)\n"
    )


# The warm-up run must be able to write bytecode caches: pip compiled the peers' modules when it installed
# them, but an editable (development) install of kvstore has none until a run writes them, and with
# PYTHONDONTWRITEBYTECODE set every measured run would compile kvstore from source while the peers load
# bytecode.
_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def _run_once(program: str) -> tuple[float, float]:
    """(seconds inside the process, seconds of the whole process)."""
    begin = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=False, env=_ENV
    )
    whole = time.perf_counter() - begin
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
    return float(done.stdout.strip()), whole


def run_cold_start(targets: dict[str, str], key: str, runs: int) -> dict[str, Any]:
    """Median cold-start times over ``runs`` fresh processes per peer (``targets``: peer -> location)."""
    programs = {"python": _program("python", "", key)}
    programs.update({name: _program(name, where, key) for name, where in targets.items() if name in _SNIPPETS})
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in programs}
    errors: dict[str, str] = {}
    for run in range(runs + 1):
        for name, program in list(programs.items()):
            try:
                taken = _run_once(program)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                errors[name] = f"FAILED: {exc}"
                del programs[name], samples[name]
                continue
            if run:  # the first round only warms up
                samples[name].append(taken)
    return {
        "runs": runs,
        "results": {
            name: {
                "in_process_ms": statistics.median(s[0] for s in taken) * 1_000,
                "process_ms": statistics.median(s[1] for s in taken) * 1_000,
            }
            for name, taken in samples.items()
        },
        "skipped": errors,
    }
