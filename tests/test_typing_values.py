"""The typing of values: common reads and writes type-check under ``mypy --strict``, and wrong values do not.

mypy checks this file with the rest of tests/ (strict, so ``warn_unused_ignores``): every line marked
``# type: ignore[...]`` must stay a type error, or mypy fails on an unused ignore, and every unmarked line
must type-check. pytest runs the same lines, so what mypy refuses is shown refused at run time too.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TypedDict

import pytest

from kvstore import AsyncKVStore, InvalidValueError, KVStore


class Product(TypedDict):
    name: str
    stock: int


def test_a_read_value_is_used_without_isinstance(kv: KVStore) -> None:
    kv.set("products/123", {"name": "lamp", "stock": 3})
    entry = kv.get("products/123")
    assert entry is not None
    stock: int = entry.value["stock"]  # the README's read: no isinstance first
    assert stock == 3
    assert kv.set("products/123", {**entry.value, "stock": stock - 1}, metadata=entry.metadata).committed
    again = kv.get("products/123")
    assert again is not None
    assert again.value["stock"] + 1 == stock
    assert again.metadata == {}


def test_typed_containers_are_written_as_they_are(kv: KVStore) -> None:
    """list and dict are invariant: a list[str] is no list[Value], yet the store takes it, so set does too."""
    names: list[str] = ["a", "b"]
    counts: dict[str, int] = {"a": 1}
    nested: dict[str, list[float]] = {"xs": [1.5]}
    product: Product = {"name": "lamp", "stock": 3}
    assert kv.set("names", names).committed
    assert kv.set("counts", counts).committed
    assert kv.set("nested", nested).committed
    assert kv.set("product", product).committed
    assert (
        kv.atomic().set("names", names).set("counts", counts).set("nested", nested).set("product", product).commit().ok
    )
    assert [entry.value if entry else None for entry in kv.get_many(["names", "counts", "nested", "product"])] == [
        names,
        counts,
        nested,
        product,
    ]


def test_wrong_values_are_type_errors_and_refused(kv: KVStore) -> None:
    with pytest.raises(InvalidValueError, match="tuple"):
        kv.set("a", (1, 2))  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="set"):
        kv.set("a", {1, 2})  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="object"):
        kv.set("a", object())  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="tuple"):
        kv.atomic().set("a", (1, 2))  # type: ignore[arg-type]
    assert kv.get("a") is None


def test_the_async_api_is_typed_alike(tmp_path: Path) -> None:
    async def main() -> int:
        async with AsyncKVStore(tmp_path / "kv.db") as kv:
            await kv.set("p", {"stock": 3})
            with pytest.raises(InvalidValueError):
                await kv.set("t", (1, 2))  # type: ignore[arg-type]
            entry = await kv.get("p")
            assert entry is not None
            stock: int = entry.value["stock"]
            return stock

    assert asyncio.run(main()) == 3
