"""A queue consumer that the queue crash test kills: ``python _queue_crash_child.py PATH MODE LEASE_S``.

It says "ready" once its imports are done, starts when the parent writes a line to its stdin, then says
"consuming" and consumes until it is killed. MODE ``listen`` runs ``listen_queue`` with two handler threads;
``pull`` receives and acknowledges (or retries) one message at a time. A message's value is
``{"n": N, "fail": bool}``: the handler of a failing one raises, always; any other is recorded as handled
by a set at ``handled/N`` in the same store, durable when the handler returns, before the acknowledgement.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Any

from kvstore import KVStore, LeaseLostError


def handled_key(n: int) -> str:
    return f"handled/{n:06d}"


def dead_key(n: int) -> str:
    return f"dead/{n:06d}"


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class AlwaysFails(Exception):
    """What the handler of a failing message raises."""


def consume(path: str, mode: str, lease_s: float) -> None:
    # The listener logs each failing handler's traceback; nobody reads this child's stderr while it runs, so
    # a full pipe would block it: keep the log quiet.
    logging.getLogger("kvstore").addHandler(logging.NullHandler())
    logging.getLogger("kvstore").propagate = False
    _say("ready")
    if not sys.stdin.readline():
        sys.exit(0)  # the parent went away before starting this child
    with KVStore(path, busy_timeout=60) as kv:

        def handle(value: Any) -> None:
            if value["fail"]:
                raise AlwaysFails(value["n"])
            kv.set(handled_key(value["n"]), {"pid": os.getpid()})

        if mode == "listen":
            with kv.listen_queue(handle, concurrency=2, lease=lease_s):
                _say("consuming")
                sys.stdin.readline()  # runs until killed (or the parent closes the pipe)
            return
        _say("consuming")
        while True:
            message = kv.receive(timeout=1.0, lease=lease_s)
            if message is None:
                continue
            try:
                handle(message.value)
            except AlwaysFails:
                failed = True
            else:
                failed = False
            with contextlib.suppress(LeaseLostError):  # its lease ran out meanwhile: the new holder acts on it
                message.retry() if failed else message.ack()


if __name__ == "__main__":
    consume(sys.argv[1], sys.argv[2], float(sys.argv[3]))
