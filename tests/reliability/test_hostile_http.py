"""Hostile input over HTTP: every route, fuzzed from the served OpenAPI document in negative mode, and
raw clients that stop short.

Each generated request either succeeds or gets a 4xx problem response; a rejected request leaves every
stored row, and the versionstamp counter, exactly as they were. Requests go with a valid token, so they
reach the routes' own validation rather than stopping at authentication. A client that stops in the
middle of its head or its body, or never sends one, stores nothing, logs no error, and is closed.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import threading
from contextlib import ExitStack, closing
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
from kvstore.server._protocol import http_protocol

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


class _InFlight:
    """An ASGI wrapper that counts the HTTP requests the app is handling, so a test can wait for none."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.count = 0
        self.seen = 0
        self.idle = threading.Condition()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self.idle:
            self.count += 1
            self.seen += 1
        try:
            await self.app(scope, receive, send)
        finally:
            with self.idle:
                self.count -= 1
                self.idle.notify_all()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _hostile_sends() -> list[tuple[bytes, bool]]:
    """Raw requests that stop short, each with whether the client then hangs up (else it waits, silent)."""
    sends: list[tuple[bytes, bool]] = []
    body = b'{"value": "' + b"x" * 2000 + b'"}'
    for path in (f"/store/{STORE}/kv/left", "/kv/user/left", f"/store/{STORE}/kv/a", "/kv/event/left"):
        for kind in ("application/json", "text/plain"):  # the fast path, and the routes it hands over to
            head = (
                f"PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                f"Content-Type: {kind}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            sends += [(head + body[:cut], True) for cut in (0, 1, len(body) // 2, len(body) - 1)]
            sends += [(head[:cut], hang_up) for cut in (5, len(head) // 2, len(head) - 2) for hang_up in (True, False)]
    sends += [(b"\x00\xff garbage\r\n\r\n", True), (b"", False), (b"GET / HTTP/1.1\r\n", False)]
    return sends


def test_clients_that_stop_short_leave_no_trace_and_no_error(tmp_path: Path) -> None:
    """Bodies cut off, heads cut off, silent connections: nothing stored, no error logged, all closed."""
    path = tmp_path / "short.db"
    app = _InFlight(create_app(path, tokens=[TOKEN], max_body_size=64 * 1024))
    handler = _Records()
    loggers = [logging.getLogger(name) for name in ("kvstore.server", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with serve(app, http=http_protocol(0.3)) as url:
            with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
                assert http.put(f"/store/{STORE}/kv/a", json={"value": 1}).status_code == 200
            before, seen = _dump(path), app.seen
            host, port = url.removeprefix("http://").split(":")
            with ExitStack() as open_sockets:
                silent = []
                for data, hang_up in _hostile_sends():
                    sock = open_sockets.enter_context(socket.create_connection((host, int(port)), timeout=30))
                    sock.sendall(data)
                    if hang_up:
                        sock.close()
                    else:
                        silent.append(sock)
                for sock in silent:  # each is closed by the server once its head timeout passes
                    assert sock.recv(4096) == b""
            with app.idle:
                assert app.idle.wait_for(lambda: app.count == 0, timeout=30)
            assert app.seen > seen  # the cut-off bodies did reach the app
            assert _dump(path) == before
            with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
                assert http.get(f"/store/{STORE}/kv/a").json()["value"] == 1
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    serious = [r for r in handler.records if r.levelno >= logging.ERROR or r.exc_info]
    assert serious == [], [r.getMessage() for r in serious]
