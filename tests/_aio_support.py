"""What the AsyncKVStore tests share: an event loop per test, and a clock that holds a store call.

Every store call reads the store's clock, on whichever thread runs it, so a ``GateClock`` can hold a call
there until the test lets it go: "the loop stays free", "reads pass a held write" and "cancelled mid-batch"
are shown by events, never by sleeping.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from .conftest import START

WAIT = 10.0  # seconds an event wait may take before the test fails; only a hang reaches it


class Gate:
    """One held clock read: ``entered`` once a call reads the clock, which then waits for ``release``."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    async def wait_entered(self) -> None:
        """Wait (off the loop) until a store call is held at this gate."""
        assert await asyncio.to_thread(self.entered.wait, WAIT), "no store call reached the gate"


class GateClock:
    """A fake clock whose next reads can each be held at a gate of their own, in the order armed."""

    def __init__(self, now: float = START) -> None:
        self.now = now
        self._gates: deque[Gate] = deque()
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            gate = self._gates.popleft() if self._gates else None
        if gate is not None:
            gate.entered.set()
            assert gate.release.wait(WAIT), "the test never released the clock"
        return self.now

    def hold(self) -> Gate:
        """Hold the next clock read not held already."""
        gate = Gate()
        with self._lock:
            self._gates.append(gate)
        return gate


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 60))


async def submitted() -> None:
    """Let every task created so far run to its first wait: each has queued its store call."""
    await asyncio.sleep(0)
