"""The request and response bodies of both APIs, as Pydantic models: the OpenAPI document comes from these.

The store API (000) is camelCase and its optional fields carry no ``null`` in the schema, as in the
document; the entity API (004) is snake_case. ``encoding`` says how ``value`` travels: ``json`` (the
value itself) or ``base64`` (a bytes value, base64-encoded).

Request bodies are as strict as the schema they publish: a number is a JSON number (not a string), an
integer a JSON integer, a boolean ``true`` or ``false``, and a field the schema does not name is refused
(every request object is closed: ``additionalProperties: false``). The rules the library enforces with its
own errors (TTL bounds, the versionstamp's shape) are published beside the fields they concern.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from annotated_types import Ge, Le
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from kvstore._validation import MAX_TTL_MS, MIN_TTL_MS

Encoding = Literal["json", "base64"]
VERSIONSTAMP_PATTERN: Final = "^[0-9a-f]{20}$"
_VERSIONSTAMP: Final[JsonDict] = {"pattern": VERSIONSTAMP_PATTERN, "minLength": 20, "maxLength": 20}
_NOT_NEGATIVE: Final[JsonDict] = {"minimum": 0}
_CLOSED: Final = ConfigDict(extra="forbid")


def _json_number(value: Any) -> Any:
    """A JSON number only: Pydantic's lax int would also take "60" and true."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON number, not a string or a boolean")
    return value


def _date_time_string(value: Any) -> Any:
    """An expireAt must be a string (RFC 3339 date-time), not a number of seconds as Pydantic also takes."""
    if not isinstance(value, str):
        raise ValueError("expireAt must be a date-time string")
    return value


StrictFloat = Annotated[float, Strict()]  # a JSON number: an int or a float, never a string or a boolean
# A TTL in seconds, a JSON integer as JSON Schema has it: a number with no fraction (60 or 60.0), never "60"
# or true. The bounds come before the validator: after it, Pydantic publishes them as "ge"/"le", which JSON
# Schema does not know.
TTLSeconds = Annotated[int, Ge(MIN_TTL_MS // 1000), Le(MAX_TTL_MS // 1000), BeforeValidator(_json_number)]
StrictBool = Annotated[bool, Strict()]
DateTimeString = Annotated[datetime, BeforeValidator(_date_time_string)]


class SetOptions(BaseModel):
    """Options of a set; contradictory combinations are refused with 422."""

    model_config = _CLOSED

    expireIn: StrictFloat | SkipJsonSchema[None] = Field(
        None,
        description="TTL in milliseconds (60,000 to 31,536,000,000)",
        json_schema_extra={"minimum": MIN_TTL_MS, "maximum": MAX_TTL_MS},
    )
    expireAt: DateTimeString | SkipJsonSchema[None] = Field(None, description="Absolute expiration time")
    refreshOnAccess: StrictBool = Field(False, description="Whether to refresh TTL on access")
    ifVersionstamp: str | SkipJsonSchema[None] = Field(
        None, description="Only set if current versionstamp matches", json_schema_extra=_VERSIONSTAMP
    )
    ifNotExists: StrictBool = Field(False, description="Only set if key doesn't exist")
    overwrite: StrictBool = Field(True, description="Whether to overwrite existing values")
    metadata: dict[str, Any] | SkipJsonSchema[None] = Field(
        None, description="Additional metadata to store with the entry"
    )


class SetKVRequest(BaseModel):
    """The body of SetKV."""

    model_config = _CLOSED

    value: Any = Field(description="The value to store")
    encoding: Encoding = Field("json", description="`json`: the value as is; `base64`: bytes, base64-encoded")
    options: SetOptions | SkipJsonSchema[None] = None


class SetKVResponse(BaseModel):
    """The outcome of SetKV: ``ok`` is false when a condition failed (nothing was written)."""

    versionstamp: str | SkipJsonSchema[None] = Field(
        None, description="The new, or current, versionstamp", json_schema_extra=_VERSIONSTAMP
    )
    committed: bool
    ok: bool


class KVEntry(BaseModel):
    """A live entry of the store API."""

    key: str
    value: Any
    encoding: Encoding
    versionstamp: str = Field(json_schema_extra=_VERSIONSTAMP)
    metadata: dict[str, Any]
    contentType: str
    sizeBytes: int = Field(json_schema_extra=_NOT_NEGATIVE)
    createdAt: datetime
    updatedAt: datetime
    expiresAt: datetime | None


class ListKVResponse(BaseModel):
    """One page of a listing; pass ``cursor`` back to continue, null when done."""

    entries: list[KVEntry]
    cursor: str | None


class DeleteKVResponse(BaseModel):
    """A delete that removed a live entry."""

    ok: bool


class KVEntity(StrEnum):
    """Entity namespace types for KV storage."""

    user = "user"
    event = "event"


class StoreValueRequest(BaseModel):
    """Payload for store value request."""

    model_config = _CLOSED

    value: Any = Field(description="The value to store (JSON, text, or binary as base64)")
    encoding: Encoding = Field("json", description="`json`: the value as is; `base64`: bytes, base64-encoded")
    ttl: TTLSeconds | None = Field(None, description="Expiration time in seconds")
    metadata: dict[str, Any] | None = Field(None, description="Optional metadata with schema hints")
    content_type: str | None = Field(None, description="Content type of the value (or the Content-Type header)")


class StoreValueData(BaseModel):
    """Response data for store operation."""

    entity: KVEntity
    key: str
    created: bool
    expires_at: datetime | None
    content_type: str
    size_bytes: int = Field(json_schema_extra=_NOT_NEGATIVE)
    versionstamp: str = Field(json_schema_extra=_VERSIONSTAMP)


class StoreValueResponse(BaseModel):
    ok: bool = Field(True, description="Indicates if the request was successful or not.")
    data: StoreValueData


class EntityEntry(BaseModel):
    """A live entry of the entity API."""

    entity: KVEntity
    key: str
    value: Any
    encoding: Encoding
    versionstamp: str = Field(json_schema_extra=_VERSIONSTAMP)
    metadata: dict[str, Any]
    content_type: str
    size_bytes: int = Field(json_schema_extra=_NOT_NEGATIVE)
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None


class EntityEntryResponse(BaseModel):
    ok: bool = True
    data: EntityEntry


class EntityDeleted(BaseModel):
    entity: KVEntity
    key: str
    deleted: bool


class EntityDeleteResponse(BaseModel):
    ok: bool = True
    data: EntityDeleted


class Problem(BaseModel):
    """An RFC 9457 problem-details object."""

    type: str = Field(min_length=1, max_length=2083, description="A URI reference naming the problem type")
    status: int = Field(gt=399, lt=600, description="The HTTP status code")
    title: str = Field(min_length=5, description="A short summary of the problem type")
    detail: str = Field(min_length=5, description="What went wrong this time")
    instance: str = Field(min_length=1, description="The request path")
    error_code: int = Field(description="A number that names the error type")


class ProblemResponse(BaseModel):
    ok: Literal[False] = False
    errors: list[Problem]


# Any operation may meet these: a path that routes nowhere is a 404, a body past the limit a 413, a store
# used the wrong way (UsageError) a 409, a store closed under the service (StoreClosedError) a 503.
COMMON_PROBLEMS = (400, 401, 403, 404, 409, 413, 422, 500, 503, 507)


def problem_responses(*extra: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries: the common problem statuses and ``extra`` ones, each a ProblemResponse."""
    statuses = sorted({*COMMON_PROBLEMS, *extra})
    return {status: {"model": ProblemResponse, "description": "A problem"} for status in statuses}
