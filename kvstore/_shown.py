"""``shown(obj)``: a caller's object as an error message shows it, bounded and safe (pure).

An error message must never fail to be made, nor grow with its input: ``repr()`` of a list nested 10,000
deep raises RecursionError, of an int past 4,300 digits ValueError, and a caller's ``__repr__`` may raise,
lie or return a gigabyte. So the builtin types are shown through their base type's own methods (never a
subclass's), cut short; an int past 128 bits by its size ("a 16,610-bit int"); a container by its first
few members, two levels deep; a few stdlib types by their repr; anything else by its type's name alone,
without calling any of its code.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from itertools import islice
from pathlib import PosixPath, PurePosixPath, PureWindowsPath, WindowsPath
from typing import Any, Final

LIMIT: Final = 80  # characters of a shown object at most, "..." included
_MEMBERS: Final = 4  # members of a container shown before ", ..."
_LEVELS: Final = 2  # container levels shown; deeper ones are "[...]"
_EXACT_BITS: Final = 128  # ints of up to 38 digits are shown in full, bigger ones by their size
# Exact stdlib types whose repr is the stdlib's own, bounded by the value (cut anyway): shown by calling it.
_TRUSTED: Final = frozenset(
    {date, datetime, time, timedelta, complex, range, PosixPath, PurePosixPath, WindowsPath, PureWindowsPath}
)
# Decimal and Fraction are trusted too, found where their modules are: an object of either means its module
# is loaded, and importing fractions (with decimal) here cost 9.7 million instructions (callgrind, ``import
# datetime, fractions, decimal`` minus ``import datetime``) of every ``import kvstore``.
_TRUSTED_ELSEWHERE: Final = (("decimal", "Decimal"), ("_decimal", "Decimal"), ("fractions", "Fraction"))
_BRACKETS: Final[dict[type, tuple[str, str]]] = {
    list: ("[", "]"),
    tuple: ("(", ")"),
    set: ("{", "}"),
    frozenset: ("frozenset({", "})"),
    dict: ("{", "}"),
}


def type_name(kind: type) -> str:
    """``kind.__name__`` as ``type`` itself holds it: a metaclass cannot make reading it run code."""
    name = type.__dict__["__name__"].__get__(kind, type)
    return name if type(name) is str else "object"


def shown(obj: object, limit: int = LIMIT) -> str:
    """``obj`` as a message shows it, in at most ``limit`` characters, calling none of the caller's code."""
    return _cut(_shown(obj, _LEVELS), limit)


def _cut(text: str, limit: int = LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown(obj: Any, levels: int) -> str:
    kind = type(obj)  # type() and issubclass() of it, never isinstance(): that asks the object its __class__
    if obj is None or kind is bool:
        return "None" if obj is None else "True" if obj is True else "False"
    base: type
    if issubclass(kind, int):
        text, base = _int(obj), int
    elif issubclass(kind, float):
        text, base = float.__repr__(obj), float
    elif issubclass(kind, str):
        text, base = str.__repr__(str.__getitem__(obj, slice(LIMIT))), str
    elif issubclass(kind, bytes | bytearray):
        text, base = repr(bytes(memoryview(obj)[:LIMIT])), bytes
    elif container := next((b for b in _BRACKETS if issubclass(kind, b)), None):
        text, base = _container(obj, container, levels), container
    elif kind in _TRUSTED or _trusted_elsewhere(kind):
        try:
            return _cut(repr(obj))
        except Exception:  # a Fraction of huge ints: its repr converts them to decimal digits
            return f"<a {type_name(kind)}>"
    else:
        return f"<a {type_name(kind)}>"
    return text if kind is base else f"{type_name(kind)}({text})"


def _trusted_elsewhere(kind: type) -> bool:
    """Whether ``kind`` is exactly Decimal or Fraction, without importing either's module."""
    for module, name in _TRUSTED_ELSEWHERE:
        loaded = sys.modules.get(module)
        if loaded is not None and kind is vars(loaded).get(name):
            return True
    return False


def _int(number: int) -> str:
    bits = int.bit_length(number)
    if bits <= _EXACT_BITS:
        return int.__repr__(number)
    return f"a {'negative ' if int.__lt__(number, 0) else ''}{bits:,}-bit int"


def _container(obj: object, base: type, levels: int) -> str:
    """The first members of a list, tuple, set, frozenset or dict (of a subclass too, read as the base)."""
    opening, closing = _BRACKETS[base]
    methods: Any = base  # the base type's own methods, not the object's: a subclass may override them
    size: int = methods.__len__(obj)
    if size == 0:
        return "set()" if base is set else opening + closing
    if levels <= 0:
        return f"{opening}...{closing}"
    if base is dict:
        pairs: Iterable[tuple[object, object]] = islice(dict.items(obj), _MEMBERS)  # type: ignore[arg-type]
        members = [f"{_shown(name, levels - 1)}: {_shown(item, levels - 1)}" for name, item in pairs]
    else:
        members = [_shown(item, levels - 1) for item in islice(methods.__iter__(obj), _MEMBERS)]
    more = ", ..." if size > len(members) else "," if base is tuple and size == 1 else ""
    return _cut(f"{opening}{', '.join(members)}{more}{closing}")
