"""The package's public surface: a flat, explicit __all__ that matches what the package exports."""

from __future__ import annotations

import inspect
import types

import kvstore
from kvstore import KVStore, Namespace


def test_all_names_exist() -> None:
    for name in kvstore.__all__:
        assert hasattr(kvstore, name), name


def test_every_public_name_is_in_all() -> None:
    public = {
        name
        for name, value in vars(kvstore).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(kvstore.__all__) - {"__version__"}


def test_all_has_no_duplicates() -> None:
    assert len(set(kvstore.__all__)) == len(kvstore.__all__)


def test_exported_classes_claim_the_package() -> None:
    """Tracebacks and reprs say kvstore.X, not kvstore._private.X, only if re-exported from the top."""
    for name in kvstore.__all__:
        value = getattr(kvstore, name)
        if inspect.isclass(value):
            assert value.__module__.startswith("kvstore."), name


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
    for method in ("set", "get", "get_many", "delete", "list", "namespace", "purge_expired", "close"):
        assert callable(getattr(KVStore, method)), method
    assert issubclass(KVStore, Namespace)
