"""A fuzz of every public entry point with hostile objects: the only exception any of them may raise is a KVError.

The objects are built to break the making of an error message or the checks before it: ints past 4,300 digits
(str() of them raises) and past a float's range, lists and dicts nested far past any limit (repr() of them
recurses), NaN and the infinities, alone and inside containers, subclasses of str, int, float, dict and list
whose special methods (``__eq__``, ``__hash__``, ``__str__``, ``__repr__``, ``__len__``, ``__iter__``, ...)
raise ``Trap`` while a call is under test, an object whose ``__class__`` raises, lone surrogates, bytes-likes,
None and bools, mixed with valid input so that calls also get past their first check. A call that raises
anything but a KVError (``KeyError`` too, from the mapping view, which has dict semantics) fails the test, and
one that raises a KVError must have left every stored row as it was. One store per test, on SQLite (the
module's ``target``); the asyncio facade gets its own, opened once.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore import AsyncKVStore, KVError, KVStore

from ._hostile import SQLISH, Target, anything, pick_space
from ._support import dump

pytestmark = pytest.mark.reliability


class Trap(Exception):
    """A caller's special method ran while kvstore handled the object."""


_ARMED: list[bool] = [False]  # traps spring only inside a call under test, so hypothesis can print examples
_DIGITS: Final = sys.get_int_max_str_digits()  # Python's limit on int-to-str conversion, 4,300 digits by default


@contextmanager
def armed() -> Iterator[None]:
    """The traps set and int-to-str conversion limited, as in any program, while kvstore handles the objects."""
    _ARMED[0] = True
    sys.set_int_max_str_digits(_DIGITS)
    try:
        yield
    finally:
        _ARMED[0] = False
        sys.set_int_max_str_digits(0)


@pytest.fixture(autouse=True)
def _printable_examples() -> Iterator[None]:
    """Between calls hypothesis may print what it drew, ints of 5,001 digits too: no limit there."""
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(_DIGITS)


def _trap(self: object, *args: object, **kwargs: object) -> Any:
    if _ARMED[0]:
        raise Trap(f"kvstore called a special method of a {type(self).__name__}")
    return NotImplemented


def _safe_repr(self: object) -> str:
    if _ARMED[0]:
        raise Trap(f"kvstore called repr() of a {type(self).__name__}")
    return f"<hostile {type(self).__name__}>"


def _hash(self: object) -> int:
    if _ARMED[0]:
        raise Trap(f"kvstore hashed a {type(self).__name__}")
    return id(self)


_SPECIAL: Final = [
    "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__str__", "__format__", "__len__", "__iter__",
    "__contains__", "__getitem__", "__bool__", "__index__", "__int__", "__float__", "__add__", "__sub__",
    "__mul__", "__bytes__", "__fspath__", "keys", "items", "values", "get", "encode", "startswith", "split",
    "upper", "lower", "strip", "total_seconds", "utcoffset", "isoformat",
]  # fmt: skip


def _hostile(base: type) -> type:
    """A subclass of ``base`` whose special methods raise Trap while armed."""
    namespace: dict[str, Any] = dict.fromkeys((name for name in _SPECIAL if hasattr(base, name)), _trap)
    namespace |= {"__repr__": _safe_repr, "__hash__": _hash}
    return type(f"Hostile{base.__name__.capitalize()}", (base,), namespace)


HostileStr = _hostile(str)
HostileInt = _hostile(int)
HostileFloat = _hostile(float)
HostileDict = _hostile(dict)
HostileList = _hostile(list)
HostileBytes = _hostile(bytes)


class ClassTrap:
    """An object whose ``__class__`` raises: ``isinstance`` reads it when the type alone does not match."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        if _ARMED[0]:
            raise Trap("kvstore read __class__ of an object")
        return ClassTrap

    __repr__ = _safe_repr


def _nested_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _nested_dict(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


HUGE: Final = 10**5000
# Built once: a list 10,000 deep takes a while to make, and nothing here changes them.
DEEP: Final = [_nested_list(10_000), _nested_dict(2_000), [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]] * 10]
ODD: Final[list[object]] = [
    HUGE, -HUGE, 2**64, -(2**63) - 1, 2**1100, -(2**1100), 10**4299,
    float("nan"), float("inf"), -float("inf"), [1.5, float("nan")], {"a": {"b": [float("-inf")]}}, 1e308, -0.0,
    HostileStr("k/a"), HostileStr("default"), HostileStr("a" * 300), HostileInt(5), HostileInt(60_000),
    HostileFloat(1.5), HostileDict(a=1), HostileList([1]), HostileBytes(b"k/a"), ClassTrap(),
    {"m": HostileStr("x")}, [HostileInt(1)], {HostileStr("k"): 1}, {"n": HUGE}, [HUGE], {"f": float("nan")},
    "\ud800", "k/\udfff", "\x00", "a" * 100_000, b"\xff" * 10, bytearray(b"k/a"), memoryview(b"k/a"),
    None, True, False, 0, -1, "", [], {}, (), "k/a", "k_", "1" * 5000,
]  # fmt: skip
hostile: st.SearchStrategy[Any] = st.one_of(st.sampled_from(ODD), st.sampled_from(DEEP), anything)
valid_keys: st.SearchStrategy[Any] = st.sampled_from(["k/a", "k/b", "k_", "kx", "k/new", "k/sum"])
keys: st.SearchStrategy[Any] = st.one_of(valid_keys, hostile, st.sampled_from(SQLISH))
values: st.SearchStrategy[Any] = st.one_of(st.sampled_from([1, "text", b"bytes", [1, 2.5], {"n": 1}, None]), hostile)
# Iterating the keys argument of get_many or watch is what they are for: a hostile iterable is left out there.
iterables: st.SearchStrategy[Any] = hostile.filter(lambda x: not isinstance(x, HostileDict | HostileList))
numbers: st.SearchStrategy[Any] = st.one_of(st.sampled_from([1, 60_000, 0.05, 1000, 2**63 - 1]), hostile)


def guarded(target: Target, call: Callable[[], object], also: tuple[type[BaseException], ...] = ()) -> object:
    """Run ``call`` with the traps armed: it returns, or raises a KVError (or one of ``also``) and changes no row."""
    before = dump(target.conn)
    try:
        with armed():
            return call()
    except KVError as exc:
        outcome: BaseException = exc
    except also as exc:
        return exc
    assert dump(target.conn) == before, f"a refused call ({type(outcome).__name__}) changed the stored data"
    return outcome


@given(data=st.data())
def test_set_and_atomic_set_take_hostile_values_and_options(target: Target, data: st.DataObject) -> None:
    space = pick_space(target, data)
    key, value = data.draw(keys, label="key"), data.draw(values, label="value")
    names = ["expire_in", "expire_at", "metadata", "content_type", "if_versionstamp", "if_not_exists", "overwrite"]
    options = data.draw(st.dictionaries(st.sampled_from(names), st.one_of(numbers, hostile), max_size=2), "options")
    guarded(target, lambda: space.set(key, value, **options))
    atomic_options = {name: option for name, option in options.items() if not name.startswith(("if_", "over"))}
    guarded(target, lambda: space.atomic().set(key, value, **atomic_options).commit())


@given(data=st.data())
def test_reads_take_hostile_keys_and_listing_options(target: Target, data: st.DataObject) -> None:
    space = pick_space(target, data)
    key, prefix = data.draw(keys, label="key"), data.draw(keys, label="prefix")
    names = ["start", "end", "limit", "cursor", "reverse", "max_bytes"]
    options = data.draw(st.dictionaries(st.sampled_from(names), st.one_of(numbers, hostile), max_size=2), "options")
    bounds = {name: option for name, option in options.items() if name in ("start", "end")}
    guarded(target, lambda: space.get(key))
    many = data.draw(st.one_of(st.lists(keys, max_size=3), iterables), "many")
    guarded(target, lambda: space.get_many(many))
    guarded(target, lambda: space.list(prefix, **options))
    guarded(target, lambda: space.list_keys(prefix, **{k: v for k, v in options.items() if k != "max_bytes"}))
    guarded(target, lambda: space.count(prefix, **bounds))
    page_size = data.draw(st.one_of(st.none(), numbers), label="page_size")
    sizes = {} if page_size is None else {"page_size": page_size}
    guarded(target, lambda: next(space.iterate(prefix, **bounds, **sizes), None))
    guarded(target, lambda: key in space)


@given(data=st.data())
def test_deletes_take_hostile_keys_prefixes_and_batch_sizes(target: Target, data: st.DataObject) -> None:
    space = target.kv.namespace("doomed-fuzz")
    space.set("d/a", 1)
    key = data.draw(keys, label="key")
    stamp = data.draw(st.one_of(st.none(), hostile), label="if_versionstamp")
    guarded(target, lambda: space.delete(key, if_versionstamp=stamp))
    prefix, batch = data.draw(keys, label="prefix"), data.draw(st.one_of(st.none(), numbers), label="batch_size")
    guarded(target, lambda: space.delete_prefix(prefix, batch_size=batch))


OPS: Final = ["check", "set", "delete", "sum", "min", "max"]


@given(data=st.data())
def test_atomic_operations_take_hostile_steps(target: Target, data: st.DataObject) -> None:
    space = pick_space(target, data)
    operation = space.atomic()
    for _ in range(data.draw(st.integers(1, 4), label="steps")):
        name, key = data.draw(st.sampled_from(OPS), label="op"), data.draw(keys, label="key")
        argument = data.draw(st.one_of(numbers, values, st.none()), label="argument")
        step: Callable[..., object] = getattr(operation, name)
        arguments = (key,) if name == "delete" else (key, argument)
        guarded(target, functools.partial(step, *arguments))
    guarded(target, operation.commit)


@given(data=st.data())
def test_watch_and_namespace_take_hostile_keys_intervals_and_names(target: Target, data: st.DataObject) -> None:
    space = pick_space(target, data)
    watched = data.draw(st.one_of(st.lists(keys, max_size=3), iterables), label="keys")
    interval = data.draw(st.one_of(st.just(0.05), numbers), label="interval")
    watch = guarded(target, lambda: space.watch(watched, interval=interval))
    if not isinstance(watch, BaseException):
        with watch:  # type: ignore[attr-defined]
            guarded(target, lambda: next(watch))  # type: ignore[call-overload]
    name = data.draw(st.one_of(st.sampled_from(["ns-1", "fuzz"]), keys), label="namespace")
    guarded(target, lambda: target.kv.namespace(name).get("k/a"))


@given(data=st.data())
def test_the_mapping_view_takes_hostile_keys_and_values(target: Target, data: st.DataObject) -> None:
    mapping = target.kv.namespace("mapped").mapping()
    key, value = data.draw(keys, label="key"), data.draw(values, label="value")
    guarded(target, lambda: mapping.__setitem__(key, value))
    guarded(target, lambda: mapping[key], also=(KeyError,))
    guarded(target, lambda: key in mapping)
    guarded(target, lambda: mapping.get(key))
    guarded(target, lambda: mapping.setdefault(key, value))
    guarded(target, lambda: mapping.pop(key, None))
    guarded(target, lambda: mapping.update({key: value}) if type(key) is str else mapping.update([(key, value)]))
    guarded(target, lambda: mapping.__delitem__(key), also=(KeyError,))


STORE_OPTIONS: Final = [
    "busy_timeout", "synchronous", "max_value_size", "max_metadata_size", "purge_batch_size", "auto_purge_every",
    "max_checks", "max_mutations", "max_commit_size", "pool_size", "pool_timeout", "connect_timeout",
]  # fmt: skip


@given(data=st.data())
def test_store_options_and_clocks_take_hostile_objects(target: Target, data: st.DataObject) -> None:
    path = target.conn.execute("PRAGMA database_list").fetchone()[2]
    options = data.draw(st.dictionaries(st.sampled_from(STORE_OPTIONS), numbers, max_size=3), label="options")
    reading = data.draw(st.one_of(st.just(1_800_000_000.0), numbers), label="clock reading")
    opened = guarded(target, lambda: KVStore(path, clock=lambda: reading, **options))
    if isinstance(opened, KVStore):
        with opened as kv:
            guarded(target, lambda: kv.set("k/clock", 1, expire_in=60_000))
            guarded(target, lambda: kv.get("k/a"))
            guarded(target, kv.purge_expired)
    store = data.draw(st.one_of(hostile, st.sampled_from(["sqlite://", "x://y", ":memory:"])), label="target")
    if not isinstance(store, str | Path):  # a str or a path names a file: legitimate
        made = guarded(target, lambda: KVStore(store))
        if isinstance(made, KVStore):
            made.close()


def _lines() -> st.SearchStrategy[str]:
    """Import lines: hostile JSON text, and well-formed lines with hostile fields and msgpack payloads."""

    def packed(value: object) -> str:
        return base64.b64encode(msgpack.packb(value)).decode()

    payloads = st.sampled_from(
        [packed(float("nan")), packed([1, float("inf")]), packed({"a": 2**64 - 1}), packed(_nested_list(200)),
         base64.b64encode(b"\xd4\x01\x00").decode(), base64.b64encode(b"\xc1").decode(), "!!", ""]
    )  # fmt: skip
    fields = st.fixed_dictionaries(
        {"key": st.one_of(st.just("k/imp"), st.sampled_from(SQLISH))},
        optional={
            "value": st.one_of(st.integers(), st.text(max_size=5), payloads),
            "encoding": st.sampled_from(["json", "base64", "msgpack", "zip", "1"]),
            "namespace": st.sampled_from(["default", "", "a b", "x" * 100]),
            "ttl_us": st.sampled_from([0, 60_000_000, 2**70]),
            "expires_at": st.sampled_from(
                ["2030-01-01T00:00:00+00:00", "2030-01-01", "never", "9999-12-31T23:59:59+14:00"]
            ),
            "created_at": st.sampled_from(["1969-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00"]),
            "metadata": st.sampled_from([{}, {"a": 1}, [1], "x"]),
            "content_type": st.sampled_from(["a/b", "", "x" * 300]),
            "refresh_on_access": st.sampled_from([True, False, 1]),
            "versionstamp": st.sampled_from(["0" * 20, "x"]),
        },
    ).map(json.dumps)
    texts = st.sampled_from(
        ['{"key": "k/a", "value": ' + "1" * 5000 + "}", '{"key": "k/a", "value": 1e999}',
         '{"key": "k/a", "value": NaN}', '{"key": "k/a", "value": ' + "[" * 100_000 + "]" * 100_000 + "}",
         '{"key": "\\ud800", "value": 1}', '{"key": "k/a", "value": "\\udfff"}', "[1]", "null", "{",
         '{"key": "k/a"}', '{"key": "k/a", "value": 1, "x": 2}']
    )  # fmt: skip
    return st.one_of(fields, texts)


@given(data=st.data())
def test_import_takes_hostile_lines_and_export_writes_what_import_reads(target: Target, data: st.DataObject) -> None:
    lines = data.draw(st.lists(_lines(), min_size=1, max_size=3), label="lines")
    mode = data.draw(st.one_of(st.sampled_from(["fail", "skip", "overwrite"]), hostile), label="on_existing")
    text = "\n".join(lines) + "\n"
    guarded(target, lambda: target.kv.import_jsonl(io.StringIO(text), on_existing=mode))  # type: ignore[arg-type]
    raw = text.encode("utf-8", "surrogatepass") + data.draw(st.sampled_from([b"", b"\xff\xfe\n"]), label="tail")
    guarded(target, lambda: target.kv.import_jsonl(io.BytesIO(raw), on_existing="skip"))
    exported = io.StringIO()
    guarded(target, lambda: target.kv.export_jsonl(exported))
    assert all(json.loads(line) for line in exported.getvalue().splitlines())


@pytest.fixture(scope="module")
def async_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[asyncio.Runner, AsyncKVStore]]:
    path = tmp_path_factory.mktemp("hostile-async") / "kv.db"
    with asyncio.Runner() as runner:
        store = AsyncKVStore(path, clock=lambda: 1_800_000_000.0, auto_purge_every=0)
        runner.run(store.open())
        runner.run(store.set("k/a", {"n": 1}))
        try:
            yield runner, store
        finally:
            runner.run(store.close())


@given(data=st.data())
def test_the_async_facade_takes_hostile_objects(
    async_store: tuple[asyncio.Runner, AsyncKVStore], data: st.DataObject
) -> None:
    runner, store = async_store
    key, value = data.draw(keys, label="key"), data.draw(values, label="value")
    options = data.draw(st.dictionaries(st.sampled_from(["expire_in", "metadata"]), hostile, max_size=1), "options")
    operand = data.draw(numbers, label="operand")
    limit = data.draw(st.one_of(st.none(), numbers), label="limit")

    async def calls() -> None:
        for call in (
            lambda: store.set(key, value, **options),
            lambda: store.get(key),
            lambda: store.get_many([key]),
            lambda: store.list(limit=limit),
            lambda: store.delete(key),
            lambda: store.atomic().sum(key, operand).commit(),
            lambda: store.namespace(key),
        ):
            try:
                with armed():
                    await call()
            except KVError:
                pass

    runner.run(calls())
    runner.run(store.set("k/alive", 1))  # the store still works
    assert runner.run(store.get("k/alive")) is not None
