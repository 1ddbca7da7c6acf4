"""The ``kvstore`` command, driven through click's CliRunner (and one real ``serve`` in a subprocess)."""

from __future__ import annotations

import importlib
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner, Result
from ulid import ULID

from kvstore import AtomicReusedError, ForkedStoreError, KVStore, Namespace, StoreClosedError, UsageError
from kvstore._migrate import HEAD
from kvstore.cli import main
from kvstore.server._serve import ENVIRONMENT

from .test_server import serve

COMMANDS = ["serve", "get", "set", "delete", "list", "purge", "info", "migrate"]


@pytest.fixture
def db(shared_target: str) -> str:
    """The --db of the commands: a file path, and a postgresql:// URL."""
    return shared_target


def run(*args: str, input: bytes | str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def out(result: Result) -> Any:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def error(result: Result, status: int) -> dict[str, Any]:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    body = json.loads(result.stderr)
    assert body["ok"] is False
    first: dict[str, Any] = body["errors"][0]
    assert first["status"] == status
    assert set(first) == {"type", "status", "title", "detail", "instance", "error_code"}
    return first


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_from_its_docstring(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0
    doc = main.commands[command].help
    assert doc is not None
    assert doc.split()[0] in result.stdout
    assert "--db" in result.stdout


def test_the_group_lists_every_command() -> None:
    listing = run("--help").stdout
    assert all(command in listing for command in COMMANDS)


def test_set_and_get_json_text_and_bytes(db: str, tmp_path: Path) -> None:
    written = out(run("set", "--db", db, "products/1", '{"stock": 3}', "--metadata", '{"v": 1}'))
    assert written["committed"] is True
    assert written["created"] is True
    entry = out(run("get", "--db", db, "products/1"))
    assert (entry["value"], entry["metadata"], entry["encoding"]) == ({"stock": 3}, {"v": 1}, "json")
    assert entry["versionstamp"] == written["versionstamp"]

    out(run("set", "--db", db, "greeting", "hello there", "--text"))
    assert run("get", "--db", db, "greeting", "--raw").stdout == "hello there"

    blob = bytes(range(256))
    (tmp_path / "blob.bin").write_bytes(blob)
    assert out(run("set", "--db", db, "blob", "--file", str(tmp_path / "blob.bin")))["content_type"] == (
        "application/octet-stream"
    )
    assert run("get", "--db", db, "blob", "--raw").stdout_bytes == blob
    assert out(run("set", "--db", db, "stdin", "--file", "-", input=b"\x00\x01"))["committed"] is True
    with KVStore(db) as kv:
        stored = kv.get("stdin")
        assert stored is not None
        assert stored.value == b"\x00\x01"


def test_conditions_and_ttl_options(db: str) -> None:
    stamp = out(run("set", "--db", db, "k", "1"))["versionstamp"]
    stale = run("set", "--db", db, "k", "2", "--if-versionstamp", "0" * 20)
    assert stale.exit_code == 3
    assert json.loads(stale.stdout)["ok"] is False
    assert out(run("set", "--db", db, "k", "2", "--if-versionstamp", stamp))["committed"] is True
    assert run("set", "--db", db, "k", "3", "--if-not-exists").exit_code == 3
    kept = out(run("set", "--db", db, "k", "4", "--no-overwrite"))
    assert (kept["ok"], kept["committed"]) == (True, False)
    timed = out(run("set", "--db", db, "t", "1", "--expire-in", "60000", "--refresh-on-access"))
    assert timed["expires_at"] is not None
    in_a_day = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 86_400))
    assert out(run("set", "--db", db, "u", "1", "--expire-at", in_a_day))["expires_at"].startswith(in_a_day)
    assert error(run("set", "--db", db, "u", "1", "--expire-at", "2999-01-01T00:00:00"), 422)["error_code"] == 1105
    assert run("set", "--db", db, "u", "1", "--expire-at", "someday").exit_code == 2


def test_errors_are_problems_on_stderr(db: str, tmp_path: Path) -> None:
    assert error(run("set", "--db", db, "bad key", "1"), 422)["error_code"] == 1101
    assert error(run("set", "--db", db, "k", "1", "--expire-in", "59999"), 422)["error_code"] == 1105
    assert error(run("get", "--db", db, "nothing"), 404)["error_code"] == 3404
    assert error(run("get", "--db", db, "-n", "bad name!", "k"), 422)["error_code"] == 1102
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"no database here" * 64)
    assert error(run("info", "--db", str(junk)), 500)["error_code"] == 2004
    assert junk.read_bytes() == b"no database here" * 64
    usage = run("set", "--db", db, "k", "{not json")
    assert usage.exit_code == 2
    assert "--text" in usage.stderr


def test_delete(db: str) -> None:
    """(``list`` has tests of its own: tests/test_cli_list.py.)"""
    out(run("set", "--db", db, "p/0", "0"))
    assert out(run("delete", "--db", db, "p/0")) == {"deleted": True}
    gone = run("delete", "--db", db, "p/0")
    assert gone.exit_code == 3
    assert json.loads(gone.stdout) == {"deleted": False}


def test_usage_errors_are_problems_with_their_own_status(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    out(run("migrate", "--db", db))  # a read needs a database that exists
    for cls, status, code in (
        (UsageError, 409, 1300),
        (StoreClosedError, 503, 1301),
        (AtomicReusedError, 409, 1302),
        (ForkedStoreError, 409, 1303),
    ):

        def misuse(*_args: object, _cls: type[UsageError] = cls, **_kwargs: object) -> None:
            raise _cls("the store was used the wrong way")

        monkeypatch.setattr(Namespace, "get", misuse)
        assert error(run("get", "--db", db, "k"), status)["error_code"] == code, cls.__name__


def test_purge_info_and_migrate(db: str) -> None:
    migrated = out(run("migrate", "--db", db))
    assert migrated == {"schema_revision": HEAD}
    assert db.startswith("postgresql") or Path(db).exists()
    with KVStore(db, clock=lambda: time.time() - 3600) as past:  # written an hour ago, for a minute
        past.set("old", 1, expire_in=60_000)
        past.set("kept", 1)
        assert migrated == {"schema_revision": past.info().schema_revision}
    before = out(run("info", "--db", db))
    assert (before["entries"], before["expired"]) == (1, 1)
    assert out(run("purge", "--db", db)) == {"purged": 1}
    assert out(run("info", "--db", db))["expired"] == 0


def _capture_uvicorn(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Stand in for uvicorn.run; what it was given, and the app its factory builds, land in the dict."""
    captured: dict[str, Any] = {}

    def fake_run(app: str, **options: Any) -> None:
        module, _, name = app.partition(":")
        captured.update(options, import_string=app)
        captured["app"] = getattr(importlib.import_module(module), name)()  # what each worker builds

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.delenv(ENVIRONMENT, raising=False)  # serve sets it: undone after the test
    return captured


def test_serve_parses_tokens_and_limits(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    captured = _capture_uvicorn(monkeypatch)
    store = str(ULID())
    result = run("serve", "--db", db, "--token", "wide", "--token", f"narrow:{store},user", "--max-body-size", "100")
    assert result.exit_code == 0
    assert (captured["host"], captured["port"], captured["workers"]) == ("127.0.0.1", 8901, 1)
    assert (captured["factory"], captured["access_log"]) == (True, False)
    with serve(captured["app"]) as url, httpx.Client(base_url=url) as http:
        assert http.put(
            f"/store/{store}/kv/k", json={"value": 1}, headers={"Authorization": "Bearer narrow"}
        ).is_success
        other = http.put(f"/store/{ULID()}/kv/k", json={"value": 1}, headers={"Authorization": "Bearer narrow"})
        assert other.status_code == 403
        assert http.put("/kv/event/k", json={"value": 1}, headers={"Authorization": "Bearer wide"}).is_success
        assert http.put("/kv/event/k", json={"value": 1}).status_code == 401
        big = http.put("/kv/event/k", json={"value": "x" * 200}, headers={"Authorization": "Bearer wide"})
        assert big.status_code == 413
    assert "warning" not in result.stderr
    assert "no --token" in run("serve", "--db", db).stderr


def test_serve_passes_workers_and_the_access_log_to_uvicorn(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    captured = _capture_uvicorn(monkeypatch)
    assert run("serve", "--db", db, "--workers", "3", "--access-log", "--token", "t").exit_code == 0
    assert (captured["workers"], captured["access_log"]) == (3, True)
    assert captured["import_string"] == "kvstore.server._serve:app_from_environment"
    refused = CliRunner().invoke(main, ["serve", "--db", ":memory:", "--workers", "2"])
    assert refused.exit_code == 2
    assert "--workers > 1 needs a database file" in refused.stderr


def test_serve_runs_for_real(db: str) -> None:
    command = [sys.executable, "-m", "kvstore.cli", "serve", "--db", db, "--port", "0", "--token", "t"]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as server:
        try:
            assert server.stderr is not None
            url = None
            for line in server.stderr:  # uvicorn announces where it listens once it is ready
                if "Uvicorn running on" in line:
                    url = line.split("Uvicorn running on ")[1].split()[0]
                    break
            assert url is not None, "the server exited before listening"
            auth = {"Authorization": "Bearer t"}
            assert httpx.put(f"{url}/kv/user/cli", json={"value": "served"}, headers=auth).status_code == 200
            assert httpx.get(f"{url}/kv/user/cli", headers=auth).json()["data"]["value"] == "served"
        finally:
            server.terminate()
            server.wait(30)


def test_serve_with_workers_runs_processes_that_share_one_database(db: str) -> None:
    command = [sys.executable, "-m", "kvstore.cli", "serve", "--db", db, "--port", "0", "--workers", "2"]
    with subprocess.Popen([*command, "--token", "t"], stderr=subprocess.PIPE, text=True) as server:
        try:
            assert server.stderr is not None
            url, workers = None, set()
            for line in server.stderr:  # the supervisor says where it listens; each worker, when it is up
                if "Uvicorn running on" in line:
                    url = line.split("Uvicorn running on ")[1].split()[0]
                elif "Started server process [" in line:
                    workers.add(int(line.split("[")[1].split("]")[0]))
                elif "Application startup complete" in line and len(workers) == 2:
                    break
            assert url is not None, "the server exited before listening"
            assert len(workers) == 2  # two processes, each with its own store
            assert server.pid not in workers
            auth = {"Authorization": "Bearer t"}
            for i in range(20):  # a connection each: the workers share them out
                assert httpx.put(f"{url}/kv/user/w{i}", json={"value": i}, headers=auth).status_code == 200
            for i in range(20):  # whichever worker answers reads what the other wrote
                assert httpx.get(f"{url}/kv/user/w{i}", headers=auth).json()["data"]["value"] == i
        finally:
            server.terminate()
            server.wait(30)


def test_the_readme_command_line_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("kvstore ")]
    assert len(lines) >= 7
    monkeypatch.chdir(tmp_path)
    for args in lines:
        result = run(*args)
        assert result.exit_code == 0, (args, result.stderr)
        assert [json.loads(line) for line in result.stdout.splitlines()]  # a document, or JSON Lines
    assert out(run("get", "--db", "app.db", "products/1"))["metadata"] == {"schema": "v1"}


def test_tokens_can_come_from_the_environment(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    captured = _capture_uvicorn(monkeypatch)
    result = CliRunner(env={"KVSTORE_TOKENS": "first second:user"}).invoke(main, ["serve", "--db", db])
    assert result.exit_code == 0
    first, second = {"Authorization": "Bearer first"}, {"Authorization": "Bearer second"}
    with serve(captured["app"]) as url:
        assert httpx.put(f"{url}/kv/user/k", json={"value": 1}, headers=second).is_success
        assert httpx.put(f"{url}/kv/event/k", json={"value": 1}, headers=second).status_code == 403
        assert httpx.put(f"{url}/kv/event/k", json={"value": 1}, headers=first).is_success


def test_without_the_cli_extra_the_script_says_what_to_install() -> None:
    # sys.modules[name] = None makes "import click" fail, as it does where the cli extra is not installed.
    script = "import sys; sys.modules['click'] = None; import kvstore.cli"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert 'pip install "stampkv[cli]"' in done.stderr
    assert "Traceback" not in done.stderr
