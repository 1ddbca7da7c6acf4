"""``kvstore list``: JSON Lines, streamed a page at a time in constant memory, with --limit and --cursor."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import Result

from kvstore import KVStore
from kvstore._backends.postgres import PostgresBackend
from kvstore._backends.sqlite import SQLiteBackend

from .test_cli import run


@pytest.fixture
def db(shared_target: str) -> str:
    return shared_target


def lines(result: Result) -> list[Any]:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return [json.loads(line) for line in result.stdout.splitlines()]


def _fill(db: str, count: int, prefix: str = "p/") -> None:
    with KVStore(db) as kv, kv.atomic() as op:
        for i in range(count):
            op.set(f"{prefix}{i:04d}", {"i": i, "blob": b"\x00" if i == 0 else "x"})


def test_list_prints_an_entry_a_line(db: str) -> None:
    _fill(db, 5)
    with KVStore(db) as kv:
        kv.namespace("other").set("p/9", 9)
    found = lines(run("list", "--db", db, "p/"))
    assert [entry["key"] for entry in found] == [f"p/{i:04d}" for i in range(5)]
    assert found[1]["value"] == {"i": 1, "blob": "x"}
    assert found[1]["encoding"] == "json"
    assert found[0]["encoding"] == "msgpack"  # bytes inside a dict: JSON cannot hold them as they are
    assert lines(run("list", "--db", db, "--reverse", "--keys-only"))[0] == "p/0004"
    assert lines(run("list", "--db", db, "-n", "other", "--keys-only")) == ["p/9"]
    assert lines(run("list", "--db", db, "--start", "p/0001", "--end", "p/0003", "--keys-only")) == [
        "p/0001",
        "p/0002",
    ]


def test_a_limit_ends_with_the_cursor_that_continues(db: str) -> None:
    _fill(db, 5)
    first = lines(run("list", "--db", db, "p/", "--limit", "3"))
    assert [entry["key"] for entry in first[:3]] == ["p/0000", "p/0001", "p/0002"]
    assert set(first[3]) == {"cursor"}
    rest = lines(run("list", "--db", db, "p/", "--limit", "3", "--cursor", first[3]["cursor"], "--keys-only"))
    assert rest == ["p/0003", "p/0004"]  # and no cursor line: nothing is left
    assert len(lines(run("list", "--db", db, "p/", "--limit", "5"))) == 5


def test_keys_only_reads_no_value(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(db, 5)

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("--keys-only read values")

    for backend in (SQLiteBackend, PostgresBackend):
        monkeypatch.setattr(backend, "scan", refuse)
    assert lines(run("list", "--db", db, "p/", "--keys-only")) == [f"p/{i:04d}" for i in range(5)]


def test_list_streams_a_page_at_a_time(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --limit the listing is read in pages of --page-size (500 by default), never all at once."""
    _fill(db, 1100)
    fetched: list[int | None] = []
    for backend in (SQLiteBackend, PostgresBackend):

        def spy(self: Any, *args: Any, _real: Any = backend.scan) -> Any:
            fetched.append(args[5])  # the rows asked for
            return _real(self, *args)

        monkeypatch.setattr(backend, "scan", spy)
    assert len(lines(run("list", "--db", db))) == 1100
    assert fetched == [501, 501, 501]
    fetched.clear()
    assert len(lines(run("list", "--db", db, "--page-size", "100", "--limit", "150"))) == 151  # and a cursor
    assert fetched == [101, 101]
