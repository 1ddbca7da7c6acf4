"""kvstore: an embedded, persistent key-value store with versionstamped, conditional writes."""

import typing as _typing

from ._atomic import AtomicOperation
from ._codec import JSON, Value
from ._errors import (
    AtomicLimitError,
    AtomicReusedError,
    ConfigurationError,
    ForkedStoreError,
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
    UsageError,
    ValidationError,
    ValueTooLargeError,
)
from ._models import CommitResult, Entry, FailedCheck, KeyPage, Page, SetResult, StoreInfo
from ._namespace import Namespace
from ._store import KVStore
from ._watch import Watch

if _typing.TYPE_CHECKING:
    from ._aio import AsyncAtomicOperation, AsyncKVStore, AsyncNamespace, AsyncWatch

__version__ = "0.1.0"

# Loaded on first use: the async API imports asyncio (and with it ssl, socket, subprocess and
# concurrent.futures), which would more than double the import time of every program that never awaits.
_LAZY = {
    "AsyncAtomicOperation": "._aio",
    "AsyncKVStore": "._aio",
    "AsyncNamespace": "._aio",
    "AsyncWatch": "._aio",
}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups find it without this hook
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "JSON",
    "AsyncAtomicOperation",
    "AsyncKVStore",
    "AsyncNamespace",
    "AsyncWatch",
    "AtomicLimitError",
    "AtomicOperation",
    "AtomicReusedError",
    "CommitResult",
    "ConfigurationError",
    "Entry",
    "FailedCheck",
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
    "UsageError",
    "ValidationError",
    "Value",
    "ValueTooLargeError",
    "Watch",
    "__version__",
]
