"""One public import path per name: a name is imported from the module that defines it, or from a package
above that module (its facade, e.g. ``toolkit.data.CamVid``); never through a module of another folder that
re-exports it (``toolkit.checkpoint.atomic_write`` was ``toolkit.files.atomic_write``, ``toolkit.backend.base.
INPUT_NAME`` was ``toolkit.core.names.INPUT_NAME``). Checked over toolkit/, train/, tools/ and tests/."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def definitions() -> dict[str, set[str]]:
    """name -> toolkit modules that define it at top level (def, class, assignment), not by importing it."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in sorted((REPO / "toolkit").rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            names: list[str] = []
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                names += [e.id for t in node.targets if isinstance(t, ast.Tuple) for e in t.elts
                          if isinstance(e, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            for n in names:
                found[n].add(_module(path))
    return found


def _submodules() -> set[str]:
    return {_module(p) for p in (REPO / "toolkit").rglob("*.py")}


def borrowed_imports(paths: list[Path]) -> list[str]:
    """``from M import name`` where M neither defines ``name`` nor is a package above a module that does."""
    defined, modules = definitions(), _submodules()
    bad = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and not node.level and node.module
                    and node.module.split(".")[0] == "toolkit"):
                continue
            for alias in node.names:
                homes = defined.get(alias.name, set())
                if f"{node.module}.{alias.name}" in modules or not homes:
                    continue  # a submodule, or a name we do not define (a re-exported third-party name)
                if not any(h == node.module or h.startswith(node.module + ".") for h in homes):
                    where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
                    bad.append(f"{where}:{node.lineno}: {alias.name} from {node.module} "
                               f"(defined in {', '.join(sorted(homes))})")
    return bad


def test_every_name_is_imported_from_its_home() -> None:
    paths = [p for folder in ("toolkit", "train", "tools", "tests") for p in sorted((REPO / folder).rglob("*.py"))]
    bad = borrowed_imports(paths)
    assert not bad, "import these from the module that defines them:\n" + "\n".join(bad)


def test_the_check_sees_a_re_export(tmp_path: Path) -> None:
    f = tmp_path / "probe.py"
    f.write_text("from toolkit.checkpoint import atomic_write\nfrom toolkit.files import atomic_write as a\n"
                 "from toolkit.data import CamVid\n")
    assert [b.split(": ", 1)[1] for b in borrowed_imports([f])] == [
        "atomic_write from toolkit.checkpoint (defined in toolkit.files)"]
