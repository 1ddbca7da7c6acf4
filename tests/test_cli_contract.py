"""The command line's one error contract (exit codes, what goes to stderr), and the fixes of issue 18, item 12:
no NaN in or out, --file alone, and a read of a missing database that creates nothing."""

from __future__ import annotations

import json
import math
import re
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any, NoReturn

import msgpack
import pytest
from click.testing import CliRunner, Result

from kvstore import KVStore, Namespace
from kvstore.cli import main

from .test_cli import run

README = Path(__file__).resolve().parents[1] / "README.md"
CODES = {"0", "1", "2", "3", "130", "141"}


def problem(result: Result) -> dict[str, Any]:
    """The one problem of an exit 1: JSON on stderr, nothing on stdout."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    body = json.loads(result.stderr)
    assert body["ok"] is False
    first: dict[str, Any] = body["errors"][0]
    return first


def usage(result: Result) -> str:
    """The text of an exit 2: click's usage text on stderr, nothing on stdout."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("Usage: ")
    return result.stderr


def _strict(text: str) -> Any:
    def refuse(name: str) -> NoReturn:
        raise AssertionError(f"{name} in the output: not JSON")

    return json.loads(text, parse_constant=refuse)


def test_the_exit_codes_are_documented_in_help_and_readme() -> None:
    helped = run("--help").stdout
    assert "Exit codes:" in helped
    block = helped.split("Exit codes:\n", 1)[1].split("\n\n", 1)[0]
    assert {line.split()[0] for line in block.splitlines()} == CODES
    section = README.read_text().split("## Command line", 1)[1].split("\n## ", 1)[0]
    assert {found for found in re.findall(r"^\| `?(\d+)`? \|", section, re.MULTILINE)} == CODES


def test_usage_errors_exit_2_with_click_usage_text(tmp_path: Path) -> None:
    db = str(tmp_path / "kv.db")
    assert "VALUE is not JSON" in usage(run("set", "--db", db, "k1", '{"name": lamp}'))
    assert "--expire-in" in usage(run("set", "--db", db, "k1", "1", "--expire-in", "1h"))
    assert "--limit" in usage(run("list", "--db", db, "--limit", "0"))
    assert "No such option" in usage(run("get", "--db", db, "k", "--colour"))
    assert not Path(db).exists()  # nothing ran


def test_errors_of_the_store_exit_1_with_a_problem(tmp_path: Path) -> None:
    db = str(tmp_path / "kv.db")
    assert problem(run("set", "--db", db, "bad key", "1"))["error_code"] == 1101
    assert problem(run("get", "--db", db, "nothing"))["status"] == 404
    assert problem(run("import", "--db", db, input="[]\n"))["error_code"] == 1100


def test_nan_and_infinity_are_refused_on_set(tmp_path: Path) -> None:
    db = str(tmp_path / "kv.db")
    run("migrate", "--db", db)
    for value in ("NaN", "Infinity", "-Infinity", '{"x": NaN}'):
        assert "not a JSON number" in usage(run("set", "--db", db, "k1", "--", value))
    with KVStore(db) as kv:
        assert kv.get("k1") is None


def test_output_is_json_even_for_values_json_cannot_hold(tmp_path: Path) -> None:
    db = str(tmp_path / "kv.db")
    with KVStore(db) as kv:
        kv.set("nan", 0.5)
        kv.set("nested", {"blob": b"\x00"})
    with closing(sqlite3.connect(db)) as conn, conn:  # a NaN stored before the library refused them
        columns = {column[1] for column in conn.execute("PRAGMA table_info(kvstore_entries)")}
        checksum = ", checksum = NULL" if "checksum" in columns else ""
        conn.execute(f"UPDATE kvstore_entries SET value = ?{checksum} WHERE key = 'nan'", (msgpack.packb(math.nan),))
    for key in ("nan", "nested"):
        got = run("get", "--db", db, key)
        assert got.exit_code == 0
        assert _strict(got.stdout)["encoding"] == "msgpack"
    listed = run("list", "--db", db)
    assert [_strict(line)["key"] for line in listed.stdout.splitlines()] == ["nan", "nested"]
    assert all(_strict(line) for line in run("export", "--db", db).stdout.splitlines())


def test_file_is_refused_with_a_value_or_text(tmp_path: Path) -> None:
    db = str(tmp_path / "kv.db")
    data = tmp_path / "bin.dat"
    data.write_bytes(b"\x00\x01")
    assert "--file" in usage(run("set", "--db", db, "hello", "VALUE", "--file", str(data)))
    assert "--file" in usage(run("set", "--db", db, "hello", "--text", "--file", str(data)))
    assert not Path(db).exists()
    assert json.loads(run("set", "--db", db, "hello", "--file", str(data)).stdout)["committed"] is True


@pytest.mark.parametrize(
    "args",
    [
        ["get", "k"],
        ["list"],
        ["count"],
        ["delete", "k"],
        ["delete-prefix", "p/"],
        ["watch", "k"],
        ["info"],
        ["purge"],
        ["export"],
        ["backup", "copy.db"],
    ],
)
def test_a_read_of_a_missing_database_says_so_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    found = problem(run(args[0], "--db", "typo.db", *args[1:]))
    assert found["error_code"] == 2006
    assert "'typo.db' does not exist" in found["detail"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [["set", "k", "1"], ["migrate"], ["import"]])
def test_set_migrate_and_import_create_the_database(tmp_path: Path, args: list[str]) -> None:
    db = tmp_path / "new.db"
    assert run(args[0], "--db", str(db), *args[1:], input="").exit_code == 0
    assert db.exists()


def test_an_interrupt_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = str(tmp_path / "kv.db")
    run("migrate", "--db", db)

    def interrupted(*_args: object, **_kwargs: object) -> NoReturn:
        raise KeyboardInterrupt

    monkeypatch.setattr(Namespace, "count", interrupted)
    result = CliRunner().invoke(main, ["count", "--db", db])
    assert result.exit_code == 130
    assert "Aborted" not in result.stderr


def test_a_closed_pipe_exits_141(tmp_path: Path) -> None:
    db = str(tmp_path / "kv.db")
    with KVStore(db) as kv, kv.atomic() as op:
        for i in range(3000):  # more than a pipe's buffer holds
            op.set(f"k/{i:05d}", "x" * 100)
    command = [sys.executable, "-m", "kvstore", "list", "--db", db, "--keys-only"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as lister:
        assert lister.stdout is not None
        assert json.loads(lister.stdout.readline()) == "k/00000"
        lister.stdout.close()  # as `head -1` does
        assert lister.wait(60) == 141
        assert lister.stderr is not None
        assert b"Traceback" not in lister.stderr.read()


def test_serve_on_a_busy_port_exits_1_with_a_problem(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        command = [sys.executable, "-m", "kvstore", "serve", "--db", str(tmp_path / "kv.db"), "--port", port]
        done = subprocess.run([*command, "--token", "t"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    found = json.loads(done.stderr.strip().splitlines()[-1])["errors"][0]
    assert (found["status"], found["error_code"]) == (503, 3503)


def test_serve_without_the_server_extra_exits_1_with_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "kvstore.server", None)  # import kvstore.server now fails, as without it
    found = problem(run("serve", "--db", ":memory:"))
    assert found["error_code"] == 1200
    assert 'pip install "stampkv[server]"' in found["detail"]
