"""The package's public surface: a flat, explicit __all__ that matches what the package exports."""

from __future__ import annotations

import inspect
import subprocess
import sys
import types
from pathlib import Path

import pytest

import kvstore
from kvstore import KVStore, Namespace


def test_all_names_exist() -> None:
    for name in kvstore.__all__:
        assert hasattr(kvstore, name), name


def test_every_public_name_is_in_all() -> None:
    """What the package holds, plus what it loads on first use (the async API), is exactly ``__all__``."""
    public = {
        name
        for name, value in vars(kvstore).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public | set(kvstore._LAZY) == set(kvstore.__all__) - {"__version__"}
    assert set(kvstore._LAZY) <= set(kvstore.__all__)
    assert {name for name in dir(kvstore) if not name.startswith("_")} >= set(kvstore.__all__) - {"__version__"}


def test_lazy_names_are_the_modules_own_objects() -> None:
    from kvstore import _aio

    for name in kvstore._LAZY:
        assert getattr(kvstore, name) is getattr(_aio, name), name


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        kvstore.Nope  # noqa: B018


def test_importing_kvstore_loads_neither_asyncio_nor_sqlalchemy(tmp_path: Path) -> None:
    """A program that never awaits does not pay for asyncio, and a schema at head needs no alembic."""
    path = tmp_path / "kv.db"
    KVStore(path).close()  # created and migrated here, so the child opens a database at head
    code = (
        "import sys, kvstore\n"
        f"kv = kvstore.KVStore({str(path)!r})\n"
        "kv.set('k', 1)\n"
        "assert kv.get('k').value == 1\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'asyncio', 'sqlalchemy', 'alembic'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_set_signature_is_the_documented_one() -> None:
    params = inspect.signature(Namespace.set).parameters
    assert list(params) == [
        "self",
        "key",
        "value",
        "if_versionstamp",
        "if_not_exists",
        "overwrite",
        "expire_in",
        "expire_at",
        "refresh_on_access",
        "metadata",
        "content_type",
    ]
    keyword_only = [p.name for p in params.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert keyword_only == list(params)[3:]
    assert params["overwrite"].default is True
    assert params["if_not_exists"].default is False


def test_store_methods_exist() -> None:
    for method in ("set", "get", "get_many", "delete", "list", "namespace", "purge_expired", "close", "iterate"):
        assert callable(getattr(KVStore, method)), method
    assert issubclass(KVStore, Namespace)
    for method in ("mapping", "__getitem__", "__setitem__", "__delitem__", "__contains__", "__len__", "__iter__"):
        assert callable(getattr(Namespace, method)), method
    for method in ("backup", "export_jsonl", "import_jsonl"):  # store-wide: every namespace at once
        assert callable(getattr(KVStore, method)), method
        assert not hasattr(Namespace, method), method
