"""Every ToolkitError subclass lives in toolkit/errors.py: one place lists what the CLI can report and with
which exit code (``toolkit.cli.common.handle_errors`` maps them to one line)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def error_classes(paths: list[Path]) -> dict[str, str]:
    """Class name -> file, for every class deriving (directly or through another of them) from ToolkitError."""
    bases: dict[str, tuple[set[str], str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                names = {b.id if isinstance(b, ast.Name) else b.attr for b in node.bases
                         if isinstance(b, ast.Name | ast.Attribute)}
                bases[node.name] = (names, str(path))
    found: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for name, (parents, where) in bases.items():
            if name not in found and parents & ({"ToolkitError"} | set(found)):
                found[name] = where
                changed = True
    return found


def test_every_toolkit_error_is_defined_in_errors_py() -> None:
    paths = [p for folder in ("toolkit", "train") for p in sorted((REPO / folder).rglob("*.py"))]
    errors = REPO / "toolkit" / "errors.py"
    elsewhere = {n: str(Path(w).relative_to(REPO)) for n, w in error_classes(paths).items()
                 if Path(w) != errors}
    assert not elsewhere, f"move these into toolkit/errors.py: {elsewhere}"


def test_the_check_follows_subclasses(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("class A(ToolkitError): ...\nclass B(A): ...\nclass C(errors.B): ...\nclass D(Exception): ...\n")
    assert sorted(error_classes([f])) == ["A", "B", "C"]
