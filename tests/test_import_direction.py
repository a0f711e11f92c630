"""The import direction between toolkit's folders: no cycles, and ``toolkit.core`` at the bottom.

Every ``import`` in every module counts, also those inside functions (imported lazily, they still tie
the folders together). A unit is a sub-package of ``toolkit/`` (``backend``, ``export`` ...) or a
top-level module (``bench``, ``evaluate`` ...).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import toolkit

ROOT = Path(toolkit.__file__).parent
CORE_MAY_IMPORT = {"core", "errors", "files", ""}  # "": the toolkit package itself (__version__)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.add(node.module)
    return found


def unit_graph() -> dict[str, dict[str, set[str]]]:
    """unit -> {imported unit: files that import it}."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in sorted(ROOT.rglob("*.py")):
        src = _unit(_module_name(path))
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


def test_the_check_sees_a_cycle() -> None:
    graph = {"export": {"backend": {"a.py"}}, "backend": {"export": {"b.py"}}, "core": {}}
    assert find_cycles(graph) == [["backend", "export"]]  # type: ignore[arg-type]
