"""Throughput in alternating rounds: every side runs for the same time per round, the sides taking turns.

A side is one way of making calls (one thread calling a KVStore, N tasks sharing an AsyncKVStore ...).
Each round gives it a fixed time and counts the calls it completed; its ops/s in that round are the
calls over the time until its last call returned. Rounds go A, B, A, B ... with the first side rotating,
after one unmeasured warm-up round each, so a drift of the machine favours no side. The report's ratios
are the median ops/s of one side over the median ops/s of the other.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Side = Callable[[float, int], tuple[int, float]]
"""One round of a side: (seconds to run, index of its first call) -> (calls completed, seconds taken)."""

AsyncOp = Callable[[int], Awaitable[object]]
"""One awaited call; it gets the call index (which picks its key) and raises if the call went wrong."""


def sync_side(op: Callable[[int], object]) -> Side:
    """One thread making calls one after another until the round's time is up."""

    def run(seconds: float, start: int) -> tuple[int, float]:
        clock = time.perf_counter
        begin = clock()
        deadline = begin + seconds
        index = start
        while clock() < deadline:
            op(index)
            index += 1
        return index - start, clock() - begin

    return run


async def _tasks_round(op: AsyncOp, tasks: int, seconds: float, start: int) -> tuple[int, float]:
    """``tasks`` tasks calling ``op`` until the time is up; the round ends when the last call returns."""
    counter = itertools.count(start)
    clock = time.perf_counter
    begin = clock()
    deadline = begin + seconds

    async def caller() -> int:
        made = 0
        while clock() < deadline:
            await op(next(counter))
            made += 1
        return made

    try:
        # A TaskGroup, not gather: when one call fails the others are cancelled, so none is left running
        # into the next side's round.
        async with asyncio.TaskGroup() as group:
            running = [group.create_task(caller()) for _ in range(tasks)]
    except BaseExceptionGroup as errors:
        raise errors.exceptions[0] from None
    return sum(task.result() for task in running), clock() - begin


def tasks_side(runner: asyncio.Runner, op: AsyncOp, tasks: int) -> Side:
    """``tasks`` concurrent tasks on ``runner``'s event loop, each awaiting one call after another."""
    return lambda seconds, start: runner.run(_tasks_round(op, tasks, seconds, start))


@dataclass(frozen=True, slots=True)
class Rounds:
    """How a group is measured: ``rounds`` rounds of ``seconds`` per side, after a round of ``warmup``."""

    rounds: int
    seconds: float
    warmup: float


def alternate(sides: dict[str, Side], plan: Rounds) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Ops/s of every side in each of the plan's rounds (after a warm-up round), rotating who goes first.

    Each side walks its own call indexes from 0, so all sides make the same calls in the same order.
    Returns the rates of each side, and the error of each side that raised (it is dropped from then on).
    The garbage collector is off inside a round (as in ``timeit``): one side's garbage is not charged
    to another's round.
    """
    live = dict(sides)
    rates: dict[str, list[float]] = {name: [] for name in sides}
    failed: dict[str, str] = {}
    next_index = dict.fromkeys(sides, 0)
    for index in range(plan.rounds + 1):  # round 0 warms up and is not kept
        order = list(live)
        shift = index % len(order) if order else 0
        for name in order[shift:] + order[:shift]:
            gc.collect()
            gc.disable()
            try:
                calls, took = live[name](plan.seconds if index else plan.warmup, next_index[name])
            except Exception as exc:
                del live[name], rates[name]
                failed[name] = f"FAILED: {type(exc).__name__}: {exc}"
                continue
            finally:
                gc.enable()
            next_index[name] += calls
            if index:
                rates[name].append(calls / took)
    return rates, failed


def median_rate(rates: dict[str, list[float]], side: str) -> float | None:
    """The median ops/s of ``side`` over its rounds, or None if it did not run."""
    taken = rates.get(side)
    return statistics.median(taken) if taken else None


def group_result(
    title: str, labels: dict[str, str], rates: dict[str, list[float]], failed: dict[str, str]
) -> dict[str, Any]:
    """A measured group as the report stores it: each side's label, rounds and median ops/s."""
    return {
        "title": title,
        "sides": {
            name: {"label": labels[name], "rates": taken, "median_per_s": median_rate(rates, name)}
            for name, taken in rates.items()
        },
        "failed": {labels[name]: why for name, why in failed.items()},
    }
