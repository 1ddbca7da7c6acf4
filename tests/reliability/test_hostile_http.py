"""Hostile input over HTTP: every route, fuzzed from the served OpenAPI document in negative mode.

Each generated request either succeeds or gets a 4xx problem response; a rejected request leaves every
stored row, and the versionstamp counter, exactly as they were. Requests go with a valid token, so they
reach the routes' own validation rather than stopping at authentication.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Ok
from schemathesis.core.transport import Response

from kvstore.server import create_app

from ..test_server import AUTH, TOKEN, serve

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

STORE = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


def _dump(path: Path) -> list[tuple[Any, ...]]:
    """Every row of kvstore's tables, read by a separate read-only connection."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT * FROM kvstore_entries ORDER BY namespace, key").fetchall()
        rows += conn.execute("SELECT * FROM kvstore_versionstamp").fetchall()
    return rows


def _is_problem(response: Response) -> bool:
    body = response.json()
    return body.get("ok") is False and all(
        set(error) == {"type", "status", "title", "detail", "instance", "error_code"}
        and error["status"] == response.status_code
        for error in body["errors"]
    )


def test_rejected_requests_change_nothing_on_every_route(tmp_path: Path) -> None:
    path = tmp_path / "hostile-http.db"
    with serve(create_app(path, tokens=[TOKEN], max_body_size=64 * 1024)) as url:
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
            for key, value in (("a", 1), ("a_b", "text"), ("p/q", {"n": [1]})):
                assert http.put(f"/store/{STORE}/kv/{key}", json={"value": value}).status_code == 200
                assert http.put(f"/kv/user/{key.replace('/', '-')}", json={"value": value}).status_code < 300
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        operations = []
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result
            operations.append(result.ok())
        assert len(operations) >= 7
        rejected = 0
        for operation in operations:

            @settings(database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
            @given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
            def exchange(case: Case[Any]) -> None:
                nonlocal rejected
                before = _dump(path)
                response = case.call(headers=AUTH, timeout=30)
                assert response.status_code < 500, (case.path, response.status_code, response.text)
                if response.status_code >= 400:
                    rejected += 1
                    assert _is_problem(response), response.text
                    assert _dump(path) == before, (case.method, case.formatted_path, response.status_code)

            exchange()
        assert rejected > 0  # the fuzzing did reach the rejection paths
