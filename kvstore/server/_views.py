"""Namespace views of the service's store, and JSON responses rendered by Pydantic (large ones off the loop)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel
from starlette.responses import Response

from kvstore import AsyncKVStore, AsyncNamespace

from ._budget import LARGE_BODY

R = TypeVar("R")

_MAX_VIEWS = 1024


class Views:
    """The store's namespace views, the most recently used kept, so a request costs one worker call."""

    def __init__(self, store: AsyncKVStore) -> None:
        self.store = store
        self._views: OrderedDict[str, AsyncNamespace] = OrderedDict()

    async def get(self, name: str) -> AsyncNamespace:
        """The view of namespace ``name`` (validated by the store)."""
        view = self._views.get(name)
        if view is None:
            view = await self.store.namespace(name)
            self._views[name] = view
            if len(self._views) > _MAX_VIEWS:
                self._views.popitem(last=False)
        else:
            self._views.move_to_end(name)
        return view


async def off_loop(size: int, build: Callable[[], R]) -> R:
    """``build()``, in a thread when ``size`` (the bytes of the value it encodes) is over LARGE_BODY, so that
    encoding a large value does not hold the event loop (it still shares the GIL: a small request waits at
    most a switch interval, 5 ms, between the thread's turns, unless one C call runs long)."""
    if size > LARGE_BODY:
        return await asyncio.to_thread(build)
    return build()


def json_response(model: BaseModel, status: int = 200, *, exclude_none: bool = False) -> Response:
    """``model`` as JSON (Pydantic writes NaN and Infinity, which JSON lacks, as null)."""
    return Response(model.model_dump_json(exclude_none=exclude_none), status, media_type="application/json")
