"""kvstore: an embedded, persistent key-value store with versionstamped, conditional writes."""

from ._aio import AsyncAtomicOperation, AsyncKVStore, AsyncNamespace, AsyncWatch
from ._atomic import AtomicOperation
from ._codec import JSON, Value
from ._errors import (
    AtomicLimitError,
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
from ._models import CommitResult, Entry, FailedCheck, KeyPage, Page, SetResult, StoreInfo
from ._namespace import Namespace
from ._store import KVStore
from ._watch import Watch

__version__ = "0.1.0"

__all__ = [
    "JSON",
    "AsyncAtomicOperation",
    "AsyncKVStore",
    "AsyncNamespace",
    "AsyncWatch",
    "AtomicLimitError",
    "AtomicOperation",
    "CommitResult",
    "ConfigurationError",
    "Entry",
    "FailedCheck",
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
    "KeyPage",
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
    "Watch",
    "__version__",
]
