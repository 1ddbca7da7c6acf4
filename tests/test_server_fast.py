"""The fast path (kvstore/server/_fast.py) answers exactly as the FastAPI routes do, errors included.

Two apps over two stores driven by the same fake clock get the same requests, one with the fast path and
one without it: every answer (status, body, the headers that matter) must be the same, byte for byte.
"""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from kvstore.server import _fast as fast
from kvstore.server import create_app
from kvstore.server._budget import LARGE_BODY

from .conftest import FakeClock
from .test_server import AUTH, TOKEN, serve

STORE = "01JBENCH0000000000000000HT"
JSON = {"content-type": "application/json"}

# (method, path, body or None, extra headers): valid requests of the four hot operations, and each way
# one can be off: a parameter off its pattern, a body that is not JSON or not valid, another content type.
REQUESTS: list[tuple[str, str, Any, dict[str, str]]] = [
    ("PUT", f"/store/{STORE}/kv/products/1", {"value": {"name": "lamp"}, "options": {"metadata": {"a": 1}}}, {}),
    ("GET", f"/store/{STORE}/kv/products/1", None, {}),
    ("PUT", f"/store/{STORE.lower()}/kv/products/1", {"value": 2, "options": {"ifNotExists": True}}, {}),
    ("PUT", f"/store/{STORE}/kv/b", {"value": base64.b64encode(b"\x00\xff").decode(), "encoding": "base64"}, {}),
    ("GET", f"/store/{STORE}/kv/b", None, {}),
    ("GET", f"/store/{STORE}/kv/absent", None, {}),
    ("PUT", f"/store/{STORE}/kv/k", {"value": 1, "options": {"expireIn": 5}}, {}),
    ("PUT", f"/store/{STORE}/kv/k", {"value": 1, "options": {"unknown": 5}}, {}),
    ("PUT", f"/store/{STORE}/kv/k", {"no_value": 1}, {}),
    ("PUT", f"/store/{STORE}/kv/k", b'{"value": NaN}', {}),
    ("PUT", f"/store/{STORE}/kv/k", b'{"value": ', {}),
    ("PUT", f"/store/{STORE}/kv/k", b"[1, 2]", {}),
    ("PUT", f"/store/{STORE}/kv/k", b'{"value": 1}', {"content-type": "text/plain"}),
    ("PUT", f"/store/{STORE}/kv/k", {"value": "x", "encoding": "base64"}, {}),
    ("PUT", f"/store/{STORE}/kv/a//b", {"value": 1}, {}),
    ("PUT", "/store/not-a-ulid/kv/k", {"value": 1}, {}),
    ("GET", "/store/" + "8" * 26 + "/kv/k", None, {}),
    ("GET", f"/store/{STORE}/kv/", None, {}),
    ("PUT", "/kv/user/alice", {"value": {"email": "a@example.com"}, "ttl": 3600}, {}),
    ("PUT", "/kv/event/e", json.dumps({"value": {"kind": "click"}}).encode(), {"content-type": "application/x+json"}),
    ("GET", "/kv/user/alice", None, {}),
    ("GET", "/kv/event/e", None, {}),
    ("GET", "/kv/user/nobody", None, {}),
    ("PUT", "/kv/user/x", {"value": 1, "ttl": 59}, {}),
    ("PUT", "/kv/order/x", {"value": 1}, {}),
    ("PUT", "/kv/user/a.b", {"value": 1}, {}),
    ("GET", "/kv/user/" + "k" * 257, None, {}),
    ("PUT", "/kv/user/big", {"value": "x" * 5000}, {}),
    ("GET", "/kv/user/alice", b"a body", {}),
    ("GET", "/kv/user/alice", None, {"authorization": "Bearer wrong"}),
    ("PUT", f"/store/{STORE}/kv/k", {"value": 1}, {"authorization": ""}),
    # Bodies looser than the published schema, and the seed's cookie scheme.
    ("PUT", f"/store/{STORE}/kv/k", {"value": 1, "options": {"expireIn": "60000"}}, {}),
    ("PUT", f"/store/{STORE}/kv/k", {"value": 1, "optoins": {}}, {}),
    ("PUT", f"/store/{STORE}/kv/k", b'{"value": 1, "value": 2}', {}),
    ("PUT", f"/store/{STORE}/kv/k", b'{"value": {"a": NaN, "a": 1}}', {}),
    ("PUT", "/kv/user/x", {"value": 1, "ttl": "60"}, {}),
    ("PUT", "/kv/user/x", b'{"value": 1, "ttl": 60, "ttl": 61}', {}),
    ("PUT", "/kv/user/x", {"value": 1, "extra": True}, {}),
    ("PUT", "/kv/user/c", {"value": 1}, {"authorization": "", "cookie": f"cookie={TOKEN}"}),
    ("GET", "/kv/user/c", None, {"authorization": "", "cookie": f"cookie={TOKEN}"}),
    ("GET", "/kv/user/c", None, {"authorization": "", "cookie": "cookie=wrong"}),
    ("GET", f"/store/{STORE}/kv/a%0Db", None, {}),
    ("GET", f"/store/{STORE}/kv/a%0Ab", None, {}),
]


def _exchange(http: httpx.Client, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[Any, ...]:
    content = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    sent = {**AUTH, **JSON, **headers} if content is not None else {**AUTH, **headers}
    answer = http.request(method, path, content=content, headers={k: v for k, v in sent.items() if v})
    kept = {name: answer.headers.get(name) for name in ("content-type", "www-authenticate", "allow")}
    return answer.status_code, answer.content, kept


@pytest.fixture
def pair(tmp_path: Path) -> list[FastAPI]:
    apps = []
    for name in ("fast", "routed"):
        app = create_app(tmp_path / f"{name}.db", tokens=[TOKEN], max_body_size=4096, clock=FakeClock())
        if name == "routed":
            app.fast_path = None  # type: ignore[attr-defined]
        apps.append(app)
    return apps


def test_the_fast_path_answers_as_the_routes_do(pair: list[FastAPI], monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[str] = []
    route = fast.FastPath.route

    def counted(self: fast.FastPath, scope: Any) -> Any:
        handler = route(self, scope)
        if handler is not None:
            taken.append(scope["path"])
        return handler

    monkeypatch.setattr(fast.FastPath, "route", counted)
    with (
        serve(pair[0]) as fast_url,
        serve(pair[1]) as routed_url,
        httpx.Client(base_url=fast_url) as one,
        httpx.Client(base_url=routed_url) as other,
    ):
        for request in REQUESTS:
            assert _exchange(one, *request) == _exchange(other, *request), request
    assert f"/store/{STORE}/kv/products/1" in taken  # the fast path did answer the well-formed ones
    assert "/kv/order/x" not in taken


def test_a_large_body_is_parsed_off_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []
    validated = fast._validated  # a large body's JSON is parsed in a worker process, its model in a thread

    def recorded(model: Any, document: Any) -> Any:
        threads.append(threading.current_thread().name)
        return validated(model, document)

    monkeypatch.setattr(fast, "_validated", recorded)
    with serve(create_app(tmp_path / "big.db")) as url, httpx.Client(base_url=url, timeout=60) as http:
        assert http.put("/kv/user/small", json={"value": "x"}).status_code == 200
        large = {"value": "y" * (LARGE_BODY + 1)}
        assert http.put("/kv/user/large", json=large).status_code == 200
        assert http.get("/kv/user/large").json()["data"]["value"] == large["value"]
    assert threads[0] == "uvicorn"  # a small body is parsed on the loop (serve() runs it in this thread)
    assert threads[1] != "uvicorn"
