"""Every error the service sends: ``{ok: false, errors: [problem, ...]}`` with a matching status.

Library errors render themselves (``KVError.to_problem``) with their own status and error code: a
``UsageError`` is a 409 (1300, 1302, 1303), and ``StoreClosedError``, a store closed under the service,
a 503 (1301). HTTP-level conditions (401, 403, 404, 405, 409, 413, and the framework's own errors) are
KVError subclasses defined here, so one renderer serves all; their error codes are 3000 + the HTTP
status. Anything unexpected becomes a 500 problem and is logged, never a stack trace or a framework's
default body.
"""

from __future__ import annotations

import functools
import http
import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from kvstore import KVError, ValidationError

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
            ValidationError(f"{_location(e.get('loc', ()))}: {e.get('msg', 'invalid')}") for e in exc.errors()
        ]
        return found or [ValidationError("the request is not valid")]
    if isinstance(exc, HTTPException):
        status = exc.status_code if 400 <= exc.status_code < 600 else 500
        cls = _for_status(status)
        detail = exc.detail if isinstance(exc.detail, str) and len(exc.detail) >= 5 else cls.title
        return [cls(detail, exc.headers)]
    log.error("unexpected error in the kvstore service", exc_info=exc)
    return [InternalError("the server met an unexpected error; it has been logged")]


def problem_response(exc: BaseException, request: Request) -> JSONResponse:
    """The response for ``exc`` on ``request``: its status, its problems, and its headers."""
    problems = problems_of(exc)
    headers: dict[str, str] = {}
    for problem in problems:
        headers.update(getattr(problem, "headers", {}))
    body = {"ok": False, "errors": [p.to_problem(instance=request.url.path) for p in problems]}
    return JSONResponse(body, status_code=problems[0].status, headers=headers)


def answered(exc: BaseException, request: Request) -> JSONResponse:
    """``problem_response``, for an error that goes no further: its tracebacks are dropped once it is rendered.

    An error raised across threads (an AsyncKVStore write) sits in a reference cycle: its traceback holds
    the frames that set it on a future, which holds it. Until the cyclic collector ran, those frames kept
    the request's value alive: 16 concurrent refused 23 MB PUTs grew the process to 885 MiB; dropping the
    tracebacks frees them at once (314 MiB, the client's memory included).
    """
    response = problem_response(exc, request)
    seen: BaseException | None = exc
    while seen is not None:
        seen.__traceback__ = None
        seen = seen.__cause__ or seen.__context__
    return response


async def problem_handler(request: Request, exc: Exception) -> JSONResponse:
    """An exception handler for a Starlette or FastAPI app."""
    return problem_response(exc, request)
