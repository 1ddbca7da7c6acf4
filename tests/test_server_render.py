"""Large GET answers rendered in the offload worker (``kvstore.server._render``): the same bytes as rendering them
here, for either API; corrupt large values fail as they did; small values and refreshes read as ``get`` does."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest

from kvstore import Entry, KVStore
from kvstore._raw import Raw, read_raw
from kvstore.server import _offload, _render, create_app
from kvstore.server._budget import LARGE_BODY
from kvstore.server._entity_api import _answer
from kvstore.server._models import KVEntity
from kvstore.server._store_api import _entry
from kvstore.server._values import to_response
from kvstore.server._views import json_response

from .conftest import FakeClock

STORE = "01JBENCH0000000000000000HT"

LARGE_VALUES: list[Any] = [
    list(range(300_000)),
    {"name": "zoë ✓ \u0000\u001f \"'\\", "items": [{"n": n, "r": n / 7, "s": f"é{n}"} for n in range(40_000)]},
    [b"\x00\xff" * 10, {"blob": b"raw", "deep": [[b"x"], 2**63 - 1, -(2**63), 1e300, -0.0]}, *range(300_000)],
    b"\x01\x02\x03" * 400_000,  # a bytes value: base64, "encoding": "base64"
    "long text ✓ " * 100_000,
]


def _stored_size(value: Any) -> int:
    return len(msgpack.packb(value, use_bin_type=True))


async def _gets(app: Any, paths: list[str]) -> list[httpx.Response]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kv") as http:
            return [await http.get(path) for path in paths]


def _here(entry: Entry) -> tuple[bytes, bytes]:
    """Both APIs' answers for ``entry``, rendered in this process as before."""
    return bytes(json_response(_entry(entry)).body), bytes(json_response(_answer(KVEntity("user"), entry)).body)


@pytest.mark.parametrize("value", LARGE_VALUES, ids=["ints", "objects", "bytes-inside", "bytes", "text"])
def test_a_large_answer_is_the_one_rendered_here(tmp_path: Path, value: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _stored_size(value) > LARGE_BODY  # rendered in the worker
    spliced: list[bytes] = []
    original = _render.spliced

    def splice(model: Any, json: bytes) -> Any:
        spliced.append(json)
        return original(model, json)

    monkeypatch.setattr(_render, "spliced", splice)  # both APIs answer through it (``entry_answer``)
    path = tmp_path / "large.db"
    with KVStore(path) as kv:
        for namespace in (STORE, "user"):
            kv.namespace(namespace).set(
                "large", value, metadata={"note": "ünï", "n": [1, 2.5]}, expire_in=timedelta(days=1)
            )
        store_entry, user_entry = kv.namespace(STORE).get("large"), kv.namespace("user").get("large")
        assert store_entry is not None
        assert user_entry is not None
        raw = read_raw(kv.namespace(STORE), "large", LARGE_BODY)
    assert isinstance(raw, Raw)
    assert raw.entry == store_entry._replace(value=None)
    rendered = asyncio.run(_render.rendered_value(raw.value))
    assert rendered is not None  # the worker rendered it
    assert rendered[1] == ("base64" if isinstance(value, bytes) else "json")
    here = _here(store_entry)[0]
    assert bytes(original(_entry(raw.entry, (None, rendered[1])), rendered[0]).body) == here
    served = asyncio.run(_gets(create_app(path), [f"/store/{STORE}/kv/large", "/kv/user/large"]))
    assert [answer.status_code for answer in served] == [200, 200]
    assert (served[0].content, served[1].content) == (here, _here(user_entry)[1])
    assert served[0].headers["content-length"] == str(len(here))
    assert spliced == [rendered[0], rendered[0]]  # both answers took the worker's JSON


def test_nan_and_infinity_stored_before_render_as_null_as_here(tmp_path: Path) -> None:
    path = tmp_path / "nan.db"
    with KVStore(path) as kv:
        kv.namespace(STORE).set("large", [0.5])
    value = [math.nan, math.inf, -math.inf, *range(300_000)]
    with closing(sqlite3.connect(path)) as conn, conn:  # an entry with no checksum, as another program wrote it
        conn.execute("UPDATE kvstore_entries SET value = ?, checksum = NULL", (msgpack.packb(value),))
    with KVStore(path) as kv:
        entry = kv.namespace(STORE).get("large")
        assert entry is not None
    (served,) = asyncio.run(_gets(create_app(path), [f"/store/{STORE}/kv/large"]))
    assert served.status_code == 200
    assert served.content == _here(entry)[0]
    assert served.content.count(b"null,") >= 3


def test_without_the_worker_the_answer_is_rendered_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "large.db"
    with KVStore(path) as kv:
        kv.namespace(STORE).set("large", LARGE_VALUES[2])
        entry = kv.namespace(STORE).get("large")
        assert entry is not None
    monkeypatch.setattr(_offload._WORKER, "call", lambda *_: (_offload.UNCARRIED, b""))  # as if none could start
    (served,) = asyncio.run(_gets(create_app(path), [f"/store/{STORE}/kv/large"]))
    assert served.status_code == 200
    assert served.content == _here(entry)[0]


@pytest.mark.parametrize("checksum", ["NULL", "checksum"], ids=["undecodable", "checksum-fails"])
def test_a_corrupt_large_value_is_a_corrupt_entry_problem(tmp_path: Path, checksum: str) -> None:
    path = tmp_path / "corrupt.db"
    with KVStore(path) as kv:
        kv.namespace(STORE).set("large", list(range(300_000)))
    damaged = b"\xc1" * (2 * LARGE_BODY)  # 0xc1 is no msgpack type: a value no get can decode
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(f"UPDATE kvstore_entries SET value = ?, checksum = {checksum}", (damaged,))
    (served,) = asyncio.run(_gets(create_app(path), [f"/store/{STORE}/kv/large"]))
    assert served.status_code == 500
    problem = served.json()["errors"][0]
    assert (problem["error_code"], problem["title"]) == (2007, "Corrupt entry")
    assert b"\xc1" not in served.content


def test_small_values_and_refreshes_read_as_get_does(tmp_path: Path, clock: FakeClock) -> None:
    with KVStore(tmp_path / "small.db", clock=clock) as kv:
        kv.set("small", {"a": [1, 2]})
        kv.set("refreshed", list(range(300_000)), expire_in=timedelta(hours=1), refresh_on_access=True)
        for key in ("small", "refreshed"):
            found = read_raw(kv, key, LARGE_BODY)
            assert type(found) is Entry
            assert found == kv.get(key)
        assert read_raw(kv, "missing", LARGE_BODY) is None
        raw = read_raw(kv, "small", 0)  # everything is large above 0 bytes
        assert isinstance(raw, Raw)
        assert msgpack.unpackb(raw.value) == {"a": [1, 2]}


def test_a_response_value_has_every_bytes_value_in_it_as_base64() -> None:
    inner = [4, 5]
    value = [1, b"\x00", {"a": [b"\xff", 2], "b": {"c": 3}}, inner, "s"]
    assert to_response(value) == ([1, "AA==", {"a": ["/w==", 2], "b": {"c": 3}}, [4, 5], "s"], "json")
    assert to_response(b"\x00\x01") == ("AAE=", "base64")
    assert to_response(inner)[0] is inner  # nothing in it to change: shared, not copied
