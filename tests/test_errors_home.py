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


# The only plain ValueErrors left in toolkit/: internal invariants no user input reaches (a bug if raised).
INTERNAL_VALUE_ERRORS = {
    "toolkit/backend/torch/graphs.py",  # capacity of the CUDA-graph cache, set by the runner itself
    "toolkit/export/onnx_export.py",  # a pooling other than SegNet's 2x2/2 in our own models
    "toolkit/compare/temporal.py",  # the accumulator fed a different number of maps than it was built with
    "toolkit/compare/html.py",  # OpenCV failing to encode an image it was given as uint8 RGB
}


def test_user_reachable_value_errors_are_toolkit_errors() -> None:
    """A ValueError on user input reached the CLI as a traceback; InvalidValueError is one line, exit 2."""
    plain = set()
    for path in sorted((REPO / "toolkit").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(exc, ast.Name) and exc.id == "ValueError":
                    plain.add(str(path.relative_to(REPO)))
    stray = sorted(plain - INTERNAL_VALUE_ERRORS)
    assert not stray, f"raise InvalidValueError (toolkit.errors) in {stray}"


def test_a_label_out_of_range_is_a_toolkit_error_and_still_a_value_error() -> None:
    import pytest
    import torch

    from toolkit.errors import InvalidValueError, ToolkitError
    from toolkit.metrics import ConfusionMatrix

    cm = ConfusionMatrix(3)
    with pytest.raises(InvalidValueError, match="label values must be 0..2") as e:
        cm.update(torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, 2, 7]))
    assert isinstance(e.value, ToolkitError) and isinstance(e.value, ValueError) and e.value.exit_code == 2
