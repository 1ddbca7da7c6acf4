"""The HTTP service, served for real: uvicorn on 127.0.0.1 (port 0) in a thread, httpx as the client."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount
from ulid import ULID

from kvstore import (
    AsyncKVStore,
    AsyncNamespace,
    AtomicReusedError,
    ForkedStoreError,
    StoreBusyError,
    StoreClosedError,
    UsageError,
)
from kvstore.server import Token, _render, create_app, create_router

TOKEN = "secret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STARTUP = 30.0  # seconds uvicorn may take to start or stop; only a hang reaches it


class _Server(uvicorn.Server):
    """A uvicorn server that signals an event once its startup has finished (or failed)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.startup_done = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.startup_done.set()


@contextmanager
def serve(app: Any, **options: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 and an ephemeral port (and uvicorn ``options``); yield its base URL."""
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", **options))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        assert server.startup_done.wait(STARTUP), "uvicorn did not start"
        assert server.started, "uvicorn failed to start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(STARTUP)
        assert not thread.is_alive()


@pytest.fixture
def base_url(shared_target: str) -> Iterator[str]:
    """The service on a file store and on PostgreSQL."""
    app = create_app(shared_target, tokens=[TOKEN, Token("narrow", frozenset({"user"}))], max_body_size=4096)
    with serve(app) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=30) as http:
        yield http


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert that ``response`` is the problem-details shape with ``status``; return its first problem."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["ok"] is False
    assert body["errors"]
    for error in body["errors"]:
        assert set(error) == {"type", "status", "title", "detail", "instance", "error_code"}
        assert error["status"] == status
        assert error["instance"] == response.request.url.raw_path.split(b"?")[0].decode()  # as sent
        assert len(error["title"]) >= 5
        assert len(error["detail"]) >= 5
        assert isinstance(error["error_code"], int)
    first: dict[str, Any] = body["errors"][0]
    return first


def test_importing_kvstore_imports_no_optional_layer() -> None:
    probe = "import sys, kvstore, json; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {})))"
    names = ("fastapi", "uvicorn", "click", "starlette", "pydantic", "httpx")
    done = subprocess.run([sys.executable, "-c", probe.format(set(names))], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []


# --- the store API (000) -------------------------------------------------------------------------------------


def test_set_get_list_delete_on_a_ulid_store(client: httpx.Client) -> None:
    store = str(ULID())
    first = client.put(f"/store/{store}/kv/products/123", json={"value": {"name": "lamp"}, "options": {}})
    assert first.status_code == 200
    assert first.json()["ok"] is True
    assert first.json()["committed"] is True
    stamp = first.json()["versionstamp"]
    assert len(stamp) == 20

    entry = client.get(f"/store/{store}/kv/products/123").json()
    assert entry["key"] == "products/123"
    assert (entry["value"], entry["encoding"], entry["versionstamp"]) == ({"name": "lamp"}, "json", stamp)
    assert entry["contentType"] == "application/json"
    assert entry["expiresAt"] is None

    options = {"ifVersionstamp": stamp, "expireIn": 60_000, "metadata": {"by": "test"}, "refreshOnAccess": True}
    second = client.put(f"/store/{store}/kv/products/123", json={"value": 2, "options": options}).json()
    assert second["committed"] is True
    assert second["versionstamp"] > stamp
    again = client.get(f"/store/{store}/kv/products/123").json()
    assert again["metadata"] == {"by": "test"}
    assert again["expiresAt"] is not None

    for i in range(5):
        client.put(f"/store/{store}/kv/items/{i}", json={"value": i})
    page = client.get(f"/store/{store}/kv", params={"prefix": "items/", "limit": 3}).json()
    assert [e["key"] for e in page["entries"]] == ["items/0", "items/1", "items/2"]
    rest = client.get(f"/store/{store}/kv", params={"prefix": "items/", "limit": 3, "cursor": page["cursor"]}).json()
    assert [e["key"] for e in rest["entries"]] == ["items/3", "items/4"]
    assert rest["cursor"] is None

    assert client.delete(f"/store/{store}/kv/products/123").json() == {"ok": True}
    problem(client.get(f"/store/{store}/kv/products/123"), 404)
    problem(client.delete(f"/store/{store}/kv/products/123"), 404)


def test_a_failed_condition_is_200_with_ok_false_and_writes_nothing(client: httpx.Client) -> None:
    store = str(ULID())
    stamp = client.put(f"/store/{store}/kv/k", json={"value": 1}).json()["versionstamp"]
    stale = client.put(f"/store/{store}/kv/k", json={"value": 2, "options": {"ifVersionstamp": "0" * 20}})
    assert stale.status_code == 200
    assert stale.json() == {"versionstamp": stamp, "committed": False, "ok": False}
    exists = client.put(f"/store/{store}/kv/k", json={"value": 2, "options": {"ifNotExists": True}}).json()
    assert exists == {"versionstamp": stamp, "committed": False, "ok": False}
    absent = client.put(f"/store/{store}/kv/new", json={"value": 2, "options": {"ifVersionstamp": "0" * 20}}).json()
    assert absent == {"committed": False, "ok": False}  # no current versionstamp: the field is left out
    kept = client.put(f"/store/{store}/kv/k", json={"value": 3, "options": {"overwrite": False}}).json()
    assert kept == {"versionstamp": stamp, "committed": False, "ok": True}
    assert client.get(f"/store/{store}/kv/k").json()["value"] == 1


def test_a_stale_delete_is_409_and_a_matching_one_deletes(client: httpx.Client) -> None:
    store = str(ULID())
    stamp = client.put(f"/store/{store}/kv/k", json={"value": 1}).json()["versionstamp"]
    conflict = problem(client.delete(f"/store/{store}/kv/k", params={"ifVersionstamp": "0" * 20}), 409)
    assert conflict["error_code"] == 3409
    assert client.delete(f"/store/{store}/kv/k", params={"ifVersionstamp": stamp}).json() == {"ok": True}


def test_a_conditional_delete_is_one_atomic_commit(client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    store = str(ULID())
    stamp = client.put(f"/store/{store}/kv/k", json={"value": 1}).json()["versionstamp"]

    async def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a conditional delete reads and deletes only inside its atomic commit")

    # A delete-then-get would reach these (and answer 500); the atomic's failed check needs neither.
    monkeypatch.setattr(AsyncNamespace, "get", refuse)
    monkeypatch.setattr(AsyncNamespace, "delete", refuse)
    conflict = problem(client.delete(f"/store/{store}/kv/k", params={"ifVersionstamp": "0" * 20}), 409)
    assert conflict["error_code"] == 3409
    assert stamp in conflict["detail"]  # the versionstamp the failed check found
    absent = problem(client.delete(f"/store/{store}/kv/nothing", params={"ifVersionstamp": stamp}), 404)
    assert absent["error_code"] == 3404
    assert client.delete(f"/store/{store}/kv/k", params={"ifVersionstamp": stamp}).json() == {"ok": True}
    assert problem(client.delete(f"/store/{store}/kv/k", params={"ifVersionstamp": stamp}), 404)["error_code"] == 3404
    bad = problem(client.delete(f"/store/{store}/kv/k", params={"ifVersionstamp": "not-a-stamp"}), 422)
    assert bad["error_code"] == 1108
    monkeypatch.undo()
    problem(client.get(f"/store/{store}/kv/k"), 404)


def test_store_names_are_ulids_in_any_case(client: httpx.Client) -> None:
    store = str(ULID())
    client.put(f"/store/{store.lower()}/kv/k", json={"value": "same store"})
    assert client.get(f"/store/{store}/kv/k").json()["value"] == "same store"
    assert problem(client.get("/store/not-a-ulid/kv/k"), 422)["error_code"] == 1100
    assert problem(client.get("/store/" + "8" * 26 + "/kv/k"), 422)["detail"].startswith("path.store")


def test_library_validation_errors_keep_their_codes(client: httpx.Client) -> None:
    store = str(ULID())
    assert problem(client.put(f"/store/{store}/kv/a//b", json={"value": 1}), 422)["error_code"] == 1101
    options: dict[str, Any] = {"expireIn": 59_999}
    assert problem(client.put(f"/store/{store}/kv/k", json={"value": 1, "options": options}), 422)["error_code"] == 1105
    options = {"ifNotExists": True, "ifVersionstamp": "0" * 20}
    assert problem(client.put(f"/store/{store}/kv/k", json={"value": 1, "options": options}), 422)["error_code"] == 1106
    unknown = problem(client.put(f"/store/{store}/kv/k", json={"value": 1, "options": {"expire_in": 1}}), 422)
    assert "expire_in" in unknown["detail"]
    assert problem(client.get(f"/store/{store}/kv", params={"cursor": "junk"}), 422)["error_code"] == 1109
    assert problem(client.get(f"/store/{store}/kv", params={"limit": 0}), 422)["error_code"] == 1100
    naive = {"expireAt": "2030-01-01T00:00:00"}
    assert problem(client.put(f"/store/{store}/kv/k", json={"value": 1, "options": naive}), 422)["error_code"] == 1105
    nan = client.put(f"/store/{store}/kv/k", content=b'{"value": NaN}', headers={"content-type": "application/json"})
    assert problem(nan, 422)["error_code"] == 1103
    broken = client.put(f"/store/{store}/kv/k", content=b'{"value": ', headers={"content-type": "application/json"})
    problem(broken, 422)


# --- the entity API (004) ------------------------------------------------------------------------------------


def test_entity_put_get_delete(client: httpx.Client) -> None:
    body = {"value": {"email": "a@example.com"}, "ttl": 3600, "metadata": {"schema": "user/v1"}}
    stored = client.put("/kv/user/alice", json=body)
    assert stored.status_code == 200
    data = stored.json()["data"]
    assert stored.json()["ok"] is True
    assert (data["entity"], data["key"], data["created"], data["content_type"]) == (
        "user",
        "alice",
        True,
        "application/json",
    )
    assert data["expires_at"] is not None
    assert data["size_bytes"] > 0
    assert client.put("/kv/user/alice", json={"value": "again"}).json()["data"]["created"] is False

    got = client.get("/kv/user/alice").json()["data"]
    assert (got["value"], got["encoding"], got["content_type"]) == ("again", "json", "text/plain; charset=utf-8")
    assert got["expires_at"] is None  # a set replaces the whole entry: no TTL now
    problem(client.get("/kv/event/alice"), 404)  # another entity, another namespace
    assert client.delete("/kv/user/alice").json() == {
        "ok": True,
        "data": {"entity": "user", "key": "alice", "deleted": True},
    }
    problem(client.delete("/kv/user/alice"), 404)


@pytest.mark.parametrize(("ttl", "status"), [(59, 422), (60, 200), (31_536_000, 200), (31_536_001, 422)])
def test_entity_ttl_bounds(client: httpx.Client, ttl: int, status: int) -> None:
    assert client.put("/kv/event/e1", json={"value": 1, "ttl": ttl}).status_code == status


def test_entity_content_type_from_body_or_header(client: httpx.Client) -> None:
    from_body = client.put("/kv/event/a", json={"value": "<b>hi</b>", "content_type": "text/html"})
    assert from_body.json()["data"]["content_type"] == "text/html"
    custom = "application/vnd.acme.event+json"
    payload = json.dumps({"value": {"kind": "click"}})
    from_header = client.put("/kv/event/b", content=payload, headers={"content-type": custom})
    assert from_header.json()["data"]["content_type"] == custom
    plain = client.put("/kv/event/c", json={"value": {"kind": "click"}})
    assert plain.json()["data"]["content_type"] == "application/json"
    assert problem(client.put("/kv/event/d", json={"value": 1, "content_type": "nonsense"}), 422)["error_code"] == 1107


def test_entity_path_rules(client: httpx.Client) -> None:
    assert "path.entity" in problem(client.put("/kv/order/x", json={"value": 1}), 422)["detail"]
    assert "path.key" in problem(client.put("/kv/user/a.b", json={"value": 1}), 422)["detail"]
    assert client.put("/kv/user/" + "k" * 256, json={"value": 1}).status_code == 200
    problem(client.put("/kv/user/" + "k" * 257, json={"value": 1}), 422)


# --- binary values -------------------------------------------------------------------------------------------


def test_bytes_round_trip_byte_for_byte_through_both_apis(client: httpx.Client) -> None:
    blob = bytes(range(256)) * 3 + b"\x00\xff\xfe"
    encoded = base64.b64encode(blob).decode()
    store = str(ULID())
    client.put(f"/store/{store}/kv/blob", json={"value": encoded, "encoding": "base64"})
    entry = client.get(f"/store/{store}/kv/blob").json()
    assert entry["encoding"] == "base64"
    assert entry["contentType"] == "application/octet-stream"
    assert base64.b64decode(entry["value"]) == blob
    assert entry["sizeBytes"] > len(blob)  # msgpack framing

    body = {"value": encoded, "encoding": "base64", "content_type": "image/png"}
    assert client.put("/kv/user/avatar", json=body).json()["data"]["content_type"] == "image/png"
    got = client.get("/kv/user/avatar").json()["data"]
    assert (got["encoding"], base64.b64decode(got["value"])) == ("base64", blob)

    # What a GET returns can be written back as it is.
    client.put("/kv/user/copy", json={"value": got["value"], "encoding": got["encoding"]})
    assert client.get("/kv/user/copy").json()["data"]["value"] == encoded
    for bad in ("not base64!", "AAé="):  # a non-ASCII one was a 500 until schemathesis found it
        assert problem(client.put("/kv/user/bad", json={"value": bad, "encoding": "base64"}), 422)["error_code"] == 1103


def test_values_json_cannot_hold_read_back_without_a_server_error(tmp_path: Path) -> None:
    store = AsyncKVStore(tmp_path / "python.db")

    async def write_from_python() -> None:
        users = await store.namespace("user")
        await users.set("odd", {"nan": 0.5, "raw": b"\x01\x02", "list": [b"\xff"]})

    asyncio.run(write_from_python())
    with closing(sqlite3.connect(tmp_path / "python.db")) as conn, conn:  # a NaN stored before they were refused
        columns = {column[1] for column in conn.execute("PRAGMA table_info(kvstore_entries)")}
        checksum = ", checksum = NULL" if "checksum" in columns else ""
        stored = msgpack.packb({"nan": float("nan"), "raw": b"\x01\x02", "list": [b"\xff"]})
        conn.execute(f"UPDATE kvstore_entries SET value = ?{checksum} WHERE key = 'odd'", (stored,))
    with serve(create_app(store)) as url, httpx.Client(base_url=url) as http:
        data = http.get("/kv/user/odd").json()["data"]
    assert (data["encoding"], data["value"]) == ("json", {"nan": None, "raw": "AQI=", "list": ["/w=="]})
    asyncio.run(store.close())


# --- errors, auth and limits ---------------------------------------------------------------------------------


def test_framework_errors_are_problems(client: httpx.Client) -> None:
    assert problem(client.get("/no/such/route"), 404)["error_code"] == 3404
    wrong_method = client.post("/kv/user/alice", json={"value": 1})
    assert problem(wrong_method, 405)["error_code"] == 3405
    assert "PUT" in wrong_method.headers["allow"]
    problem(client.put("/kv/user/x", json={"no_value": 1}), 422)
    problem(client.put("/kv/user/x", content=b"[1, 2]", headers={"content-type": "application/json"}), 422)


def test_unexpected_and_storage_errors_are_problems(client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    async def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom: a bug, not the client's fault")

    async def busy(*_args: object, **_kwargs: object) -> None:
        raise StoreBusyError("no write lock within the busy timeout")

    monkeypatch.setattr(_render, "get_raw", explode)  # the service's read (kvstore._raw)
    unexpected = problem(client.get("/kv/user/x"), 500)
    assert "boom" not in unexpected["detail"]  # no internals leak
    monkeypatch.setattr(AsyncNamespace, "set", busy)
    assert problem(client.put("/kv/user/x", json={"value": 1}), 503)["error_code"] == 2001


def test_usage_errors_keep_their_status_and_code(client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    for cls, status, code in (
        (UsageError, 409, 1300),
        (StoreClosedError, 503, 1301),
        (AtomicReusedError, 409, 1302),
        (ForkedStoreError, 409, 1303),
    ):

        async def misuse(*_args: object, _cls: type[UsageError] = cls, **_kwargs: object) -> None:
            raise _cls("the store was used the wrong way")

        monkeypatch.setattr(_render, "get_raw", misuse)  # the service's read (kvstore._raw)
        found = problem(client.get("/kv/user/x"), status)
        assert (found["error_code"], found["type"]) == (code, cls("x" * 5).type), cls.__name__


def test_a_store_closed_under_the_service_is_a_503_problem(tmp_path: Path) -> None:
    store = AsyncKVStore(tmp_path / "closed.db")
    ulid = str(ULID())
    with serve(create_app(store)) as url, httpx.Client(base_url=url) as http:
        assert http.put("/kv/user/k", json={"value": 1}).status_code == 200
        assert http.put(f"/store/{ulid}/kv/k", json={"value": 1}).status_code == 200
        asyncio.run(store.close())  # the app does not own this store: closing it is the caller's doing
        for answer in (
            http.get("/kv/user/k"),  # a namespace the service already had a view of
            http.get(f"/store/{ulid}/kv/k"),
            http.delete(f"/store/{ulid}/kv/k", params={"ifVersionstamp": "0" * 20}),
            http.get(f"/store/{ULID()}/kv/k"),  # a namespace it had not seen
        ):
            closed = problem(answer, 503)
            assert (closed["error_code"], closed["type"]) == (1301, "urn:kvstore:problem:store-closed")


def test_bearer_tokens(base_url: str) -> None:
    store = str(ULID())
    with httpx.Client(base_url=base_url) as anonymous:
        missing = anonymous.get(f"/store/{store}/kv/k")
        assert problem(missing, 401)["error_code"] == 3401
        assert missing.headers["www-authenticate"] == 'Bearer realm="kvstore"'
        wrong = anonymous.get(f"/store/{store}/kv/k", headers={"Authorization": "Bearer not-it"})
        problem(wrong, 401)
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        problem(anonymous.get(f"/store/{store}/kv/k", headers={"Authorization": f"Basic {TOKEN}"}), 401)
        assert anonymous.get("/openapi.json").status_code == 200  # the document is public

        narrow = {"Authorization": "Bearer narrow"}
        assert anonymous.put("/kv/user/k", json={"value": 1}, headers=narrow).status_code == 200
        assert problem(anonymous.put("/kv/event/k", json={"value": 1}, headers=narrow), 403)["error_code"] == 3403
        problem(anonymous.get(f"/store/{store}/kv/k", headers=narrow), 403)
        problem(anonymous.get(f"/store/{store}/kv", headers=narrow), 403)


def test_tokens_limited_to_stores_match_ulids_in_any_case(tmp_path: Path) -> None:
    store = str(ULID())
    app = create_app(tmp_path / "t.db", tokens=[Token("t", frozenset({store.lower()}))])
    with serve(app) as url, httpx.Client(base_url=url, headers={"Authorization": "Bearer t"}) as http:
        assert http.put(f"/store/{store}/kv/k", json={"value": 1}).status_code == 200
        problem(http.get(f"/store/{ULID()}/kv/k"), 403)


def _raw_exchange(base_url: str, request: bytes) -> bytes:
    """Send ``request`` on a raw socket and read the status line of the answer."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=STARTUP) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(base_url: str) -> None:
    head = (
        f"PUT /kv/user/big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
    )
    # No body byte is sent: an answer proves the server did not wait for the body.
    assert _raw_exchange(base_url, head.encode()).startswith(b"HTTP/1.1 413")


def test_a_streamed_body_is_refused_once_it_passes_the_limit(base_url: str) -> None:
    head = (
        f"PUT /kv/user/big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 1000
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5))  # 5000 > 4096, never terminated
    assert _raw_exchange(base_url, head.encode() + chunks).startswith(b"HTTP/1.1 413")


def test_a_body_within_the_limit_is_accepted(client: httpx.Client) -> None:
    assert client.put("/kv/user/ok", json={"value": "x" * 3000}).status_code == 200
    problem(client.put("/kv/user/big", json={"value": "x" * 5000}), 413)


# --- embedding -----------------------------------------------------------------------------------------------


def test_the_router_keeps_its_problems_and_auth_inside_another_app(tmp_path: Path) -> None:
    store = AsyncKVStore(tmp_path / "host.db")
    host = FastAPI(title="host")

    @host.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "fine"}

    host.include_router(create_router(store, tokens=[TOKEN]), prefix="/kv-api")
    with serve(host) as url, httpx.Client(base_url=url, headers=AUTH) as http:
        assert http.get("/health").json() == {"status": "fine"}
        assert http.put("/kv-api/kv/user/u", json={"value": 1}).status_code == 200
        problem(http.get("/kv-api/kv/user/nobody"), 404)
        problem(http.put("/kv-api/kv/user/u", json={"ttl": 1}), 422)
        problem(httpx.get(f"{url}/kv-api/kv/user/u"), 401)
        spec = http.get("/openapi.json").json()
        assert spec["paths"]["/kv-api/store/{store}/kv/{key}"]["put"]["operationId"] == "SetKV"
    asyncio.run(store.close())


def test_the_app_mounts_under_a_path_in_a_starlette_app(tmp_path: Path) -> None:
    host = Starlette(routes=[Mount("/kv", app=create_app(tmp_path / "mounted.db"))])
    with serve(host) as url, httpx.Client(base_url=url) as http:
        assert http.put("/kv/kv/event/e", json={"value": [1, 2]}).status_code == 200
        assert http.get("/kv/kv/event/e").json()["data"]["value"] == [1, 2]
        assert http.get("/kv/openapi.json").json()["info"]["title"] == "kvstore"


def test_a_database_that_cannot_open_stops_the_server_from_starting(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    server = _Server(uvicorn.Config(create_app(junk), host="127.0.0.1", port=0, log_level="critical"))
    exits: list[object] = []

    def run() -> None:
        try:
            server.run()
        except SystemExit as stop:  # uvicorn exits when the app's startup fails
            exits.append(stop.code)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert server.startup_done.wait(STARTUP)
    thread.join(STARTUP)
    assert exits in ([], [3])
    assert not server.started


def test_the_http_quickstart_example_runs() -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "http_quickstart.py"
    done = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "SetKV: 200 {'versionstamp':" in done.stdout
    assert "stale SetKV: {'versionstamp':" in done.stdout
    assert "'ok': False}" in done.stdout
    assert "bytes round trip: True" in done.stdout
    assert "without a token: 401 Unauthorized" in done.stdout
