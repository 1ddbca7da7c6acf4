"""A database written by someone else is data, never code.

Values are msgpack and metadata is JSON: kvstore decodes both without hooks that build objects, and
never unpickles. These tests store pickle payloads that would run a command if anything unpickled them,
write crafted rows (msgpack ext types, malformed encodings, non-JSON metadata) straight into the file
with SQL, and read everything back through every read path: the reader gets plain data (only the value
types kvstore stores) or a KVError, and nothing runs. A static check holds the source to it.
"""

from __future__ import annotations

import ast
import math
import os
import pickle
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import msgpack
import pytest

import kvstore
from kvstore import Entry, KVError, KVStore

from ._support import raw

pytestmark = pytest.mark.reliability

MARKER_NAME: Final = "pwned"
_SYSTEM: Final = os.system  # the real one, for payloads built while the fixture below has replaced it


class _RunsCommand:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[[str], int], tuple[str]]:
        return (_SYSTEM, (f"touch {self.marker}",))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / MARKER_NAME


@pytest.fixture
def no_code_loading(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every way a value could become code, replaced by a recorder that refuses."""
    calls: list[str] = []

    def refuse(name: str) -> Callable[..., Any]:
        def refused(*args: object, **kwargs: object) -> Any:
            calls.append(name)
            raise AssertionError(f"{name} was called while reading the store")

        return refused

    for module, name in [
        (pickle, "loads"),
        (pickle, "load"),
        (pickle, "Unpickler"),
        (os, "system"),
        (os, "popen"),
        (subprocess, "Popen"),
    ]:
        monkeypatch.setattr(module, name, refuse(f"{module.__name__}.{name}"))
    return calls


def _plain(value: object, depth: int = 0) -> bool:
    """Whether ``value`` is made only of the types kvstore stores (exact types, str dict keys)."""
    if depth > 200:
        return False
    if value is None or type(value) in (bool, int, float, str, bytes):
        return True
    if type(value) is list:
        return all(_plain(item, depth + 1) for item in value)
    if type(value) is dict:
        return all(type(k) is str and _plain(v, depth + 1) for k, v in value.items())
    return False


def _json_plain(value: object, depth: int = 0) -> bool:
    """Whether ``value`` is JSON data: exact JSON types, finite numbers, str keys."""
    if depth > 200:
        return False
    if value is None or type(value) in (bool, int, str):
        return True
    if type(value) is float:
        return math.isfinite(value)
    if type(value) is list:
        return all(_json_plain(item, depth + 1) for item in value)
    if type(value) is dict:
        return all(type(k) is str and _json_plain(v, depth + 1) for k, v in value.items())
    return False


def _read_everything(kv: KVStore, namespace: str, key: str) -> list[object]:
    """get, get_many and list of ``key``: each an Entry (checked to be plain data) or the KVError raised."""
    space = kv.namespace(namespace)
    reads: list[Callable[[], Entry | None]] = [
        lambda: space.get(key),
        lambda: space.get_many([key])[0],
        lambda: next(iter(space.list(key)), None),
    ]
    outcomes: list[object] = []
    for read in reads:
        try:
            entry = read()
        except KVError as exc:
            outcomes.append(exc)
            continue
        assert entry is not None
        assert _plain(entry.value), f"value read back is not plain data: {entry.value!r}"
        assert type(entry.metadata) is dict, f"metadata read back is not a dict: {entry.metadata!r}"
        assert _json_plain(entry.metadata), f"metadata read back is not plain JSON data: {entry.metadata!r}"
        outcomes.append(entry)
    return outcomes


def test_a_pickle_payload_is_stored_and_returned_as_bytes(
    tmp_path: Path, marker: Path, no_code_loading: list[str]
) -> None:
    payload = pickle.dumps(_RunsCommand(marker))
    with KVStore(tmp_path / "kv.db") as kv:
        kv.set("payload", payload)
        kv.set("as-text", payload.decode("latin-1"))
        kv.set("nested", {"p": [payload]}, metadata={"py/object": "os.system", "__reduce__": ["touch", str(marker)]})
        for key in ("payload", "as-text", "nested"):
            outcomes = _read_everything(kv, "default", key)
            assert all(isinstance(o, Entry) for o in outcomes), outcomes
        entry = kv.get("payload")
        assert entry is not None
        assert entry.value == payload
        assert type(entry.value) is bytes
        nested = kv.get("nested")
        assert nested is not None
        assert nested.metadata == {"py/object": "os.system", "__reduce__": ["touch", str(marker)]}
    assert no_code_loading == []
    assert not marker.exists()


def _crafted_values(marker: Path) -> dict[str, object]:
    payload = pickle.dumps(_RunsCommand(marker))
    return {
        "raw-pickle": payload,
        "ext-type-holding-a-pickle": msgpack.packb(msgpack.ExtType(42, payload)),
        "ext-type-in-a-list": msgpack.packb([1, msgpack.ExtType(1, payload)]),
        "msgpack-timestamp": msgpack.packb(msgpack.Timestamp(1, 0)),
        "truncated": msgpack.packb([1, 2, 3])[:-1],
        "trailing-bytes": msgpack.packb(1) + b"\x01",
        "int-map-keys": msgpack.packb({1: 2}),
        "binary-map-keys": msgpack.packb({b"k": 2}, use_bin_type=True),
        "nested-too-deep": b"\x91" * 5000 + b"\xc0",
        "text-instead-of-blob": "a string where a blob belongs",
        "empty": b"",
    }


_CRAFTED_METADATA: Final[dict[str, str]] = {
    "metadata-not-json": "not json at all",
    "metadata-a-list": "[1, 2, 3]",
    "metadata-nan": '{"n": NaN}',
    "metadata-nested-too-deep": "[" * 100_000 + "]" * 100_000,
    "metadata-jsonpickle-object": '{"py/object": "os.system", "py/reduce": [{"py/function": "os.system"}]}',
}

_INSERT: Final = (
    "INSERT INTO kvstore_entries (namespace, key, value, content_type, metadata, version, created_us,"
    " updated_us, expires_us, ttl_us, refresh_on_access) VALUES ('crafted', ?, ?, 'application/json', ?,"
    " (SELECT version + 1 FROM kvstore_versionstamp), 1800000000000000, 1800000000000000, NULL, NULL, 0)"
)


def _craft(path: Path, key: str, value: object, metadata: str | None) -> None:
    with raw(path) as conn:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(_INSERT, (key, value, metadata))
        conn.execute("UPDATE kvstore_versionstamp SET version = version + 1")
        conn.execute("COMMIT")


@pytest.mark.parametrize("case", sorted(_crafted_values(Path())) + sorted(_CRAFTED_METADATA))
def test_rows_crafted_with_sql_read_back_as_plain_data_or_a_kverror(
    tmp_path: Path, marker: Path, no_code_loading: list[str], case: str
) -> None:
    """Whatever another program wrote into the file, reading it gives plain data or a KVError."""
    path = tmp_path / "crafted.db"
    KVStore(path).close()
    if case in _CRAFTED_METADATA:
        _craft(path, case, msgpack.packb("fine"), _CRAFTED_METADATA[case])
    else:
        _craft(path, case, _crafted_values(marker)[case], None)
    _craft(path, "neighbour", msgpack.packb("fine"), None)
    with KVStore(path) as kv:
        _read_everything(kv, "crafted", case)
        # A crafted row does not take its neighbours down with it on a point read.
        neighbour = kv.namespace("crafted").get("neighbour")
        assert neighbour is not None
        assert neighbour.value == "fine"
    assert no_code_loading == []
    assert not marker.exists()


# -- the source itself ------------------------------------------------------------------------------------

_CODE_LOADING_MODULES: Final = {
    "pickle",
    "_pickle",
    "cPickle",
    "marshal",
    "shelve",
    "dill",
    "cloudpickle",
    "jsonpickle",
}
_CODE_RUNNING_CALLS: Final = {"eval", "exec", "compile", "__import__"}
_OBJECT_HOOKS: Final = {"object_hook", "object_pairs_hook", "list_hook", "cls"}


def _builds_only_dicts(keyword: ast.keyword) -> bool:
    """The one hook allowed: the server's ``unique_object``, which builds a plain dict (or refuses a duplicate key)."""
    return (
        keyword.arg == "object_pairs_hook"
        and isinstance(keyword.value, ast.Name)
        and keyword.value.id == "unique_object"
    )


def test_the_one_allowed_object_hook_builds_plain_dicts_only() -> None:
    """``unique_object`` turns a JSON object into a ``dict`` and nothing else; a key named twice is refused."""
    from kvstore.server._json import ROUTES, DuplicateKeyError

    parsed = ROUTES.decode('{"a": {"b": [1, {"c": null}]}}')
    assert type(parsed) is dict
    assert type(parsed["a"]) is dict
    assert type(parsed["a"]["b"][1]) is dict
    with pytest.raises(DuplicateKeyError):
        ROUTES.decode('{"a": 1, "a": 2}')


def _sources() -> list[Path]:
    package = Path(kvstore.__file__).resolve().parent
    return sorted(package.rglob("*.py"))


def test_kvstore_never_imports_a_deserializer_that_builds_objects_or_calls_eval() -> None:
    """No pickle (or its relatives) anywhere in kvstore; no eval/exec; decoders without object hooks."""
    found: list[str] = []
    sources = _sources()
    assert len(sources) > 5
    for source in sources:
        tree = ast.parse(source.read_text(), str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            else:
                names = []
            found += [f"{source.name}: imports {name}" for name in names if name in _CODE_LOADING_MODULES]
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                if isinstance(func, ast.Name) and name in _CODE_RUNNING_CALLS:  # the builtins, not re.compile
                    found.append(f"{source.name}:{node.lineno}: calls {name}")
                if name in ("loads", "load", "unpackb", "Unpacker", "JSONDecoder"):
                    found += [
                        f"{source.name}:{node.lineno}: {name}({kw.arg}=...)"
                        for kw in node.keywords
                        if kw.arg in _OBJECT_HOOKS and not _builds_only_dicts(kw)
                    ]
    assert found == []
