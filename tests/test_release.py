"""The papers of a release: the version in one place agreed by all, a changelog in the Keep a Changelog form
whose newest release is that version, and the license pyproject.toml names, in full.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import kvstore

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CHANGELOG = (ROOT / "CHANGELOG.md").read_text()
# "## [0.2.0] - 2026-12-24", or "- Unreleased" while it is being prepared; "## [Unreleased]" above them.
_RELEASE = re.compile(r"^## \[(?P<version>\d+\.\d+\.\d+)\] - (?P<date>\d{4}-\d{2}-\d{2}|Unreleased)$", re.MULTILINE)
_KINDS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_the_package_reports_the_distributions_version() -> None:
    assert kvstore.__version__ == PROJECT["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", kvstore.__version__)


def test_the_changelog_starts_with_this_version() -> None:
    releases = [match["version"] for match in _RELEASE.finditer(CHANGELOG)]
    assert releases, "no release heading"
    assert releases[0] == PROJECT["version"]
    assert releases == sorted(releases, key=lambda v: tuple(map(int, v.split("."))), reverse=True)


def test_the_changelog_is_in_the_keep_a_changelog_form() -> None:
    assert CHANGELOG.startswith("# Changelog\n")
    assert "https://keepachangelog.com/en/1.1.0/" in CHANGELOG
    headings = re.findall(r"^(#{2,}) (.+)$", CHANGELOG, re.MULTILINE)
    for level, title in headings:
        if level == "##":
            assert title == "[Unreleased]" or _RELEASE.fullmatch(f"## {title}"), title
        else:
            assert level == "###"
            assert title in _KINDS, title
    assert any(level == "###" for level, _ in headings)


def test_the_license_is_the_one_pyproject_names() -> None:
    assert PROJECT["license"] == {"text": "MIT"}
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text
