"""Load a script of tools/ as a module (tools are scripts, not a package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools"


def load_tool(rel: str) -> ModuleType:
    """Import tools/REL as a fresh module (tools are scripts, not a package: nothing imports them by name)."""
    path = TOOLS / rel
    spec = importlib.util.spec_from_file_location(f"tools_smoke_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
