"""Running the service under uvicorn: its options, and the app factory each worker process calls.

uvicorn's workers are spawned processes that import the app by name, so ``serve`` hands them its settings
in the environment (``KVSTORE_SERVE``, JSON, tokens included: only the same user can read a process's
environment) and each worker builds its own app, which opens its own store when it starts: a store is
never inherited across a fork. Workers share one SQLite file (WAL: readers beside one writer) or one
PostgreSQL database. Each connection has ``head_timeout`` seconds to send a complete request head
(``_protocol``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from ._app import DEFAULT_MAX_BODY_SIZE, create_app
from ._guard import Token
from ._protocol import DEFAULT_HEAD_TIMEOUT, http_protocol

if TYPE_CHECKING:
    from fastapi import FastAPI

ENVIRONMENT: Final = "KVSTORE_SERVE"
FACTORY: Final = "kvstore.server._serve:app_from_environment"


def app_from_environment() -> FastAPI:
    """The app described by ``$KVSTORE_SERVE``; uvicorn calls this once in each worker process."""
    found: dict[str, Any] = json.loads(os.environ[ENVIRONMENT])
    given = found["tokens"]
    tokens = None if given is None else [Token(s, None if st is None else frozenset(st)) for s, st in given]
    return create_app(found["db"], tokens=tokens, max_body_size=found["max_body_size"])


def serve(
    db: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8901,
    workers: int = 1,
    tokens: Iterable[Token | str] | None = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    access_log: bool = False,
    head_timeout: float = DEFAULT_HEAD_TIMEOUT,
) -> None:
    """Serve the store at ``db`` (a file path or a ``postgresql://`` URL) with uvicorn, in ``workers`` processes.

    Returns when the server stops. A file path is made absolute first, so every worker opens the same file.
    A connection that has not sent a complete request head ``head_timeout`` seconds after it opened, or
    after its last answer, is closed.
    """
    if "://" not in db and db != ":memory:":
        db = os.path.abspath(db)
    given = None if tokens is None else [t if isinstance(t, Token) else Token(t) for t in tokens]
    listed = None if given is None else [[t.secret, None if t.stores is None else sorted(t.stores)] for t in given]
    os.environ[ENVIRONMENT] = json.dumps({"db": db, "tokens": listed, "max_body_size": max_body_size})
    run_uvicorn(FACTORY, host=host, port=port, workers=workers, access_log=access_log, head_timeout=head_timeout)


def run_uvicorn(
    factory: str,
    *,
    host: str,
    port: int,
    workers: int,
    access_log: bool = False,
    head_timeout: float = DEFAULT_HEAD_TIMEOUT,
) -> None:
    """Serve the app that ``factory`` (``module:function``) builds, with the service's uvicorn options.

    ``loop`` and ``http`` are uvicorn's "auto": uvloop and httptools when installed (the server extra),
    the protocol with the head timeout of ``_protocol``. The access log is off unless asked for: a line
    of it costs 31 us here, an AsyncKVStore get 8 to 12 us.
    """
    import uvicorn

    http = http_protocol(head_timeout)  # refuses a bad timeout before uvicorn starts

    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        loop="auto",
        http=http,
        lifespan="on",
    )
