"""Process policy stays in the CLI (issue 27 item 4): no library module reads ``sys.argv``, writes
``os.environ``, touches the root logger, or sets the level of a logger that is not the toolkit's own.

The library is ``toolkit/`` without ``toolkit/cli/``, plus the training module ``train/``. Exit codes, the
command line, the environment of this process and other libraries' log levels are the CLI's to decide
(``toolkit/cli/common.py``, ``toolkit/cli/logs.py``); a library function reports what happened. The check
reads every module's syntax tree, so code inside functions counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import toolkit

ROOT = Path(toolkit.__file__).parent
TRAIN = ROOT.parent / "train"
ENV_WRITERS = {"setdefault", "update", "pop", "popitem", "clear", "__setitem__", "__delitem__"}


def library_files() -> list[Path]:
    files = [p for p in sorted(ROOT.rglob("*.py")) if "cli" not in p.relative_to(ROOT).parts[:1]]
    return files + (sorted(TRAIN.rglob("*.py")) if TRAIN.is_dir() else [])


def _dotted(node: ast.AST) -> str:
    """'os.environ' for the expression os.environ; '' for anything that is not a dotted name."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _own_logger_call(node: ast.AST) -> bool:
    """logging.getLogger(__name__) or logging.getLogger("toolkit...")."""
    if not (isinstance(node, ast.Call) and _dotted(node.func) in ("logging.getLogger", "getLogger") and node.args):
        return False
    arg = node.args[0]
    return (isinstance(arg, ast.Name) and arg.id == "__name__") or (
        isinstance(arg, ast.Constant) and isinstance(arg.value, str) and
        (arg.value == "toolkit" or arg.value.startswith(("toolkit.", "segnet_train"))))


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own_loggers = {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign) and _own_logger_call(node.value)
                   for t in node.targets if isinstance(t, ast.Name)}
    found: list[str] = []

    def add(node: ast.AST, what: str) -> None:
        found.append(f"{path.relative_to(ROOT.parent)}:{getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _dotted(node) == "sys.argv":
            add(node, "reads sys.argv (the CLI builds the command line and passes it in)")
        elif isinstance(node, ast.ImportFrom) and node.module == "sys" and any(a.name == "argv" for a in node.names):
            add(node, "imports sys.argv")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for t in targets:
                if isinstance(t, ast.Subscript) and _dotted(t.value) == "os.environ":
                    add(node, "writes os.environ (give the environment to the child process instead)")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in ("os.putenv", "os.unsetenv") or (
                    isinstance(node.func, ast.Attribute) and node.func.attr in ENV_WRITERS
                    and _dotted(node.func.value) == "os.environ"):
                add(node, f"{name or 'os.environ write'}() changes this process's environment")
            elif name in ("logging.getLogger", "getLogger") and (
                    not node.args or (isinstance(node.args[0], ast.Constant) and node.args[0].value in ("", None))):
                add(node, "takes the root logger")
            elif name in ("logging.disable", "logging.basicConfig"):
                add(node, f"{name}() sets logging up for the whole process (the CLI's job)")
            elif isinstance(node.func, ast.Attribute) and node.func.attr == "setLevel":
                receiver = node.func.value
                mine = (isinstance(receiver, ast.Name) and receiver.id in own_loggers) or _own_logger_call(receiver)
                if not mine:
                    add(node, f"sets the level of a logger that is not the toolkit's own ({ast.unparse(receiver)})")
        if isinstance(node, ast.Attribute) and _dotted(node) == "logging.root":
            add(node, "takes the root logger")
    return found


def test_the_policy_check_finds_each_kind_of_violation(tmp_path: Path) -> None:
    """The checker itself: each forbidden form is reported, the allowed ones are not."""
    bad = tmp_path / "bad.py"
    bad.write_text("import logging, os, sys\nfrom sys import argv\nlog = logging.getLogger(__name__)\n"
                   "a = sys.argv[1:]\nos.environ['X'] = '1'\nos.environ.setdefault('Y', '2')\ndel os.environ['X']\n"
                   "logging.getLogger().setLevel(logging.ERROR)\nlogging.getLogger('torch.onnx').setLevel(40)\n"
                   "other = logging.getLogger('pytriton')\nother.setLevel(30)\nlog.setLevel(10)\n"
                   "logging.getLogger(__name__).setLevel(10)\nv = os.environ.get('Z')\nos.putenv('A', 'b')\n",
                   encoding="utf-8")
    global ROOT
    saved, ROOT = ROOT, tmp_path.parent
    try:
        lines = [int(v.split(":")[1]) for v in violations(bad)]
    finally:
        ROOT = saved
    assert sorted(set(lines)) == [2, 4, 5, 6, 7, 8, 9, 11, 15]


def test_library_modules_leave_process_policy_to_the_cli() -> None:
    files = library_files()
    assert len(files) > 50 and any(p.parent == TRAIN for p in files)  # the walk found the library and train/
    found = [v for path in files for v in violations(path)]
    assert not found, "\n".join(found)
