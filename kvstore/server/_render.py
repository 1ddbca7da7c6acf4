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

from typing import Any, Final

from pydantic import BaseModel
from starlette.responses import Response

from kvstore._codec import decode_value

from . import _offload
from ._models import Encoding
from ._values import to_response

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


def spliced(model: BaseModel, value: bytes) -> Response:
    """``json_response(model)`` with ``value`` (JSON) as its value: ``model`` holds None in that field."""
    text = model.model_dump_json()
    at = text.index(_PLACEHOLDER) + _NULL
    body = b"".join((text[:at].encode(), value, text[at + len("null") :].encode()))
    return Response(body, 200, media_type="application/json")
