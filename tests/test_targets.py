"""What an SQLite target names: ``~`` is expanded, a missing directory is named, a mistyped ``:memory:`` is refused.

Each refusal happens before SQLite is asked, and leaves no file behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kvstore import ConfigurationError, KVStore, StoreUnavailableError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home directory of the test's own, and a working directory apart from it."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return home


@pytest.mark.parametrize("target", ["~/app.db", Path("~/app.db"), "sqlite:///~/app.db"], ids=["str", "path", "url"])
def test_a_tilde_is_the_home_directory(home: Path, target: str | Path) -> None:
    with KVStore(target) as kv:
        kv.set("k", 1)
        assert kv.info().target == str(home / "app.db")
    assert (home / "app.db").exists()
    assert list(Path.cwd().iterdir()) == []  # no directory named "~" made here


@pytest.mark.parametrize("target", ["no/such/dir/x.db", "~/missing/x.db"])
def test_a_missing_directory_is_named(home: Path, target: str) -> None:
    with pytest.raises(StoreUnavailableError, match=r"its directory '.*(no/such/dir|missing)' is missing") as caught:
        KVStore(target)
    assert caught.value.error_code == 2006
    assert list(Path.cwd().iterdir()) == []
    assert list(home.iterdir()) == []


def test_a_file_where_the_directory_belongs_is_named(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a directory")
    with pytest.raises(StoreUnavailableError, match="is not a directory"):
        KVStore(tmp_path / "notes.txt" / "x.db")


@pytest.mark.parametrize(
    "target",
    [
        ":memory",
        "memory:",
        ":memory;",
        " :memory:",
        ":memory: ",
        ":MEMORY:",
        "::memory::",
        ":mem:",
        "sqlite:///:memory",
    ],
)
def test_a_mistyped_memory_target_is_refused(home: Path, target: str) -> None:
    with pytest.raises(ConfigurationError, match='looks like a mistyped ":memory:"'):
        KVStore(target)
    assert list(Path.cwd().iterdir()) == []


def test_the_memory_target_and_a_file_named_like_it_still_open(home: Path) -> None:
    with KVStore(":memory:") as kv:
        assert kv.info().size_bytes is None  # in memory: no file
    with KVStore("./:memory") as kv:  # the way to a file of that name, as the refusal says
        kv.set("k", 1)
    assert [p.name for p in Path.cwd().iterdir()] == [":memory"]
