"""The kvstore exception tree.

Every error kvstore raises is a ``KVError``; driver errors (sqlite3, psycopg, SQLAlchemy) are translated
at the boundary with ``raise ... from exc`` and never escape raw::

    KVError                         500  1000
    ├── ValidationError             422  1100  bad input; nothing was written
    │   ├── InvalidKeyError         422  1101
    │   ├── InvalidNamespaceError   422  1102
    │   ├── InvalidValueError       422  1103
    │   ├── InvalidMetadataError    422  1104
    │   ├── InvalidTTLError         422  1105
    │   ├── InvalidOptionsError     422  1106  contradictory or mistyped options
    │   ├── InvalidContentTypeError 422  1107
    │   ├── InvalidVersionstampError 422 1108
    │   ├── InvalidCursorError      422  1109
    │   ├── ValueTooLargeError      413  1110  value or metadata over the configured limit
    │   └── AtomicLimitError        413  1111  an atomic commit over its check, mutation or size limit
    ├── ConfigurationError          400  1200  a store cannot be opened with these arguments
    ├── UsageError                  409  1300  the store or an object of it used the wrong way
    │   ├── StoreClosedError        503  1301  the store was closed
    │   ├── AtomicReusedError       409  1302  an atomic operation committed or discarded already
    │   ├── ForkedStoreError        409  1303  an SQLite store used in a child it was inherited by
    │   └── LeaseLostError          409  1304  a queue message's lease ran out and another consumer took it
    ├── KeyExistsError              409  1400  an import met a live entry it must not replace
    └── StorageError                500  2000  the database failed or refused
        ├── StoreBusyError          503  2001  write lock not obtained within the busy timeout
        ├── StorageFullError        507  2002  disk or page limit reached
        ├── ReadOnlyStoreError      503  2003  the database cannot be written
        ├── NotADatabaseError       500  2004  the file is not SQLite, or is corrupt
        │   └── CorruptEntryError   500  2007  a stored entry fails its checksum or holds a bad column
        ├── SchemaVersionError      500  2005  the schema is newer than this library
        └── StoreUnavailableError   503  2006  the database cannot be opened or reached

Each error renders as an RFC 9457 problem-details object (``to_problem``), the shape the entity API
document uses: ``{type, status, title, detail, instance, error_code}``. The public classes are named
``kvstore.X`` (kvstore/__init__.py sets their module), so annotations here are types, not strings that
``typing.get_type_hints`` would look up in ``kvstore``.
"""

from typing import Any, ClassVar

__all__ = [
    "AtomicLimitError",
    "AtomicReusedError",
    "ConfigurationError",
    "CorruptEntryError",
    "ForkedStoreError",
    "InvalidContentTypeError",
    "InvalidCursorError",
    "InvalidKeyError",
    "InvalidMetadataError",
    "InvalidNamespaceError",
    "InvalidOptionsError",
    "InvalidTTLError",
    "InvalidValueError",
    "InvalidVersionstampError",
    "KVError",
    "KeyExistsError",
    "LeaseLostError",
    "NotADatabaseError",
    "ReadOnlyStoreError",
    "SchemaVersionError",
    "StorageError",
    "StorageFullError",
    "StoreBusyError",
    "StoreClosedError",
    "StoreUnavailableError",
    "UsageError",
    "ValidationError",
    "ValueTooLargeError",
]

_TYPE_PREFIX = "urn:kvstore:problem:"


class KVError(Exception):
    """Base of every kvstore error; carries the problem-details fields."""

    status: ClassVar[int] = 500
    error_code: ClassVar[int] = 1000
    title: ClassVar[str] = "Key-value store error"
    slug: ClassVar[str] = "kvstore-error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def type(self) -> str:
        """A URI reference naming the problem type, e.g. ``urn:kvstore:problem:invalid-key``."""
        return _TYPE_PREFIX + self.slug

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """Render as a problem-details dict; ``instance`` names this occurrence (e.g. a request path)."""
        problem: dict[str, Any] = {
            "type": self.type,
            "status": self.status,
            "title": self.title,
            "detail": self.detail,
            "error_code": self.error_code,
        }
        if instance is not None:
            problem["instance"] = instance
        return problem


class ValidationError(KVError):
    """Bad input: raised before any transaction opens, so nothing stored changes."""

    status = 422
    error_code = 1100
    title = "Invalid request"
    slug = "validation-error"


class InvalidKeyError(ValidationError):
    """A key or list prefix breaks the key rules."""

    error_code = 1101
    title = "Invalid key"
    slug = "invalid-key"


class InvalidNamespaceError(ValidationError):
    """A namespace name breaks the namespace rules."""

    error_code = 1102
    title = "Invalid namespace"
    slug = "invalid-namespace"


class InvalidValueError(ValidationError):
    """A value of a type kvstore does not store."""

    error_code = 1103
    title = "Invalid value"
    slug = "invalid-value"


class InvalidMetadataError(ValidationError):
    """Metadata that is not a JSON-compatible dict with string keys."""

    error_code = 1104
    title = "Invalid metadata"
    slug = "invalid-metadata"


class InvalidTTLError(ValidationError):
    """An expiry outside the allowed bounds, or of the wrong type."""

    error_code = 1105
    title = "Invalid expiry"
    slug = "invalid-ttl"


class InvalidOptionsError(ValidationError):
    """Options that contradict each other or have the wrong type."""

    error_code = 1106
    title = "Invalid options"
    slug = "invalid-options"


class InvalidContentTypeError(ValidationError):
    """A content type that does not look like ``type/subtype``."""

    error_code = 1107
    title = "Invalid content type"
    slug = "invalid-content-type"


class InvalidVersionstampError(ValidationError):
    """A versionstamp that is not 20 lowercase hex characters."""

    error_code = 1108
    title = "Invalid versionstamp"
    slug = "invalid-versionstamp"


class InvalidCursorError(ValidationError):
    """A list cursor that is malformed or belongs to another listing."""

    error_code = 1109
    title = "Invalid cursor"
    slug = "invalid-cursor"


class ValueTooLargeError(ValidationError):
    """A value or its metadata is larger than the store's configured limit."""

    status = 413
    error_code = 1110
    title = "Value too large"
    slug = "value-too-large"


class AtomicLimitError(ValidationError):
    """An atomic commit with more checks, mutations or bytes than the store allows."""

    status = 413
    error_code = 1111
    title = "Atomic commit too large"
    slug = "atomic-limit"


class ConfigurationError(KVError):
    """The store cannot be opened with the given arguments."""

    status = 400
    error_code = 1200
    title = "Invalid store configuration"
    slug = "configuration-error"


class StorageError(KVError):
    """The database failed or refused an operation."""

    status = 500
    error_code = 2000
    title = "Storage error"
    slug = "storage-error"


class StoreBusyError(StorageError):
    """The write lock was not obtained within the busy timeout."""

    status = 503
    error_code = 2001
    title = "Store busy"
    slug = "store-busy"


class StorageFullError(StorageError):
    """The disk, or the database's page limit, is full."""

    status = 507
    error_code = 2002
    title = "Storage full"
    slug = "storage-full"


class ReadOnlyStoreError(StorageError):
    """The database file or its directory cannot be written."""

    status = 503
    error_code = 2003
    title = "Store is read-only"
    slug = "read-only"


class NotADatabaseError(StorageError):
    """The file is not an SQLite database, or it is corrupt."""

    error_code = 2004
    title = "Not a database"
    slug = "not-a-database"


class CorruptEntryError(NotADatabaseError):
    """A stored entry is damaged: its checksum does not match, or a column holds what kvstore never writes.

    ``key`` and ``column`` name the entry and what is wrong with it; its data is never returned."""

    error_code = 2007
    title = "Corrupt entry"
    slug = "corrupt-entry"

    def __init__(self, detail: str, key: str = "", column: str = "") -> None:
        super().__init__(detail)
        self.key = key
        self.column = column


class SchemaVersionError(StorageError):
    """The database was written by a newer kvstore; it is left untouched."""

    error_code = 2005
    title = "Schema version not supported"
    slug = "schema-version"


class StoreUnavailableError(StorageError):
    """The database cannot be opened or reached."""

    status = 503
    error_code = 2006
    title = "Store unavailable"
    slug = "store-unavailable"


class UsageError(KVError):
    """The store, or an object it made, was used the wrong way: nothing was read or written."""

    status = 409
    error_code = 1300
    title = "Store misused"
    slug = "usage-error"


class StoreClosedError(UsageError):
    """The store was used after ``close()``. (503 over HTTP: a service answers so while it shuts down.)"""

    status = 503
    error_code = 1301
    title = "Store closed"
    slug = "store-closed"


class AtomicReusedError(UsageError):
    """An atomic operation was used again after it was committed or discarded."""

    error_code = 1302
    title = "Atomic operation already used"
    slug = "atomic-reused"


class ForkedStoreError(UsageError):
    """An SQLite store was used in a child process that inherited it open: open stores after ``fork()``."""

    error_code = 1303
    title = "Store inherited across fork"
    slug = "forked-store"


class LeaseLostError(UsageError):
    """A received queue message was acted on after its lease ran out and another consumer took it:
    nothing changed (the other consumer now holds it)."""

    error_code = 1304
    title = "Queue lease lost"
    slug = "lease-lost"


class KeyExistsError(KVError):
    """An import (``on_existing="fail"``) met a live entry at a key it brings, or a key it brings twice."""

    status = 409
    error_code = 1400
    title = "Key exists"
    slug = "key-exists"
