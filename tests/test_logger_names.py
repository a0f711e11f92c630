"""Every module logs through ``logging.getLogger(__name__)``, so its logger sits under the package's own name.

``toolkit.cli.common.setup_logging`` configures the root logger, so records from every ``toolkit.*`` and
``segnet_train.*`` module reach the same handler; a test that captures by ``logger="toolkit"`` sees every
``toolkit.*`` module's records. A module-level logger under another name (``"toolkit"``, ``"toolkit.video"``)
would hide where a line comes from and could fall outside a level set on a sub-package.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("toolkit", "train")


def _own_loggers(path: Path) -> list[str]:
    """``getLogger(...)`` calls whose argument is a string naming one of our packages (not a third party's)."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "getLogger"
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                and node.args[0].value.split(".")[0] in ("toolkit", "segnet_train", "train")):
            bad.append(f"{path.relative_to(REPO)}:{node.lineno}: getLogger({node.args[0].value!r})")
    return bad


def _module_loggers(path: Path) -> list[str]:
    """Module-level ``name = logging.getLogger(X)`` with X not ``__name__``."""
    bad = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            call = node.value
            if isinstance(call.func, ast.Attribute) and call.func.attr == "getLogger":
                arg = call.args[0] if call.args else None
                if not (isinstance(arg, ast.Name) and arg.id == "__name__"):
                    bad.append(f"{path.relative_to(REPO)}:{node.lineno}: module logger not getLogger(__name__)")
    return bad


def test_every_module_logger_is_named_after_its_module() -> None:
    bad = []
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            bad += _own_loggers(path) + _module_loggers(path)
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("module", ["toolkit.video.pipeline", "toolkit.backend.trt.runner", "toolkit.bench"])
def test_a_module_logger_reaches_the_cli_handler(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """setup_logging's handler (on the root logger) receives a record from a module logger at INFO."""
    import importlib

    from toolkit.cli.logs import setup_logging

    mod = importlib.import_module(module)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    seen: list[logging.LogRecord] = []
    setup_logging()
    root.handlers[0].addFilter(lambda r: seen.append(r) or True)  # the handler basicConfig installed
    mod.log.info("hello from %s", module)
    assert [r.name for r in seen] == [module]
