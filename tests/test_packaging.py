"""Packaging: the built wheel works on its own, and opening a current store stays cheap.

The wheel test builds from a copy of the source tree (so the checkout gets no build/ or egg-info litter),
installs the wheel into a fresh virtual environment and runs a store there from an unrelated directory,
proving that the migrations ship inside the package and that nothing leans on the editable checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from kvstore._migrate import HEAD

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 300  # seconds for one build or subprocess; only a hung one reaches it

# Not copied into the build tree: VCS data, environments, caches and earlier build output.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "*.db*"
)


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command; on failure, fail the test with its output."""
    done = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _offline_build_possible() -> bool:
    """Whether this environment's setuptools can build the wheel without fetching a build environment."""
    try:
        version = tuple(int(part) for part in metadata.version("setuptools").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return False
    if version >= (70, 1):  # bdist_wheel is built in
        return True
    if version < (68, 0):  # below the build-system requirement in pyproject.toml
        return False
    try:
        metadata.version("wheel")
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the working tree."""
    root = tmp_path_factory.mktemp("wheel-build")
    source = root / "src"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE)
    out = root / "dist"
    isolation = ["--no-build-isolation"] if _offline_build_possible() else []
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "--wheel-dir", out, source, cwd=root)
    wheels = list(out.glob("*.whl"))  # named after the distribution (stampkv), not the import package
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.mark.slow
def test_wheel_ships_type_marker_and_migrations(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "kvstore/py.typed" in names
    assert "kvstore/__init__.py" in names
    assert "kvstore/_migrations/env.py" in names
    assert "kvstore/_migrations/script.py.mako" in names
    assert "kvstore/_migrations/versions/0001_initial.py" in names
    assert [name for name in names if ".dist-info/" in name and name.endswith("LICENSE")]  # MIT asks for it
    assert not [name for name in names if name.startswith(("tests/", "migrations/", "benchmarks/"))]


_IN_VENV = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    import kvstore
    from kvstore import KVStore

    path = sys.argv[1]
    with KVStore(path) as kv:
        migrated_here = "alembic" in sys.modules
        written = kv.set("greeting", {"hello": "wheel"}, metadata={"by": "test"})
        first = kv.get("greeting")
    with KVStore(path) as kv:
        again = kv.get("greeting")
        second = kv.set("greeting", "again", if_versionstamp=written.versionstamp)
    print(json.dumps({
        "kvstore": kvstore.__file__,
        "migrations": str(Path(sys.modules["kvstore._migrations"].__file__)),
        "prefix": sys.prefix,
        "migrated_here": migrated_here,
        "first": [first.value, first.versionstamp, first.metadata],
        "again": [again.value, again.versionstamp],
        "written": written.versionstamp,
        "second": [second.committed, second.versionstamp],
    }))
    """
)


@pytest.mark.slow
def test_wheel_installed_in_a_fresh_venv_migrates_and_stores(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    # This interpreter's pip installs into the venv: faster than bootstrapping pip there, and offline.
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel, cwd=tmp_path)
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path)
    site_packages = Path(purelib.strip())
    # The dependencies (sqlalchemy, alembic, msgpack, ...) come from this environment without a download. A
    # plain path entry: .pth files there, such as the editable kvstore's finder, are not run in the venv.
    # (venv --system-site-packages would miss them whenever this environment is itself a venv, as in CI.)
    outer = [p for p in (*sysconfig.get_paths().values(), *sys.path) if p.endswith("site-packages")]
    (site_packages / "_outer_dependencies.pth").write_text("\n".join(dict.fromkeys(outer)) + "\n")

    elsewhere = tmp_path / "elsewhere"  # not the checkout: nothing to import kvstore from but the venv
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    db = tmp_path / "wheel.db"
    report = json.loads(_run(python, "-c", _IN_VENV, db, cwd=elsewhere, env=env))

    venv_root = venv.resolve()
    assert Path(report["kvstore"]).resolve().is_relative_to(venv_root), report["kvstore"]
    assert Path(report["migrations"]).resolve().is_relative_to(venv_root), report["migrations"]
    assert not Path(report["kvstore"]).resolve().is_relative_to(REPO)
    assert Path(report["prefix"]).resolve() == venv_root
    assert report["migrated_here"] is True  # a new file: the installed package ran its alembic migration
    assert report["first"] == [{"hello": "wheel"}, report["written"], {"by": "test"}]
    assert report["again"] == [{"hello": "wheel"}, report["written"]]  # reopened, same entry
    assert report["second"][0] is True
    assert report["second"][1] > report["written"]

    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT version_num FROM kvstore_alembic_version").fetchall() == [(HEAD,)]


_HEAVY = ("alembic", "sqlalchemy", "mako")
_IMPORTED_HEAVY = f"sorted({{m for m in sys.modules if m.split('.')[0] in {_HEAVY!r}}})"


def test_every_package_is_listed_for_the_wheel() -> None:
    """setuptools ships the packages pyproject.toml lists: one left out (the CLI's kvstore._cli, say) would be
    missing from the wheel, and what imports it broken, though an editable checkout works."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(path.parent.relative_to(REPO).parts) for path in (REPO / "kvstore").rglob("__init__.py")}
    assert found <= listed


def test_opening_a_current_store_imports_neither_alembic_nor_sqlalchemy(tmp_path: Path) -> None:
    db = str(tmp_path / "cold.db")
    create = (
        "import json, sys\n"
        "from kvstore import KVStore\n"
        "with KVStore(sys.argv[1]) as kv:\n"
        "    kv.set('k', 1)\n"
        f"print(json.dumps({_IMPORTED_HEAVY}))\n"
    )
    imported = json.loads(_run(sys.executable, "-c", create, db, cwd=tmp_path))
    # Creating the schema does import them, which shows that this probe sees such imports.
    assert "alembic" in imported
    assert "sqlalchemy" in imported

    reopen = (
        "import json, sys\n"
        "import kvstore\n"
        "kv = kvstore.KVStore(sys.argv[1])\n"
        "entry = kv.get('k')\n"
        "assert entry is not None and entry.value == 1, entry\n"
        "assert kv.set('k', 2, if_versionstamp=entry.versionstamp).committed\n"
        "assert kv.list().keys == ['k']\n"
        "assert kv.delete('k')\n"
        "kv.close()\n"
        f"print(json.dumps({_IMPORTED_HEAVY}))\n"
    )
    assert json.loads(_run(sys.executable, "-c", reopen, db, cwd=tmp_path)) == []
