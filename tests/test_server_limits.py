"""Large requests: the body limit leaves nothing stored, the byte budget of large bodies, byte-bounded pages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from kvstore import AsyncKVStore, KVStore
from kvstore.server import create_app
from kvstore.server._budget import LARGE_BODY, BodyBudget, ServiceBusy
from kvstore.server._guard import Guard
from kvstore.server._problems import HTTPProblem
from kvstore.server._store_api import LIST_PAGE_BYTES

from .test_server import _raw_exchange, problem, serve

STORE = "01JBENCH0000000000000000HT"


# --- the budget ----------------------------------------------------------------------------------------------


def test_budget_serves_waiters_in_order_and_gives_back() -> None:
    async def scenario() -> list[str]:
        budget = BodyBudget(100, wait=30)
        order: list[str] = []
        await budget.acquire(60)

        async def take(name: str, size: int) -> None:
            await budget.acquire(size)
            order.append(name)

        first = asyncio.create_task(take("first", 50))
        await asyncio.sleep(0)  # let it queue
        second = asyncio.create_task(take("second", 10))  # would fit now, but waits its turn
        await asyncio.sleep(0)
        assert order == []
        budget.release(60)
        await asyncio.gather(first, second)
        assert budget.free == 40
        budget.release(50)
        budget.release(10)
        assert budget.free == budget.total
        return order

    assert asyncio.run(scenario()) == ["first", "second"]


def test_a_request_over_budget_too_long_is_a_503_with_retry_after() -> None:
    async def scenario() -> HTTPProblem:
        budget = BodyBudget(100, wait=0.01)
        await budget.acquire(100)
        with pytest.raises(ServiceBusy) as refused:
            await budget.acquire(1)
        assert budget.free == 0  # the refused one took nothing
        budget.release(100)
        await budget.acquire(100)  # and left no place in line behind it
        return refused.value

    busy = asyncio.run(scenario())
    assert (busy.status, busy.headers["Retry-After"]) == (503, "1")


def test_a_cancelled_waiter_leaves_the_line() -> None:
    async def scenario() -> int:
        budget = BodyBudget(100, wait=30)
        await budget.acquire(100)
        waiter = asyncio.create_task(budget.acquire(80))
        behind = asyncio.create_task(budget.acquire(20))
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        budget.release(100)
        await behind
        return budget.free

    assert asyncio.run(scenario()) == 80


def test_the_budget_must_hold_the_largest_body() -> None:
    with pytest.raises(ValueError, match="body_budget"):
        Guard(None, 1000, body_budget=999)


def test_large_bodies_wait_for_the_budget_and_small_ones_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the budget held, a large PUT waits in line while a small one is answered; then it goes through."""
    app = create_app(tmp_path / "wait.db")
    budget: BodyBudget = app.fast_path.guard.budget  # type: ignore[attr-defined]
    large = json.dumps({"value": "x" * (LARGE_BODY + 10)}).encode()

    async def scenario() -> tuple[int, int, int]:
        queued = asyncio.Event()
        acquire = budget.acquire

        async def noted(size: int) -> None:
            queued.set()
            await acquire(size)

        monkeypatch.setattr(budget, "acquire", noted)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://kv") as http:
                await acquire(budget.total)  # every byte in use
                pending = asyncio.create_task(http.put(f"/store/{STORE}/kv/large", content=large, headers=_JSON))
                await queued.wait()
                small = await http.put(f"/store/{STORE}/kv/small", json={"value": 1})
                assert not pending.done()  # still in line
                budget.release(budget.total)
                answered = await pending
                budget.wait = 0.01
                await acquire(budget.total)
                busy = await http.put(f"/store/{STORE}/kv/late", content=large, headers=_JSON)
                assert busy.headers["retry-after"] == "1"

                async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: chunked
                    for start in range(0, len(large), 65536):
                        yield large[start : start + 65536]

                busy_streamed = await http.put(f"/store/{STORE}/kv/late", content=streamed(), headers=_JSON)
                assert busy_streamed.status_code == 503
                budget.release(budget.total)
                assert budget.free == budget.total  # the refused ones took nothing, gave nothing back
                return small.status_code, answered.status_code, busy.status_code

    assert asyncio.run(scenario()) == (200, 200, 503)
    with KVStore(tmp_path / "wait.db") as kv:
        assert kv.namespace(STORE).get("late") is None


_JSON = {"content-type": "application/json"}


# --- the body limit ------------------------------------------------------------------------------------------


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    db = tmp_path / "limited.db"
    with serve(create_app(db, max_body_size=4096, max_value_size=1024)) as url:
        yield url, db


def _nothing_stored(db: Path) -> bool:
    with KVStore(db) as kv:
        return kv.namespace("user").list().entries == []


def test_bodies_refused_as_too_large_leave_nothing_stored(limited: tuple[str, Path]) -> None:
    url, db = limited
    head = "PUT /kv/user/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    declared = head + "Content-Length: 10000\r\n\r\n" + '{"value": "' + "x" * 9986 + '"}'
    assert _raw_exchange(url, declared.encode()).startswith(b"HTTP/1.1 413")
    chunk = b"x" * 1000
    chunked = head.encode() + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (len(chunk), chunk) * 5
    assert _raw_exchange(url, chunked).startswith(b"HTTP/1.1 413")
    with httpx.Client(base_url=url) as http:
        too_big_a_value = http.put("/kv/user/big", json={"value": "x" * 2000})  # within the body limit
        assert problem(too_big_a_value, 413)["error_code"] != 3413  # the library's own refusal
        problem(http.get("/kv/user/big"), 404)
    assert _nothing_stored(db)


# --- listing pages bounded by bytes --------------------------------------------------------------------------


def test_a_listing_page_stops_at_its_byte_bound_and_its_cursor_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kvstore.server import _store_api

    monkeypatch.setattr(_store_api, "LIST_PAGE_BYTES", 1000)  # the service's 4 MiB bound, scaled down
    assert LIST_PAGE_BYTES == 4 * 1024 * 1024
    store = AsyncKVStore(tmp_path / "pages.db")
    with serve(create_app(store)) as url, httpx.Client(base_url=url) as http:
        for i in range(6):
            assert http.put(f"/store/{STORE}/kv/p/{i}", json={"value": "v" * 400}).status_code == 200
        keys: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, str | int] = {"prefix": "p/", "limit": 10}
            if cursor is not None:
                params["cursor"] = cursor
            page = http.get(f"/store/{STORE}/kv", params=params).json()
            assert 1 <= len(page["entries"]) <= 2  # two 400-byte values fit in 1000 bytes, three do not
            keys += [entry["key"] for entry in page["entries"]]
            pages += 1
            cursor = page["cursor"]
            if cursor is None:
                break
        assert keys == [f"p/{i}" for i in range(6)]
        assert pages == 3
    asyncio.run(store.close())
