"""``export_jsonl`` and ``import_jsonl``: every live entry as JSON Lines, losslessly, and back into any store,
checked whole before anything is written, in bounded memory."""

from __future__ import annotations

import gc
import io
import json
import os
import pickle
import tracemalloc
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore import (
    ImportResult,
    InvalidKeyError,
    InvalidNamespaceError,
    InvalidOptionsError,
    InvalidTTLError,
    InvalidValueError,
    KeyExistsError,
    KVStore,
    ValidationError,
)
from kvstore import _codec as codec
from kvstore import _validation as validation

from .conftest import START, FakeClock, Stores

NAMESPACES = ("default", "users", "01JABCDEFGHJKMNPQRSTVWXYZ0")


def _exported(kv: KVStore) -> str:
    out = io.StringIO()
    kv.export_jsonl(out)
    return out.getvalue()


def _snapshot(kv: KVStore) -> list[tuple[Any, ...]]:
    """Every live entry of the namespaces used here, all but the versionstamp (NaN compares by its encoding)."""
    return [
        (name, e.key, msgpack.packb(e.value), e.metadata, e.content_type, e.size_bytes, *e[6:])
        for name in NAMESPACES
        for e in kv.namespace(name).iterate()
    ]


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
entries = st.lists(
    st.tuples(
        st.sampled_from(NAMESPACES),
        st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,7}(/[a-z0-9_-]{1,8})?", fullmatch=True),
        values,
        st.none() | st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1) | st.text(), max_size=2),
        st.none() | st.sampled_from(["application/x-thing", "text/csv; charset=utf-8"]),
        st.none() | st.integers(60, 3600),
        st.booleans(),
    ),
    max_size=12,
)


@settings(max_examples=25)  # each example opens and empties a store, on PostgreSQL a round trip a statement
@given(written=entries)
def test_export_then_import_into_an_empty_store_gives_equal_entries(
    stores: Stores, written: list[tuple[Any, ...]]
) -> None:
    clock = FakeClock()
    with KVStore(":memory:", clock=clock) as source:
        for namespace, key, value, metadata, content_type, ttl, refresh in written:
            view = source.namespace(namespace)
            expiry = None if ttl is None else timedelta(seconds=ttl)
            view.set(key, value, metadata=metadata, content_type=content_type, expire_in=expiry,
                     refresh_on_access=refresh and ttl is not None)  # fmt: skip
            clock.advance(1.5)  # distinct times: created, updated and expiry must travel exactly
        text = _exported(source)
        clock.advance(10)  # the import runs later, while every entry is still live
        with stores.open(clock=clock) as target:  # the same database for every example, emptied first
            for name in NAMESPACES:
                target.namespace(name).delete_prefix("")
            result = target.import_jsonl(io.StringIO(text))
            assert _snapshot(target) == _snapshot(source)
            lines = text.count("\n")  # not splitlines(): a JSON string may hold U+2028, which it splits at
            assert result == ImportResult(lines, lines, 0, 0)


def test_a_line_holds_the_entry_losslessly(kv: KVStore) -> None:
    kv.set("json", {"n": 1, "s": "é"}, metadata={"m": [1]})
    kv.set("bytes", b"\x00\xff")
    kv.set("nested", [b"\x01", 1.5])
    lines = {line["key"]: line for line in map(json.loads, _exported(kv).splitlines())}
    assert lines["json"]["value"] == {"n": 1, "s": "é"}
    assert (lines["json"]["encoding"], lines["json"]["metadata"]) == ("json", {"m": [1]})
    assert (lines["bytes"]["value"], lines["bytes"]["encoding"]) == ("AP8=", "base64")
    assert lines["nested"]["encoding"] == "msgpack"  # what JSON cannot hold
    entry = kv.get("json")
    assert entry is not None
    assert lines["json"]["versionstamp"] == entry.versionstamp
    assert lines["json"]["created_at"] == entry.created_at.isoformat()
    assert set(lines["json"]) == {
        "namespace", "key", "value", "encoding", "metadata", "content_type", "created_at", "updated_at",
        "expires_at", "refresh_on_access", "ttl_us", "versionstamp",
    }  # fmt: skip


def test_expired_entries_are_not_exported_and_not_imported(kv: KVStore, clock: FakeClock) -> None:
    kv.set("short", 1, expire_in=60_000)
    kv.set("long", 1, expire_in=120_000)
    kv.set("kept", 1)
    text = _exported(kv)
    clock.advance(61)
    assert [json.loads(line)["key"] for line in _exported(kv).splitlines()] == ["kept", "long"]
    clock.advance(60)  # past "long" too: importing the earlier export leaves both out
    with KVStore(":memory:", clock=clock) as target:
        assert target.import_jsonl(io.StringIO(text)) == ImportResult(3, 1, 0, 2)
        assert list(target) == ["kept"]


def test_imported_entries_get_new_versionstamps_and_keep_their_ttl(kv: KVStore, clock: FakeClock) -> None:
    kv.set("k", 1, expire_in=timedelta(minutes=5), refresh_on_access=True)
    with KVStore(":memory:", clock=clock) as target:
        for i in range(3):
            target.set(f"old/{i}", i)
        before = max(entry.versionstamp for entry in target.iterate())
        target.import_jsonl(io.StringIO(_exported(kv)))
        entry = target.get("k")  # refreshed on access by the TTL it was written with: five minutes
        assert entry is not None
        assert entry.versionstamp > before
        assert entry.expires_at is not None
        assert entry.expires_at.timestamp() == pytest.approx(clock.now + 300)


def test_on_existing_fail_skip_and_overwrite(kv: KVStore) -> None:
    kv.set("a", "old")
    lines = '{"key": "a", "value": "new"}\n{"key": "b", "value": "new"}\n'
    with pytest.raises(KeyExistsError, match="line 1: key 'a'"):
        kv.import_jsonl(io.StringIO(lines))
    assert kv.get("b") is None  # found before anything was written
    assert kv.import_jsonl(io.StringIO(lines), on_existing="skip") == ImportResult(2, 1, 1, 0)
    assert (kv["a"], kv["b"]) == ("old", "new")
    created = kv.get("a").created_at  # type: ignore[union-attr]
    assert kv.import_jsonl(io.StringIO(lines), on_existing="overwrite") == ImportResult(2, 2, 0, 0)
    assert kv["a"] == "new"
    assert kv.get("a").created_at == created  # type: ignore[union-attr]  # as a set keeps it
    with pytest.raises(InvalidOptionsError, match="on_existing"):
        kv.import_jsonl(io.StringIO(lines), on_existing="replace")  # type: ignore[arg-type]


def test_a_key_brought_twice(kv: KVStore) -> None:
    lines = '{"key": "a", "value": 1}\n{"key": "a", "value": 2}\n'
    with pytest.raises(KeyExistsError, match=r"line 2: .* brought twice"):
        kv.import_jsonl(io.StringIO(lines))
    assert "a" not in kv
    assert kv.import_jsonl(io.StringIO(lines), on_existing="skip") == ImportResult(2, 1, 1, 0)
    assert kv["a"] == 1  # the first wins
    assert kv.import_jsonl(io.StringIO(lines), on_existing="overwrite").imported == 1
    assert kv["a"] == 2  # the last wins


def test_a_key_brought_twice_far_apart_stops_a_failing_import_at_its_batch(kv: KVStore) -> None:
    lines = "".join(f'{{"key": "k/{i}", "value": {i}}}\n' for i in range(600)) + '{"key": "k/0", "value": 0}\n'
    with pytest.raises(KeyExistsError, match=r"line 601: key 'k/0'.*lines before 501 were imported"):
        kv.import_jsonl(io.StringIO(lines))
    assert len(kv) == 500  # the first batch, written before the second found its key


def test_a_path_is_not_a_file(kv: KVStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionsError, match="file object"):
        kv.import_jsonl(str(tmp_path / "in.jsonl"))  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionsError, match="file object"):
        kv.export_jsonl(tmp_path / "out.jsonl")  # type: ignore[arg-type]
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize(
    ("line", "error", "says"),
    [
        ("not json", ValidationError, "not a JSON object"),
        ("[1, 2]", ValidationError, "JSON object, not list"),
        ('{"key": "k", "value": NaN}', ValidationError, "NaN is not JSON"),
        ('{"key": "k"}', ValidationError, "needs a key and a value"),
        ('{"key": "k", "value": 1, "colour": "red"}', ValidationError, "unknown field 'colour'"),
        ('{"key": "bad key", "value": 1}', InvalidKeyError, "bad key"),
        ('{"namespace": "no such!", "key": "k", "value": 1}', InvalidNamespaceError, "namespace"),
        ('{"key": "k", "value": "***", "encoding": "base64"}', InvalidValueError, "not base64"),
        ('{"key": "k", "value": "AAE=", "encoding": "msgpack"}', InvalidValueError, "msgpack"),
        ('{"key": "k", "value": 1, "encoding": "pickle"}', ValidationError, "encoding"),
        ('{"key": "k", "value": 18446744073709551616}', InvalidValueError, "64-bit"),
        ('{"key": "k", "value": 1, "created_at": "2027-01-01T00:00:00"}', ValidationError, "offset"),
        ('{"key": "k", "value": 1, "expires_at": "soon"}', InvalidTTLError, "expires_at"),
        ('{"key": "k", "value": 1, "ttl_us": 5}', InvalidTTLError, "ttl_us"),
        ('{"key": "k", "value": 1, "refresh_on_access": true}', InvalidTTLError, "needs ttl_us"),
        ('{"key": "k", "value": 1, "refresh_on_access": 1}', InvalidOptionsError, "bool"),
    ],
)
def test_bad_input_raises_naming_its_line_and_changes_nothing(
    kv: KVStore, line: str, error: type[ValidationError], says: str
) -> None:
    good = "".join(f'{{"key": "good/{i}", "value": {i}}}\n' for i in range(600))  # more than one batch
    with pytest.raises(error, match=rf"line 601: .*{says}") as raised:
        kv.import_jsonl(io.StringIO(good + line + "\n"))
    assert type(raised.value) is error
    assert len(kv) == 0


class _Pipe(io.RawIOBase):
    """A binary stream that cannot seek, as stdin from a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


def test_input_that_cannot_seek_is_read_twice_all_the_same(kv: KVStore) -> None:
    source = '{"key": "a", "value": 1}\n\n{"namespace": "users", "key": "b", "value": "é"}\n'.encode()
    assert kv.import_jsonl(io.BufferedReader(_Pipe(source))) == ImportResult(2, 2, 0, 0)
    assert (kv["a"], kv.namespace("users")["b"]) == (1, "é")
    bad = source + b'{"key": "c"}\n'
    with pytest.raises(ValidationError, match="line 4"):
        kv.import_jsonl(io.BufferedReader(_Pipe(bad)), on_existing="overwrite")
    assert "c" not in kv


def test_the_result_is_one_of_the_result_family(kv: KVStore) -> None:
    result = kv.import_jsonl(io.StringIO('{"key": "k", "value": 1}\n'))
    assert result._asdict() == {"read": 1, "imported": 1, "skipped": 0, "expired": 0}
    assert pickle.loads(pickle.dumps(result)) == result
    assert repr(result).startswith("ImportResult(")


def test_a_minimal_line_takes_the_defaults(kv: KVStore, clock: FakeClock) -> None:
    kv.import_jsonl(io.BytesIO(b'{"key": "k", "value": "text"}\n'))
    entry = kv.get("k")
    assert entry is not None
    assert (entry.content_type, entry.metadata, entry.expires_at) == ("text/plain; charset=utf-8", {}, None)
    assert entry.created_at.timestamp() == entry.updated_at.timestamp() == START


def test_an_export_that_stops_midway_ends_its_snapshot_cleanly(kv: KVStore) -> None:
    """A reader that goes away (a closed pipe) stops the export; the snapshot ends then and there, with no
    error left for the garbage collector to report (pytest turns such a report into a failure)."""
    for i in range(3):
        kv.set(f"k/{i}", i)

    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            if text:
                raise BrokenPipeError
            return 0

    with pytest.raises(BrokenPipeError):
        kv.export_jsonl(Gone())
    gc.collect()
    assert kv.set("after", 1).committed


def test_export_writes_text_or_bytes(kv: KVStore) -> None:
    kv.set("k", "é")
    binary = io.BytesIO()
    assert kv.export_jsonl(binary) == 1
    assert binary.getvalue().decode() == _exported(kv)


def _lines(count: int) -> Iterator[str]:
    for i in range(count):
        yield json.dumps({"key": f"k/{i:07d}", "value": {"i": i, "name": "lamp"}, "metadata": {"n": i}}) + "\n"


def _import_peak(path: Path, database: Path) -> int:
    with KVStore(database) as kv, path.open() as source:
        tracemalloc.start()
        try:
            kv.import_jsonl(source)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def _export_peak(database: Path) -> int:
    with KVStore(database) as kv, open(os.devnull, "w") as sink:
        tracemalloc.start()
        try:
            kv.export_jsonl(sink)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


@pytest.mark.slow
def test_import_and_export_memory_does_not_grow_with_the_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten times the entries, not ten times the memory: a batch at a time (peaks compared loosely)."""
    # The caches of valid keys and of instants are bounded (65,536 and 4,096), but fill with the first tens of
    # thousands of distinct keys and times: kept small here, they leave the import's own memory to compare.
    monkeypatch.setattr(validation, "_VALID_KEYS_MAX", 64)
    monkeypatch.setattr(codec, "_INSTANTS_MAX", 64)
    peaks = {}
    for count in (3_000, 30_000):
        path = tmp_path / f"{count}.jsonl"
        path.write_text("".join(_lines(count)))
        peaks[count] = _import_peak(path, tmp_path / f"{count}.db"), _export_peak(tmp_path / f"{count}.db")
    (small_import, small_export), (large_import, large_export) = peaks[3_000], peaks[30_000]
    assert large_import < 2 * small_import, peaks
    assert large_export < 2 * small_export, peaks
