"""The store API of 000_*.txt: ``/store/{store}/kv/{key}`` (SetKV and friends), ``{store}`` a ULID namespace."""

from __future__ import annotations

import functools
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import Response
from ulid import ULID

from kvstore import Entry, InvalidNamespaceError
from kvstore._validation import MAX_KEY_LENGTH

from ._models import (
    VERSIONSTAMP_PATTERN,
    DeleteKVResponse,
    KVEntry,
    ListKVResponse,
    SetKVRequest,
    SetKVResponse,
    problem_responses,
)
from ._problems import ConditionFailed, NotFound
from ._render import Shown, entry_answer
from ._values import from_request, to_response
from ._views import Views, json_response, off_loop

# A listing page stops once its values reach this: ten 24 MB entries would otherwise be one 700 MB answer.
LIST_PAGE_BYTES: Final = 4 * 1024 * 1024
ULID_PATTERN = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"
StoreParam = Annotated[
    str,
    Path(
        pattern=ULID_PATTERN,
        description="The store: a ULID, which is the namespace",
        json_schema_extra={"format": "ulid"},
    ),
]
# The key rule, published (the library enforces it, with its own error): segments of letters, digits, '-',
# '_' and '.', none of them '.' or '..', joined by '/'. Written without lookahead, which not every
# JSON Schema pattern engine has.
_SEGMENT = r"(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*|\.[A-Za-z0-9_-][A-Za-z0-9_.-]*|\.\.[A-Za-z0-9_.-]+)"
KEY_PATTERN: Final = rf"^{_SEGMENT}(?:/{_SEGMENT})*$"
KeyParam = Annotated[
    str,
    Path(
        description="The key to set data (products/123)",
        json_schema_extra={"pattern": KEY_PATTERN, "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    ),
]
VersionstampQuery = Annotated[
    str | None,
    Query(
        description="Only delete if the current versionstamp matches",
        json_schema_extra={"pattern": VERSIONSTAMP_PATTERN},
    ),
]


class _AnyKey(Convertor[str]):
    """``{key:kvkey}``: the rest of the path, whatever it holds, so that the library judges every key.

    Starlette's ``path`` convertor is ``.*``, which stops at a newline: a key with one was a 404 from the
    router while every other bad key is the library's 422 key error.
    """

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("kvkey", _AnyKey())


# Cached: parsing a ULID costs 14 us a request, a cache hit 0.3 us; a service sees the same stores again and again.
@functools.lru_cache(maxsize=4096)
def _namespace(store: str) -> str:
    try:
        return str(ULID.from_str(store))
    except ValueError as exc:
        raise InvalidNamespaceError(f"store {store!r} is not a ULID: {exc}") from exc


def _entry(entry: Entry, shown: Shown | None = None) -> KVEntry:
    """The answer's entry; ``shown`` is its value and encoding, if not ``to_response(entry.value)``'s."""
    value, encoding = to_response(entry.value) if shown is None else shown
    return KVEntry(
        key=entry.key,
        value=value,
        encoding=encoding,
        versionstamp=entry.versionstamp,
        metadata=entry.metadata,
        contentType=entry.content_type,
        sizeBytes=entry.size_bytes,
        createdAt=entry.created_at,
        updatedAt=entry.updated_at,
        expiresAt=entry.expires_at,
    )


async def set_kv_answer(views: Views, store: str, key: str, body: SetKVRequest, value: Any) -> Response:
    """SetKV on validated parameters: the body, and the value to store (``from_request`` of its value)."""
    options = body.options
    kv = await views.get(_namespace(store))
    result = await kv.set(
        key,
        value,
        if_versionstamp=None if options is None else options.ifVersionstamp,
        if_not_exists=False if options is None else options.ifNotExists,
        overwrite=True if options is None else options.overwrite,
        expire_in=None if options is None else options.expireIn,
        expire_at=None if options is None else options.expireAt,
        refresh_on_access=False if options is None else options.refreshOnAccess,
        metadata=None if options is None else options.metadata,
    )
    response = SetKVResponse(versionstamp=result.versionstamp, committed=result.committed, ok=result.ok)
    return json_response(response, exclude_none=True)


async def get_kv_answer(views: Views, store: str, key: str) -> Response:
    """GetKV on validated parameters; a large value's JSON is rendered in the worker process (``_render``)."""
    answer = await entry_answer(await views.get(_namespace(store)), key, _entry)
    if answer is None:
        raise NotFound(f"no live entry at key {key!r} in store {store}")
    return answer


def store_routes(router: APIRouter, views: Views) -> None:
    """Add the store API's routes to ``router``."""

    @router.put(
        "/store/{store}/kv/{key:kvkey}",
        operation_id="SetKV",
        summary="Set a value for a key",
        tags=["kv store"],
        response_model=SetKVResponse,
        responses={200: {"description": "Value set successfully"}, **problem_responses()},
    )
    async def set_kv(store: StoreParam, key: KeyParam, body: SetKVRequest) -> Response:
        """Write the value; a failed ``ifVersionstamp``/``ifNotExists`` is a 200 with ``ok: false``."""
        return await set_kv_answer(views, store, key, body, from_request(body.value, body.encoding))

    @router.get(
        "/store/{store}/kv/{key:kvkey}",
        operation_id="GetKV",
        summary="Get the entry at a key",
        tags=["kv store"],
        response_model=KVEntry,
        responses=problem_responses(),
    )
    async def get_kv(store: StoreParam, key: KeyParam) -> Response:
        """The live entry at ``key``, or 404."""
        return await get_kv_answer(views, store, key)

    @router.delete(
        "/store/{store}/kv/{key:kvkey}",
        operation_id="DeleteKV",
        summary="Delete the entry at a key",
        tags=["kv store"],
        response_model=DeleteKVResponse,
        responses=problem_responses(409),
    )
    async def delete_kv(store: StoreParam, key: KeyParam, ifVersionstamp: VersionstampQuery = None) -> Response:
        """Delete the live entry; 404 if there is none, 409 if ``ifVersionstamp`` names another version.

        A conditional delete is one atomic commit: its failed check names the key's live versionstamp (None
        when there is no entry), so the 409 or 404 describes the state the delete met, not a later one.
        """
        kv = await views.get(_namespace(store))
        if ifVersionstamp is None:
            if await kv.delete(key):
                return json_response(DeleteKVResponse(ok=True))
            raise NotFound(f"no live entry at key {key!r} in store {store}")
        result = await kv.atomic().check(key, ifVersionstamp).delete(key).commit()
        if result.ok:
            return json_response(DeleteKVResponse(ok=True))
        current = result.failed_checks[0].versionstamp
        if current is not None:
            raise ConditionFailed(f"key {key!r} is at versionstamp {current}, not {ifVersionstamp}")
        raise NotFound(f"no live entry at key {key!r} in store {store}")

    @router.get(
        "/store/{store}/kv",
        operation_id="ListKV",
        summary="List entries by key prefix",
        tags=["kv store"],
        response_model=ListKVResponse,
        responses=problem_responses(),
    )
    async def list_kv(
        store: StoreParam,
        prefix: Annotated[str, Query(description="Only keys that start with this")] = "",
        limit: Annotated[int, Query(ge=1, le=1000, description="At most this many entries")] = 100,
        cursor: Annotated[str | None, Query(description="The cursor of the previous page")] = None,
        reverse: Annotated[bool, Query(description="Descending key order")] = False,
    ) -> Response:
        """Live entries in key order, a page at a time: at most ``limit`` entries, and no more than fit in 4 MiB
        of stored values (a page always holds one entry, however large); follow ``cursor`` for the rest."""
        kv = await views.get(_namespace(store))
        page = await kv.list(prefix, limit=limit, cursor=cursor, reverse=reverse, max_bytes=LIST_PAGE_BYTES)
        size = sum(entry.size_bytes for entry in page)
        return await off_loop(
            size, lambda: json_response(ListKVResponse(entries=[_entry(e) for e in page], cursor=page.cursor))
        )
