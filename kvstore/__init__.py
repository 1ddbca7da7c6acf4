"""kvstore: an embedded, persistent key-value store with versionstamped, conditional writes."""

from ._codec import JSON, Value
from ._errors import (
    ConfigurationError,
    InvalidContentTypeError,
    InvalidCursorError,
    InvalidKeyError,
    InvalidMetadataError,
    InvalidNamespaceError,
    InvalidOptionsError,
    InvalidTTLError,
    InvalidValueError,
    InvalidVersionstampError,
    KVError,
    NotADatabaseError,
    ReadOnlyStoreError,
    SchemaVersionError,
    StorageError,
    StorageFullError,
    StoreBusyError,
    StoreClosedError,
    StoreUnavailableError,
    ValidationError,
    ValueTooLargeError,
)
from ._models import Entry, Page, SetResult, StoreInfo
from ._namespace import Namespace
from ._store import KVStore

__version__ = "0.1.0"

__all__ = [
    "JSON",
    "ConfigurationError",
    "Entry",
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
    "KVStore",
    "Namespace",
    "NotADatabaseError",
    "Page",
    "ReadOnlyStoreError",
    "SchemaVersionError",
    "SetResult",
    "StorageError",
    "StorageFullError",
    "StoreBusyError",
    "StoreClosedError",
    "StoreInfo",
    "StoreUnavailableError",
    "ValidationError",
    "Value",
    "ValueTooLargeError",
    "__version__",
]
