"""kvstore over HTTP: serve a store with uvicorn and talk to it with nothing but the standard library.

Needs the server extra (``pip install ".[server]"``). The server listens on 127.0.0.1 at a free port.
"""

from __future__ import annotations

import base64
import json
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import uvicorn
from ulid import ULID

from kvstore.server import create_app

TOKEN = "s3cret"


def call(base: str, method: str, path: str, body: Any = None, token: str | None = TOKEN) -> tuple[int, Any]:
    """One request; return the status and the decoded JSON answer (problems included)."""
    request = urllib.request.Request(
        base + path, method=method, data=None if body is None else json.dumps(body).encode()
    )
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


class Server(uvicorn.Server):
    """uvicorn, with an event set once it is listening."""

    ready = threading.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


with tempfile.TemporaryDirectory() as tmp:
    server = Server(uvicorn.Config(create_app(Path(tmp) / "app.db", tokens=[TOKEN]), port=0, log_level="warning"))
    thread = threading.Thread(target=server.run)
    thread.start()
    server.ready.wait(30)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        store = str(ULID())  # a store is a ULID; keys may contain '/'
        status, result = call(base, "PUT", f"/store/{store}/kv/products/123", {"value": {"name": "lamp"}})
        print("SetKV:", status, result)
        stale = {"value": 1, "options": {"ifVersionstamp": "0" * 20}}
        print("stale SetKV:", call(base, "PUT", f"/store/{store}/kv/products/123", stale)[1])

        logo = bytes([0x89, 0x50, 0x4E, 0x47, 0x00, 0xFF])  # bytes travel as base64 beside "encoding"
        body = {
            "value": base64.b64encode(logo).decode(),
            "encoding": "base64",
            "content_type": "image/png",
            "ttl": 3600,
        }
        print("entity PUT:", call(base, "PUT", "/kv/user/logo", body)[1]["data"]["content_type"])
        data = call(base, "GET", "/kv/user/logo")[1]["data"]
        print("bytes round trip:", base64.b64decode(data["value"]) == logo)

        status, problem = call(base, "GET", "/kv/user/logo", token=None)
        print("without a token:", status, problem["errors"][0]["title"])
    finally:
        server.should_exit = True
        thread.join()
