"""uvicorn's HTTP protocols with a bound on the time a client takes to send a complete request head.

uvicorn's ``timeout_keep_alive`` closes a connection idle after a response, but its timer is cancelled by
the first byte that arrives: a client that opens a connection and sends nothing, or sends half its
headers and stops, held the connection (and its slot) for as long as it liked. Here a timer runs from the
moment the connection is made, and again from the end of each response, until the head of the next
request is complete; when it fires with no request in flight, the connection is closed. A request whose
head did arrive in time is never cut off by it, however long its body or its answer takes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any, Final

from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEAD_TIMEOUT: Final = 10.0

log = logging.getLogger("kvstore.server")


class _HeadTimer:
    """The timer of one connection: armed while it waits for a request head."""

    def __init__(self, protocol: Any, seconds: float) -> None:
        self.protocol = protocol
        self.seconds = seconds
        self.handle: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        self.cancel()
        if not self.protocol.transport.is_closing():
            self.handle = self.protocol.loop.call_later(self.seconds, self.expired)

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def expired(self) -> None:
        self.handle = None
        cycle = self.protocol.cycle
        if cycle is not None and not cycle.response_complete:
            return  # a head arrived in time: its request is in flight, and the next wait re-arms the timer
        if not self.protocol.transport.is_closing():
            log.debug("closing a connection that sent no complete request head within %s s", self.seconds)
            self.protocol.transport.close()


class H11HeadTimeout(H11Protocol):
    """uvicorn's h11 protocol, with the head timeout."""

    def __init__(self, *args: Any, head_timeout: float = DEFAULT_HEAD_TIMEOUT, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_timer = _HeadTimer(self, head_timeout)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.head_timer.arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.head_timer.cancel()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.head_timer.arm()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is not installed: uvicorn's "auto" is h11, and so is ours
    HttpToolsHeadTimeout: Any = None
else:

    class _HttpToolsHeadTimeout(HttpToolsProtocol):
        """uvicorn's httptools protocol, with the head timeout."""

        def __init__(self, *args: Any, head_timeout: float = DEFAULT_HEAD_TIMEOUT, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.head_timer = _HeadTimer(self, head_timeout)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.head_timer.arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self.head_timer.cancel()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self.head_timer.arm()

    HttpToolsHeadTimeout = _HttpToolsHeadTimeout


def http_protocol(head_timeout: float = DEFAULT_HEAD_TIMEOUT, kind: str = "auto") -> Any:
    """What to pass as uvicorn's ``http``: ``kind`` ("auto", "httptools" or "h11") with the head timeout.

    A partial of a module-level class, so that uvicorn can hand it to its spawned worker processes.
    """
    if not head_timeout > 0:
        raise ValueError(f"head_timeout must be a positive number of seconds, got {head_timeout!r}")
    if kind == "httptools" or (kind == "auto" and HttpToolsHeadTimeout is not None):
        if HttpToolsHeadTimeout is None:
            raise ValueError("httptools is not installed")
        return functools.partial(HttpToolsHeadTimeout, head_timeout=head_timeout)
    if kind not in ("auto", "h11"):
        raise ValueError(f"kind must be auto, httptools or h11, got {kind!r}")
    return functools.partial(H11HeadTimeout, head_timeout=head_timeout)
