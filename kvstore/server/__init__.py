"""kvstore as an HTTP service: both seed APIs on one store, on FastAPI (``pip install "kvstore[server]"``).

- ``create_app(store_or_path, tokens=..., max_body_size=...)``: a standalone ASGI app; run it with
  uvicorn or mount it in another app. Its OpenAPI document is at ``/openapi.json``.
- ``create_router(async_store, ...)``: the same routes for ``app.include_router`` in a FastAPI app.

Routes: ``PUT|GET|DELETE /store/{store}/kv/{key}`` and ``GET /store/{store}/kv`` (the store API,
``{store}`` a ULID namespace, ``{key}`` may hold '/'); ``PUT|GET|DELETE /kv/{entity}/{key}`` (the entity
API, ``user`` or ``event``). Bytes travel in JSON as base64 beside ``"encoding": "base64"``. Errors are
``{ok: false, errors: [{type, status, title, detail, instance, error_code}]}``.
"""

from ._app import DEFAULT_MAX_BODY_SIZE, create_app, create_router
from ._guard import Token

__all__ = ["DEFAULT_MAX_BODY_SIZE", "Token", "create_app", "create_router"]
