"""The queue commands: ``kvstore enqueue``, ``kvstore queue info`` and ``kvstore queue peek``."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import click
import msgpack
import pytest

from kvstore import KVStore
from kvstore.cli import main

from .test_cli import error, out, run


@pytest.fixture
def db(shared_target: str) -> str:
    return shared_target


@pytest.mark.parametrize(("path", "words"), [(["enqueue"], 3), (["queue", "info"], 3), (["queue", "peek"], 3)])
def test_each_queue_command_has_help_from_its_docstring(path: list[str], words: int) -> None:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    result = run(*path, "--help")
    assert result.exit_code == 0
    assert command.help is not None
    assert " ".join(command.help.split()[:words]) in " ".join(result.stdout.split())
    assert "--db" in result.stdout
    assert "--queue" in result.stdout
    assert path[0] in run("--help").stdout


def test_enqueue_then_info_and_peek_in_delivery_order(db: str) -> None:
    first = out(run("enqueue", "--db", db, '{"order": 1}'))
    assert set(first) == {"ok", "versionstamp", "message_id"}
    assert first["ok"] is True
    later = out(run("enqueue", "--db", db, "--delay", "60000", "--text", "later"))
    second = out(run("enqueue", "--db", db, "--text", "mail", "--content-type", "text/x-mail"))
    assert out(run("queue", "info", "--db", db)) == {
        "queue": "default", "ready": 2, "delayed": 1, "in_flight": 0, "dead_letters": 0,
    }  # fmt: skip
    result = run("queue", "peek", "--db", db)
    assert result.exit_code == 0, result.stderr
    peeked = [json.loads(line) for line in result.stdout.splitlines()]
    assert [m["id"] for m in peeked] == [first["message_id"], second["message_id"]]
    assert later["message_id"] not in {m["id"] for m in peeked}
    assert (peeked[0]["value"], peeked[0]["encoding"], peeked[0]["attempt"]) == ({"order": 1}, "json", 1)
    assert (peeked[1]["value"], peeked[1]["content_type"]) == ("mail", "text/x-mail")
    assert peeked[0]["enqueued_at"].endswith("+00:00")
    one = run("queue", "peek", "--db", db, "--limit", "1")
    assert [json.loads(line)["id"] for line in one.stdout.splitlines()] == [first["message_id"]]
    with KVStore(db) as kv:  # peeking took nothing
        message = kv.receive()
        assert message is not None
        assert message.id == first["message_id"]


def test_named_queue_namespace_and_options_reach_the_message(db: str) -> None:
    sent = out(run("enqueue", "--db", db, "-n", "shop", "-q", "mail", "--key-if-undelivered", "dead/1",
                   "--backoff", "0", "1"))  # fmt: skip
    assert out(run("queue", "info", "--db", db, "-n", "shop", "-q", "mail"))["ready"] == 1
    assert out(run("queue", "info", "--db", db))["ready"] == 0
    with KVStore(db) as kv:
        shop = kv.namespace("shop")
        for _ in range(2):  # the schedule [0]: one retry, then a dead letter
            message = shop.receive(queue="mail")
            assert message is not None
            assert message.id == sent["message_id"]
            message.retry()
        dead = shop.get("dead/1")
        assert dead is not None
        assert dead.value == 1
    assert out(run("queue", "info", "--db", db, "-n", "shop", "-q", "mail"))["dead_letters"] == 1


def test_bytes_and_values_json_cannot_hold_are_shown_as_get_shows_them(db: str, tmp_path: Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x00\xffraw")
    out(run("enqueue", "--db", db, "--file", str(blob)))
    with KVStore(db) as kv:
        kv.enqueue([b"inside", 1])
    lines = [json.loads(line) for line in run("queue", "peek", "--db", db).stdout.splitlines()]
    assert (lines[0]["encoding"], base64.b64decode(lines[0]["value"])) == ("base64", b"\x00\xffraw")
    assert lines[1]["encoding"] == "msgpack"
    assert msgpack.unpackb(base64.b64decode(lines[1]["value"])) == [b"inside", 1]


def test_bad_options_are_problems_and_enqueue_nothing(db: str) -> None:
    out(run("enqueue", "--db", db, "1"))
    problem = error(run("enqueue", "--db", db, "--delay", str(31 * 24 * 3600 * 1000), "2"), 422)
    assert "delay" in problem["detail"]
    assert "backoff" in error(run("enqueue", "--db", db, "--backoff", "1,1,1,1,1,1", "2"), 422)["detail"]
    assert run("enqueue", "--db", db, "--backoff", "soon", "2").exit_code == 2
    assert run("enqueue", "--db", db, "not json").exit_code == 2
    assert run("enqueue", "--db", db).exit_code == 2
    assert out(run("queue", "info", "--db", db))["ready"] == 1
    assert error(run("queue", "info", "--db", db, "-q", ""), 422)["status"] == 422


def test_info_and_peek_create_no_database(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    for command in (["queue", "info"], ["queue", "peek"]):
        error(run(*command, "--db", str(missing)), 503)
    assert not missing.exists()
    out(run("enqueue", "--db", str(missing), "1"))  # enqueue creates it, as set does
    assert missing.exists()
