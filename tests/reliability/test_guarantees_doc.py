"""docs/guarantees.md names real tests, every reliability test is named there, and every one is marked.

References are ``path::test_name``; ``…::test_name`` means the same file as the reference before it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Final

import pytest

pytestmark = pytest.mark.reliability

ROOT: Final = Path(__file__).resolve().parents[2]
DOC: Final = ROOT / "docs" / "guarantees.md"
REFERENCE: Final = re.compile(r"(tests/[\w/]+\.py|…)::(\w+)")


def _references() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    current = ""
    for path, name in REFERENCE.findall(DOC.read_text()):
        if path != "…":
            current = path
        assert current, f"…::{name} comes before any file is named"
        found.append((current, name))
    return found


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_every_reference_names_an_existing_test() -> None:
    references = _references()
    assert len(references) > 40
    missing = [f"{path}::{name}" for path, name in references if name not in _tests_in(ROOT / path)]
    assert missing == []


def test_every_reliability_test_is_referenced() -> None:
    referenced = set(_references())
    here = Path(__file__).resolve().parent
    unreferenced = [
        f"{path.relative_to(ROOT)}::{name}"
        for path in sorted(here.glob("test_*.py"))
        if path.name != Path(__file__).name
        for name in sorted(_tests_in(path))
        if (str(path.relative_to(ROOT)), name) not in referenced
    ]
    assert unreferenced == []


def test_every_reliability_module_marks_its_tests() -> None:
    """``pytestmark`` carries ``reliability`` in every module, so ``-m reliability`` selects the whole suite."""
    unmarked = []
    for path in sorted(Path(__file__).resolve().parent.glob("test_*.py")):
        tree = ast.parse(path.read_text(), str(path))
        marks = [
            ast.unparse(node.value)
            for node in tree.body
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets)
        ]
        if not any("pytest.mark.reliability" in mark for mark in marks):
            unmarked.append(path.name)
    assert unmarked == []
