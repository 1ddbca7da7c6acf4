"""Answers that carry a large stored value, rendered with its JSON made in the offload worker (``_offload``).

Encoding the answer of an 8,000,000-element list (16 MB of JSON) is one Pydantic call that holds the GIL for
0.3-0.5 s, in whichever thread runs it, and decoding its 40 MB of msgpack first holds it again, a piece at a
time: small requests beside it waited 108-1,261 ms at p99. So a value of more than ``LARGE_BODY`` stored bytes
is read undecoded (``kvstore._raw``) and handed, as stored, to the worker process, which decodes it as a get
does (``decode_value``), makes it a response's value (``to_response``) and renders it as the answer's models
render their ``value`` field (Pydantic, the same serializer: NaN and the infinities as null). The rest of the
answer is rendered here, with the value None, and the value's JSON put in its place: the same bytes as
rendering the whole answer here. This process then holds the GIL 9-25 ms at a time during such a GET (131-137
ms before), and the small GETs beside it waited 14-33 ms at p99. A worker that cannot render it (a corrupt
value, no worker) leaves the answer to the caller, which renders it here as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from pydantic import BaseModel
from starlette.responses import Response

from kvstore import AsyncNamespace, Entry
from kvstore._codec import decode_value
from kvstore._raw import Raw, get_raw

from . import _offload
from ._budget import LARGE_BODY
from ._models import Encoding
from ._values import to_response
from ._views import json_response, off_loop

Shown = tuple[Any, Encoding]
"""An answer's value and its encoding, where not ``to_response(entry.value)``'s."""

_JSON: Final = b"j"  # the first byte of ``value_json``'s answer: how the value travels
_BASE64: Final = b"b"
_ENCODINGS: Final[dict[bytes, Encoding]] = {_JSON: "json", _BASE64: "base64"}
# The field as every answer renders it, with the value None: the first "value" key of a rendered answer, which
# its key (and entity) come before. A string's content holds no bare '"', so this cannot match inside one.
_PLACEHOLDER: Final = '"value":null,"encoding":"'
_NULL: Final = len('"value":')


class _Value(BaseModel):
    """A ``value`` field, as the answers' models declare it."""

    value: Any


def value_json(stored: bytes) -> bytes:
    """In the worker: the answer's encoding (a byte) and the JSON of its ``value``, from the stored msgpack."""
    value, encoding = to_response(decode_value(stored))
    rendered = _Value.model_construct(value=value).model_dump_json().encode()  # {"value":...}
    return (_BASE64 if encoding == "base64" else _JSON) + rendered[_NULL + 1 : -1]


async def rendered_value(stored: bytes) -> tuple[bytes, Encoding] | None:
    """The JSON of a stored value's answer ``value`` and its encoding, rendered in the worker; None if not."""
    answer = await _offload.render(value_json, stored)
    if answer is None or answer[:1] not in _ENCODINGS:
        return None
    return answer[1:], _ENCODINGS[answer[:1]]


async def entry_answer(
    kv: AsyncNamespace, key: str, answer: Callable[[Entry, Shown | None], BaseModel]
) -> Response | None:
    """The answer (``answer(entry, shown)``) of a GET of the live entry at ``key``, None if there is none: a
    value of more than ``LARGE_BODY`` stored bytes has its JSON rendered in the worker; one the worker cannot
    render is read and rendered here, as every other, in a thread when it is large (``off_loop``)."""
    found = await get_raw(kv, key, LARGE_BODY)
    if isinstance(found, Raw):
        rendered = await rendered_value(found.value)
        if rendered is not None:
            return spliced(answer(found.entry, (None, rendered[1])), rendered[0])
        found = await kv.get(key)  # the worker could not: read and render it here, as before
    entry = found
    if entry is None:
        return None
    return await off_loop(entry.size_bytes, lambda: json_response(answer(entry, None)))


def spliced(model: BaseModel, value: bytes) -> Response:
    """``json_response(model)`` with ``value`` (JSON) as its value: ``model`` holds None in that field."""
    text = model.model_dump_json()
    at = text.index(_PLACEHOLDER) + _NULL
    body = b"".join((text[:at].encode(), value, text[at + len("null") :].encode()))
    return Response(body, 200, media_type="application/json")
