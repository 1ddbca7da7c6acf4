"""The README and the quickstart stay true to the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import kvstore

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_quickstart_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "compare-and-set: True | with a stale versionstamp: False" in done.stdout
    assert "page 2: ['products/2', 'products/3', 'products/4']" in done.stdout


def test_readme_error_table_matches_the_tree() -> None:
    rows = dict(
        (name, (int(status), int(code)))
        for name, status, code in re.findall(r"^\| `(\w+)` \| (\d+) \| (\d+) \|", README, re.MULTILINE)
    )
    errors = {
        name: (cls.status, cls.error_code)
        for name, cls in vars(kvstore).items()
        if isinstance(cls, type) and issubclass(cls, kvstore.KVError)
    }
    assert rows == errors


def test_readme_names_the_ci_test_command() -> None:
    assert "python -m pytest" in README
    assert "python -m pytest" in (ROOT / ".ci" / "run").read_text()
