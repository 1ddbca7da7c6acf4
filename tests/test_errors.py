"""The KVError tree: every error carries problem-details fields and renders itself."""

from __future__ import annotations

import re

import pytest

import kvstore
from kvstore import (
    AtomicReusedError,
    ForkedStoreError,
    KVError,
    LeaseLostError,
    StorageError,
    StoreClosedError,
    UsageError,
    ValidationError,
)
from kvstore import _errors as errors_module


def _error_classes() -> list[type[KVError]]:
    return [value for value in vars(kvstore).values() if isinstance(value, type) and issubclass(value, KVError)]


def test_every_error_is_exported_and_drawn_in_the_docstring() -> None:
    defined = {
        value for value in vars(errors_module).values() if isinstance(value, type) and issubclass(value, KVError)
    }
    assert defined == set(_error_classes())
    doc = errors_module.__doc__ or ""
    for cls in defined:
        assert re.search(rf"\b{cls.__name__}\b", doc), f"{cls.__name__} missing from the drawn tree"


def _drawn_tree() -> dict[str, tuple[str | None, int, int]]:
    """The docstring's tree: each error's drawn parent, status and error code."""
    drawn: dict[str, tuple[str | None, int, int]] = {}
    parents: list[str] = []
    root: int | None = None
    for line in (errors_module.__doc__ or "").splitlines():
        found = re.search(r"\b([A-Z]\w*Error)\s+(\d{3})\s+(\d{4})\b", line)
        if found is None:
            continue
        root = found.start(1) if root is None else root
        depth = (found.start(1) - root) // 4  # each level of the drawing is four characters wide
        del parents[depth:]
        drawn[found[1]] = (parents[-1] if parents else None, int(found[2]), int(found[3]))
        parents.append(found[1])
    return drawn


def test_the_classes_are_the_tree_as_drawn() -> None:
    drawn = _drawn_tree()
    assert set(drawn) == {cls.__name__ for cls in _error_classes()}
    for cls in _error_classes():
        parent, status, code = drawn[cls.__name__]
        assert (cls.status, cls.error_code) == (status, code), cls.__name__
        if parent is None:
            assert cls is KVError
        else:
            assert cls.__bases__ == (getattr(kvstore, parent),), cls.__name__


def test_the_usage_branch() -> None:
    assert UsageError.__bases__ == (KVError,)
    expected = {UsageError: (409, 1300), StoreClosedError: (503, 1301), AtomicReusedError: (409, 1302)}
    expected[ForkedStoreError] = (409, 1303)
    expected[LeaseLostError] = (409, 1304)
    for cls, (status, code) in expected.items():
        assert issubclass(cls, UsageError), cls.__name__
        assert not issubclass(cls, StorageError | ValidationError), cls.__name__
        assert (cls.status, cls.error_code) == (status, code), cls.__name__
    closed = StoreClosedError("the store is closed").to_problem(instance="/kv/user/k")
    assert (closed["status"], closed["error_code"], closed["type"]) == (503, 1301, "urn:kvstore:problem:store-closed")
    assert {cls for cls in _error_classes() if issubclass(cls, UsageError)} == set(expected)


def test_error_codes_are_unique_ints() -> None:
    codes = [cls.error_code for cls in _error_classes()]
    assert all(type(code) is int for code in codes)
    assert len(set(codes)) == len(codes)


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda cls: cls.__name__)
def test_problem_details_fit_the_entity_api_schema(cls: type[KVError]) -> None:
    error = cls("something specific went wrong")
    problem = error.to_problem(instance="/kv/user/some-key")
    assert set(problem) == {"type", "status", "title", "detail", "instance", "error_code"}
    assert 399 < problem["status"] < 600
    assert 1 <= len(problem["type"]) <= 2083
    assert problem["type"].startswith("urn:kvstore:problem:")
    assert len(problem["title"]) >= 5
    assert problem["detail"] == "something specific went wrong"
    assert problem["instance"] == "/kv/user/some-key"
    assert problem["error_code"] == cls.error_code
    assert "instance" not in error.to_problem()
    assert str(error) == "something specific went wrong"


def test_problem_types_are_distinct() -> None:
    types = [cls("x" * 5).type for cls in _error_classes()]
    assert len(set(types)) == len(types)


def test_validation_errors_are_client_errors() -> None:
    for cls in _error_classes():
        if issubclass(cls, ValidationError):
            assert 400 <= cls.status < 500, cls.__name__
        elif issubclass(cls, kvstore.StorageError):
            assert cls.status >= 500, cls.__name__


def test_error_raised_by_the_store_carries_its_fields(kv: kvstore.KVStore) -> None:
    with pytest.raises(kvstore.InvalidKeyError) as caught:
        kv.set("bad key", 1)
    problem = caught.value.to_problem()
    assert problem["status"] == 422
    assert "bad key" in problem["detail"]
    assert isinstance(caught.value, ValidationError)
    assert isinstance(caught.value, KVError)
