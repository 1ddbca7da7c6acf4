"""How the public types present themselves: named ``kvstore.X``, picklable, one family of results, a telling
``repr`` for a store, and ``help()`` that shows types rather than ``ForwardRef`` strings.
"""

from __future__ import annotations

import pickle
import pydoc
import traceback
from dataclasses import fields, is_dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

import kvstore
from kvstore import (
    CommitResult,
    Entry,
    FailedCheck,
    InvalidValueError,
    KeyPage,
    KVError,
    KVStore,
    Page,
    SetResult,
    StoreInfo,
)

# The classes kvstore defines (Seconds and Milliseconds name float, a unit, not a class of kvstore's).
PUBLIC_CLASSES = sorted(
    name
    for name in kvstore.__all__
    if isinstance(getattr(kvstore, name), type) and getattr(kvstore, name).__module__ != "builtins"
)
ERRORS = sorted(name for name in PUBLIC_CLASSES if issubclass(getattr(kvstore, name), KVError))
RESULTS = (SetResult, Entry, Page, KeyPage, FailedCheck, CommitResult, StoreInfo)


@pytest.mark.parametrize("name", PUBLIC_CLASSES)
def test_public_classes_are_named_by_the_package(name: str) -> None:
    cls = getattr(kvstore, name)
    assert cls.__module__ == "kvstore"
    assert f"{cls.__module__}.{cls.__qualname__}" == f"kvstore.{name}"


def test_a_traceback_names_the_public_error(kv: KVStore) -> None:
    with pytest.raises(InvalidValueError) as caught:
        kv.set("k", (1, 2))  # type: ignore[arg-type]
    assert "kvstore.InvalidValueError: " in "".join(traceback.format_exception(caught.value))
    assert "kvstore._errors" not in "".join(traceback.format_exception(caught.value))


@pytest.mark.parametrize("name", ERRORS)
def test_every_error_pickles(name: str) -> None:
    error = getattr(kvstore, name)(f"the detail of {name}")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert again.detail == error.detail
    assert again.to_problem("/x") == error.to_problem("/x")


def _results(kv: KVStore) -> list[object]:
    written = kv.set("a", {"n": 1}, metadata={"m": True})
    kv.set("b", b"\x00")
    failed = kv.atomic().check("a", None).set("c", 1).commit()
    return [
        written,
        kv.get("a"),
        kv.list(limit=1),
        kv.list_keys(limit=1),
        failed.failed_checks[0],
        failed,
        kv.atomic().sum("n", 1).commit(),
        kv.info(),
    ]


def test_every_result_pickles(kv: KVStore) -> None:
    results = _results(kv)
    assert {type(result) for result in results} == set(RESULTS)
    for result in results:
        assert pickle.loads(pickle.dumps(result)) == result


def test_the_results_are_one_family(kv: KVStore) -> None:
    """Every result has ``_asdict()``: its fields by name, in order, shallow, as a named tuple gives them."""
    for result in _results(kv):
        names = [f.name for f in fields(result)] if is_dataclass(result) else list(type(result)._fields)  # type: ignore[attr-defined]
        as_dict = result._asdict()  # type: ignore[attr-defined]
        assert list(as_dict) == names
        assert all(as_dict[name] is getattr(result, name) for name in names)


@pytest.mark.parametrize("cls", RESULTS, ids=lambda cls: cls.__name__)
def test_help_shows_types_not_forward_references(cls: type) -> None:
    text = pydoc.plain(pydoc.render_doc(cls))
    assert "ForwardRef" not in text
    assert "in module kvstore\n" in text


def test_help_of_entry_shows_its_field_types() -> None:
    text = pydoc.plain(pydoc.render_doc(Entry))
    assert "key: str" in text
    assert "created_at: datetime.datetime" in text


def test_a_store_repr_shows_its_target(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    kv = KVStore(path)
    assert repr(kv) == f"<KVStore {str(path)!r}>"
    assert repr(kv.namespace("users")) == "<Namespace 'users'>"
    kv.close()
    assert repr(kv) == f"<KVStore {str(path)!r} closed>"
    with KVStore(":memory:") as memory:
        assert repr(memory) == "<KVStore ':memory:'>"


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def test_a_store_repr_masks_a_postgresql_password(pg_url: str) -> None:
    """The test server takes any password (trust), so the URLs below open; neither password may show."""
    in_userinfo = _with_password(pg_url, "s3cret-in-userinfo")
    with KVStore(in_userinfo) as kv:
        assert "s3cret" not in repr(kv)
        assert ":***@" in repr(kv)
        assert "s3cret" not in kv.info().target
    in_query = f"{pg_url}&password=s3cret-in-query"
    with KVStore(in_query) as kv:
        assert "s3cret" not in repr(kv)
        assert "password=***" in repr(kv)
