"""kvstore as an HTTP service: both seed APIs on one store, on FastAPI (``pip install "stampkv[server]"``).

- ``create_app(store_or_path, tokens=..., max_body_size=...)``: a standalone ASGI app; run it with
  uvicorn or mount it in another app. Its OpenAPI document is at ``/openapi.json``.
- ``create_router(async_store, ...)``: the same routes for ``app.include_router`` in a FastAPI app.
- ``serve(db, host=..., port=..., workers=N, ...)``: run it with uvicorn, in N worker processes that each
  open their own store on the same file or PostgreSQL database (``kvstore serve`` calls this).

Routes: ``PUT|GET|DELETE /store/{store}/kv/{key}`` and ``GET /store/{store}/kv`` (the store API,
``{store}`` a ULID namespace, ``{key}`` may hold '/'); ``PUT|GET|DELETE /kv/{entity}/{key}`` (the entity
API, ``user`` or ``event``). Bytes travel in JSON as base64 beside ``"encoding": "base64"``. Errors are
``{ok: false, errors: [{type, status, title, detail, instance, error_code}]}``.

Limits: a body over ``max_body_size`` is a 413; bodies over 1 MiB are parsed in a worker process and
share ``body_budget`` bytes (a 503 with Retry-After after 30 s in line); a GET of a value over 1 MiB has its
JSON rendered in that worker process; a listing page stops at 4 MiB of values (always one entry at least),
encoded in a thread, and its cursor goes on. Under ``serve``, a connection has
``head_timeout`` seconds (10 by default) to send a complete request head, or it is closed.

Auth: a bearer token, or the same token in a cookie named ``cookie`` (the seed's two security schemes).
"""

try:
    from ._app import DEFAULT_MAX_BODY_SIZE, create_app, create_router
    from ._guard import Token
    from ._serve import serve
except ModuleNotFoundError as exc:  # the server extra is not installed: say what to install, as `kvstore serve` does
    if (exc.name or "").split(".")[0] not in ("fastapi", "starlette", "pydantic", "pydantic_core", "uvicorn"):
        raise
    raise ModuleNotFoundError(
        f'kvstore.server needs the server extra: pip install "stampkv[server]" (in a checkout: pip install ".[server]")'
        f" ({exc})",
        name=exc.name,
    ) from exc

__all__ = ["DEFAULT_MAX_BODY_SIZE", "Token", "create_app", "create_router", "serve"]
