"""The hot requests answered before FastAPI's routing: GET and PUT of one entry, in either API.

FastAPI's machinery per request (matching every route, solving dependencies, validating path parameters
through Pydantic, its middleware stack) is most of what a GET costs the service: under cProfile, 291 us
of a trivial FastAPI app's 333 us a GET, and the service's GET cost 562 us (the bearer-token dependency
and the response model on top). With this path the service answers 1.24x to 1.35x the GETs per second of
that trivial app under wrk, at 1, 16 and 64 connections (0.48x to 0.51x before). The fast path matches
the four hot operations on the raw ASGI scope, checks their path parameters with the routes' own
patterns, authorizes and reads the body with the same ``Guard``, parses it with the same Pydantic
model, and calls the same answer functions as the routes. Whatever it does not recognise as well formed
(a parameter off its pattern, a body that is not JSON or not valid, a GET with a body) goes to FastAPI
unchanged, the body it read replayed, so every error the service sends is the one its routes send. A
client that leaves before its body has arrived gets nothing and is no error (``answered``).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from pydantic import ValidationError as PydanticValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from kvstore import KVError

from . import _offload
from ._budget import LARGE_BODY
from ._entity_api import get_value_answer, store_value_answer
from ._guard import LARGE, Guard, replaying
from ._json import decode, json_type, unique_object
from ._models import KVEntity, SetKVRequest, StoreValueRequest
from ._problems import answered
from ._store_api import ULID_PATTERN, get_kv_answer, set_kv_answer
from ._values import from_request
from ._views import Views

# The routes' own patterns, matched whole: ``{key:path}`` is Starlette's ".*" (an empty key, or one with a
# newline, is left to FastAPI), an entity key the entity API's pattern, a store its ULID pattern.
_STORE_PATH: Final = re.compile(r"/store/([^/]+)/kv/(.+)")
_ENTITY_PATH: Final = re.compile(r"/kv/(user|event)/([A-Za-z0-9_-]{1,256})")
_STORE: Final = re.compile(ULID_PATTERN.removeprefix("^").removesuffix("$"))  # fullmatch: no "$\n" leeway

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]
Model = TypeVar("Model", SetKVRequest, StoreValueRequest)


class FastPath:
    """Routes the hot requests of a scope to their answers; ``fallback`` is the FastAPI app for the rest."""

    def __init__(self, guard: Guard, views: Views, fallback: ASGIApp) -> None:
        self.guard = guard
        self.views = views
        self.fallback = fallback

    def route(self, scope: Scope) -> Handler | None:
        """The handler of a hot request, or None for FastAPI to route."""
        method = scope["method"]
        if method not in {"GET", "PUT"}:
            return None
        path: str = scope["path"]
        found = _STORE_PATH.fullmatch(path)
        if found is not None:
            store, key = found.groups()
            if _STORE.fullmatch(store) is None:
                return None
            scope["path_params"] = {"store": store, "key": key}  # what the guard authorizes against
            if method == "GET":
                return self._answer(scope, lambda _: get_kv_answer(self.views, store, key))
            return self._body(SetKVRequest, lambda body, value, _: set_kv_answer(self.views, store, key, body, value))
        found = _ENTITY_PATH.fullmatch(path)
        if found is None:
            return None
        entity, key = KVEntity(found[1]), found[2]
        scope["path_params"] = {"entity": found[1], "key": key}
        if method == "GET":
            return self._answer(scope, lambda _: get_value_answer(self.views, entity, key))
        return self._body(
            StoreValueRequest,
            lambda body, value, kind: store_value_answer(self.views, entity, key, body, value, kind or ""),
        )

    def _answer(self, scope: Scope, answer: Callable[[Request], Awaitable[Response]]) -> Handler | None:
        """A GET: authorized, then answered; one that carries a body goes to FastAPI (which limits it)."""
        for name, value in scope["headers"]:
            if (name == b"content-length" and value != b"0") or name == b"transfer-encoding":
                return None

        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            request = Request(scope, receive)
            try:
                self.guard.authorize(request)
                response = await answer(request)
            except Exception as exc:
                response = answered(exc, request)
            await response(scope, receive, send)

        return handle

    def _body(self, model: type[Model], answer: Callable[[Model, Any, str | None], Awaitable[Response]]) -> Handler:
        """A PUT: authorized, its body read within the limit and parsed with ``model``, then answered.

        A large body is parsed off the event loop: its JSON in a worker process (``_offload``), the model and the
        value to store in a thread.
        """

        async def put(scope: Scope, receive: Receive, send: Send, request: Request) -> Response | None:
            self.guard.authorize(request)
            kind = request.headers.get("content-type")
            if not json_type(kind):
                await self.fallback(scope, receive, send)
                return None
            async with self.guard.body(request) as body:
                try:
                    if len(body) > LARGE_BODY:
                        document = await _offload.parse(_decode, body)  # in a process of its own
                        parsed, value = await asyncio.to_thread(_validated, model, document)
                    else:
                        parsed, value = _parse(model, body)
                except KVError:
                    raise  # the value's own check (InvalidValueError): a problem, as the route answers it
                except (ValueError, PydanticValidationError):  # JSONDecodeError, UnicodeDecodeError too
                    await self.fallback(scope, replaying(body, receive), send)
                    return None
                del body
                return await answer(parsed, value, kind)

        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            request = Request(scope, receive)
            try:
                response = await put(scope, receive, send, request)
            except Exception as exc:
                response = answered(exc, request)
            # The body, its value and any error's traceback are gone by now: their memory can go back.
            if LARGE in scope:
                self.guard.budget.trim()
            if response is not None:
                await response(scope, receive, send)

        return handle


class _NotFinite(ValueError):
    """A JSON number that is NaN, an infinity, or too large for a float: left to the routes to answer."""


def _finite(text: str) -> float:
    number = float(text)
    if math.isfinite(number):
        return number
    raise _NotFinite(text)


def _not_finite(text: str) -> float:
    raise _NotFinite(text)


# Non-finite numbers and duplicate keys raise a ValueError: the body goes to the routes, which answer it.
_DECODER: Final = json.JSONDecoder(parse_float=_finite, parse_constant=_not_finite, object_pairs_hook=unique_object)


def _parse(model: type[Model], body: bytes) -> tuple[Model, Any]:
    """The body as FastAPI parses it (json.loads, then the model validates the Python value), and the value
    to store, as the routes make it (``from_request``).

    The parser itself refuses non-finite numbers and duplicate keys (a ValueError: the body goes to the
    routes, which answer it), so a JSON value needs no walk to check them: that walk took 2.0 s of an
    8,000,000-element list.
    """
    return _validated(model, _decode(body))


def _decode(body: bytes) -> Any:
    """The body's JSON (``_parse``'s first step; ``_offload`` runs it in its worker process)."""
    return decode(body, _DECODER)


def _validated(model: type[Model], document: Any) -> tuple[Model, Any]:
    """The model of a parsed body, and the value to store (``_parse``'s second step)."""
    parsed = model.model_validate(document)
    if parsed.encoding == "json":
        return parsed, parsed.value
    return parsed, from_request(parsed.value, parsed.encoding)
