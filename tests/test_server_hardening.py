"""The service against clients that misbehave: each case on the fast path and on the FastAPI routes.

A client that leaves mid-body, methods a path does not take and HEAD, keys with newlines, connections
that never finish a request head, the seed's cookie scheme, and bodies looser than the published schema.
"""

from __future__ import annotations

import json
import logging
import pickle
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from kvstore.server import Token, create_app
from kvstore.server import _protocol as protocol

from .test_cli import _capture_uvicorn, run
from .test_server import AUTH, STARTUP, TOKEN, problem, serve

STORE = "01JBENCH0000000000000000HT"
PATHS = ("fast", "routed")


def _app(path: Path, kind: str) -> Any:
    app = create_app(path, tokens=[TOKEN, Token("narrow", frozenset({"user"}))], max_body_size=64 * 1024)
    if kind == "routed":
        app.fast_path = None  # type: ignore[attr-defined]
    return app


@pytest.fixture(params=PATHS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The service with its fast path, and without it (every request through FastAPI)."""
    with serve(_app(tmp_path / "hard.db", request.param)) as base:
        yield base


@pytest.fixture
def client(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
        yield http


def _address(base_url: str) -> tuple[str, int]:
    host, port = base_url.removeprefix("http://").split(":")
    return host, int(port)


# --- a client that disconnects in the middle of its body -----------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class _Recorder:
    """An ASGI wrapper that keeps what the app sent for each HTTP request and signals when it returned."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sent: list[Message] = []
        self.done = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def recorded(message: Message) -> None:
            self.sent.append(message)
            await send(message)

        try:
            await self.app(scope, receive, recorded)
        finally:
            self.done.set()


@pytest.fixture
def records() -> Iterator[_Records]:
    handler = _Records()
    loggers = [logging.getLogger(name) for name in ("kvstore.server", "uvicorn.error")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
    loggers[0].setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.parametrize("kind", PATHS)
@pytest.mark.parametrize("path", ["/kv/user/left", f"/store/{STORE}/kv/left"])
def test_a_client_that_leaves_mid_body_is_no_server_error(
    tmp_path: Path, records: _Records, kind: str, path: str
) -> None:
    recorder = _Recorder(_app(tmp_path / "left.db", kind))
    body = json.dumps({"value": "x" * 1000}).encode()
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with serve(recorder) as base:
        with socket.create_connection(_address(base), timeout=STARTUP) as sock:
            sock.sendall(head.encode() + body[: len(body) // 2])
        assert recorder.done.wait(STARTUP), "the app did not finish the request"
        sent = list(recorder.sent)
        with httpx.Client(base_url=base, headers=AUTH) as http:
            problem(http.get(path), 404)  # nothing stored
    assert sent == []  # nothing answered to no one: no 500, no problem
    assert [r for r in records.records if r.levelno >= logging.WARNING or r.exc_info] == []
    assert any("left before its request was read" in r.getMessage() for r in records.records)


# --- methods, HEAD and keys with newlines ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", f"/store/{STORE}/kv/k", "DELETE, GET, HEAD, PUT"),
        ("PATCH", f"/store/{STORE}/kv/a/b", "DELETE, GET, HEAD, PUT"),
        ("POST", "/kv/user/k", "DELETE, GET, HEAD, PUT"),
        ("DELETE", f"/store/{STORE}/kv", "GET, HEAD"),
    ],
)
def test_a_405_allows_every_method_of_the_path(client: httpx.Client, method: str, path: str, allow: str) -> None:
    refused = client.request(method, path, json={"value": 1})
    assert problem(refused, 405)["error_code"] == 3405
    assert refused.headers["allow"] == allow


@pytest.mark.parametrize("path", ["/kv/user/k", f"/store/{STORE}/kv/k", "/kv/user/absent", f"/store/{STORE}/kv"])
def test_head_answers_as_get_without_a_body(client: httpx.Client, path: str) -> None:
    assert client.put("/kv/user/k", json={"value": {"n": 1}}).status_code == 200
    assert client.put(f"/store/{STORE}/kv/k", json={"value": [1, 2]}).status_code == 200
    got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code
    assert head.content == b""
    for name in ("content-type", "content-length"):
        assert head.headers[name] == got.headers[name], name
    assert int(head.headers["content-length"]) == len(got.content) > 0


@pytest.mark.parametrize("key", ["a%0Ab", "a%0Db", "ab%0A", "%0A", "a/b%0A/c"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_every_bad_key_is_the_key_error_on_every_route(client: httpx.Client, key: str, method: str) -> None:
    paths = [f"/store/{STORE}/kv/{key}"] + ([f"/kv/user/{key}"] if "/" not in key else [])  # a/b: no entity path
    for path in paths:
        body = {"value": 1} if method == "PUT" else None
        refused = problem(client.request(method, path, json=body), 422)
        assert refused["error_code"] == 1101, (path, refused)  # InvalidKeyError, not a router 404
        assert refused["type"] == "urn:kvstore:problem:invalid-key"


# --- a bound on the time to a complete request head -----------------------------------------------------------


@pytest.fixture(params=["httptools", "h11"])
def impatient(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The service with a head timeout short enough for a test, on each of uvicorn's HTTP parsers."""
    app = create_app(tmp_path / "slow.db")
    with serve(app, http=protocol.http_protocol(0.2, request.param)) as base:
        yield base


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closes the connection (a read returns b"") before the socket's generous timeout."""
    sock.settimeout(STARTUP)
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return True
    except TimeoutError:
        return False


@pytest.mark.parametrize("sent", [b"", b"GET /kv/user/k HTTP/1.1\r\nHost: x\r\n", b"PUT /kv/us"])
def test_a_connection_without_a_complete_head_is_closed(impatient: str, sent: bytes) -> None:
    with socket.create_connection(_address(impatient), timeout=STARTUP) as sock:
        sock.sendall(sent)
        assert _closed_by_server(sock)


def test_after_an_answer_the_next_head_is_bounded_too(impatient: str) -> None:
    with socket.create_connection(_address(impatient), timeout=STARTUP) as sock:
        sock.sendall(b"GET /kv/user/nobody HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 404")
        sock.sendall(b"GET /kv/user/k HTTP/1.1\r\nHo")
        assert _closed_by_server(sock)


def test_a_request_whose_head_arrived_is_not_cut_off(impatient: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fired = threading.Event()
    expired = protocol._HeadTimer.expired

    def recorded(self: protocol._HeadTimer) -> None:
        expired(self)
        fired.set()

    monkeypatch.setattr(protocol._HeadTimer, "expired", recorded)
    body = json.dumps({"value": "slow"}).encode()
    head = f"PUT /kv/user/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    with socket.create_connection(_address(impatient), timeout=STARTUP) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n" + body[:5])
        assert fired.wait(STARTUP)  # the timer ran out while the body was still coming
        sock.sendall(body[5:])
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            assert chunk, "the server closed a request whose head had arrived"
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")


def test_the_protocol_travels_to_worker_processes_and_refuses_a_bad_timeout() -> None:
    made = pickle.loads(pickle.dumps(protocol.http_protocol(2.5)))  # uvicorn spawns workers with its config
    assert made.keywords == {"head_timeout": 2.5}
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="head_timeout"):
            protocol.http_protocol(bad)


# --- the cookie security scheme -------------------------------------------------------------------------------


def test_the_cookie_named_cookie_carries_the_token(url: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        stored = http.put("/kv/user/c", json={"value": 1}, headers={"cookie": f"cookie={TOKEN}"})
        assert stored.status_code == 200, stored.text
        assert http.get("/kv/user/c", headers={"cookie": f"other=1; cookie={TOKEN}"}).json()["data"]["value"] == 1
        assert http.delete("/kv/user/c", headers={"cookie": f"cookie={TOKEN}"}).status_code == 200
        assert http.get(f"/store/{STORE}/kv", headers={"cookie": f"cookie={TOKEN}"}).status_code == 200
        problem(http.get("/kv/user/c", headers={"cookie": "cookie=wrong"}), 401)
        problem(http.get("/kv/user/c", headers={"cookie": f"session={TOKEN}"}), 401)
        problem(http.get(f"/store/{STORE}/kv/c", headers={"cookie": "cookie=narrow"}), 403)
        # An Authorization header decides when there is one.
        both = {"cookie": f"cookie={TOKEN}", "authorization": "Bearer wrong"}
        problem(http.get("/kv/user/c", headers=both), 401)


# --- bodies as strict as the published schema ---------------------------------------------------------------

JSON = {"content-type": "application/json"}
IN_TWO_DAYS = (datetime.now(UTC) + timedelta(days=2)).isoformat()
STRICT_BODIES: list[tuple[str, bytes]] = [
    (f"/store/{STORE}/kv/s", b'{"value": 1, "options": {"expireIn": "60000"}}'),
    (f"/store/{STORE}/kv/s", b'{"value": 1, "options": {"expireIn": true}}'),
    (f"/store/{STORE}/kv/s", b'{"value": 1, "options": {"expireAt": 1893456000}}'),
    (f"/store/{STORE}/kv/s", b'{"value": 1, "options": {"ifNotExists": "true"}}'),
    (f"/store/{STORE}/kv/s", b'{"value": 1, "options": {"overwrite": 1}}'),
    (f"/store/{STORE}/kv/s", b'{"value": 1, "optoins": {"ifNotExists": true}}'),
    (f"/store/{STORE}/kv/s", b'{"value": 1, "value": 2}'),
    (f"/store/{STORE}/kv/s", b'{"value": 1, "options": {"expireIn": 60000, "expireIn": 1}}'),
    (f"/store/{STORE}/kv/s", b'{"value": {"a": 1, "a": 2}}'),
    ("/kv/user/s", b'{"value": 1, "ttl": "60"}'),
    ("/kv/user/s", b'{"value": 1, "ttl": 60.5}'),
    ("/kv/user/s", b'{"value": 1, "ttl": false}'),
    ("/kv/user/s", b'{"value": 1, "tll": 60}'),
    ("/kv/user/s", b'{"value": 1, "ttl": 60, "ttl": 120}'),
    ("/kv/user/s", b'{"value": [{"b": 1, "b": 1}]}'),
]


@pytest.mark.parametrize(("path", "body"), STRICT_BODIES)
def test_a_body_off_the_schema_is_a_422_and_stores_nothing(client: httpx.Client, path: str, body: bytes) -> None:
    refused = problem(client.put(path, content=body, headers=JSON), 422)
    assert refused["error_code"] == 1100, refused
    problem(client.get(path), 404)


def test_duplicate_keys_are_named_in_the_problem(client: httpx.Client) -> None:
    refused = problem(client.put("/kv/user/s", content=b'{"value": {"name": 1, "name": 2}}', headers=JSON), 422)
    assert "duplicate key 'name'" in refused["detail"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (f"/store/{STORE}/kv/ok", {"value": 1, "options": {"expireIn": 60000, "ifNotExists": True}}),
        (f"/store/{STORE}/kv/ok", {"value": 1, "options": {"expireIn": 60000.5, "expireAt": None}}),
        (
            f"/store/{STORE}/kv/ok",
            {"value": 1, "options": {"expireAt": IN_TWO_DAYS}},
        ),
        ("/kv/user/ok", {"value": {"a": {"a": 1}}, "ttl": 60}),
        ("/kv/user/ok", {"value": 1, "ttl": 60.0}),  # a JSON Schema integer: no fraction
    ],
)
def test_bodies_on_the_schema_are_still_taken(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    assert client.put(path, json=body).status_code == 200
    assert client.get(path).status_code == 200


def test_kvstore_serve_passes_the_head_timeout_to_uvicorn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = str(tmp_path / "cli.db")
    captured = _capture_uvicorn(monkeypatch)
    assert run("serve", "--db", db, "--token", "t", "--head-timeout", "2.5").exit_code == 0
    assert captured["http"].keywords == {"head_timeout": 2.5}
    assert run("serve", "--db", db, "--token", "t").exit_code == 0
    assert captured["http"].keywords == {"head_timeout": protocol.DEFAULT_HEAD_TIMEOUT}
    assert run("serve", "--db", db, "--head-timeout", "0").exit_code == 2
