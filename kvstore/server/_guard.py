"""What every request passes before its handler: auth (a bearer token, or the seed's cookie named
``cookie``), then the body-size limit, then a JSON body's parse.

They run in the route class, so a router included in someone else's app keeps them, and its errors
render as problems whatever that app's exception handlers do. The body is read here from the ASGI
``receive`` stream, chunk by chunk: a declared Content-Length over the limit is refused before any byte
is read, and a streamed body is refused as soon as its count passes the limit, never read whole. A large
body holds its share of the byte budget (``_budget``) until its request is answered. The route class
also answers HEAD on a GET route as that GET without its body, and a method a path does not take with a
405 whose ``Allow`` names every method the path takes.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Message, Receive, Scope, Send
from ulid import ULID

from kvstore import ValidationError

from ._budget import LARGE_BODY, BodyBudget
from ._json import DuplicateKeyError, decode, json_type
from ._problems import BadRequest, Forbidden, MethodNotAllowed, PayloadTooLarge, Unauthorized, answered

_CHALLENGE = 'Bearer realm="kvstore"'
COOKIE = "cookie"  # the name of the seed's cookie security scheme (000_*.txt: apiKey, in: cookie)
LARGE = "kvstore.large_body"  # set in the scope of a request whose body took a share of the budget


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
    """Checks a request's token against the configured ones and reads its body within the limit and budget."""

    def __init__(
        self, tokens: Iterable[Token | str] | None, max_body_size: int, body_budget: int | None = None
    ) -> None:
        if type(max_body_size) is not int or max_body_size < 1:
            raise ValueError(f"max_body_size must be a positive int, got {max_body_size!r}")
        budget = 2 * max(max_body_size, LARGE_BODY) if body_budget is None else body_budget
        if type(budget) is not int or budget < max_body_size:
            raise ValueError(f"body_budget must be an int of at least max_body_size, got {body_budget!r}")
        self.tokens = None if tokens is None else [t if isinstance(t, Token) else Token(t) for t in tokens]
        self.max_body_size = max_body_size
        self.budget = BodyBudget(budget)

    def authorize(self, request: Request) -> None:
        """Raise Unauthorized (401) or Forbidden (403) unless the request may go on.

        The token is the bearer token of an Authorization header; without that header, the value of the
        cookie named ``cookie`` (the seed's second security scheme).
        """
        if self.tokens is None:
            return
        header = request.headers.get("authorization")
        if header is None:
            given = request.cookies.get(COOKIE, "")  # parsed only when there is no Authorization header
        else:
            scheme, _, given = header.partition(" ")
            given = given if scheme.lower() == "bearer" else ""
        if not given.strip():
            raise Unauthorized(
                "a token is required: Authorization: Bearer <token>, or a cookie named cookie",
                {"WWW-Authenticate": _CHALLENGE},
            )
        candidate = given.strip().encode()
        match: Token | None = None
        for token in self.tokens:  # every token is compared, in constant time, whichever matches
            if hmac.compare_digest(candidate, token.secret.encode()):
                match = token
        if match is None:
            challenge = _CHALLENGE + ', error="invalid_token"'
            raise Unauthorized("the token is not valid", {"WWW-Authenticate": challenge})
        store = request.path_params.get("store") or request.path_params.get("entity")
        if match.stores is not None and (store is None or canonical_store(str(store)) not in match.stores):
            raise Forbidden(f"this token may not reach store {store!r}")

    @asynccontextmanager
    async def body(self, request: Request) -> AsyncIterator[bytes]:
        """The request's body, read within the limit; a large one holds its share of the budget meanwhile."""
        declared = request.headers.get("content-length")
        reserved = 0
        if declared is not None:
            if not declared.isdigit():
                raise BadRequest(f"Content-Length {declared!r} is not a number of bytes")
            if int(declared) > self.max_body_size:
                raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {self.max_body_size}")
            if int(declared) > LARGE_BODY:
                await self.budget.acquire(int(declared))
                reserved = int(declared)
                request.scope[LARGE] = True
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.max_body_size:
                    raise PayloadTooLarge(f"the body is over the limit of {self.max_body_size} bytes")
                if size > LARGE_BODY and not reserved:  # streamed, or longer than declared
                    await self.budget.acquire(self.max_body_size)
                    reserved = self.max_body_size  # only once it is held: a refused wait gives nothing back
                    request.scope[LARGE] = True
                chunks.append(chunk)
            chunks[:] = [b"".join(chunks)]
            yield chunks.pop()  # kept by no frame here: the caller decides how long the body lives
        finally:
            if reserved:
                self.budget.release(reserved)

    @asynccontextmanager
    async def read_body(self, request: Request, parse: bool) -> AsyncIterator[Request]:
        """Read the body within the limit and budget; yield a request that replays it to the handler.

        With ``parse`` (a route that takes a body), a JSON body is parsed here, once, and handed to the
        handler as its ``json()``: a key named twice in an object is a 422 problem. A body that is not
        JSON at all is left to the route's own parse, which answers it.
        """
        async with self.body(request) as body:
            if parse and body and json_type(request.headers.get("content-type")):
                try:
                    parsed = decode(body)
                except DuplicateKeyError as exc:
                    raise ValidationError(f"body: {exc}") from None
                except ValueError:
                    pass
                else:
                    yield _Parsed(request.scope, replaying(body, request.receive), parsed)
                    return
            yield Request(request.scope, replaying(body, request.receive))


class _Parsed(Request):
    """A request whose JSON body is parsed already."""

    def __init__(self, scope: Scope, receive: Receive, parsed: Any) -> None:
        super().__init__(scope, receive)
        self._parsed = parsed

    async def json(self) -> Any:
        return self._parsed


def replaying(body: bytes, receive: Receive) -> Receive:
    """An ASGI ``receive`` that hands out ``body`` (already read) first, then defers to ``receive``."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _headless(send: Send) -> Send:
    """An ASGI ``send`` that passes a response's status and headers on, and none of its body."""

    async def headless(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {"type": "http.response.body", "body": b"", "more_body": message.get("more_body", False)}
        await send(message)

    return headless


def guarded_route(guard: Guard) -> type[APIRoute]:
    """A route class whose handlers authorize, limit the body, and answer every error with problems."""

    class GuardedRoute(APIRoute):
        siblings: ClassVar[list[APIRoute]] = []  # every route of this class: the methods a path takes

        def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
            super().__init__(path, endpoint, **kwargs)
            self.siblings.append(self)

        methods: set[str]  # always given here: every route of the service names its method

        def matches(self, scope: Scope) -> tuple[Match, Scope]:
            if scope["type"] == "http" and scope["method"] == "HEAD" and "GET" in self.methods:
                return super().matches({**scope, "method": "GET"})
            return super().matches(scope)

        async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
            method = scope["method"]
            if method == "HEAD" and "GET" in self.methods:
                await super().handle({**scope, "method": "GET"}, receive, _headless(send))
            elif method not in self.methods:
                allowed = {m for r in self.siblings if r.matches(scope)[0] is not Match.NONE for m in r.methods or ()}
                if "GET" in allowed:
                    allowed.add("HEAD")
                allow = ", ".join(sorted(allowed))
                problem = MethodNotAllowed(f"{method[:16]} is not a method of this path: {allow}", {"Allow": allow})
                await answered(problem, Request(scope))(scope, receive, send)
            else:
                await super().handle(scope, receive, send)

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()
            parse = self.body_field is not None

            async def guarded(request: Request) -> Response:
                try:
                    guard.authorize(request)
                    async with guard.read_body(request, parse) as replayed:
                        return await handler(replayed)
                except Exception as exc:
                    return answered(exc, request)
                finally:
                    if LARGE in request.scope:
                        guard.budget.trim()

            return guarded

    return GuardedRoute
