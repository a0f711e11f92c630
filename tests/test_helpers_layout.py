"""Test helpers live in one place, tests/helpers/: no test module imports another test module or a conftest.py.

A helper imported from a test module drags that module's tests (and fixtures, under a second name) into the
importer; a conftest.py is pytest's to load, not a module to import. Fixtures stay in the conftest.py of the
folder that uses them; everything else shared sits in tests/helpers/.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
HELPERS = TESTS / "helpers"


def _imported(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names += [base] + [f"{base}.{a.name}" for a in node.names]
    return names


def _is_test_or_conftest(name: str) -> bool:
    last = name.rstrip(".").rpartition(".")[2]
    return last.startswith("test_") or last == "conftest"


def test_no_test_module_imports_a_test_module_or_a_conftest() -> None:
    bad = {str(p.relative_to(TESTS)): wrong for p in sorted(TESTS.rglob("*.py"))
           if (wrong := sorted({n for n in _imported(p) if _is_test_or_conftest(n)}))}
    assert not bad, f"import these from tests/helpers/ instead: {bad}"


def test_shared_test_code_lives_in_tests_helpers() -> None:
    """Outside tests/helpers/, a tests/ Python file is a test module, a conftest.py or a package marker."""
    stray = [str(p.relative_to(TESTS)) for p in sorted(TESTS.rglob("*.py"))
             if HELPERS not in p.parents and not p.name.startswith("test_")
             and p.name not in ("conftest.py", "__init__.py")]
    assert not stray, f"move these into tests/helpers/: {stray}"


def test_the_check_sees_a_test_module_import() -> None:
    assert _is_test_or_conftest("tests.serve.conftest") and _is_test_or_conftest("tests.train.test_ddp")
    assert _is_test_or_conftest("..test_drift") and not _is_test_or_conftest("tests.helpers.models")
