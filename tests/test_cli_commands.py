"""The commands added for issue 18: count, delete-prefix, watch, backup, export and import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kvstore import KVStore
from kvstore.cli import main

from .test_cli import out, run

NEW_COMMANDS = ["count", "delete-prefix", "watch", "backup", "export", "import"]


@pytest.fixture
def db(shared_target: str) -> str:
    return shared_target


@pytest.mark.parametrize("command", NEW_COMMANDS)
def test_each_new_command_has_help_from_its_docstring(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0
    doc = main.commands[command].help
    assert doc is not None
    assert " ".join(doc.split()[:3]) in " ".join(result.stdout.split())
    assert "--db" in result.stdout
    assert command in run("--help").stdout


def test_count_and_delete_prefix(db: str) -> None:
    for key in ("p/1", "p/2", "q/1"):
        out(run("set", "--db", db, key, "1"))
    assert out(run("count", "--db", db)) == {"count": 3}
    assert out(run("count", "--db", db, "p/")) == {"count": 2}
    assert out(run("count", "--db", db, "--start", "p/2")) == {"count": 2}
    assert out(run("delete-prefix", "--db", db, "p/")) == {"deleted": 2}
    assert out(run("count", "--db", db)) == {"count": 1}
    assert out(run("delete-prefix", "--db", db, "", "--batch-size", "1")) == {"deleted": 1}


def test_watch_prints_a_snapshot_a_line_as_keys_change(db: str) -> None:
    out(run("set", "--db", db, "config", '{"v": 1}'))
    command = [sys.executable, "-m", "kvstore", "watch", "--db", db, "config", "flags", "--limit", "2"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as watcher:
        assert watcher.stdout is not None
        first = json.loads(watcher.stdout.readline())  # printed at once: the watcher is watching now
        assert first[0]["value"] == {"v": 1}
        assert first[1] is None
        with KVStore(db) as kv:  # another process's commit: noticed within --interval
            kv.set("flags", ["beta"])
        second = json.loads(watcher.stdout.readline())
        assert [second[0]["value"], second[1]["value"]] == [{"v": 1}, ["beta"]]
        assert watcher.wait(60) == 0  # --limit 2: done


def test_backup_writes_a_copy_that_opens_as_a_store(db: str, tmp_path: Path) -> None:
    out(run("set", "--db", db, "k", '"v"'))
    target = tmp_path / "copy.db"
    done = out(run("backup", "--db", db, str(target)))
    assert done == {"target": str(target), "size_bytes": target.stat().st_size}
    assert out(run("get", "--db", str(target), "k"))["value"] == "v"
    again = run("backup", "--db", db, str(target))
    assert again.exit_code == 1
    assert json.loads(again.stderr)["errors"][0]["error_code"] == 1106  # the target exists: refused


def test_export_then_import(db: str, tmp_path: Path) -> None:
    out(run("set", "--db", db, "a", '{"n": 1}', "--metadata", '{"m": true}'))
    out(run("set", "--db", db, "-n", "users", "b", "text", "--text"))
    exported = run("export", "--db", db)
    assert exported.exit_code == 0
    assert [json.loads(line)["key"] for line in exported.stdout.splitlines()] == ["a", "b"]
    copy = str(tmp_path / "copy.db")
    assert out(run("import", "--db", copy, input=exported.stdout_bytes)) == {
        "read": 2,
        "imported": 2,
        "skipped": 0,
        "expired": 0,
    }
    assert out(run("get", "--db", copy, "a"))["metadata"] == {"m": True}
    assert out(run("get", "--db", copy, "-n", "users", "b"))["value"] == "text"
    refused = run("import", "--db", copy, input=exported.stdout_bytes)
    assert refused.exit_code == 1
    assert json.loads(refused.stderr)["errors"][0]["error_code"] == 1400  # KeyExistsError: nothing written
    skipped = out(run("import", "--db", copy, "--on-existing", "skip", input=exported.stdout_bytes))
    assert skipped["skipped"] == 2
    dump = tmp_path / "dump.jsonl"
    assert out(run("export", "--db", db, "--output", str(dump))) == {"exported": 2}
    assert dump.read_bytes() == exported.stdout_bytes
    assert out(run("import", "--db", copy, str(dump), "--on-existing", "overwrite"))["imported"] == 2


def test_a_bad_import_line_is_a_problem_and_writes_nothing(tmp_path: Path) -> None:
    copy = str(tmp_path / "copy.db")
    lines = '{"key": "a", "value": 1}\n{"key": "b c", "value": 1}\n'
    result = run("import", "--db", copy, input=lines)
    assert result.exit_code == 1
    problem = json.loads(result.stderr)["errors"][0]
    assert (problem["error_code"], problem["detail"].split(":")[0]) == (1101, "line 2")
    assert out(run("count", "--db", copy)) == {"count": 0}
