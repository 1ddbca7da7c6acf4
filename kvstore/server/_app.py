"""The service as a FastAPI router (to include in an app of yours) or a standalone app (to run or mount)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any, Final

from fastapi import APIRouter, FastAPI, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyCookie, HTTPBearer
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

import kvstore
from kvstore import AsyncKVStore

from ._entity_api import entity_routes
from ._fast import FastPath
from ._guard import COOKIE, Guard, Token, guarded_route
from ._problems import problem_handler
from ._store_api import store_routes
from ._views import Views

DEFAULT_MAX_BODY_SIZE: Final = 24 * 1024 * 1024  # a 16 MiB value as base64 in JSON, with room to spare

# Declare the seed's two schemes in the OpenAPI document (either one will do); the check itself is
# Guard.authorize, before the body is read.
_BEARER = HTTPBearer(
    auto_error=False, scheme_name="bearerToken", description="A token configured on the server (--token)."
)
_COOKIE = APIKeyCookie(
    name=COOKIE,
    auto_error=False,
    scheme_name="cookie",
    description="The same token in a cookie named `cookie`, read when there is no Authorization header.",
)

_DESCRIPTION = """\
kvstore over HTTP: the store API (`/store/{store}/kv/{key}`, SetKV) and the entity API (`/kv/{entity}/{key}`).
Every error is `{ok: false, errors: [problem]}`. Bytes travel as base64 with `"encoding": "base64"`."""


def create_router(
    store: AsyncKVStore,
    *,
    tokens: Iterable[Token | str] | None = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    body_budget: int | None = None,
) -> APIRouter:
    """The routes of both APIs on ``store``, for ``app.include_router``.

    ``tokens=None`` serves without authentication; otherwise every request needs one of the tokens as a
    bearer token (or, without an Authorization header, as the value of a cookie named ``cookie``).
    Bodies over ``max_body_size`` bytes get 413. Bodies over 1 MiB share ``body_budget`` bytes (default:
    twice ``max_body_size``): one that does not fit waits its turn, 30 s at most, then gets a 503 with
    Retry-After. Errors in these routes are problem responses whatever the including
    app's handlers do; the app opens and closes ``store``.
    """
    return _routes(Guard(tokens, max_body_size, body_budget), Views(store))


def _routes(guard: Guard, views: Views) -> APIRouter:
    router = APIRouter(route_class=guarded_route(guard), dependencies=[Security(_BEARER), Security(_COOKIE)])
    store_routes(router, views)
    entity_routes(router, views)
    return router


class _ServiceApp(FastAPI):
    """The standalone app: FastAPI, with the hot requests answered by the fast path first (``_fast``).

    The fast path stands aside when the app is mounted under a path or has middleware of its own, so
    that both see every request.
    """

    fast_path: FastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_path
        if fast is not None and scope["type"] == "http" and not scope.get("root_path") and not self.user_middleware:
            handler = fast.route(scope)
            if handler is not None:
                return await handler(scope, receive, send)
        await super().__call__(scope, receive, send)


def create_app(
    store: AsyncKVStore | str | os.PathLike[str],
    *,
    tokens: Iterable[Token | str] | None = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    body_budget: int | None = None,
    **store_options: Any,
) -> FastAPI:
    """A standalone ASGI app serving both APIs, with its OpenAPI document at /openapi.json.

    ``store`` is an AsyncKVStore (which the caller closes) or a path that the app opens with
    ``store_options`` when it starts and closes when it stops. Run it with uvicorn, or mount it in
    another ASGI app. ``tokens``, ``max_body_size`` and ``body_budget`` are as for ``create_router``.
    Unknown paths (404), wrong methods (405) and unexpected errors (500) are problems too.
    """
    owned = not isinstance(store, AsyncKVStore)
    kv = AsyncKVStore(store, **store_options) if not isinstance(store, AsyncKVStore) else store

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await kv.open()
        try:
            yield
        finally:
            if owned:
                await kv.close()

    app = _ServiceApp(title="kvstore", version=kvstore.__version__, description=_DESCRIPTION, lifespan=lifespan)
    guard, views = Guard(tokens, max_body_size, body_budget), Views(kv)
    app.include_router(_routes(guard, views))
    for kind in (HTTPException, RequestValidationError, Exception):
        app.add_exception_handler(kind, problem_handler)
    app.fast_path = FastPath(guard, views, super(_ServiceApp, app).__call__)
    return app
