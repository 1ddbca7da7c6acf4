"""Every error the service sends: ``{ok: false, errors: [problem, ...]}`` with a matching status.

Library errors render themselves (``KVError.to_problem``) with their own status and error code: a
``UsageError`` is a 409 (1300, 1302, 1303), and ``StoreClosedError``, a store closed under the service,
a 503 (1301). HTTP-level conditions (401, 403, 404, 405, 409, 413, and the framework's own errors) are
KVError subclasses defined here, so one renderer serves all; their error codes are 3000 + the HTTP
status. Anything unexpected becomes a 500 problem and is logged, never a stack trace or a framework's
default body. A client that disconnects before its request is read is no error: it gets no answer, and
the log a debug line.
"""

from __future__ import annotations

import functools
import http
import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from kvstore import InvalidKeyError, KVError, ValidationError

log = logging.getLogger("kvstore.server")


class HTTPProblem(KVError):
    """An error of the HTTP layer; ``headers`` go out with its response."""

    status: ClassVar[int] = 500
    error_code: ClassVar[int] = 3500
    title: ClassVar[str] = "Internal server error"
    slug: ClassVar[str] = "internal-error"

    def __init__(self, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.headers = dict(headers or {})


def _problem_class(status: int, title: str, slug: str) -> type[HTTPProblem]:
    attributes = {"status": status, "error_code": 3000 + status, "title": title, "slug": slug}
    return type(f"HTTP{status}Problem", (HTTPProblem,), attributes)


BadRequest = _problem_class(400, "Bad request", "bad-request")
Unauthorized = _problem_class(401, "Unauthorized", "unauthorized")
Forbidden = _problem_class(403, "Forbidden", "forbidden")
NotFound = _problem_class(404, "Not found", "not-found")
MethodNotAllowed = _problem_class(405, "Method not allowed", "method-not-allowed")
ConditionFailed = _problem_class(409, "Condition failed", "condition-failed")
PayloadTooLarge = _problem_class(413, "Request body too large", "payload-too-large")
InternalError = _problem_class(500, "Internal server error", "internal-error")

_KNOWN = {cls.status: cls for cls in (BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, PayloadTooLarge)}


@functools.cache
def _for_status(status: int) -> type[HTTPProblem]:
    if status in _KNOWN:
        return _KNOWN[status]
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        return BadRequest if 400 <= status < 500 else InternalError
    return _problem_class(status, phrase, phrase.lower().replace(" ", "-"))


def _location(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc) or "request"


def problems_of(exc: BaseException) -> list[KVError]:
    """The problems that describe ``exc``; one per field for a framework validation error."""
    if isinstance(exc, KVError):
        return [exc]
    if isinstance(exc, RequestValidationError):
        found: list[KVError] = [
            # A key off the entity API's pattern is a key error, as a store API key the library refuses is.
            (InvalidKeyError if tuple(e.get("loc", ()))[:2] == ("path", "key") else ValidationError)(
                f"{_location(e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            )
            for e in exc.errors()
        ]
        return found or [ValidationError("the request is not valid")]
    if isinstance(exc, HTTPException):
        status = exc.status_code if 400 <= exc.status_code < 600 else 500
        cls = _for_status(status)
        detail = exc.detail if isinstance(exc.detail, str) and len(exc.detail) >= 5 else cls.title
        return [cls(detail, exc.headers)]
    log.error("unexpected error in the kvstore service", exc_info=exc)
    return [InternalError("the server met an unexpected error; it has been logged")]


def _instance(request: Request) -> str:
    """The request's path as it was sent, percent-escapes kept: a URI reference, as ``instance`` must be
    (the decoded path can hold a newline, which URL parsing drops)."""
    raw: bytes | None = request.scope.get("raw_path")
    return raw.decode("latin-1") if raw else request.url.path


def problem_response(exc: BaseException, request: Request) -> JSONResponse:
    """The response for ``exc`` on ``request``: its status, its problems, and its headers."""
    problems = problems_of(exc)
    headers: dict[str, str] = {}
    for problem in problems:
        headers.update(getattr(problem, "headers", {}))
    instance = _instance(request)
    body = {"ok": False, "errors": [p.to_problem(instance=instance) for p in problems]}
    return JSONResponse(body, status_code=problems[0].status, headers=headers)


class Unanswered(Response):
    """What a request whose client has gone gets: nothing is sent, there being no one to send it to."""

    def __init__(self) -> None:
        super().__init__(status_code=499)  # never sent; nginx's "client closed request", for the record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        return None


def answered(exc: BaseException, request: Request) -> Response:
    """``problem_response``, for an error that goes no further: its tracebacks are dropped once it is rendered.

    An error raised across threads (an AsyncKVStore write) sits in a reference cycle: its traceback holds
    the frames that set it on a future, which holds it. Until the cyclic collector ran, those frames kept
    the request's value alive: 16 concurrent refused 23 MB PUTs grew the process to 885 MiB; dropping the
    tracebacks frees them at once (314 MiB, the client's memory included).

    A client that disconnected while its body was read (``ClientDisconnect``) gets ``Unanswered``.
    """
    response: Response
    if isinstance(exc, ClientDisconnect):
        log.debug("the client of %s %r left before its request was read", request.method, request.url.path[:256])
        response = Unanswered()
    else:
        response = problem_response(exc, request)
    seen: BaseException | None = exc
    while seen is not None:
        seen.__traceback__ = None
        seen = seen.__cause__ or seen.__context__
    return response


async def problem_handler(request: Request, exc: Exception) -> Response:
    """An exception handler for a Starlette or FastAPI app."""
    if isinstance(exc, ClientDisconnect):
        return answered(exc, request)
    return problem_response(exc, request)
