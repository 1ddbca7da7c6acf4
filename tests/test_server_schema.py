"""The served OpenAPI document: it agrees with 000_*.txt, and schemathesis finds no 5xx or off-schema answer.

Schemathesis generates requests (valid and invalid) for every operation of the document the live
server serves at /openapi.json, sends them over HTTP, and checks each answer: no server error, a
documented status and content type, a body that matches the schema. Its example counts follow the
hypothesis profile (KVSTORE_HYPOTHESIS_PROFILE), loaded in conftest.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kvstore import InvalidKeyError
from kvstore._validation import MAX_KEY_LENGTH, MAX_TTL_MS, MIN_TTL_MS, check_key
from kvstore.server import Token, create_app
from kvstore.server._store_api import KEY_PATTERN

from .test_server import AUTH, TOKEN, serve

# Property names and types of SetOptions and SetKVResponse in 000_0dcf47c7706954e8.txt.
SET_OPTIONS = {
    "expireIn": {"type": "number"},
    "expireAt": {"type": "string", "format": "date-time"},
    "refreshOnAccess": {"type": "boolean"},
    "ifVersionstamp": {"type": "string"},
    "ifNotExists": {"type": "boolean"},
    "overwrite": {"type": "boolean"},
    "metadata": {"type": "object"},
}
VERSIONSTAMP = "^[0-9a-f]{20}$"
SET_KV_RESPONSE = {"versionstamp": {"type": "string"}, "committed": {"type": "boolean"}, "ok": {"type": "boolean"}}


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("schemathesis") / "fuzz.db"
    with serve(create_app(db, tokens=[TOKEN, Token("other", frozenset({"user"}))], max_body_size=64 * 1024)) as url:
        yield url


@pytest.fixture(scope="module")
def openapi(live_url: str) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{live_url}/openapi.json").json()
    return document


def test_setkv_agrees_with_the_store_api_document(openapi: dict[str, Any]) -> None:
    put = openapi["paths"]["/store/{store}/kv/{key}"]["put"]
    assert put["operationId"] == "SetKV"
    assert put["security"] == [{"bearerToken": []}, {"cookie": []}]  # the seed's two schemes, either will do
    schemes = openapi["components"]["securitySchemes"]
    assert schemes["bearerToken"]["scheme"] == "bearer"
    assert {k: schemes["cookie"][k] for k in ("type", "in", "name")} == {
        "type": "apiKey",
        "in": "cookie",
        "name": "cookie",
    }
    params = {p["name"]: p for p in put["parameters"]}
    assert params["store"]["schema"]["format"] == "ulid"
    assert params["store"]["required"]
    assert params["key"]["required"]
    body = put["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    schemas = openapi["components"]["schemas"]
    assert schemas[body]["properties"]["options"]["$ref"] == "#/components/schemas/SetOptions"
    assert "value" in schemas[body]["properties"]
    assert put["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SetKVResponse")
    for name, expected in (("SetOptions", SET_OPTIONS), ("SetKVResponse", SET_KV_RESPONSE)):
        properties = schemas[name]["properties"]
        assert set(properties) == set(expected), name
        for field, kinds in expected.items():
            assert {k: properties[field].get(k) for k in kinds} == kinds, (name, field)


def test_the_document_publishes_the_rules_enforced(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    for name in ("SetKVRequest", "SetOptions", "StoreValueRequest"):
        assert schemas[name]["additionalProperties"] is False, name  # closed: an unknown field is a 422
    options = schemas["SetOptions"]["properties"]
    assert (options["expireIn"]["minimum"], options["expireIn"]["maximum"]) == (MIN_TTL_MS, MAX_TTL_MS)
    assert options["ifVersionstamp"]["pattern"] == VERSIONSTAMP
    ttl = next(s for s in schemas["StoreValueRequest"]["properties"]["ttl"]["anyOf"] if s.get("type") == "integer")
    assert (ttl["minimum"], ttl["maximum"]) == (MIN_TTL_MS // 1000, MAX_TTL_MS // 1000)
    for name in ("SetKVResponse", "KVEntry", "StoreValueData", "EntityEntry"):
        assert schemas[name]["properties"]["versionstamp"]["pattern"] == VERSIONSTAMP, name
    for path, method in (("/store/{store}/kv/{key}", "put"), ("/store/{store}/kv/{key}", "delete")):
        params = {p["name"]: p["schema"] for p in openapi["paths"][path][method]["parameters"]}
        assert params["key"]["pattern"] == KEY_PATTERN
        assert (params["key"]["minLength"], params["key"]["maxLength"]) == (1, MAX_KEY_LENGTH)
    delete = {p["name"]: p["schema"] for p in openapi["paths"]["/store/{store}/kv/{key}"]["delete"]["parameters"]}
    assert delete["ifVersionstamp"]["pattern"] == VERSIONSTAMP  # beside anyOf [string, null]: strings only
    entity = {p["name"]: p["schema"] for p in openapi["paths"]["/kv/{entity}/{key}"]["put"]["parameters"]}
    assert entity["key"]["pattern"] == "^[A-Za-z0-9_-]{1,256}$"


@settings(database=None, max_examples=300)
@given(key=st.text(alphabet="ab./-_\n", max_size=12))
def test_the_published_key_pattern_is_the_librarys_rule(key: str) -> None:
    try:
        check_key(key)
    except InvalidKeyError:
        valid = False
    else:
        valid = True
    # The document's pattern is ECMA-262, whose $ is the end of the input: Python's \Z.
    assert (re.fullmatch(KEY_PATTERN.removeprefix("^").removesuffix("$"), key) is not None) == valid, key


def test_every_operation_documents_problem_responses(openapi: dict[str, Any]) -> None:
    operations = [op for path in openapi["paths"].values() for op in path.values()]
    assert {op["operationId"] for op in operations} == {
        "SetKV",
        "GetKV",
        "DeleteKV",
        "ListKV",
        "StoreValue",
        "GetValue",
        "DeleteValue",
    }
    for op in operations:
        for status in ("401", "422", "500"):
            schema = op["responses"][status]["content"]["application/json"]["schema"]
            assert schema["$ref"].endswith("/ProblemResponse"), (op["operationId"], status)


def test_the_document_is_generated_from_the_code(live_url: str, tmp_path: Path) -> None:
    """The same document comes out of an app built without the server running."""
    served = httpx.get(f"{live_url}/openapi.json").json()
    assert create_app(tmp_path / "other.db").openapi() == served


# Driven through schemathesis' own API rather than its pytest plugin, which reaches into pytest internals
# that pytest 9.2 removed: each operation's Hypothesis strategy runs under a plain @given.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda mode: mode.value)
def test_no_request_gets_a_server_error_or_an_off_schema_answer(live_url: str, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{live_url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # every operation of the document parses
        operations.append(result.ok())
    assert len(operations) >= 7
    for operation in operations:

        @settings(database=None)
        @given(case=operation.as_strategy(generation_mode=mode))
        def exchange(case: Case[Any]) -> None:
            response = case.call(headers=AUTH, timeout=30)
            case.validate_response(response, checks=CHECKS)

        exchange()
