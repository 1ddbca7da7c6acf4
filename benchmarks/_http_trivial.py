"""The HTTP part's floor: a trivial FastAPI app on the same uvicorn, with the options ``kvstore serve`` uses.

It declares the store API's GET and PUT routes as a FastAPI user would (the same path parameters, and the
same Pydantic model for the PUT body, which FastAPI parses and validates), and answers a constant JSON of
the shape kvstore answers. ``python _http_trivial.py PORT WORKERS`` runs it through the very function the
``serve`` command calls, so the server, its loop, its HTTP parser and its options are the same.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Final

from fastapi import FastAPI, Path

from kvstore.server._models import SetKVRequest  # the body model of kvstore's SetKV: the same parsing

ULID_PATTERN: Final = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"
StoreParam = Annotated[str, Path(pattern=ULID_PATTERN)]
KeyParam = Annotated[str, Path()]
STAMP: Final = "0" * 20
ANSWER_SET: Final = {"versionstamp": STAMP, "committed": True, "ok": True}


def answer_get(value: Any) -> dict[str, Any]:
    """The constant a GET answers: an entry of kvstore's shape holding ``value``."""
    return {
        "key": "bench/0",
        "value": value,
        "encoding": "json",
        "versionstamp": STAMP,
        "metadata": {},
        "contentType": "application/json",
        "sizeBytes": 140,
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:00Z",
        "expiresAt": None,
    }


def create_app() -> FastAPI:
    """The trivial app (a factory, so that uvicorn's workers can each build one)."""
    from _config import VALUE

    app = FastAPI()
    entry = answer_get(VALUE)

    @app.put("/store/{store}/kv/{key:path}")
    async def set_kv(store: StoreParam, key: KeyParam, body: SetKVRequest) -> Any:
        return ANSWER_SET

    @app.get("/store/{store}/kv/{key:path}")
    async def get_kv(store: StoreParam, key: KeyParam) -> Any:
        return entry

    return app


if __name__ == "__main__":
    from kvstore.server._serve import run_uvicorn

    run_uvicorn("_http_trivial:create_app", host="127.0.0.1", port=int(sys.argv[1]), workers=int(sys.argv[2]))
