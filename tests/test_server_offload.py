"""Large JSON bodies parsed in a worker process (``kvstore.server._offload``): the value is the one parsing here
gives, refusals are refusals, what msgpack cannot carry and a worker that died fall back to parsing here, and a
large PUT through the service stores its value."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from kvstore import KVStore
from kvstore.server import _fast, _offload, _offload_worker, create_app
from kvstore.server._budget import LARGE_BODY

STORE = "01JBENCH0000000000000000HT"

DOCUMENTS = [
    {"value": list(range(1000))},
    {"value": {"name": "zoë ✓", "nested": [[1.5, -2.25e-300, 1e300], {"a": None, "b": True, "c": False}]}},
    {"value": [2**63 - 1, -(2**63), 2**64 - 1, 0.1, "", "\u0000\u001f"], "encoding": "json"},
    {"value": "x" * 5000, "options": {"ifNotExists": True}},
]


def parse(body: bytes) -> Any:
    return asyncio.run(_offload.parse(_fast._decode, body))


def same(left: Any, right: Any) -> bool:
    """Equal, types and key order included (1, 1.0 and True are equal in Python, not the same JSON)."""
    return bool(left == right and repr(left) == repr(right))


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_worker_parses_as_parsing_here_does(document: dict[str, Any]) -> None:
    body = json.dumps(document, ensure_ascii=False).encode()
    assert _offload_worker.convert(_fast._decode, body)[0] == _offload.PARSED  # carried as msgpack
    assert same(parse(body), _fast._decode(body))


@pytest.mark.parametrize("body", [b'{"value": NaN}', b'{"value": [1, 2', b'{"value": 1, "value": 2}', b"\xff\xfe{"])
def test_a_body_the_decoder_refuses_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each decoder error is a ValueError of its own kind
        _fast._decode(body)
    with pytest.raises(ValueError):  # noqa: PT011 - the message is the decoder's, its type a plain ValueError
        parse(body)


@pytest.mark.parametrize(
    "body",
    [b'{"value": 123456789012345678901234567890}', b'{"value": -99999999999999999999}', b'{"value": "\\ud800"}'],
)
def test_what_msgpack_cannot_carry_is_parsed_here(body: bytes) -> None:
    assert _offload_worker.convert(_fast._decode, body)[0] == _offload.UNCARRIED
    assert same(parse(body), _fast._decode(body))


def test_a_worker_that_died_is_replaced() -> None:
    body = json.dumps(DOCUMENTS[0]).encode()
    assert same(parse(body), _fast._decode(body))
    worker = _offload._WORKER._process
    assert worker is not None
    assert worker.poll() is None
    worker.kill()  # as an out-of-memory kill would
    worker.wait()
    for _ in range(2):  # the first may find the worker dead (and parse here), the next gets a new one
        assert same(parse(body), _fast._decode(body))
    replaced = _offload._WORKER._process
    assert replaced is not None
    assert replaced.pid != worker.pid
    assert replaced.poll() is None


def test_the_worker_replies_to_a_request_as_convert_does() -> None:
    body = json.dumps(DOCUMENTS[1]).encode()
    assert _offload._WORKER.convert(_fast._decode, body) == _offload_worker.convert(_fast._decode, body)
    refused = b'{"value": [1, 2'
    assert _offload._WORKER.convert(_fast._decode, refused) == _offload_worker.convert(_fast._decode, refused)


def test_a_large_put_through_the_service_stores_its_value(tmp_path: Path) -> None:
    value = {"items": [{"n": index, "name": f"item {index}", "ratio": index / 7} for index in range(40_000)]}
    body = json.dumps({"value": value}).encode()
    assert len(body) > LARGE_BODY  # the offloaded path

    async def scenario(app: Any) -> tuple[int, int]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://kv") as http:
                stored = await http.put(f"/store/{STORE}/kv/large", content=body, headers=_JSON)
                refused = await http.put(f"/store/{STORE}/kv/bad", content=body[:-1] + b" NaN}", headers=_JSON)
                return stored.status_code, refused.status_code

    stored, refused = asyncio.run(scenario(create_app(tmp_path / "large.db")))
    assert (stored, refused) == (200, 422)
    with KVStore(tmp_path / "large.db") as kv:
        entry = kv.namespace(STORE).get("large")
        assert entry is not None
        assert same(entry.value, value)
        assert kv.namespace(STORE).get("bad") is None


_JSON = {"content-type": "application/json"}
