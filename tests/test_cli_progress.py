"""The progress line of long runs (export, import, backup): drawn on a terminal, nothing when piped."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from kvstore import KVStore
from kvstore._cli.progress import Progress
from kvstore.cli import main

from .conftest import FakeClock


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_it_shows_done_rate_and_time_left() -> None:
    screen, clock = Terminal(), FakeClock(0)
    with Progress("import", "entries", stream=screen, clock=clock) as progress:
        progress(0, 100)
        clock.advance(1)
        progress(50, 100)
        assert screen.getvalue().rsplit("\r", 1)[1].rstrip() == (
            "import: 50 of 100 entries (50%), 50 entries/s, 1 s left"
        )
        clock.advance(0.1)  # too soon to draw again
        progress(60, 100)
        assert "60 of 100" not in screen.getvalue()
        clock.advance(0.1)
        progress(100, 100)  # the end is always drawn, without a time left
        assert screen.getvalue().rsplit("\r", 1)[1].rstrip() == "import: 100 of 100 entries (100%), 83 entries/s"
    assert screen.getvalue().endswith("\n")  # the line is ended: what follows starts on its own


def test_an_unknown_total_shows_what_is_done() -> None:
    screen, clock = Terminal(), FakeClock(0)
    progress = Progress("import", "entries", stream=screen, clock=clock)
    clock.advance(2)
    progress(3_000, 0)
    assert screen.getvalue() == "\rimport: 3,000 entries read, 1,500 entries/s"


def test_nothing_is_drawn_when_not_on_a_terminal() -> None:
    piped, clock = io.StringIO(), FakeClock(0)
    with Progress("export", "entries", stream=piped, clock=clock) as progress:
        clock.advance(1)
        progress(10, 10)
    assert piped.getvalue() == ""


def test_the_commands_stay_quiet_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    db = str(tmp_path / "kv.db")
    with KVStore(db) as kv:
        kv.set("k", 1)
    exported = CliRunner().invoke(main, ["export", "--db", db])
    assert exported.stderr == ""
    imported = CliRunner().invoke(main, ["import", "--db", str(tmp_path / "copy.db")], input=exported.stdout_bytes)
    assert imported.stderr == ""
    backed_up = CliRunner().invoke(main, ["backup", "--db", db, str(tmp_path / "backup.db")])
    assert backed_up.stderr == ""


def test_an_import_on_a_terminal_draws_its_progress(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"key": f"k/{i}", "value": i}) + "\n" for i in range(3_000)))
    command = [sys.executable, "-m", "kvstore", "import", "--db", str(tmp_path / "kv.db"), str(source)]
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=terminal, timeout=120, check=False)
        os.close(terminal)
        terminal = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal's other end is closed: everything was read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        if terminal != -1:
            os.close(terminal)
        os.close(controller)
    assert done.returncode == 0
    assert json.loads(done.stdout)["imported"] == 3_000
    assert b"import: 3,000 of 3,000 entries (100%)" in drawn
