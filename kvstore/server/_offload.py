"""Large JSON request bodies parsed, and large answers rendered, in a process of their own, so that no one C call
holds this one's GIL long.

``json.loads`` of a 16 MB body (an 8,000,000-element list) holds the GIL for 0.6-0.9 s in one C call, in
whichever thread runs it: every other request of the process waits as long. So a large body goes to a
worker process (one per server process, started at the first large body, with a GIL of its own), which
parses it with the caller's decoder and sends the value back as msgpack; here it is unpacked a piece at a
time (``kvstore._pieces``: the GIL passes to the event loop between pieces), in a thread.

The worker is ``python -m kvstore.server._offload_worker``, spoken to over its stdin and stdout, and not a
``multiprocessing`` child: those re-run the main module of the program, which a script that starts the
server without an ``if __name__ == "__main__"`` guard would take as an order to start another.

The value is the one the decoder gives: msgpack carries every JSON value (str, int, float, bool, None, list,
dict with str keys) as it is. What it cannot carry (an int past 64 bits, a str with a lone surrogate), and a
worker that cannot be had (none can be started, it died), is parsed here, in a thread, as before; a body the
decoder refuses raises ValueError with the decoder's message. The worker parses one body at a time and gives
its memory back to the system after each (``malloc_trim``), so it holds at most one large body's.

The same worker renders large answers (``render``): it is handed bytes (a stored value, as msgpack) and the
name of a module-level function, and sends back what the function returns; None here if it raised, or no
worker could be had, and the caller renders the answer itself.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any, Final

from kvstore._pieces import unpack

Decode = Callable[[bytes], Any]
"""A body's parser: a module-level function (the worker imports it by name), raising ValueError on a bad body."""
Render = Callable[[bytes], bytes]
"""A renderer: a module-level function (the worker imports it by name) from bytes to bytes, raising if it cannot."""

PARSE: Final = 0  # the request's mode: parse a body (``Decode``), reply with msgpack of its value
RENDER: Final = 1  # the request's mode: call a ``Render``, reply with the bytes it returns
PARSED: Final = 0  # the reply's kind: msgpack of the value (or a render's bytes)
REFUSED: Final = 1  # the decoder's error message
UNCARRIED: Final = 2  # parsed, but msgpack cannot carry it: parse here
LENGTH: Final = 8  # bytes of a length, big-endian


def read_exactly(stream: IO[bytes], size: int) -> bytes:
    """``size`` bytes of ``stream``; EOFError if it ends first."""
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("the other side closed the pipe")
    return data


class _Worker:
    """The worker process and the lock that gives it one body at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    def convert(self, decode: Decode, body: bytes) -> tuple[int, bytes]:
        """In a thread: ``decode(body)`` in the worker, as (kind, payload); (UNCARRIED, b"") without one."""
        return self.call(PARSE, decode, body)

    def call(self, mode: int, function: Decode | Render, body: bytes) -> tuple[int, bytes]:
        """In a thread: ``function(body)`` in the worker, in ``mode``, as (kind, payload); (UNCARRIED, b"")
        without one."""
        name = f"{function.__module__}:{function.__qualname__}".encode()
        with self._lock:
            try:
                process = self._process
                if process is not None and process.poll() is not None:  # it died since the last body
                    self._process = None
                    _closed(process)
                    process = None
                if process is None:
                    process = self._process = subprocess.Popen(
                        [sys.executable, "-m", "kvstore.server._offload_worker"],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                    )
                assert process.stdin is not None
                assert process.stdout is not None
                head = bytes([mode]) + len(name).to_bytes(LENGTH, "big") + name + len(body).to_bytes(LENGTH, "big")
                process.stdin.write(head)
                process.stdin.write(body)
                process.stdin.flush()
                kind = read_exactly(process.stdout, 1)[0]
                return kind, read_exactly(process.stdout, int.from_bytes(read_exactly(process.stdout, LENGTH)))
            except (OSError, EOFError, ValueError):  # it could not start, or died: parse here, start another
                self._stop()
                return UNCARRIED, b""

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            _closed(process)

    def close(self) -> None:
        """End the worker (at exit): its stdin ends, and so does it."""
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            _closed(process)


def _closed(process: subprocess.Popen[bytes]) -> None:
    """Close ``process``'s pipes and wait for it, killing it if it does not end within a few seconds."""
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):  # a write that could not be flushed: it is ending anyway
                pipe.close()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


_WORKER: Final = _Worker()
atexit.register(_WORKER.close)


async def parse(decode: Decode, body: bytes) -> Any:
    """``decode(body)``, parsed in the worker process and unpacked here a piece at a time (in a thread); a
    body the decoder refuses raises ValueError with the decoder's message."""
    kind, payload = await asyncio.to_thread(_WORKER.convert, decode, body)
    if kind == REFUSED:
        raise ValueError(payload.decode("utf-8", "replace"))
    if kind == PARSED:
        return await asyncio.to_thread(unpack, payload, raw=False)
    return await asyncio.to_thread(decode, body)


async def render(function: Render, data: bytes) -> bytes | None:
    """``function(data)``, called in the worker process; None if it raised there, or no worker could be had."""
    kind, payload = await asyncio.to_thread(_WORKER.call, RENDER, function, data)
    return payload if kind == PARSED else None
