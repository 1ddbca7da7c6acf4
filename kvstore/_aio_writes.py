"""The write thread's work: the writes waiting together run in one transaction (group commit).

A run of writes goes into one ``write_batch`` block (``_group``): each write joins the open transaction in
a savepoint of its own, so one that fails is rolled back alone, and the transaction commits once at the end
of the block. Results are delivered only after that commit; if it fails, none of the batch's writes happened
and every one of them fails with its error. A lone write runs plainly: it waits for nobody. A call of many
transactions (``delete_prefix``, ``purge_expired``) runs alone, outside any batch.

A write whose coroutine was cancelled before the write started is skipped; one that started runs whole, in
its batch, and its result is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeAlias

from ._aio_lanes import Outcome, deliver, failed
from ._group import write_batch
from ._store import KVStore

WriteJob: TypeAlias = tuple["asyncio.Future[Any]", Callable[[KVStore], Any], bool]
"""(future, call, solo): a write, run against the open store; ``solo`` keeps it out of every batch."""


def run_writes(store: KVStore, jobs: list[WriteJob]) -> list[Outcome]:
    """Run ``jobs`` in their order: each run of batchable writes as one batch, each solo call alone.

    The outcomes of every batch but the last are delivered as soon as it commits; the last are returned.
    """
    outcomes: list[Outcome] = []
    run: list[WriteJob] = []
    for job in jobs:
        if job[2]:
            deliver(outcomes + _together(store, run))
            run = []
            outcomes = _plainly(store, [job])
        else:
            if outcomes:
                deliver(outcomes)
                outcomes = []
            run.append(job)
    return outcomes + _together(store, run)


def _call(store: KVStore, job: WriteJob) -> Outcome:
    try:
        return job[0], True, job[1](store)
    except BaseException as exc:  # this write's failure alone: its savepoint (or transaction) is rolled back
        return job[0], False, exc


def _plainly(store: KVStore, jobs: list[WriteJob]) -> list[Outcome]:
    return [_call(store, job) for job in jobs if not job[0].done()]


def _together(store: KVStore, jobs: list[WriteJob]) -> list[Outcome]:
    live = [job for job in jobs if not job[0].done()]
    if len(live) < 2:
        return _plainly(store, live)
    outcomes: list[Outcome] = []
    try:
        with write_batch(store):
            for future, call, _ in live:
                if not future.done():  # cancelled while the batch ran, before its turn: it never starts
                    # ``_call``, inlined: under callgrind a write of a batch cost 14,500 instructions in this
                    # loop with the call, 13,700 so.
                    try:
                        outcomes.append((future, True, call(store)))
                    except BaseException as exc:  # this write's failure alone: its savepoint is rolled back
                        outcomes.append((future, False, exc))
    except BaseException as exc:  # the commit failed: none of the batch's writes happened
        failures = failed([future for future, ok, _ in outcomes if ok], exc)
        return [outcome for outcome in outcomes if not outcome[1]] + failures
    return outcomes
