"""Input that broke the making of error messages, or was stored though JSON cannot carry it.

Integers past Python's 4,300-digit limit for int-to-str conversion, past a float's range, a list nested
10,000 deep, NaN and the infinities: each call is refused with a KVError (a ValidationError, or a
ConfigurationError for a store's options and clock) whose message stays short, and nothing stored changes.
"""

from __future__ import annotations

import base64
import io
import json
import math
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any, Final

import httpx
import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore import (
    ConfigurationError,
    InvalidMetadataError,
    InvalidOptionsError,
    InvalidTTLError,
    InvalidValueError,
    KVError,
    KVStore,
    ValidationError,
)
from kvstore._codec import encode_value

from .conftest import FakeClock

HUGE: Final = 10**5000  # 5,001 digits: str() of it raises ValueError
MESSAGE_MAX: Final = 400  # characters: a message shows a caller's object cut short, whatever its size


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _refused(kv: KVStore, call: Callable[[], object], error: type[KVError]) -> KVError:
    """``call`` raises ``error`` with a short message, and every entry and versionstamp stays as it was."""
    before = [(entry.key, entry.value, entry.versionstamp) for entry in kv.iterate()]
    with pytest.raises(error) as caught:
        call()
    assert len(str(caught.value)) <= MESSAGE_MAX, str(caught.value)
    assert [(entry.key, entry.value, entry.versionstamp) for entry in kv.iterate()] == before
    return caught.value


CALLS: Final[dict[str, tuple[Callable[[KVStore], object], type[KVError]]]] = {
    "set": (lambda kv: kv.set("a", HUGE), InvalidValueError),
    "set -huge": (lambda kv: kv.set("a", [1, {"n": -HUGE}]), InvalidValueError),
    "metadata": (lambda kv: kv.set("a", 1, metadata={"n": HUGE}), InvalidMetadataError),
    "expire_in": (lambda kv: kv.set("a", 1, expire_in=HUGE), InvalidTTLError),
    "sum": (lambda kv: kv.atomic().sum("a", HUGE), InvalidValueError),
    "max": (lambda kv: kv.atomic().max("a", -HUGE), InvalidValueError),
    "atomic set": (lambda kv: kv.atomic().set("a", HUGE), InvalidValueError),
    "delete_prefix": (lambda kv: kv.delete_prefix("x", batch_size=-HUGE), InvalidOptionsError),
    "list": (lambda kv: kv.list(limit=-HUGE), InvalidOptionsError),
    "list_keys": (lambda kv: kv.list_keys(limit=-HUGE), InvalidOptionsError),
    "max_bytes": (lambda kv: kv.list(max_bytes=-HUGE), InvalidOptionsError),
    "iterate": (lambda kv: kv.iterate(page_size=-HUGE), InvalidOptionsError),
    "watch": (lambda kv: kv.watch(["a"], interval=-HUGE), InvalidOptionsError),
    "watch huge": (lambda kv: kv.watch(["a"], interval=HUGE), InvalidOptionsError),
    "check": (lambda kv: kv.atomic().check("a", _nested(10_000)), ValidationError),  # type: ignore[arg-type]
    "check huge": (lambda kv: kv.atomic().check("a", HUGE), ValidationError),  # type: ignore[arg-type]
    "set deep": (lambda kv: kv.set("a", _nested(10_000)), InvalidValueError),
    "versionstamp": (lambda kv: kv.set("a", 1, if_versionstamp=_nested(10_000)), ValidationError),  # type: ignore[arg-type]
    "namespace": (lambda kv: kv.namespace("n" * 1_000_000), ValidationError),
    "content_type": (lambda kv: kv.set("a", 1, content_type="a/" + "b" * 1_000_000), ValidationError),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_huge_ints_and_deep_nesting_are_refused_with_a_short_message(kv: KVStore, name: str) -> None:
    kv.set("a", 1)
    call, error = CALLS[name]
    _refused(kv, lambda: call(kv), error)


def test_a_huge_int_is_shown_by_its_size(kv: KVStore) -> None:
    message = str(_refused(kv, lambda: kv.set("a", HUGE), InvalidValueError))
    assert f"{HUGE.bit_length():,}-bit" in message


STORE_OPTIONS: Final = [
    {"max_value_size": -HUGE},
    {"max_metadata_size": HUGE * 0 - HUGE},
    {"max_checks": -HUGE},
    {"purge_batch_size": -HUGE},
    {"auto_purge_every": -HUGE},
    {"busy_timeout": -HUGE},
    {"busy_timeout": HUGE},
    {"pool_timeout": -HUGE},
    {"synchronous": _nested(10_000)},
]


@pytest.mark.parametrize("options", STORE_OPTIONS, ids=lambda options: next(iter(options)))
def test_store_options_past_every_range_are_a_configuration_error(tmp_path: Path, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        KVStore(tmp_path / "kv.db", **options)
    assert len(str(caught.value)) <= MESSAGE_MAX
    assert list(tmp_path.iterdir()) == []  # refused before the database was opened


@pytest.mark.parametrize("reading", [HUGE, -HUGE, 2**1100, float(2**1000)], ids=["huge", "-huge", "2**1100", "1e301"])
def test_a_clock_reading_past_every_range_is_a_configuration_error(tmp_path: Path, reading: float) -> None:
    readings = [1_800_000_000.0]
    with KVStore(tmp_path / "kv.db", clock=lambda: readings[-1]) as kv:
        kv.set("a", 1, expire_in=60_000)
        readings.append(reading)
        with pytest.raises(ConfigurationError) as caught:
            kv.set("b", 1, expire_in=60_000)
        assert len(str(caught.value)) <= MESSAGE_MAX
        readings.append(1_800_000_000.0)
        assert kv.list().keys == ["a"]


# -- NaN and the infinities ---------------------------------------------------------------------------------

NOT_FINITE: Final = [math.nan, math.inf, -math.inf]
HOLDERS: Final[dict[str, Callable[[float], object]]] = {
    "itself": lambda x: x,
    "in a list": lambda x: [1, 2.5, x],
    "in a dict": lambda x: {"a": 1.5, "b": x},
    "deep": lambda x: {"a": [{"b": [0.5, [x]]}]},
    "many": lambda x: [0.5] * 5000 + [x],
}


@pytest.mark.parametrize("number", NOT_FINITE, ids=repr)
@pytest.mark.parametrize("holder", sorted(HOLDERS))
def test_nan_and_infinities_are_refused_as_values(kv: KVStore, number: float, holder: str) -> None:
    value = HOLDERS[holder](number)
    kv.set("a", 1)
    as_metadata = _refused(kv, lambda: kv.set("a", 1, metadata={"m": value}), InvalidMetadataError)  # type: ignore[dict-item]
    calls: list[Callable[[], object]] = [
        lambda: kv.set("a", value),  # type: ignore[arg-type]
        lambda: kv.set("b", value, if_not_exists=True),  # type: ignore[arg-type]
        lambda: kv.atomic().set("a", value).commit(),  # type: ignore[arg-type]
        lambda: kv.mapping().__setitem__("a", value),
        lambda: kv.mapping().setdefault("b", value),
    ]
    for call in calls:
        error = _refused(kv, call, InvalidValueError)
        # The same words as metadata's refusal, "value" for "metadata".
        assert str(error) == str(as_metadata).replace("metadata", "value")
    assert kv.get("a").value == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("number", NOT_FINITE, ids=repr)
def test_an_import_line_of_nan_is_refused(kv: KVStore, number: float) -> None:
    """A msgpack-encoded value (what an export writes for a value JSON cannot hold) with NaN is refused."""
    blob = base64.b64encode(msgpack.packb({"x": [number]})).decode()
    lines = (
        json.dumps({"key": "ok", "value": 1}) + "\n" + json.dumps({"key": "b", "value": blob, "encoding": "msgpack"})
    )
    kv.set("a", 1)
    _refused(kv, lambda: kv.import_jsonl(io.StringIO(lines)), InvalidValueError)
    assert kv.get("ok") is None


def test_finite_floats_still_store_and_read_back(kv: KVStore) -> None:
    value = {"f": [0.0, -0.0, 1.5, 1e308, -1e-308, 5e-324], "g": 2.5}
    kv.set("a", value)
    entry = kv.get("a")
    assert entry is not None
    assert entry.value == value
    assert [math.copysign(1, x) for x in entry.value["f"][:2]] == [1, -1]


def test_a_nan_stored_before_still_reads_back(tmp_path: Path, clock: FakeClock) -> None:
    """Values written before NaN was refused (or by another program) stay readable: only writing refuses."""
    path = tmp_path / "kv.db"
    with KVStore(path, clock=clock) as kv:
        kv.set("a", [1.0])
    with closing(sqlite3.connect(path)) as conn, conn:  # an entry with no checksum yet, as before revision 0003
        columns = {column[1] for column in conn.execute("PRAGMA table_info(kvstore_entries)")}
        checksum = ", checksum = NULL" if "checksum" in columns else ""
        conn.execute(f"UPDATE kvstore_entries SET value = ?{checksum}", (msgpack.packb([math.nan, math.inf]),))
    with KVStore(path, clock=clock) as kv:
        entry = kv.get("a")
        assert entry is not None
        assert math.isnan(entry.value[0])
        assert entry.value[1] == math.inf
        assert kv.list().keys == ["a"]


def test_the_cli_refuses_a_number_past_a_float_as_the_library_does(tmp_path: Path) -> None:
    """ "1e999" is JSON, and parses to an infinity: the library's own check refuses it (NaN and Infinity, which
    are not JSON, are refused by the parser: test_cli_contract.py)."""
    from .test_cli import error, run

    db = str(tmp_path / "kv.db")
    for value in ("1e999", "[1, -1e999]", '{"a": {"b": 1e400}}'):
        assert error(run("set", "--db", db, "k", "--", value), 422)["error_code"] == 1103
    assert error(run("set", "--db", db, "k", "1", "--metadata", '{"m": 1e999}'), 422)["error_code"] == 1104
    with KVStore(db) as kv:
        assert kv.get("k") is None


def test_the_http_apis_refuse_them_as_the_library_does(tmp_path: Path) -> None:
    """Whichever way a body is parsed (the fast path refuses them in its parser, FastAPI's routes take them and
    leave them to ``set``), a non-finite number is a 422 with the invalid-value code, and nothing is stored."""
    from ulid import ULID

    from kvstore.server import create_app

    from .test_server import AUTH, TOKEN, problem, serve

    bodies = [b'{"value": 1e999}', b'{"value": [1, {"x": -1e999}]}', b'{"value": NaN}', b'{"value": [Infinity]}']
    with serve(create_app(tmp_path / "kv.db", tokens=[TOKEN])) as url, httpx.Client(base_url=url, headers=AUTH) as http:
        for path in (f"/store/{ULID()}/kv/k", "/kv/user/k"):
            for body in bodies:
                answer = http.put(path, content=body, headers={"content-type": "application/json"})
                assert problem(answer, 422)["error_code"] == 1103, body
            assert http.get(path).status_code == 404


_FLOATS: Final = st.floats() | st.sampled_from([math.nan, math.inf, -math.inf, -math.nan, 1.0, 0.0])
# Bytes and str that hold the msgpack pattern of a non-finite float: the check must look past them.
_LOOKALIKES: Final = st.sampled_from([b"\xcb\x7f\xf8\x00", b"\xcb\xff\xf0", "\u02cb\x7f", b"\xcb" * 9])
_MEMBERS: Final = st.recursive(
    _FLOATS | _LOOKALIKES | st.integers(-(2**63), 2**63 - 1) | st.binary(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
    max_leaves=12,
)


def _finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(map(_finite, value))
    if isinstance(value, dict):
        return all(map(_finite, value.values()))
    return True


@given(value=_MEMBERS)
def test_a_value_is_refused_exactly_when_it_holds_a_float_that_is_not_finite(value: object) -> None:
    """The check looks at a value's encoding first; whatever bytes or str look like, it never misses nor
    wrongly refuses."""
    if _finite(value):
        encode_value(value, 1 << 20)  # does not raise
    else:
        with pytest.raises(InvalidValueError, match="JSON has no such number"):
            encode_value(value, 1 << 20)
