"""Targets and constructor options: what opens which file, and what is refused as a configuration error."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kvstore import ConfigurationError, KVStore

from ._storage_support import count_entries, pragma, versionstamp_counter


@pytest.mark.parametrize(
    "target",
    [
        "mysql://",
        "postgresql+psycopg2://user:pw@host/db",
        "postgresql+asyncpg://user@host/db",
        "sqlite+aiosqlite:///kv.db",
        "sqlite:///kv.db?mode=ro",
        "bad url://x",
    ],
)
def test_unsupported_url_is_a_configuration_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError):
        KVStore(target)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("target", [b"kv.db", 42, None, "", "kv\x00.db", "sqlite:///kv\x00.db"])
def test_target_that_is_not_a_path_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError):
        KVStore(target)
    assert list(tmp_path.iterdir()) == []


class _PathLike:
    """An os.PathLike that is not a pathlib.Path."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __fspath__(self) -> str:
        return str(self._path)


_TARGETS: dict[str, Callable[[Path], str | os.PathLike[str]]] = {
    "str": str,
    "pathlib": lambda p: p,
    "pathlike": _PathLike,
    "sqlite-url": lambda p: f"sqlite:///{p}",
    "sqlite+pysqlite-url": lambda p: f"sqlite+pysqlite:///{p}",
    "relative-url": lambda p: f"sqlite:///{p.name}",
    "relative-path": lambda p: p.name,
}


@pytest.mark.parametrize("kind", sorted(_TARGETS))
def test_file_targets_open_the_same_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "kv.db"
    with KVStore(_TARGETS[kind](path)) as kv:
        assert kv.set("k", kind).committed
        assert pragma(kv, "journal_mode") == "wal"
    assert count_entries(path) == 1
    with KVStore(str(path)) as kv:
        entry = kv.get("k")
        assert entry is not None
        assert entry.value == kind


@pytest.mark.parametrize("target", [":memory:", "sqlite://", "sqlite:///:memory:"])
def test_memory_targets_are_private_and_leave_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with KVStore(target) as one, KVStore(target) as two:
        one.set("k", 1)
        assert one.get("k") is not None
        assert two.get("k") is None
        assert pragma(one, "journal_mode") == "memory"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "options",
    [
        {"busy_timeout": -1},
        {"busy_timeout": float("nan")},
        {"busy_timeout": float("inf")},
        {"busy_timeout": "5"},
        {"busy_timeout": True},
        {"max_value_size": 0},
        {"max_value_size": -5},
        {"max_value_size": 1.5},
        {"max_value_size": True},
        {"max_metadata_size": 0},
        {"purge_batch_size": 0},
        {"purge_batch_size": None},
        {"auto_purge_every": -1},
        {"auto_purge_every": 2.0},
        {"clock": "x"},
        {"clock": None},
        {"clock": 1_800_000_000.0},
        {"pool_size": 0},
        {"pool_size": 2.0},
        {"pool_timeout": 0},
        {"pool_timeout": float("nan")},
        {"pool_timeout": True},
        {"connect_timeout": -1},
        {"connect_timeout": "10"},
    ],
    ids=repr,
)
def test_bad_constructor_arguments_are_configuration_errors(db_path: Path, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        KVStore(db_path, **options)
    assert caught.value.status == 400
    assert not db_path.exists()  # refused before touching the file system


_CLOCK_OPERATIONS: dict[str, Callable[[KVStore], object]] = {
    "set": lambda kv: kv.set("new", 1),
    "get": lambda kv: kv.get("k"),
    "get_many": lambda kv: kv.get_many(["k"]),
    "delete": lambda kv: kv.delete("k"),
    "list": lambda kv: kv.list(),
    "purge_expired": lambda kv: kv.purge_expired(),
}


class _SwitchableClock:
    """A sane clock until told to return something else."""

    def __init__(self) -> None:
        self.value: Any = 1_800_000_000.0

    def __call__(self) -> float:
        result: float = self.value
        return result


@pytest.mark.parametrize("operation", sorted(_CLOCK_OPERATIONS))
@pytest.mark.parametrize("value", ["1800000000", None, [], float("nan"), float("inf"), object()], ids=repr)
def test_clock_returning_a_non_number_is_a_configuration_error(db_path: Path, operation: str, value: Any) -> None:
    clock = _SwitchableClock()
    with KVStore(db_path, clock=clock) as kv:
        kv.set("k", 1)
        counter = versionstamp_counter(db_path)
        clock.value = value
        with pytest.raises(ConfigurationError, match="clock"):
            _CLOCK_OPERATIONS[operation](kv)
        clock.value = 1_800_000_000.0
        assert kv.set("next", 2).versionstamp == f"{2:016x}0000"  # no versionstamp was drawn
    assert count_entries(db_path) == 2
    assert versionstamp_counter(db_path) == counter


@pytest.mark.parametrize("value", [1e13, 1e12], ids=["beyond-sqlite-int64", "beyond-datetime"])
def test_clock_out_of_range_is_a_configuration_error(db_path: Path, value: float) -> None:
    """A "now" that SQLite's 64-bit integers or a datetime cannot hold must not escape as OverflowError."""
    clock = _SwitchableClock()
    with KVStore(db_path, clock=clock) as kv:
        kv.set("k", 1)
        counter = versionstamp_counter(db_path)
        clock.value = value
        for operation, call in _CLOCK_OPERATIONS.items():
            with pytest.raises(ConfigurationError, match="clock"):
                call(kv)
            assert count_entries(db_path) == 1, operation  # nothing was written at a time no reader can decode
            assert versionstamp_counter(db_path) == counter, operation
        clock.value = 1_800_000_000.0
        assert kv.set("next", 2).versionstamp == f"{2:016x}0000"  # and no versionstamp was drawn
