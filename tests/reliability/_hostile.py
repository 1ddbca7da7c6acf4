"""Hostile input for the hostile-input tests: strategies drawing valid, SQL-shaped and arbitrary input, and
the check every call goes through (only KVErrors, and a rejected call changes no stored row)."""

from __future__ import annotations

import base64
import enum
import json
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

from hypothesis import strategies as st

from kvstore import KVError, KVStore, Namespace

from ._support import dump

NOW: Final = 1_800_000_000.0
LIVE: Final = f"(expires_us IS NULL OR expires_us > {int(NOW * 1_000_000)})"  # SQL: live at NOW
SQLISH: Final = [
    "%",
    "_",
    "%%",
    "a%",
    "%a",
    "a_",
    "_a",
    "a_b",
    "__",
    "-",
    "--",
    "a-",
    ".",
    "..",
    "a.b",
    "*",
    "?",
    "[a-z]",
    "a/%",
    "a/_",
    "a/",
    "/",
    "//",
    "\\",
    "\\%",
    "a\\_b",
    "'",
    "''",
    '"',
    "' OR 1=1 --",
    "' OR '1'='1",
    "'; DROP TABLE kvstore_entries; --",
    '") OR ("1"="1',
    "a' ESCAPE '\\",
    "' UNION SELECT key, value FROM kvstore_entries --",
    "default' --",
    "x'; UPDATE kvstore_versionstamp SET version = 0; --",
    "\x00",
    "a\x00b",
    "GLOB",
    "a*",
    "%_%",
    "k/%",
    "k/_",
    "k_",
    "k%",
    "K",
    "k/a\n",
    " k/a",
    "k/a ",
    "\uff4b",  # a full-width k
    "k/ä",
]


# -- hostile objects ------------------------------------------------------------------------------------


class Booby:
    """An object whose special methods raise (all but repr, and the equality and hash hypothesis needs):
    kvstore must refuse it by its type alone."""

    def __repr__(self) -> str:
        return "Booby()"

    def _boom(self, *args: object, **kwargs: object) -> Any:
        raise AssertionError("kvstore called a special method of a caller's object")

    __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __len__ = __iter__ = __contains__ = __getitem__ = _boom
    __str__ = __format__ = __bytes__ = __index__ = __int__ = __float__ = __round__ = __fspath__ = _boom


class StrSub(str):
    pass


class IntSub(int):
    pass


class FloatSub(float):
    pass


class DictSub(dict[str, Any]):
    pass


class ListSub(list[Any]):
    pass


class Color(enum.IntEnum):
    RED = 1


class Wrapped:
    """A plain custom object with a usable __str__ (str(x) must not be how kvstore validates)."""

    def __str__(self) -> str:
        return "k/a"


def _weird() -> list[object]:
    loop: list[object] = []
    loop.append(loop)
    cycle: dict[str, object] = {}
    cycle["self"] = cycle
    return [
        object(),
        Booby(),
        Ellipsis,
        NotImplemented,
        type,
        len,
        StrSub("k/a"),
        IntSub(60_000),
        FloatSub(60_000.0),
        DictSub(a=1),
        ListSub([1]),
        Color.RED,
        Wrapped(),
        loop,
        cycle,
        range(3),
        iter([1]),
        slice(1),
        Path("k/a"),
        b"k/a",
        bytearray(b"k/a"),
        memoryview(b"k/a"),
        (1, 2),
        frozenset({1}),
        {1, 2},
        1 + 2j,
        Decimal("60000"),
        Decimal("NaN"),
        Fraction(1, 3),
        2**63,
        -(2**63) - 1,
        2**200,
        float("nan"),
        float("inf"),
        -0.0,
        datetime(2027, 1, 1),  # naive
        datetime.max.replace(tzinfo=UTC),
        datetime.min.replace(tzinfo=UTC),
        timedelta(minutes=5),
        "\ud800",
        "k/\ud800",
    ]


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=30),
    st.text(st.characters(categories=["Cs", "Co", "Cc", "Zs"]), max_size=5),
    st.binary(max_size=30),
    st.datetimes(timezones=st.none() | st.timezones()),
    st.sampled_from(_weird()),
    st.builds(lambda: "x" * 10_000),  # built, so that the strategy's repr stays short
)
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=4), st.integers(), st.none()), inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
    ),
    max_leaves=10,
)
valid_keys = st.from_regex(r"k/[ab_.\-]{1,2}", fullmatch=True).filter(lambda k: k.split("/")[1] not in (".", ".."))
keys = st.one_of(valid_keys, st.sampled_from(SQLISH), st.text(max_size=300), anything)
prefixes = st.one_of(st.from_regex(r"k?/?[ab_.\-]{0,2}", fullmatch=True), st.sampled_from(SQLISH), anything)
namespaces = st.one_of(st.sampled_from(["default", "ns-1", "ns_2", "_", "-"]), st.sampled_from(SQLISH), anything)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.text(max_size=10)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
values = st.one_of(json_values, st.binary(max_size=50), anything)
flags = st.one_of(st.booleans(), anything)


def _stamps(numbers: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    return numbers.map(lambda n: f"{n:016x}0000")


versionstamps = st.one_of(
    _stamps(st.integers(0, 2**64 - 1)),
    st.sampled_from(["0" * 20, "f" * 20, "F" * 20, "0" * 19, "0" * 21, "00000000000000010001", "-" + "0" * 19]),
    st.text(max_size=25),
    anything,
)
expire_ins = st.one_of(
    st.sampled_from([59_999, 60_000, 31_536_000_000, 31_536_000_001, 0, -1]),
    st.integers(),
    st.floats(),
    anything,
)
expire_ats = st.one_of(
    st.timedeltas(min_value=timedelta(days=-400), max_value=timedelta(days=400)).map(
        lambda d: datetime.fromtimestamp(NOW, UTC) + d
    ),
    st.datetimes(timezones=st.none() | st.timezones()),
    anything,
)
metadatas = st.one_of(st.dictionaries(st.text(max_size=5), json_values, max_size=4), anything)
content_types = st.one_of(
    st.sampled_from(["application/json", "text/plain; charset=utf-8", "a/b;x='1'", "a/b; q=%", "*/*", "a/b c"]),
    st.sampled_from(SQLISH),
    st.text(max_size=40),
    anything,
)
limits = st.one_of(st.integers(-3, 5), st.sampled_from([2**63, 2**64, True, 1.0]), anything)


def _cursor(data: object) -> str:
    text = json.dumps(data, separators=(",", ":"), default=repr)
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


cursor_fields = st.one_of(json_values, st.sampled_from(SQLISH), valid_keys)
cursors = st.one_of(
    st.fixed_dictionaries(
        {"v": st.one_of(st.just(1), cursor_fields), "p": st.one_of(st.just(""), cursor_fields)}
        | {"r": st.one_of(st.booleans(), cursor_fields), "k": cursor_fields},
        optional={"s": cursor_fields, "e": cursor_fields},
    ).map(_cursor),
    st.sampled_from(SQLISH).map(lambda s: _cursor({"v": 1, "p": "", "r": False, "k": s})),
    st.sampled_from([_cursor("[" * 700), "[" * 1024, "=" * 8, "e30", "bnVsbA", "W10", "eyJ2IjoxfQ", "\u00e9" * 4]),
    st.text(max_size=60),
    anything,
)


# -- the store under attack -------------------------------------------------------------------------------


@dataclass
class Target:
    kv: KVStore
    conn: sqlite3.Connection

    def stamps(self) -> list[str]:
        return [f"{version:016x}0000" for (version,) in self.conn.execute("SELECT version FROM kvstore_entries")]


def same(a: object, b: object) -> bool:
    """Equal and of the same types all the way down (nan equals nan)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def attempt(target: Target, call: Callable[[], object]) -> object:
    """Run ``call``: it returns, or raises a KVError and leaves every stored row as it was."""
    before = dump(target.conn)
    try:
        return call()
    except KVError as exc:
        rejected = exc
    assert dump(target.conn) == before, f"a rejected call ({rejected!r}) changed the stored data"
    return rejected


def pick_space(target: Target, data: st.DataObject) -> Namespace:
    name = data.draw(st.sampled_from(["default", "ns-1", "ns_2"]), label="namespace")
    return target.kv.namespace(name)


SET_OPTIONS: Final = {
    "if_versionstamp": versionstamps,
    "if_not_exists": flags,
    "overwrite": flags,
    "expire_in": expire_ins,
    "expire_at": expire_ats,
    "refresh_on_access": flags,
    "metadata": metadatas,
    "content_type": content_types,
}


LIST_OPTIONS: Final = {"start": prefixes, "end": prefixes, "limit": limits, "cursor": cursors, "reverse": flags}
