"""The import direction between toolkit's folders: no cycles, and ``toolkit.core`` at the bottom.

Every ``import`` in every module counts, also those inside functions (imported lazily, they still tie
the folders together). A unit is a sub-package of ``toolkit/`` (``backend``, ``export`` ...) or a
top-level module (``bench``, ``evaluate`` ...).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

import toolkit

ROOT = Path(toolkit.__file__).parent
CORE_MAY_IMPORT = {"core", "errors", "files", ""}  # "": the toolkit package itself (__version__)


def _dotted(path: Path, base: Path) -> str:
    parts = path.relative_to(base).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_statements(path: Path, base: Path) -> Iterator[tuple[str, list[str]]]:
    """(module, names) for every import in ``path``, also those inside functions: ``import a.b`` gives
    ("a.b", []), ``from m import x, y`` ("m", ["x", "y"]); relative imports resolved against ``base``."""
    module = _dotted(path, base)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                where = f"{parent}.{node.module}" if node.module else parent
            else:
                where = node.module or ""
            yield where, [alias.name for alias in node.names]


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    return {where for where, _ in _import_statements(path, ROOT.parent)}


def unit_graph() -> dict[str, dict[str, set[str]]]:
    """unit -> {imported unit: files that import it}."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in sorted(ROOT.rglob("*.py")):
        src = _unit(_dotted(path, ROOT.parent))
        for name in _imports(path):
            if name == "toolkit" or name.startswith("toolkit."):
                dst = _unit(name)
                if dst != src:
                    graph[src][dst].add(str(path.relative_to(ROOT.parent)))
    return graph


def find_cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """Strongly connected components of more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_no_cycle_between_folders() -> None:
    graph = unit_graph()
    cycles = find_cycles(graph)
    detail = [f"{a} -> {b} ({', '.join(sorted(files))})" for comp in cycles for a in comp
              for b, files in graph[a].items() if b in comp]
    assert not cycles, "import cycles between toolkit folders:\n" + "\n".join(detail)


def test_core_is_the_bottom_layer() -> None:
    """toolkit.core (ONNX files, metadata, ModelMeta, shared names) imports no other toolkit folder and no torch."""
    bad = {dst: files for dst, files in unit_graph()["core"].items() if dst not in CORE_MAY_IMPORT}
    assert not bad, f"toolkit.core imports {bad}"
    heavy = {n for p in (ROOT / "core").glob("*.py") for n in _imports(p)
             if n.split(".")[0] in ("torch", "onnxruntime", "tensorrt", "cv2")}
    assert not heavy, f"toolkit.core imports {sorted(heavy)}"


def _imported_modules(path: Path, base: Path) -> set[str]:
    """Absolute names ``path`` imports, plus ``package.name`` for each ``from package import name`` (a
    submodule, if one); relative imports resolved."""
    found: set[str] = set()
    for where, names in _import_statements(path, base):  # module_graph falls back to ``where``
        found.update([f"{where}.{n}" for n in names] if names else [where])
    return found


def module_graph(root: Path) -> dict[str, dict[str, set[str]]]:
    """module -> {module of the same folder it imports: {its file}}, every import counted (lazy ones too)."""
    modules = {_dotted(p, root.parent): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for name, path in modules.items():
        for imported in _imported_modules(path, root.parent):
            parts = imported.split(".")
            while parts and ".".join(parts) not in modules:  # toolkit.x.y.some_function -> toolkit.x.y
                parts.pop()
            dst = ".".join(parts)
            if dst and dst != name and modules[dst].parent == path.parent:
                graph[name][dst].add(path.name)
    return graph


@pytest.mark.parametrize("folder", ["toolkit", "train"])
def test_no_cycle_between_modules_of_one_folder(folder: str) -> None:
    """No two modules of one folder import each other, not even through a lazy import inside a function
    (``cli/common.py`` and ``cli/options.py`` did): a circle means neither can be read, tested or moved alone."""
    graph = module_graph(REPO / folder)
    cycles = find_cycles(graph)
    detail = [f"{a} -> {b}" for comp in cycles for a in comp for b in graph[a] if b in comp]
    assert not cycles, "import cycles between modules of one folder:\n" + "\n".join(detail)


def test_the_module_check_sees_a_lazy_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n")
    (pkg / "c.py").write_text("from pkg import a\n")
    graph = module_graph(pkg)
    assert find_cycles(graph) == [["pkg.a", "pkg.b"]]


def test_the_check_sees_a_cycle() -> None:
    graph = {"export": {"backend": {"a.py"}}, "backend": {"export": {"b.py"}}, "core": {}}
    assert find_cycles(graph) == [["backend", "export"]]  # type: ignore[arg-type]


# The training package: ``train/`` installed as ``segnet_train`` (setup.py); docs/DESIGN.md, "The training package".
REPO = ROOT.parent
TRAIN_DIR = REPO / "train"
TRAINING_NAMES = ("segnet_train", "train")
TRAIN_COMMAND = ROOT / "cli" / "train.py"


def _is_training(name: str) -> bool:
    return any(name == n or name.startswith(n + ".") for n in TRAINING_NAMES)


def _training_references(path: Path) -> list[tuple[int, bool]]:
    """(line, at module level) of each import of the training package in ``path``, also through
    ``importlib`` (a string constant naming it passed to a call)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(map(id, tree.body))
    found: list[tuple[int, bool]] = []
    for stmt in ast.walk(tree):
        names: list[str] = []
        if isinstance(stmt, ast.Import):
            names = [a.name for a in stmt.names]
        elif isinstance(stmt, ast.ImportFrom) and not stmt.level and stmt.module:
            names = [stmt.module]
        elif isinstance(stmt, ast.Assign | ast.AnnAssign) and isinstance(stmt.value, ast.Constant):
            value = stmt.value.value  # the installed name spelled for importlib; "train" alone is a split name
            names = [value] if isinstance(value, str) and value.startswith("segnet_train") else []
        if any(_is_training(n) for n in names):
            found.append((stmt.lineno, id(stmt) in top and isinstance(stmt, ast.Import | ast.ImportFrom)))
    return found


def test_only_the_train_command_imports_training_lazily() -> None:
    """toolkit stays importable without the training code: one module names it, and never at import time."""
    refs = {str(p.relative_to(REPO)): r for p in sorted(ROOT.rglob("*.py")) if (r := _training_references(p))}
    assert set(refs) <= {str(TRAIN_COMMAND.relative_to(REPO))}, f"toolkit modules import the training package: {refs}"
    assert refs, "toolkit/cli/train.py no longer names segnet_train: update this test with the new entry point"
    eager = [line for line, top in refs[str(TRAIN_COMMAND.relative_to(REPO))] if top]
    assert not eager, f"toolkit/cli/train.py imports the training package at module level (lines {eager})"


def test_training_imports_only_itself_relatively_and_toolkit() -> None:
    """Inside train/, its own modules by relative import (so the package works under its installed name), never
    ``tools`` or a top-level ``train``; toolkit through its public modules."""
    bad = {}
    for path in sorted(TRAIN_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level and n.module]
        wrong = [n for n in names if _is_training(n) or n == "tools" or n.startswith("tools.")]
        if wrong:
            bad[path.name] = wrong
    assert not bad, f"train/ modules import {bad}: use relative imports inside train/"


def test_nothing_imports_a_top_level_train_module() -> None:
    """Tests and tools import the training package by its installed name, never as ``train`` (which collides)."""
    bad = {}
    for folder in (REPO / "tests", REPO / "tools"):
        for path in sorted(folder.rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
            names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level and n.module]
            if wrong := [n for n in names if n == "train" or n.startswith("train.")]:
                bad[str(path.relative_to(REPO))] = wrong
    assert not bad, f"imports of a top-level 'train': {bad}; import segnet_train (toolkit.cli.train.training_package)"


def test_the_wheel_installs_train_as_segnet_train() -> None:
    """setup.py maps the folder to the collision-free name, and pyproject does not install a ``train`` too."""
    setup = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    call = next(n for n in ast.walk(setup) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    kw = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg == "package_dir"}
    assert kw["package_dir"] == {"segnet_train": "train"}
    assert "train*" not in (REPO / "pyproject.toml").read_text(encoding="utf-8")


def test_the_check_sees_an_eager_import(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("import segnet_train.loop\n\ndef f():\n    from train import x\n    NAME = 'segnet_train'\n"
                 "    split = 'train'\n")
    assert _training_references(f) == [(1, True), (4, False), (5, False)]
