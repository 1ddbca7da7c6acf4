"""Read-only places: a read-only directory (with a writable or a read-only file, with or without a WAL left
behind), a read-only file, and a database that does not exist in a read-only directory. Reads work wherever
the bytes can be read; writes raise ReadOnlyStoreError naming the file or directory and what is missing.

Root ignores permission bits, so the stores are opened in a child that first gives up the capabilities that
let it (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH); where it cannot, the test skips, saying so. A read-only
mount is tests/reliability/test_disk_faults.py's.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from kvstore import KVStore

_CHILD = textwrap.dedent(
    """
    import ctypes, io, json, os, sys

    def drop_permission_override():
        if os.geteuid() != 0:
            return
        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
        class Data(ctypes.Structure):
            _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                        ("inheritable", ctypes.c_uint32)]
        libc = ctypes.CDLL(None, use_errno=True)
        header = Header(0x20080522, 0)
        data = (Data * 2)()
        if libc.capget(ctypes.byref(header), data) != 0:
            return
        keep = ~((1 << 1) | (1 << 2)) & 0xFFFFFFFF
        for field in ("effective", "permitted", "inheritable"):
            setattr(data[0], field, getattr(data[0], field) & keep)
        libc.capset(ctypes.byref(header), data)

    drop_permission_override()

    from click.testing import CliRunner
    from kvstore import KVError, KVStore
    from kvstore.cli import main

    def attempt(call):
        try:
            return ["ok", call()]
        except KVError as exc:
            return [type(exc).__name__, exc.detail]

    cases = json.loads(sys.argv[1])
    results = {"denied": not os.access(cases.pop("probe"), os.W_OK, effective_ids=True)}
    serve_db = cases.pop("serve")
    for name, path in cases.items():
        opened = attempt(lambda: KVStore(path))
        result = {"open": opened[:1] if opened[0] == "ok" else opened}
        if opened[0] == "ok":
            kv = opened[1]
            result["get"] = attempt(lambda: [kv.get(f"k{n}").value for n in range(5)])
            result["export"] = attempt(lambda: kv.export_jsonl(io.BytesIO()))
            result["set"] = attempt(lambda: kv.set("k0", "changed").committed)
            result["delete"] = attempt(lambda: kv.delete("k1"))
            result["after"] = attempt(lambda: kv.get("k0").value)
            kv.close()
        results[name] = result
    serve = ["serve", "--db", serve_db, "--port", "0", "--token", "t"]
    served = CliRunner().invoke(main, serve, catch_exceptions=False)
    results["serve"] = {"exit": served.exit_code, "stderr": served.stderr.splitlines()}
    print(json.dumps(results))
    """
)

_CRASH = """
import os, sys
from kvstore import KVStore
kv = KVStore(sys.argv[1])
for n in range(5):
    kv.set(f"k{n}", n)
os._exit(0)  # no close: the WAL and its index stay, holding every commit
"""


def _digest(directory: Path) -> dict[str, str]:
    """The database and WAL files' contents: the -shm index is SQLite's scratch space (a reader rebuilds it
    where it can write it), and an empty WAL holds nothing."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if not p.name.endswith("-shm") and p.stat().st_size > 0
    }


def _store(path: Path, *, crashed: bool = False) -> None:
    path.parent.mkdir()
    if crashed:
        subprocess.run([sys.executable, "-c", _CRASH, str(path)], check=True, timeout=120)
        assert Path(f"{path}-wal").stat().st_size > 0
        return
    with KVStore(path) as kv:
        for n in range(5):
            kv.set(f"k{n}", n)
    assert not Path(f"{path}-wal").exists()  # a clean close leaves no WAL


def test_read_only_directories_and_files_serve_reads_and_name_what_writes_lack(tmp_path: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("the child gives up root's permission override through Linux capabilities")
    stores = {
        "dir": tmp_path / "ro-dir" / "kv.db",  # read-only directory, writable file, closed cleanly
        "dir_and_file": tmp_path / "ro-dir-file" / "kv.db",  # both read-only
        "file": tmp_path / "ro-file" / "kv.db",  # read-only file in a writable directory
        "dir_with_wal": tmp_path / "ro-dir-wal" / "kv.db",  # a WAL and its index left behind, writable
        "dir_with_ro_wal": tmp_path / "ro-dir-ro-wal" / "kv.db",  # ... and read-only
    }
    for name, path in stores.items():
        _store(path, crashed="wal" in name)
    (tmp_path / "ro-empty").mkdir()
    missing = tmp_path / "ro-empty" / "kv.db"
    for name in ("dir_and_file", "file"):
        stores[name].chmod(0o444)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{stores['dir_with_ro_wal']}{suffix}").chmod(0o444)
    directories = [p.parent for n, p in stores.items() if n != "file"] + [missing.parent]
    before = {d: _digest(d) for d in (*directories, stores["file"].parent)}
    for directory in directories:
        directory.chmod(0o555)
    cases: dict[str, str] = {name: str(path) for name, path in stores.items()}
    cases |= {"missing": str(missing), "probe": str(missing.parent), "serve": str(missing)}
    try:
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps(cases)], capture_output=True, text=True, timeout=120, check=False
        )
    finally:
        for directory in directories:
            directory.chmod(0o755)
    assert child.returncode == 0, child.stderr
    results: dict[str, Any] = json.loads(child.stdout)
    if not results["denied"]:
        pytest.skip("this process cannot be denied write access to a directory (no capability control)")

    for name, path in stores.items():
        result = results[name]
        assert result["open"] == ["ok"], (name, result)
        assert result["get"] == ["ok", [0, 1, 2, 3, 4]], (name, result)
        assert result["export"] == ["ok", 5], (name, result)  # a read on a connection of its own
        assert result["after"] == ["ok", 0], (name, result)
        for write in ("set", "delete"):
            assert result[write][0] == "ReadOnlyStoreError", (name, write, result)
            assert str(path) in result[write][1]
    directory_lacks = "no write permission on its directory"
    assert directory_lacks in results["dir"]["set"][1]
    assert str(stores["dir"].parent) in results["dir"]["set"][1]
    assert "no write permission on the file" not in results["dir"]["set"][1]
    assert "no write permission on the file" in results["dir_and_file"]["set"][1]
    assert directory_lacks in results["dir_and_file"]["set"][1]
    assert "no write permission on the file" in results["file"]["set"][1]
    assert directory_lacks not in results["file"]["set"][1]

    assert results["missing"]["open"][0] == "ReadOnlyStoreError"
    assert "does not exist and cannot be created" in results["missing"]["open"][1]
    assert str(missing.parent) in results["missing"]["open"][1]

    # serve on a read-only directory: one problem line, no traceback
    assert results["serve"]["exit"] == 1
    assert len(results["serve"]["stderr"]) == 1, results["serve"]
    problem = json.loads(results["serve"]["stderr"][0])
    assert problem["errors"][0]["title"] == "Store is read-only"
    assert str(missing.parent) in problem["errors"][0]["detail"]

    assert {d: _digest(d) for d in before} == before  # nothing was written anywhere
    assert not missing.exists()
