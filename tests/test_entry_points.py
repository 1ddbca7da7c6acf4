"""The ways into the package from outside: ``python -m kvstore``, and ``kvstore.server`` without its extra.

Each runs in a child interpreter, as a user would run it; a missing extra is simulated there by a meta-path
finder that refuses to find the hidden package, so this environment's installed packages stay untouched.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import kvstore

TIMEOUT = 60  # seconds for one child; only a hung one reaches it


def _python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def test_python_dash_m_runs_the_command_line(tmp_path: Path) -> None:
    helped = _python("-m", "kvstore", "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("Usage: kvstore ")
    assert all(command in helped.stdout for command in ("get", "set", "list", "serve"))
    version = _python("-m", "kvstore", "--version", cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    assert version.stdout.split() == ["kvstore,", "version", kvstore.__version__]


def test_python_dash_m_reads_and_writes_a_store(tmp_path: Path) -> None:
    db = str(tmp_path / "app.db")
    written = _python("-m", "kvstore", "set", "--db", db, "k", '{"n": 1}', cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    read = _python("-m", "kvstore", "get", "--db", db, "k", cwd=tmp_path)
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout)["value"] == {"n": 1}


_HIDE = textwrap.dedent(
    """
    import sys

    class Hide:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == sys.argv[1]:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Hide())
    try:
        from kvstore.server import create_app
    except ModuleNotFoundError as exc:
        print(exc.name)
        print(exc)
    else:
        print("imported")
    """
)


@pytest.mark.parametrize("hidden", ["fastapi", "pydantic", "starlette"])
def test_the_server_without_its_extra_says_what_to_install(tmp_path: Path, hidden: str) -> None:
    done = _python("-c", _HIDE, hidden, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    name, message = done.stdout.splitlines()
    assert name.split(".")[0] == hidden
    assert 'needs the server extra: pip install "stampkv[server]"' in message
    assert 'pip install ".[server]"' in message  # and how, in a checkout
    assert f"No module named '{name}'" in message  # the original error is kept, not replaced
