"""A byte budget for the large request bodies in flight, and giving their memory back afterwards.

A body up to ``LARGE_BODY`` bytes is read at once, whatever else is going on. A larger one (by its
Content-Length, or a streamed one once it passes ``LARGE_BODY``) first takes its size out of the budget,
reserving its Content-Length, or the body limit when the length is not declared. Waiters are served in
order; one that cannot be served within ``wait`` seconds gets a 503 problem with Retry-After. So the
memory of concurrent large requests (the body, its parsed value, its encoding) stays within a bound, and
small requests never wait behind large ones. When the last large request is done, the C allocator is asked
to return its free memory to the system (glibc's ``malloc_trim``), since it keeps it otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
from collections import deque
from typing import Any, Final

from ._problems import HTTPProblem, _problem_class

LARGE_BODY: Final = 1024 * 1024  # above this, a body is budgeted, parsed off the event loop and encoded off it
DEFAULT_WAIT: Final = 30.0
RETRY_AFTER: Final = "1"
_TRIM_DELAY: Final = 0.1  # seconds after the last large request: its response has gone by then

ServiceBusy: type[HTTPProblem] = _problem_class(503, "Service busy", "busy")


def _malloc_trim() -> Any:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None  # glibc only
    except OSError:
        return None


_TRIM: Final = _malloc_trim()


class BodyBudget:
    """``total`` bytes shared by the large bodies in flight; requests wait in order, up to ``wait`` seconds."""

    def __init__(self, total: int, wait: float = DEFAULT_WAIT) -> None:
        self.total = total
        self.free = total
        self.wait = wait
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._trim: asyncio.TimerHandle | None = None

    async def acquire(self, size: int) -> None:
        """Take ``size`` bytes (at most ``total``), waiting behind earlier requests; ServiceBusy on timeout."""
        if not self._waiters and size <= self.free:
            self.free -= size
            return
        entry = (size, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(entry[1], self.wait)
        except BaseException as exc:
            if entry[1].done() and not entry[1].cancelled():
                self.release(size)  # granted as it gave up: pass it on
            else:
                with contextlib.suppress(ValueError):  # _grant may have dropped it already, as done
                    self._waiters.remove(entry)
                self._grant()  # leaving the head of the line may let the next one in
            if isinstance(exc, TimeoutError):
                raise ServiceBusy(
                    f"too many large requests in flight (a budget of {self.total} bytes); retry later",
                    {"Retry-After": RETRY_AFTER},
                ) from None
            raise

    def release(self, size: int) -> None:
        """Give ``size`` bytes back."""
        self.free += size
        self._grant()

    def trim(self) -> None:
        """Give the memory of the large requests back once none is in flight (call it when one is done).

        glibc keeps memory it has freed unless asked to return it; ``malloc_trim`` asks. After 16 concurrent
        12 MB PUTs the process kept 335 MiB without it and 191 MiB with it (76 MiB idle). It runs a moment
        later, when the request's buffers are gone (its response sent), and in a thread: it takes up to
        130 ms here and releases the GIL.
        """
        if self._trim is None and self.free == self.total:
            self._trim = asyncio.get_running_loop().call_later(_TRIM_DELAY, self._trim_now)

    def _trim_now(self) -> None:
        self._trim = None
        if self.free == self.total and _TRIM is not None:  # else another large request came: its end trims
            asyncio.get_running_loop().run_in_executor(None, _TRIM, 0)

    def _grant(self) -> None:
        while self._waiters and self._waiters[0][0] <= self.free:
            size, future = self._waiters.popleft()
            if not future.done():
                self.free -= size
                future.set_result(None)
