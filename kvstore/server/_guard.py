"""What every request passes before its handler: bearer-token auth, then the body-size limit.

Both run in the route class, so a router included in someone else's app keeps them, and its errors
render as problems whatever that app's exception handlers do. The body is read here from the ASGI
``receive`` stream, chunk by chunk: a declared Content-Length over the limit is refused before any byte
is read, and a streamed body is refused as soon as its count passes the limit, never read whole.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message
from ulid import ULID

from ._problems import BadRequest, Forbidden, PayloadTooLarge, Unauthorized, problem_response

_CHALLENGE = 'Bearer realm="kvstore"'


def canonical_store(name: str) -> str:
    """A ULID store name in its canonical upper-case form; any other name as it is."""
    try:
        return str(ULID.from_str(name))
    except ValueError:
        return name


@dataclass(frozen=True)
class Token:
    """A bearer token; with ``stores``, it may reach only those stores (ULIDs) and entities (user, event)."""

    secret: str
    stores: frozenset[str] | None = field(default=None)

    def __post_init__(self) -> None:
        if not self.secret or not self.secret.isascii() or any(c.isspace() for c in self.secret):
            raise ValueError("a token is a non-empty string of ASCII characters without spaces")
        if self.stores is not None:
            object.__setattr__(self, "stores", frozenset(canonical_store(s) for s in self.stores))


class Guard:
    """Checks a request's token against the configured ones and reads its body within the limit."""

    def __init__(self, tokens: Iterable[Token | str] | None, max_body_size: int) -> None:
        if type(max_body_size) is not int or max_body_size < 1:
            raise ValueError(f"max_body_size must be a positive int, got {max_body_size!r}")
        self.tokens = None if tokens is None else [t if isinstance(t, Token) else Token(t) for t in tokens]
        self.max_body_size = max_body_size

    def authorize(self, request: Request) -> None:
        """Raise Unauthorized (401) or Forbidden (403) unless the request may go on."""
        if self.tokens is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise Unauthorized(
                "a bearer token is required: Authorization: Bearer <token>", {"WWW-Authenticate": _CHALLENGE}
            )
        candidate = given.strip().encode()
        match: Token | None = None
        for token in self.tokens:  # every token is compared, in constant time, whichever matches
            if hmac.compare_digest(candidate, token.secret.encode()):
                match = token
        if match is None:
            challenge = _CHALLENGE + ', error="invalid_token"'
            raise Unauthorized("the bearer token is not valid", {"WWW-Authenticate": challenge})
        store = request.path_params.get("store") or request.path_params.get("entity")
        if match.stores is not None and (store is None or canonical_store(str(store)) not in match.stores):
            raise Forbidden(f"this token may not reach store {store!r}")

    async def read_body(self, request: Request) -> Request:
        """Read the body within the limit; return a request that replays it to the handler."""
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise BadRequest(f"Content-Length {declared!r} is not a number of bytes")
            if int(declared) > self.max_body_size:
                raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {self.max_body_size}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_size:
                raise PayloadTooLarge(f"the body is over the limit of {self.max_body_size} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        replayed = False
        receive = request.receive

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return Request(request.scope, replay)


def guarded_route(guard: Guard) -> type[APIRoute]:
    """A route class whose handlers authorize, limit the body, and answer every error with problems."""

    class GuardedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                try:
                    guard.authorize(request)
                    return await handler(await guard.read_body(request))
                except Exception as exc:
                    return problem_response(exc, request)

            return guarded

    return GuardedRoute
