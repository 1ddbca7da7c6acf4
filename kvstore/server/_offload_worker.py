"""The worker of ``_offload``: ``python -m kvstore.server._offload_worker``, one request at a time on stdin.

A request is a mode byte, a function's name (``module:function``) and a body, each after its length; the reply
is a kind byte and a payload after its length. To parse (``PARSE``): the value as msgpack, the decoder's error
message, or nothing when msgpack cannot carry the value (or the decoder fails otherwise: the server then parses
the body itself, and fails as it always did). To render (``RENDER``): the bytes the function returns, or
nothing if it raised (the server then renders the answer itself). It ends when its stdin does.
"""

from __future__ import annotations

import importlib
import signal
import sys
from typing import Any

import msgpack

from ._budget import _TRIM
from ._offload import LENGTH, PARSED, REFUSED, RENDER, UNCARRIED, Decode, Render, read_exactly


def _function(name: str) -> Decode | Render:
    module, function = name.split(":")
    found: Decode | Render = getattr(importlib.import_module(module), function)
    return found


def convert(decode: Decode, body: bytes) -> tuple[int, bytes]:
    """``decode(body)`` as msgpack, or why not."""
    try:
        value: Any = decode(body)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a refused number or key
        return REFUSED, str(exc)[:500].encode("utf-8", "replace")
    except Exception:  # RecursionError, MemoryError ...
        return UNCARRIED, b""
    try:
        return PARSED, msgpack.packb(value, use_bin_type=True)
    except Exception:  # OverflowError (an int past 64 bits), UnicodeEncodeError (a lone surrogate) ...
        return UNCARRIED, b""


def rendered(function: Render, data: bytes) -> tuple[int, bytes]:
    """``function(data)``, or nothing if it raised (the server renders the answer itself, and fails as it would)."""
    try:
        return PARSED, function(data)
    except Exception:  # a corrupt value (NotADatabaseError), MemoryError ...
        return UNCARRIED, b""


def main() -> None:
    """Serve requests until stdin ends."""
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # whatever a decoder's module prints must not land in a reply
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server; stdin's end then stops this
    functions: dict[str, Decode | Render] = {}
    while mode := requests.read(1):
        name = read_exactly(requests, int.from_bytes(read_exactly(requests, LENGTH))).decode()
        body = read_exactly(requests, int.from_bytes(read_exactly(requests, LENGTH)))
        try:
            function = functions.get(name) or functions.setdefault(name, _function(name))
        except (ImportError, AttributeError, ValueError):
            kind, payload = UNCARRIED, b""
        else:
            kind, payload = rendered(function, body) if mode[0] == RENDER else convert(function, body)
        del body
        replies.write(bytes([kind]) + len(payload).to_bytes(LENGTH, "big"))
        replies.write(payload)
        replies.flush()
        del payload
        if _TRIM is not None:  # after the reply: the server does not wait for it
            _TRIM(0)


if __name__ == "__main__":
    main()
