"""Each part of a run in a process of its own: the progress they share, what a part is given, and the
hand-over between the run and a part's process (a state file in, a result file out, both JSON).

A fresh interpreter per part means that what one part leaves behind (memory, threads, caches, the
collector's generations) cannot slow the parts after it: a full run measures each part as a run of that
part alone does.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _config import Sizes, sizes_for
from _machine import load_average

Data = dict[str, Any]


class Progress:
    """One line per step on stderr, with the step number and the time since the run began.

    A part's process carries on the run's count and clock: wall time, the one clock both processes read.
    """

    def __init__(self, steps: int, begin: float | None = None, step: int = 0) -> None:
        self.steps = steps
        self.step = step
        self.begin = time.time() if begin is None else begin
        self.loads = [load_average()]  # sampled after each step: shows whether other work shared the machine

    def __call__(self, line: str) -> None:
        print(f"[{time.time() - self.begin:6.1f} s] {line}", file=sys.stderr, flush=True)

    def done(self, title: str, detail: str, took: float) -> None:
        self.step += 1
        self.loads.append(load_average())
        self(f"({self.step}/{self.steps}) {title}: {detail} ({took:.1f} s)")


@dataclasses.dataclass(frozen=True)
class Context:
    """What a part is given: the options, the sizes, where databases go, the peers that run, the progress."""

    args: argparse.Namespace
    sizes: Sizes
    workdir: Path
    names: list[str]  # the peers available in this run
    redis: str | None
    prefix: str  # of this run's Redis keys
    progress: Progress
    carry: Data  # what an earlier part left for a later one (the big scale store, for rss)


Part = Callable[[Context], Data]


def in_subprocess(script: Path, part: str, steps: int, ctx: Context, scratch: Path) -> Data | None:
    """Run ``part`` (``steps`` progress steps) in a fresh interpreter running ``script`` with the run's
    options, and return its results.

    Returns None when the part's process failed; its error went to stderr, which it shares with this one.
    """
    state, result = scratch / f"{part}.json", scratch / f"{part}.result.json"
    progress = ctx.progress
    state.write_text(json.dumps({
        "part": part, "result": str(result), "workdir": str(ctx.workdir), "names": ctx.names, "prefix": ctx.prefix,
        "begin": progress.begin, "step": progress.step, "steps": progress.steps, "carry": ctx.carry,
    }))  # fmt: skip
    begin = time.time()
    done = subprocess.run([sys.executable, str(script), *ctx.args.argv, "--part-state", str(state)], check=False)
    progress.step += steps
    if done.returncode != 0 or not result.exists():
        return None
    returned = json.loads(result.read_text())
    progress.loads += returned["loads"]
    data: Data = returned["data"]
    data["process"] = {"pid": returned["pid"], "seconds": time.time() - begin}
    return data


def merge(data: Data, part: str, fragment: Data, carry: Data) -> None:
    """Put a part's results into the run's: scenarios and notes add up, "carry" goes to later parts."""
    data["processes"][part] = fragment.pop("process")
    carry.update(fragment.pop("carry", {}))
    data["scenarios"].update(fragment.pop("scenarios", {}))
    data["notes"] += fragment.pop("notes", [])
    data.update(fragment)


def run_part(args: argparse.Namespace, parts: dict[str, Part]) -> int:
    """The process of one part (``--part-state FILE``): run it, write its results where the state says."""
    state = json.loads(Path(args.part_state).read_text())
    progress = Progress(state["steps"], begin=state["begin"], step=state["step"])
    progress.loads = []  # the run sampled the load before this part; report only the samples after steps
    sizes = sizes_for(args.quick, calls=args.calls, scale_big=args.scale_keys)
    redis = None if args.no_redis else args.redis
    ctx = Context(args, sizes, Path(state["workdir"]), state["names"], redis, state["prefix"], progress,
                  state["carry"])  # fmt: skip
    data = parts[state["part"]](ctx)
    Path(state["result"]).write_text(json.dumps({"data": data, "loads": progress.loads, "pid": os.getpid()}))
    return 0
