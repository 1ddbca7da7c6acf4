"""The README and the examples stay true to the code: every Python block of the README and every example runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import kvstore

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
TIMEOUT = 120  # seconds for one block or example; only a hung one reaches it
# A README example names a PostgreSQL server of its own; the test runs it against the test server instead.
_POSTGRES_URL = re.compile(r"postgresql(?:\+psycopg)?://[^\"\s]+")


def python_blocks(text: str) -> list[tuple[str, str]]:
    """(an id from the heading above it, its code) for each fenced ``python`` block of a Markdown text."""
    blocks: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    heading, fence = "top", None
    code: list[str] = []
    for line in text.splitlines():
        if fence is None:
            if line.startswith("#"):
                heading = re.sub(r"[^a-z0-9]+", "-", line.lstrip("#").strip().lower()).strip("-")
            elif line.startswith("```"):
                fence, code = line[3:].strip(), []
        elif line.startswith("```"):
            if fence == "python":
                seen[heading] = seen.get(heading, 0) + 1
                blocks.append((f"{heading}-{seen[heading]}", "\n".join(code)))
            fence = None
        else:
            code.append(line)
    return blocks


README_BLOCKS = python_blocks(README)


def test_the_block_finder_finds_python_blocks_only() -> None:
    text = "# A\n```python\nx = 1\n```\n```text\nnot python\n```\n## B c\n```python\ny = 2\nz = 3\n```\n"
    assert python_blocks(text) == [("a-1", "x = 1"), ("b-c-1", "y = 2\nz = 3")]


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.mark.parametrize("code", [code for _, code in README_BLOCKS], ids=[name for name, _ in README_BLOCKS])
def test_every_python_block_of_the_readme_runs(code: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Each block runs as it stands, in a fresh interpreter and an empty directory (its files land there)."""
    if _POSTGRES_URL.search(code):
        url: str = request.getfixturevalue("pg_url")
        code = _POSTGRES_URL.sub(lambda _: url, code)
    done = _run(tmp_path, "-c", code)
    assert done.returncode == 0, f"{code}\n---\n{done.stderr}"


def test_the_readme_has_python_blocks_and_its_signatures_are_no_python() -> None:
    assert len(README_BLOCKS) >= 4
    assert not [code for _, code in README_BLOCKS if "-> SetResult" in code]  # the API list is tagged text
    assert "```text\nkv = KVStore(" in README


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.py")), ids=lambda path: path.name)
def test_every_example_runs(example: Path, tmp_path: Path) -> None:
    done = _run(tmp_path, str(example))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


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
