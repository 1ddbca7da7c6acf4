"""The KVError tree: every error carries problem-details fields and renders itself."""

from __future__ import annotations

import re

import pytest

import kvstore
from kvstore import KVError, ValidationError
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
