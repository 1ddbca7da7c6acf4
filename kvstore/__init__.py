"""kvstore: an embedded, persistent key-value store with versionstamped, conditional writes."""

import typing as _typing

from ._atomic import AtomicOperation
from ._codec import JSON, Value
from ._errors import (
    AtomicLimitError,
    AtomicReusedError,
    ConfigurationError,
    CorruptEntryError,
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
    KeyExistsError,
    KVError,
    LeaseLostError,
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
from ._iterate import ListIterator
from ._mapping import KVMapping
from ._models import (
    CheckpointResult,
    CommitResult,
    Entry,
    FailedCheck,
    ImportResult,
    KeyPage,
    Page,
    SetResult,
    StoreInfo,
)
from ._namespace import Namespace
from ._queue_listener import QueueListener
from ._queue_message import Message
from ._queue_models import EnqueueResult, QueuedMessage, QueueInfo
from ._store import KVStore
from ._validation import Milliseconds, Seconds
from ._verify import DamagedEntry, VerifyReport
from ._watch import Watch

if _typing.TYPE_CHECKING:
    from ._aio import AsyncAtomicOperation, AsyncKVStore, AsyncMessage, AsyncNamespace, AsyncWatch

__version__ = "0.2.0"

# Loaded on first use: the async API imports asyncio (and with it ssl, socket, subprocess and
# concurrent.futures), which would more than double the import time of every program that never awaits.
_LAZY = {
    "AsyncAtomicOperation": "._aio",
    "AsyncKVStore": "._aio",
    "AsyncMessage": "._aio",
    "AsyncNamespace": "._aio",
    "AsyncWatch": "._aio",
}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    _publish(value)
    globals()[name] = value  # later lookups find it without this hook
    return value


def _publish(value: object) -> None:
    """Name a public class by the module it is imported from: tracebacks, reprs and ``help()`` then show
    ``kvstore.InvalidValueError``, not ``kvstore._errors.InvalidValueError``; pickle finds it here too."""
    if isinstance(value, type) and value.__module__.startswith(__name__ + "."):
        value.__module__ = __name__


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "JSON",
    "AsyncAtomicOperation",
    "AsyncKVStore",
    "AsyncMessage",
    "AsyncNamespace",
    "AsyncWatch",
    "AtomicLimitError",
    "AtomicOperation",
    "AtomicReusedError",
    "CheckpointResult",
    "CommitResult",
    "ConfigurationError",
    "CorruptEntryError",
    "DamagedEntry",
    "EnqueueResult",
    "Entry",
    "FailedCheck",
    "ForkedStoreError",
    "ImportResult",
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
    "KVMapping",
    "KVStore",
    "KeyExistsError",
    "KeyPage",
    "LeaseLostError",
    "ListIterator",
    "Message",
    "Milliseconds",
    "Namespace",
    "NotADatabaseError",
    "Page",
    "QueueInfo",
    "QueueListener",
    "QueuedMessage",
    "ReadOnlyStoreError",
    "SchemaVersionError",
    "Seconds",
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
    "VerifyReport",
    "Watch",
    "__version__",
]

for _name in __all__:
    if _name not in _LAZY:
        _publish(globals()[_name])
del _name
