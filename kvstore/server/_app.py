"""The service as a FastAPI router (to include in an app of yours) or a standalone app (to run or mount)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any, Final

from fastapi import APIRouter, FastAPI, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException

import kvstore
from kvstore import AsyncKVStore

from ._entity_api import entity_routes
from ._guard import Guard, Token, guarded_route
from ._problems import problem_handler
from ._store_api import store_routes
from ._views import Views

DEFAULT_MAX_BODY_SIZE: Final = 24 * 1024 * 1024  # a 16 MiB value as base64 in JSON, with room to spare

# Declares the scheme in the OpenAPI document; the check itself is Guard.authorize, before the body is read.
_BEARER = HTTPBearer(
    auto_error=False, scheme_name="bearerToken", description="A token configured on the server (--token)."
)

_DESCRIPTION = """\
kvstore over HTTP: the store API (`/store/{store}/kv/{key}`, SetKV) and the entity API (`/kv/{entity}/{key}`).
Every error is `{ok: false, errors: [problem]}`. Bytes travel as base64 with `"encoding": "base64"`."""


def create_router(
    store: AsyncKVStore,
    *,
    tokens: Iterable[Token | str] | None = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
) -> APIRouter:
    """The routes of both APIs on ``store``, for ``app.include_router``.

    ``tokens=None`` serves without authentication; otherwise every request needs one of the tokens as a
    bearer token. Bodies over ``max_body_size`` bytes get 413. Errors in these routes are problem
    responses whatever the including app's handlers do; the app opens and closes ``store``.
    """
    guard = Guard(tokens, max_body_size)
    router = APIRouter(route_class=guarded_route(guard), dependencies=[Security(_BEARER)])
    views = Views(store)
    store_routes(router, views)
    entity_routes(router, views)
    return router


def create_app(
    store: AsyncKVStore | str | os.PathLike[str],
    *,
    tokens: Iterable[Token | str] | None = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    **store_options: Any,
) -> FastAPI:
    """A standalone ASGI app serving both APIs, with its OpenAPI document at /openapi.json.

    ``store`` is an AsyncKVStore (which the caller closes) or a path that the app opens with
    ``store_options`` when it starts and closes when it stops. Run it with uvicorn, or mount it in
    another ASGI app. Unknown paths (404), wrong methods (405) and unexpected errors (500) are problems too.
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

    app = FastAPI(title="kvstore", version=kvstore.__version__, description=_DESCRIPTION, lifespan=lifespan)
    app.include_router(create_router(kv, tokens=tokens, max_body_size=max_body_size))
    for kind in (HTTPException, RequestValidationError, Exception):
        app.add_exception_handler(kind, problem_handler)
    return app
