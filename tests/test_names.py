"""The distribution's name: free on the package index, and the one every install line names.

``kvstore`` on PyPI is an unrelated project (0.1.1, 2016): ``pip install "kvstore[postgres]"`` installed it,
and ``kvstore.KVStore`` then raised AttributeError. The distribution has a name of its own; the import
package and the command stay ``kvstore``. An install line names either the distribution (for the published
package) or ``.`` (for a checkout), never the taken name.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
NAME: str = PROJECT["name"]
TAKEN = "kvstore"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def test_the_distribution_is_not_named_after_the_taken_project() -> None:
    assert _canonical(NAME) != TAKEN


def test_the_import_package_and_the_command_stay_kvstore() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "kvstore" in setuptools["packages"]
    assert PROJECT["scripts"] == {"kvstore": "kvstore.cli:main"}


def test_extras_that_name_the_project_name_this_distribution() -> None:
    """``pip install -e ".[dev]"`` resolves "NAME[test]" from the checkout; "kvstore[test]" would fetch the
    unrelated project from the index."""
    self_references = [
        requirement
        for requirements in PROJECT["optional-dependencies"].values()
        for requirement in requirements
        if _canonical(re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]) in (TAKEN, _canonical(NAME))
    ]
    assert self_references  # test and dev pull in the other extras
    assert all(requirement.startswith(f"{NAME}[") for requirement in self_references), self_references


def _documents() -> list[Path]:
    found = [ROOT / "README.md", ROOT / "DEVELOPERS.md", ROOT / "CHANGELOG.md", ROOT / ".ci" / "run"]
    found += sorted((ROOT / "docs").glob("*.md")) + sorted((ROOT / "benchmarks").glob("*.md"))
    found += sorted((ROOT / "examples").glob("*.py")) + sorted((ROOT / "kvstore").rglob("*.py"))
    return [path for path in found if path.exists()]


# What follows "pip install" on its line up to the end of the command: a shell separator, a closing
# backtick or a parenthesis of the surrounding text, or a comment.
_INSTALL = re.compile(r"pip install((?:[ \t]+(?:\"[^\"\n]*\"|'[^'\n]*'|[^\s\"'`;&|#()]+))+)")


def install_targets(text: str) -> list[str]:
    """The requirements named by the ``pip install`` commands in ``text`` (options left out, quotes removed)."""
    targets = []
    for match in _INSTALL.finditer(text):
        for token in re.findall(r"\"[^\"]*\"|'[^']*'|\S+", match.group(1)):
            target = token.strip("\"'")
            if not target.startswith("-"):
                targets.append(target)
    return targets


def test_the_install_line_parser_sees_both_forms() -> None:
    text = 'run `pip install -e ".[test,bench]" && pytest` or pip install "x[server]" wheel # not: pip'
    assert install_targets(text) == [".[test,bench]", "x[server]", "wheel"]


@pytest.mark.parametrize("path", _documents(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_install_line_names_the_taken_project(path: Path) -> None:
    for target in install_targets(path.read_text()):
        name = re.split(r"[\[<>=!~ ]", target, maxsplit=1)[0]
        assert _canonical(name) != TAKEN, f"{path.name}: pip install {target}"
        if "[" in target and name != ".":
            # An extra of ours: named by the distribution, or "." in a checkout.
            extras = set(target[target.index("[") + 1 : target.index("]")].split(","))
            if extras <= set(PROJECT["optional-dependencies"]):
                assert name == NAME, f"{path.name}: pip install {target}"


def test_the_readme_gives_the_published_install_lines() -> None:
    targets = set(install_targets((ROOT / "README.md").read_text()))
    assert NAME in targets
    for extra in ("postgres", "server", "cli"):
        assert f"{NAME}[{extra}]" in targets, extra
        assert f".[{extra}]" in targets, extra  # and the checkout's


def test_the_hints_for_a_missing_extra_name_the_distribution() -> None:
    hints = {
        "postgres": ROOT / "kvstore" / "_backends" / "postgres" / "backend.py",
        "server": ROOT / "kvstore" / "server" / "__init__.py",
        "cli": ROOT / "kvstore" / "cli.py",
    }
    for extra, path in hints.items():
        assert f"{NAME}[{extra}]" in install_targets(path.read_text()), path
