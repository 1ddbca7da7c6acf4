"""msgpack a piece at a time, for large values: the same bytes and values as one ``packb`` or ``unpackb``.

msgpack's C calls hold the GIL from start to end, stalling every other thread and the event loop. For a list
of 8 million ints (40 MB), measured on this machine while other work ran: ``unpackb`` held it 320-450 ms and
``packb`` 240-390 ms. Between pieces the GIL can pass to a waiting thread: the median piece here held it
0.5-0.9 ms (p99 6-11 ms). Unpacking in pieces took about as long (316-544 ms), packing about twice as long
(505-530 ms), as each piece's members are looked at first for containers to weigh. A value of a MiB or more
is built (and packed) with the cyclic collector held off, and aged after (``_gcpause``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from itertools import islice
from typing import Any, Final

import msgpack

from ._gcpause import LARGE_BYTES, building

PIECE_BYTES: Final = 64 * 1024
"""Bytes unpacked per piece."""
PIECE_MEMBERS: Final = 16384
"""Members packed per piece; a container with more is packed in pieces."""
_WRAPPER: Final = 16  # a container of at most this many members is looked into for a large member
_CONTAINERS: Final = (list, dict)
_CONTAINER_TYPES: Final = frozenset(_CONTAINERS)
LARGE_MEMBERS: Final = 1024 * 1024
"""Members from which a value is packed with the collector held off (``_gcpause``): about what a MiB of
msgpack holds, ``LARGE_BYTES``."""


def let_others_run() -> None:
    """Release the GIL for a moment: a thread waiting for it (the event loop) takes it now, rather than after
    the interpreter's switch interval of 5 ms. Between the pieces of a large value, this cut the p50 latency of
    small gets beside one from 5-10 ms to 1.5 ms, and their p99 from 245-720 ms to 145-155 ms (this machine,
    loaded by other work; an 8-million-element list set and got three times)."""
    time.sleep(0)


def slices(members: list[Any]) -> Iterator[list[Any]]:
    """``members``, ``PIECE_MEMBERS`` at a time, letting other threads run between the pieces."""
    for start in range(0, len(members), PIECE_MEMBERS):
        yield members[start : start + PIECE_MEMBERS]
        let_others_run()


def item_slices(mapping: Mapping[str, Any]) -> Iterator[list[tuple[str, Any]]]:
    """The items of ``mapping``, ``PIECE_MEMBERS`` at a time, letting other threads run between the pieces."""
    items = iter(mapping.items())
    while chunk := list(islice(items, PIECE_MEMBERS)):
        yield chunk
        let_others_run()


def _header_size(count: int) -> int:
    """The bytes of the header msgpack writes for an array or map of ``count`` members."""
    return 1 if count < 16 else 3 if count < 0x10000 else 5


def is_large(value: object) -> bool:
    """Whether ``pack`` works in pieces: a container of more than ``PIECE_MEMBERS`` members, or one of at most
    16 holding one (a wrapper). A large container deeper down, under a container of 17 to 16,384 members, is
    packed at once with it."""
    kind = type(value)
    if kind is list or kind is dict:
        members: Any = value.values() if kind is dict else value  # type: ignore[attr-defined]
        if len(members) > PIECE_MEMBERS:
            return True
        if len(members) <= _WRAPPER:
            for member in members:
                if type(member) in _CONTAINERS and len(member) > PIECE_MEMBERS:
                    return True
    return False


def pack(value: Any, packb: Callable[[Any], bytes]) -> bytes:
    """``packb(value)``, a piece at a time wherever a container is large (``is_large``)."""
    if not is_large(value):
        return packb(value)
    if _members(value) < LARGE_MEMBERS:
        return _pack(value, packb)
    # A value this large may be new (parsed from a request, say): the collector's young passes would walk it.
    with building():
        return _pack(value, packb)


def _members(value: list[Any] | dict[str, Any]) -> int:
    """The members of a large value (``is_large``) and of its large members, if it is a wrapper."""
    members: Any = value.values() if type(value) is dict else value
    count = len(members)
    if count <= _WRAPPER:
        count += sum(len(member) for member in members if type(member) in _CONTAINERS)
    return count


def _pack(value: Any, packb: Callable[[Any], bytes]) -> bytes:
    """``pack`` of a large value."""
    packer = msgpack.Packer(use_bin_type=True, strict_types=True)
    if type(value) is list:
        parts = [packer.pack_array_header(len(value))]
        for chunk in slices(value):
            _pack_members(chunk, chunk, packb, parts)
    else:
        parts = [packer.pack_map_header(len(value))]
        for pairs in item_slices(value):
            _pack_members(pairs, [member for _, member in pairs], packb, parts)
    return b"".join(parts)


def _pack_members(chunk: list[Any], members: list[Any], packb: Callable[[Any], bytes], parts: list[bytes]) -> None:
    """Append to ``parts`` the packed ``chunk`` (list members, or a map's (name, member) pairs, whose members
    are ``members``): at once if no member is a container, else in runs of at most ``PIECE_MEMBERS`` members
    and members of members, and a large member in pieces of its own."""
    # The types are looked at in C first: most members are scalars, and this scan costs about what packing
    # them does (439 against 447 us for 16,384 ints), where a Python test of each costs five times as much.
    if _CONTAINER_TYPES.isdisjoint(map(type, members)):
        parts.append(_pack_run(chunk, members is chunk, packb))
        return
    run: list[Any] = []
    weight = 0
    for item, member in zip(chunk, members, strict=True):
        size = len(member) if type(member) in _CONTAINERS else 1
        if run and weight + size > PIECE_MEMBERS:
            parts.append(_pack_run(run, members is chunk, packb))
            run, weight = [], 0
        if size > PIECE_MEMBERS:
            if members is not chunk:
                parts.append(packb(item[0]))
            parts.append(pack(member, packb))
        else:
            run.append(item)
            weight += size
    if run:
        parts.append(_pack_run(run, members is chunk, packb))


def _pack_run(run: list[Any], is_list: bool, packb: Callable[[Any], bytes]) -> bytes:
    """The packed members of ``run`` (list members, or (name, member) pairs), without a container header."""
    return packb(run if is_list else dict(run))[_header_size(len(run)) :]


def unpack(data: bytes, **options: Any) -> Any:
    """``msgpack.unpackb(data, **options)``, fed to an ``Unpacker`` a piece at a time; raises ValueError
    where unpackb would (bad data, bytes after the value, data that ends early)."""
    if len(data) < LARGE_BYTES:
        return _unpack(data, options)
    with building():  # the value built is large: see ``_gcpause``
        return _unpack(data, options)


def _unpack(data: bytes, options: dict[str, Any]) -> Any:
    """``unpack``, a piece at a time."""
    unpacker = msgpack.Unpacker(max_buffer_size=len(data), **options)
    view = memoryview(data)
    for start in range(0, len(data), PIECE_BYTES):
        unpacker.feed(view[start : start + PIECE_BYTES])
        try:
            value = unpacker.unpack()
        except msgpack.OutOfData:
            let_others_run()
            continue
        if unpacker.tell() != len(data):
            raise msgpack.ExtraData(value, bytes(view[unpacker.tell() :]))
        return value
    raise ValueError("the data ends before the value does")
