"""The entity API of 004_*.txt: ``/kv/{entity}/{key}``, ``entity`` being ``user`` or ``event`` (the namespace)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from starlette.requests import Request
from starlette.responses import Response

from kvstore import Entry

from ._models import (
    EntityDeleted,
    EntityDeleteResponse,
    EntityEntry,
    EntityEntryResponse,
    KVEntity,
    StoreValueData,
    StoreValueRequest,
    StoreValueResponse,
    problem_responses,
)
from ._problems import NotFound
from ._render import Shown, entry_answer
from ._values import from_request, to_response
from ._views import Views, json_response

EntityParam = Annotated[KVEntity, Path(description="Entity namespace (user or event)")]
KeyParam = Annotated[
    str,
    Path(pattern="^[A-Za-z0-9_-]{1,256}$", description="Key identifier (alphanumeric with dashes/underscores)"),
]


def _content_type(body: StoreValueRequest, header: str) -> str | None:
    """The body's content_type, else a Content-Type header other than the envelope's plain application/json."""
    if body.content_type is not None:
        return body.content_type
    header = header.strip()
    if not header or header.split(";")[0].strip().lower() == "application/json":
        return None
    return header


async def store_value_answer(
    views: Views, entity: KVEntity, key: str, body: StoreValueRequest, value: Any, content_type: str
) -> Response:
    """StoreValue on validated parameters: the body, the value to store, and the request's Content-Type."""
    kv = await views.get(entity.value)
    result = await kv.set(
        key,
        value,
        expire_in=None if body.ttl is None else body.ttl * 1000,
        metadata=body.metadata,
        content_type=_content_type(body, content_type),
    )
    assert result.versionstamp is not None  # an unconditional set always commits
    data = StoreValueData(
        entity=entity,
        key=key,
        created=result.created,
        expires_at=result.expires_at,
        content_type=result.content_type,
        size_bytes=result.size_bytes,
        versionstamp=result.versionstamp,
    )
    return json_response(StoreValueResponse(ok=True, data=data))


async def get_value_answer(views: Views, entity: KVEntity, key: str) -> Response:
    """GetValue on validated parameters; a large value's JSON is rendered in the worker process (``_render``)."""
    answer = await entry_answer(await views.get(entity.value), key, lambda entry, shown: _answer(entity, entry, shown))
    if answer is None:
        raise NotFound(f"no live entry at key {key!r} for entity {entity.value}")
    return answer


def _answer(entity: KVEntity, entry: Entry, shown: Shown | None = None) -> EntityEntryResponse:
    """GetValue's answer; ``shown`` is its value and encoding, if not ``to_response(entry.value)``'s."""
    value, encoding = to_response(entry.value) if shown is None else shown
    data = EntityEntry(
        entity=entity,
        key=entry.key,
        value=value,
        encoding=encoding,
        versionstamp=entry.versionstamp,
        metadata=entry.metadata,
        content_type=entry.content_type,
        size_bytes=entry.size_bytes,
        created_at=entry.created_at,
        updated_at=entry.updated_at,
        expires_at=entry.expires_at,
    )
    return EntityEntryResponse(ok=True, data=data)


def entity_routes(router: APIRouter, views: Views) -> None:
    """Add the entity API's routes to ``router``."""

    @router.put(
        "/kv/{entity}/{key}",
        operation_id="StoreValue",
        summary="Store or update a key-value pair",
        tags=["kv entities"],
        response_model=StoreValueResponse,
        responses=problem_responses(),
    )
    async def store_value(entity: EntityParam, key: KeyParam, body: StoreValueRequest, request: Request) -> Response:
        """Store or update a key-value pair in the entity namespace; ``ttl`` is in seconds (60 to 31,536,000).

        The value's content type is ``content_type`` in the body, else the request's Content-Type when it is
        a JSON type other than plain ``application/json`` (such as ``application/vnd.acme.user+json``), else
        the default for the value. Bytes travel as base64 with ``"encoding": "base64"``.
        """
        value = from_request(body.value, body.encoding)
        return await store_value_answer(views, entity, key, body, value, request.headers.get("content-type", ""))

    @router.get(
        "/kv/{entity}/{key}",
        operation_id="GetValue",
        summary="Get a key-value pair",
        tags=["kv entities"],
        response_model=EntityEntryResponse,
        responses=problem_responses(),
    )
    async def get_value(entity: EntityParam, key: KeyParam) -> Response:
        """The live entry at ``key``, or 404."""
        return await get_value_answer(views, entity, key)

    @router.delete(
        "/kv/{entity}/{key}",
        operation_id="DeleteValue",
        summary="Delete a key-value pair",
        tags=["kv entities"],
        response_model=EntityDeleteResponse,
        responses=problem_responses(),
    )
    async def delete_value(entity: EntityParam, key: KeyParam) -> Response:
        """Delete the live entry at ``key``; 404 if there is none."""
        if not await (await views.get(entity.value)).delete(key):
            raise NotFound(f"no live entry at key {key!r} for entity {entity.value}")
        return json_response(EntityDeleteResponse(ok=True, data=EntityDeleted(entity=entity, key=key, deleted=True)))
