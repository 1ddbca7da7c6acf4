"""Helpers shared by the reliability tests: raw looks at a database file, child processes on pipes, fork.

Everything here reads the database with the sqlite3 module directly, never through kvstore, so that a
check cannot be fooled by the code it checks.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import kvstore

HERE: Final = Path(__file__).resolve().parent
WAIT: Final = 120.0  # seconds: a bound on waiting for a child that only a hung test reaches


def seed() -> int:
    """The seed of this run's random choices: KVSTORE_RELIABILITY_SEED, or a fresh one (shown on failure)."""
    given = os.environ.get("KVSTORE_RELIABILITY_SEED")
    return int(given) if given else random.SystemRandom().randrange(2**32)


# -- raw looks at a database ------------------------------------------------------------------------------


@contextlib.contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection (autocommit), closed afterwards."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def integrity(path: Path) -> list[tuple[str, ...]]:
    """PRAGMA integrity_check of ``path``: [("ok",)] when the file is sound."""
    assert path.exists(), f"{path} is missing"
    with raw(path) as conn:
        rows: list[tuple[str, ...]] = conn.execute("PRAGMA integrity_check").fetchall()
    return rows


Dump = tuple[tuple[tuple[object, ...], ...], ...]


def dump(conn: sqlite3.Connection) -> Dump:
    """Every row of every table (kvstore's and any other), and the schema: the whole stored state."""
    tables = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    schema = tuple(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"))
    rows = tuple(tuple(conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid')) for table in tables)
    return (schema, *rows)


def counter(conn: sqlite3.Connection) -> int:
    """The versionstamp counter: the commit number of the last committed write."""
    value: int = conn.execute("SELECT version FROM kvstore_versionstamp WHERE id = 1").fetchone()[0]
    return value


def max_version(conn: sqlite3.Connection) -> int:
    """The greatest commit number any stored entry carries (0 when there is none)."""
    value: int = conn.execute("SELECT COALESCE(MAX(version), 0) FROM kvstore_entries").fetchone()[0]
    return value


def stamp_number(versionstamp: str) -> int:
    """The commit number inside a versionstamp (its first 16 hex digits)."""
    return int(versionstamp[:16], 16)


# -- child processes --------------------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    """The environment for a child: it imports the very kvstore this test process imported."""
    root = str(Path(kvstore.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Child:
    """A Python child running one of the scripts next to this file, talked to through its pipes.

    Lines are read from stdout with a deadline (select on the raw descriptor, no Python buffering), so a
    child that hangs fails the test instead of hanging it.
    """

    def __init__(self, script: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(),
        )
        assert self.proc.stdout is not None
        self._fd = self.proc.stdout.fileno()
        self._buffer = b""
        self._eof = False
        self.killed_alive = False  # True when SIGKILL reached a child that was still running

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def readline(self, timeout: float = WAIT) -> str | None:
        """The next line (without its newline), or None at end of file."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            if self._eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"child {self.proc.args!r} said nothing for {timeout} s; stderr: {self.stderr()}")
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if ready:
                chunk = os.read(self._fd, 65536)
                if chunk:
                    self._buffer += chunk
                else:
                    self._eof = True
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def expect(self, word: str) -> list[str]:
        """Read one line, which must start with ``word``; return its fields."""
        line = self.readline()
        if line is None:
            raise AssertionError(f"child exited ({self.proc.wait(WAIT)}) instead of saying {word!r}: {self.stderr()}")
        fields = line.split()
        if not fields or fields[0] != word:
            raise AssertionError(f"expected {word!r}, got {line!r}; stderr: {self.stderr()}")
        return fields

    def kill(self) -> None:
        """SIGKILL the child (the experiment) and reap it."""
        self.killed_alive = self.proc.poll() is None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(WAIT)

    def rest(self) -> list[str]:
        """Every line still in the pipe, once the child is gone: what it said just before dying counts."""
        assert self.proc.poll() is not None
        lines = []
        while (line := self.readline()) is not None:
            lines.append(line)
        return lines

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(still running)"
        return self.proc.stderr.read().decode(errors="replace")[-4000:]

    def close(self) -> None:
        """Kill if still running and release the pipes (idempotent)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


# -- fork ---------------------------------------------------------------------------------------------------


class Forked:
    """A forked child running ``body()``; ``join`` returns what it returned (through JSON).

    The child leaves by ``os._exit`` whatever happens, so it never runs pytest's or the store's teardown.
    """

    def __init__(self, body: Callable[[], object]) -> None:
        read_end, write_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                os.close(read_end)
                payload = json.dumps({"result": body()})
                code = 0
            except BaseException as exc:
                payload = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
            finally:
                try:
                    with os.fdopen(write_end, "w") as pipe:
                        pipe.write(payload)
                finally:
                    os._exit(code)
        os.close(write_end)
        self._read_end = read_end

    def join(self) -> Any:
        """Wait for the child; it must have exited 0 without raising."""
        with os.fdopen(self._read_end) as pipe:
            report: dict[str, Any] = json.loads(pipe.read())
        _, status = os.waitpid(self.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, report
        assert "error" not in report, report
        return report["result"]
