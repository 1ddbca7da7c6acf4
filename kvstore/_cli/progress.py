"""A progress line for long runs (export, import, backup): units done, the rate, and the time left, redrawn
in place on stderr while it is a terminal, and nothing at all when it is not (piped, or captured)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO, Final, Self

REDRAW_EVERY: Final = 0.2  # seconds between two redraws: a terminal cannot show more, and each costs a write


class Progress:
    """A callable ``progress(done, total)`` for the library's long runs; ``total`` 0 is a first pass that reads
    and counts (an import's check), shown as what it has read.

    As a context manager it ends its line when the run ends, so that what follows starts on a line of its own.
    """

    def __init__(
        self,
        what: str,
        unit: str,
        *,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._what = what
        self._unit = unit
        self._stream = sys.stderr if stream is None else stream
        self._clock = clock
        self._shown = self._stream.isatty()
        self._start = clock()
        self._drawn = -REDRAW_EVERY  # seconds after the start of the last redraw
        self._line = ""

    def __call__(self, done: int, total: int) -> None:
        if not self._shown:
            return
        elapsed = self._clock() - self._start
        finished = 0 < total <= done
        if elapsed - self._drawn < REDRAW_EVERY and not finished:
            return
        self._drawn = elapsed
        rate = done / elapsed if elapsed > 0 else 0.0
        line = f"{self._what}: {done:,}"
        if total > 0:
            line += f" of {total:,} {self._unit} ({100 * done / total:.0f}%)"
        else:
            line += f" {self._unit} read"
        line += f", {rate:,.0f} {self._unit}/s"
        if total > 0 and rate > 0 and not finished:
            line += f", {_duration((total - done) / rate)} left"
        self._stream.write("\r" + line.ljust(len(self._line)))
        self._stream.flush()
        self._line = line

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._line:
            self._stream.write("\n")
            self._stream.flush()


def _duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
