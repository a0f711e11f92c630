"""The fakes and the toolkit's TensorRT code checked against the real TensorRT 10.13 and 11.4 Python API.

Each version's real ``tensorrt_bindings`` module is imported in its own subprocess over stand-in C
libraries (tests/helpers/trt_real_api.py) and read: classes, members, pybind11 signatures, enum
members. Checked here: every member the fakes define and toolkit/backend/trt uses exists on the real
class with the same kind (method or property) and a signature that accepts the fakes' arity and each
call the toolkit makes; every member the toolkit reads, sets or calls during a recorded fake-backed
session binds to the real class; every ``trt.X`` the toolkit touches exists; no name it uses is gone
from the other version; enum values the fakes give match; the progress monitor's overrides match;
compat.py's version branches run against the real module of their version. Nothing of TensorRT runs:
names, signatures and enums are verified, behaviour is not (docs/TENSORRT.md).
"""

from __future__ import annotations

import ast
import enum
import inspect
import json
import subprocess
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.helpers import trt_fakes as fk
from tests.helpers import trt_real_api as ra
from toolkit.errors import EngineBuildError

ROOT = Path(__file__).resolve().parents[3]
TRT_SOURCES = sorted((ROOT / "toolkit" / "backend" / "trt").glob("*.py"))

# fake class -> real class, where the name alone does not say it (FakeX -> X or IX otherwise)
REAL_CLASS = {"FakeContext": "IExecutionContext", "FakeEngine": "ICudaEngine", "FakeConfig": "IBuilderConfig",
              "FakeNetwork": "INetworkDefinition", "FakeProfile": "IOptimizationProfile",
              "FakeTimingCache": "ITimingCache"}
NOT_TRT = {"FakeCudart", "_Err", "_Stream"}  # cuda-python stand-ins, not TensorRT
# fake objects that are not classes: what get_plugin_registry() and network.get_input() return
REAL_OF_RETURNED = {"get_plugin_registry": "IPluginRegistry", "get_input": "ITensor"}
REAL_OF_MODULE_NS = {"NetworkDefinitionCreationFlag", "MemoryPoolType", "TensorIOMode"}  # fake enums


_APIS: dict[int, SimpleNamespace] = {}


@pytest.fixture(scope="module", params=sorted(ra.VERSIONS))
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    return _load_api(request.param, tmp_path_factory)


def _load_api(major: int, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    if major in _APIS:
        return _APIS[major]
    bindings, why = ra.ensure_bindings(major)
    if bindings is None:
        pytest.skip(f"TensorRT {ra.VERSIONS[major]} bindings not available ({why}); run .ci/run or set "
                    f"TOOLKIT_TRT_BINDINGS_{major} to a `pip install --target` folder of {ra.WHEEL}")
    try:
        libdir = ra.build_stubs(major, tmp_path_factory.mktemp(f"trt{major}-stubs"))
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot build the stand-in TensorRT libraries ({e}): install gcc")
    shim = tmp_path_factory.mktemp(f"trt{major}-shim")
    (shim / "tensorrt").mkdir()
    # what NVIDIA's `tensorrt` wheel adds on top of the bindings: `import tensorrt` is tensorrt_bindings
    (shim / "tensorrt" / "__init__.py").write_text("from tensorrt_bindings import *  # noqa\n"
                                                   "from tensorrt_bindings import __version__  # noqa\n")
    _APIS[major] = SimpleNamespace(major=major, data=ra.dump_api(bindings, libdir), bindings=bindings,
                                   libdir=libdir, shim=shim)
    return _APIS[major]


def member_names(data: dict) -> set[str]:
    """Every member and enum member name of every class of one version."""
    out: set[str] = set()
    for cls in data["classes"].values():
        out |= set(cls["members"]) | set(cls["enum"] or {})
    return out | set(data["functions"]) | set(data["classes"])


# names toolkit/backend/trt uses for its own objects that happen to be TensorRT names too
OWN_NAMES = {"precision": "Sidecar.precision and the runner's precision label (ILayer.precision, gone in 11.4, "
                          "is never touched)"}


def vanished_names(old: dict, new: dict, sources: list[Path]) -> list[str]:
    """Names the sources use that are TensorRT names in ``old`` but exist nowhere in ``new`` (removed there)."""
    used = _attr_names(sources) - set(OWN_NAMES)
    gone = (member_names(old) - member_names(new)) & used
    return [f"`{n}` is a TensorRT {old['version']} name that TensorRT {new['version']} no longer has anywhere; "
            f"the toolkit uses it" for n in sorted(gone)]


# ---- what the fakes offer and the toolkit uses ----------------------------------------------------------------


def _attr_names(paths: list[Path]) -> set[str]:
    names: set[str] = set()
    for p in paths:
        names |= {n.attr for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.Attribute)}
    return names


def _fake_classes() -> dict[str, type]:
    """Every TensorRT stand-in class, module level and inside make_fake_trt, by name."""
    out = {n: c for n, c in vars(fk).items() if inspect.isclass(c) and c.__module__ == fk.__name__}
    ns = fk.make_fake_trt()
    out.update({n: c for n, c in vars(ns).items() if inspect.isclass(c)})
    return {n: c for n, c in out.items() if not _not_trt(n)}


def _not_trt(name: str) -> bool:
    """cuda-python stand-ins (the cudart fake, its streams, errors, graphs) and private helpers."""
    return name in NOT_TRT or name.startswith("_") or any(
        w in name for w in ("Cudart", "Stream", "Graph", "Err", "Host", "Device"))


def _instance_attrs(cls: type) -> set[str]:
    """``self.x = ...`` names in the class's methods (instance attributes the fake offers)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return set()
    out = set()
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        for t in targets:
            for e in t.elts if isinstance(t, ast.Tuple) else [t]:
                if isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name) and e.value.id == "self":
                    out.add(e.attr)
    return out


def real_class_name(fake: str) -> str:
    if fake in REAL_CLASS:
        return REAL_CLASS[fake]
    return fake.removeprefix("Fake")


def fake_members(cls: type) -> dict[str, Any]:
    """name -> 'method' (with its function), 'property' or 'value' for what the fake class offers."""
    out: dict[str, Any] = {}
    for name in set(dir(cls)) - set(dir(object)) | {"__init__"}:
        if name.startswith("_") and name != "__init__":
            continue
        static = inspect.getattr_static(cls, name, None)
        if isinstance(static, property):
            out[name] = ("property", None)
        elif inspect.isfunction(static):
            out[name] = ("method", static)
        elif static is not None:
            out[name] = ("value", static)
    for name in _instance_attrs(cls):
        if not name.startswith("_"):
            out.setdefault(name, ("attribute", None))
    return out


def _stored_attrs(paths: list[Path]) -> set[str]:
    """Names the sources assign on another object (``config.x = ...``): how they use a TensorRT property."""
    names: set[str] = set()
    for p in paths:
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store) and not (
                    isinstance(n.value, ast.Name) and n.value.id == "self"):
                names.add(n.attr)
    return names


def toolkit_calls(paths: list[Path]) -> list[tuple[str | None, str, int, tuple[str, ...], str]]:
    """(class, method, positional count, keyword names, where) for each ``x.method(...)`` call in the sources.

    class is None for a method call on an object (matched to the fakes by method name); ``trt.X(...)``
    is (X, "__init__", ...) and ``trt.X.__init__(self, ...)`` is (X, "__init__", ...) without the self.
    """
    calls = []
    for p in paths:
        for n in ast.walk(ast.parse(p.read_text())):
            if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)):
                continue
            if any(isinstance(a, ast.Starred) for a in n.args) or any(k.arg is None for k in n.keywords):
                continue
            f, npos, kw, at = n.func, len(n.args), tuple(k.arg for k in n.keywords if k.arg), f"{p.name}:{n.lineno}"
            if isinstance(f.value, ast.Name) and f.value.id == "trt":
                calls.append((f.attr, "__init__", npos, kw, at))
            elif f.attr == "__init__":
                v = f.value
                if isinstance(v, ast.Attribute) and isinstance(v.value, ast.Name) and v.value.id == "trt":
                    calls.append((v.attr, "__init__", npos - 1, kw, at))
            else:
                calls.append((None, f.attr, npos, kw, at))
    return calls


def trt_module_uses(paths: list[Path]) -> set[tuple[str, str | None]]:
    """(X, Y) for each ``trt.X`` / ``trt.X.Y`` in the sources (Y None for a bare ``trt.X``)."""
    out: set[tuple[str, str | None]] = set()
    for p in paths:
        tree = ast.parse(p.read_text())
        inner = set()
        for n in ast.walk(tree):
            if (isinstance(n, ast.Attribute) and isinstance(n.value, ast.Attribute)
                    and isinstance(n.value.value, ast.Name) and n.value.value.id == "trt"):
                out.add((n.value.attr, n.attr))
                inner.add(id(n.value))
        for n in ast.walk(tree):
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "trt" \
                    and id(n) not in inner:
                out.add((n.attr, None))
    return out


# ---- checks (functions, so a scratch copy of the sources can be checked too) ---------------------------------


def _signatures(member: dict) -> list[ra.Signature]:
    """The member's overloads; pybind11's ``f(*args, **kwargs)`` summary line of an overloaded one is left out."""
    sigs = [ra.parse_signature(s) for s in member.get("signatures") or []]
    real = [s for s in sigs if not s.varargs]
    return real or sigs


def _bind_problem(real: dict, npos: int, kw: tuple[str, ...]) -> str | None:
    sigs = _signatures(real)
    if not sigs or any(s.accepts(npos, kw) for s in sigs):
        return None
    return f"a call with {npos} positional argument(s){' and ' + ', '.join(kw) + '=' if kw else ''} binds to " \
           f"none of {[s.text for s in sigs]}"


def check_fakes(data: dict, sources: list[Path]) -> list[str]:
    """Mismatches between the fakes (as far as the sources use them) and the real API ``data``."""
    version, classes = data["version"], data["classes"]
    used = _attr_names(sources) | {"__init__"}
    stored = _stored_attrs(sources)
    calls = toolkit_calls(sources)
    problems = []
    fakes = _fake_classes()
    ns = fk.make_fake_trt()
    targets: list[tuple[str, str, dict[str, Any]]] = [
        (n, real_class_name(n), fake_members(c)) for n, c in fakes.items()]
    registry = ns.get_plugin_registry()
    targets.append(("get_plugin_registry()", REAL_OF_RETURNED["get_plugin_registry"],
                    {k: ("method", v) for k, v in vars(registry).items()}))
    try:  # the recorded session (test_recorded_calls_bind) covers ITensor too, should this constructor change
        tensor = fk.FakeNetwork(0).get_input(0)
        targets.append(("FakeNetwork.get_input()", REAL_OF_RETURNED["get_input"],
                        {k: ("property", None) for k in vars(tensor)}))
    except TypeError:
        pass
    for fake, real_name, members in targets:
        real_cls = classes.get(real_name) or classes.get("I" + real_name)
        if real_cls is None:
            problems.append(f"TensorRT {version}: no class {real_name} (fake {fake})")
            continue
        for name, (kind, fn) in sorted(members.items()):
            if name not in used or (kind == "attribute" and name not in stored):
                continue  # fake bookkeeping the toolkit never touches (or only reads, on other objects too)
            where = f"TensorRT {version}: {real_name}.{name} (fake {fake})"
            real = real_cls["members"].get(name)
            if real is None:
                problems.append(f"{where}: no such member in the real class")
                continue
            if kind == "method" and real["kind"] != "method":
                problems.append(f"{where}: the fake has a method, the real one is a {real['kind']}")
                continue
            if kind in ("property", "attribute") and real["kind"] == "method":
                problems.append(f"{where}: the fake has an attribute, the real one is a method")
                continue
            if kind == "value" and isinstance(fn, int) and real.get("int") is not None and real["int"] != fn:
                problems.append(f"{where}: fake value {fn}, real {real['int']}")
            if kind == "attribute" and real["kind"] == "property" and not real["writable"]:
                problems.append(f"{where}: the toolkit assigns it, the real property is read-only")
            if kind != "method":
                continue
            sig = inspect.signature(fn)
            params = [p for p in sig.parameters.values() if p.name != "self"]
            if any(p.kind is p.VAR_POSITIONAL for p in params):  # takes anything: only the toolkit's calls count
                params = []
                sig = None
            required = sum(p.default is inspect.Parameter.empty and p.kind in (
                p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
            why = _bind_problem(real, required, ()) if sig is not None else None
            if why:
                problems.append(f"{where}: fake {name}{sig}: {why}")
            for cls_name, meth, npos, kw, at in calls:
                if meth != name or (cls_name is not None and cls_name != real_name) or (
                        cls_name is None and meth == "__init__"):
                    continue
                if why := _bind_problem(real, npos, kw):
                    problems.append(f"{where}: toolkit call at {at}: {why}")
    # the fakes' int enum values are those of the version make_fake_trt() defaults to (they differ in 11)
    same_major = version.split(".")[0] == ns.__version__.split(".")[0]
    fake_enums = {n: {m.name: int(m.value) for m in c} for n, c in fakes.items() if issubclass(c, enum.Enum)}
    fake_enums.update({n: dict(vars(getattr(ns, n))) for n in REAL_OF_MODULE_NS if hasattr(ns, n)})
    for enum_name, fake_members_ in sorted(fake_enums.items()):
        real_enum = (classes.get(enum_name) or {}).get("enum")
        if real_enum is None:
            problems.append(f"TensorRT {version}: no enum {enum_name}")
            continue
        for member, value in fake_members_.items():
            if not same_major and member not in used:
                continue  # the fakes' enums are those of one version; of the other, what the toolkit names
            if member not in real_enum:
                problems.append(f"TensorRT {version}: {enum_name}.{member} (fake) is no member of the real enum "
                                f"{sorted(real_enum)}")
            elif isinstance(value, int) and same_major and real_enum[member] != value:
                problems.append(f"TensorRT {version}: {enum_name}.{member} is {real_enum[member]}, the fake says "
                                f"{value}")
    return problems


def check_module_uses(data: dict, sources: list[Path]) -> list[str]:
    """Every ``trt.X`` / ``trt.X.Y`` in the sources exists in the real module."""
    problems = []
    version, classes, functions = data["version"], data["classes"], data["functions"]
    for x, y in sorted(trt_module_uses(sources), key=str):
        if x.startswith("__"):
            continue
        if x not in classes and x not in functions:
            problems.append(f"TensorRT {version}: trt.{x} does not exist")
            continue
        if y is not None and x in classes:
            cls = classes[x]
            if y not in cls["members"] and y not in (cls["enum"] or {}):
                problems.append(f"TensorRT {version}: trt.{x}.{y} does not exist")
    return problems


def check_subclasses(data: dict, sources: list[Path]) -> list[str]:
    """``class M(trt.X)`` in the sources: each method M overrides exists in X and takes what TensorRT passes."""
    problems = []
    version, classes = data["version"], data["classes"]
    for p in sources:
        for node in ast.walk(ast.parse(p.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = [b.attr for b in node.bases if isinstance(b, ast.Attribute) and isinstance(b.value, ast.Name)
                     and b.value.id == "trt"]
            for base in bases:
                real_cls = classes.get(base)
                if real_cls is None:
                    problems.append(f"TensorRT {version}: {p.name}:{node.lineno} subclasses trt.{base}, which "
                                    "does not exist")
                    continue
                for fn in node.body:
                    if not isinstance(fn, ast.FunctionDef) or fn.name.startswith("_"):
                        continue
                    real = real_cls["members"].get(fn.name)
                    where = f"TensorRT {version}: {base}.{fn.name} (overridden at {p.name}:{fn.lineno})"
                    if real is None or real["kind"] != "method":
                        problems.append(f"{where}: no such method to override in the real class")
                        continue
                    ours = [a.arg for a in fn.args.args][1:]
                    required = len(ours) - len(fn.args.defaults)
                    for sig in _signatures(real):
                        n = len(sig.params)
                        if not (required <= n <= len(ours) or fn.args.vararg):
                            problems.append(f"{where}: TensorRT calls it with {n} argument(s) ({sig.text}); ours "
                                            f"takes {ours}")
    return problems


# ---- every call the toolkit makes during a fake-backed build, load and run, recorded as the real class ------------

Record = tuple[str, str, str, int, tuple[str, ...]]  # (real class or "<module>", member, get|set|call, npos, kw)
MODULE = "<module>"


def _raw(x: Any) -> Any:
    return object.__getattribute__(x, "_target") if isinstance(x, _Recorded) else x


def _wrap(value: Any, via: str, log: list[Record]) -> Any:
    """A fake TensorRT object coming back to the toolkit, wrapped so its use is recorded as its real class."""
    name = type(value).__name__
    if name in _fake_classes() and not inspect.isclass(value):
        return _Recorded(value, real_class_name(name), log)
    if isinstance(value, SimpleNamespace) and via in REAL_OF_RETURNED:
        return _Recorded(value, REAL_OF_RETURNED[via], log)
    return value


class _Recorded:
    """Forwards to a fake, logging each member the toolkit reads, sets or calls (with its arity)."""

    def __init__(self, target: Any, real: str, log: list[Record], constructs: str | None = None) -> None:
        for k, v in (("_target", target), ("_real", real), ("_log", log), ("_constructs", constructs)):
            object.__setattr__(self, k, v)

    def __call__(self, *args: Any, **kw: Any) -> Any:  # trt.Builder(logger) & co.
        real = object.__getattribute__(self, "_constructs")
        log = object.__getattribute__(self, "_log")
        log.append((real, "__init__", "call", len(args), tuple(kw)))
        obj = _raw(self)(*map(_raw, args), **{k: _raw(v) for k, v in kw.items()})
        return _Recorded(obj, real, log)

    def __getattr__(self, name: str) -> Any:
        target, real, log = (object.__getattribute__(self, k) for k in ("_target", "_real", "_log"))
        value = getattr(target, name)
        if inspect.isclass(value) and real == MODULE:
            log.append((MODULE, name, "get", 0, ()))
            if name == "IProgressMonitor":  # subclassed by the toolkit: must stay a class
                return value
            return _Recorded(value, name, log, constructs=name)
        if isinstance(value, SimpleNamespace) and real == MODULE:  # the fakes' enums
            log.append((MODULE, name, "get", 0, ()))
            return _Recorded(value, name, log)
        if callable(value) and not inspect.isclass(value):
            def call(*args: Any, **kw: Any) -> Any:
                log.append((real, name, "call", len(args), tuple(kw)))
                return _wrap(value(*map(_raw, args), **{k: _raw(v) for k, v in kw.items()}), name, log)

            return call
        log.append((real, name, "get", 0, ()))
        return _wrap(value, name, log)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__getattribute__(self, "_log").append((object.__getattribute__(self, "_real"), name, "set", 0, ()))
        setattr(_raw(self), name, _raw(value))


def record_fake_session(version: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Record]:
    """Build (plugin, timing cache, workspace, opt level, progress), fail a parse, load and run an engine."""
    import numpy as np

    from tests.helpers import onnx_graphs as g
    from toolkit.backend.trt import loader as ld
    from toolkit.backend.trt import plugin_lib as pl
    from toolkit.backend.trt import runner as rn
    from toolkit.backend.trt.compat import GpuInfo
    from toolkit.backend.trt.shapes import parse_shapes

    log: list[Record] = []

    def install(**kw: Any) -> Any:
        fake = fk.make_fake_trt(version, **kw)
        proxy = _Recorded(fake, MODULE, log)
        for mod in (ld, rn):
            monkeypatch.setattr(mod, "import_tensorrt", lambda p=proxy: p)
        monkeypatch.setattr(rn, "import_cudart", lambda c=fake.cudart: c)
        monkeypatch.setattr(pl, "_LOADED", {})
        return fake

    monkeypatch.setattr(ld, "current_gpu", lambda device=0: GpuInfo("Fake GPU", "8.6"))
    install()
    lib = tmp_path / pl.LIBRARY_NAME
    lib.write_bytes(b"\x7fELF plugin")
    onnx_path = g.save(g.plugin(), tmp_path / "m.onnx")
    (tmp_path / "t.cache").write_bytes(b"old")
    built = ld.BuildEngine(ld.NetworkFromOnnx(onnx_path, plugins=[lib]), parse_shapes("1x3x8x8:1x3x16x16:2x3x32x32"),
                           timing_cache=tmp_path / "t.cache", workspace_mb=64, opt_level=4,
                           progress=lambda *a: None)
    engine = ld.SaveEngine(built, tmp_path / "m.engine")()
    with rn.TrtRunner(ld.EngineFromPath(engine, plugins=[lib]), cuda_graph=True) as r:
        for shape in [(1, 3, 16, 16), (1, 3, 16, 16), (2, 3, 32, 32)]:
            r.infer({"input": np.ones(shape, np.float32)})
    install(parse_errors=("node x: unsupported",))
    with pytest.raises(EngineBuildError):
        ld.NetworkFromOnnx(onnx_path)()
    return log


def check_records(data: dict, log: list[Record]) -> list[str]:
    """Each recorded read, write and call binds to the real class of ``data``'s version."""
    version, classes, functions = data["version"], data["classes"], data["functions"]
    problems: set[str] = set()
    for real, name, op, npos, kw in log:
        if name.startswith("__") and name != "__init__":
            continue
        where = f"TensorRT {version}: {'trt' if real == MODULE else real}.{name} ({op} during the fake-backed run)"
        if real == MODULE:
            if name in classes:
                continue
            if name not in functions:
                problems.add(f"{where}: no such name in the real module")
            elif op == "call" and (why := _bind_problem({"signatures": functions[name]}, npos, kw)):
                problems.add(f"{where}: {why}")
            continue
        cls = classes.get(real)
        if cls is None:
            problems.add(f"{where}: no class {real}")
            continue
        member = cls["members"].get(name)
        if member is None:
            if op == "get" and name in (cls["enum"] or {}):
                continue
            problems.add(f"{where}: no such member in the real class")
        elif op == "call" and member["kind"] != "method":
            problems.add(f"{where}: called, but the real one is a {member['kind']}")
        elif op == "call" and (why := _bind_problem(member, npos, kw)):
            problems.add(f"{where}: {why}")
        elif op == "get" and member["kind"] == "method":
            problems.add(f"{where}: read as a value, but the real one is a method")
        elif op == "set" and not (member["kind"] == "property" and member["writable"]):
            problems.add(f"{where}: assigned, but the real one is not a writable property")
    return sorted(problems)


# ---- the tests -----------------------------------------------------------------------------------------------


def test_real_module_is_the_version_we_meant(api: SimpleNamespace) -> None:
    assert api.data["version"] == ra.VERSIONS[api.major]
    assert len(api.data["classes"]) > 100  # the whole module was read, not an empty stand-in


def test_fakes_match_the_real_api(api: SimpleNamespace) -> None:
    problems = check_fakes(api.data, TRT_SOURCES)
    assert not problems, "\n".join(problems)


def test_toolkit_trt_names_exist(api: SimpleNamespace) -> None:
    problems = check_module_uses(api.data, TRT_SOURCES)
    assert not problems, "\n".join(problems)


def test_recorded_calls_bind(api: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every member the toolkit touched on a fake during a build, load and run exists on the real class and binds."""
    log = record_fake_session(api.data["version"], tmp_path, monkeypatch)
    problems = check_records(api.data, log)
    assert not problems, "\n".join(problems)
    touched = {(r[0], r[1]) for r in log}
    for must in [("Builder", "build_serialized_network"), ("IBuilderConfig", "set_timing_cache"),
                 ("IBuilderConfig", "progress_monitor"), ("IOptimizationProfile", "set_shape"),
                 ("Runtime", "deserialize_cuda_engine"), ("ICudaEngine", "get_tensor_profile_shape"),
                 ("IExecutionContext", "execute_async_v3"), ("IPluginRegistry", "load_library"),
                 ("OnnxParser", "get_error"), ("ITensor", "name"), ("Logger", "WARNING")]:
        assert must in touched, must  # the session reached every object it is meant to check


def test_recorded_wrong_uses_fail(api: SimpleNamespace) -> None:
    """What the recorder would log for a misspelt keyword, a called property, a read-only write, a missing name."""
    log: list[Record] = [("IBuilderConfig", "set_timing_cache", "call", 1, ("ignore_mismatches",)),
                         ("ICudaEngine", "num_io_tensors", "call", 0, ()),
                         ("OnnxParser", "num_errors", "set", 0, ()),
                         ("Runtime", "deserialize_engine", "call", 1, ()),
                         (MODULE, "get_plugin_registery", "call", 0, ())]
    problems = check_records(api.data, log)
    assert len(problems) == 5, problems
    assert all(p.startswith(f"TensorRT {api.data['version']}: ") for p in problems)
    assert any("Runtime.deserialize_engine" in p and "no such member" in p for p in problems)


def test_toolkit_overrides_match(api: SimpleNamespace) -> None:
    """The progress monitor's phase_start/step_complete/phase_finish take what TensorRT passes them."""
    problems = check_subclasses(api.data, TRT_SOURCES)
    assert not problems, "\n".join(problems)


def test_overloaded_methods_are_checked_per_overload(api: SimpleNamespace) -> None:
    """pybind11 lists an overloaded method as ``f(*args, **kwargs)`` first; that line must not accept everything."""
    member = api.data["classes"]["IPluginRegistry"]["members"]["register_creator"]
    assert any("*args" in s for s in member["signatures"])
    assert _bind_problem(member, 1, ()) is None and _bind_problem(member, 2, ()) is None
    assert _bind_problem(member, 0, ()) is not None and _bind_problem(member, 3, ()) is not None


def test_no_name_removed_in_the_other_version(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Catches what the per-object checks cannot see: a fallback such as ``registry.get_plugin_creator``."""
    apis = [_load_api(m, tmp_path_factory).data for m in sorted(ra.VERSIONS)]
    problems = vanished_names(apis[0], apis[1], TRT_SOURCES) + vanished_names(apis[1], apis[0], TRT_SOURCES)
    assert not problems, "\n".join(problems)
    bad = tmp_path_factory.mktemp("scratch") / "plugin_lib.py"
    bad.write_text("get = getattr(registry, 'get_creator', None) or registry.get_plugin_creator\n")
    assert vanished_names(apis[0], apis[1], [bad]) == [
        f"`get_plugin_creator` is a TensorRT {apis[0]['version']} name that TensorRT {apis[1]['version']} no "
        "longer has anywhere; the toolkit uses it"]


def test_signature_parser() -> None:
    sig = ra.parse_signature("set_shape(self: tensorrt.IOptimizationProfile, input: str, min: tensorrt.Dims, "
                             "opt: tensorrt.Dims, max: tensorrt.Dims) -> None")
    assert [p.name for p in sig.params] == ["input", "min", "opt", "max"]
    assert sig.accepts(4, ()) and not sig.accepts(3, ()) and not sig.accepts(5, ())
    sig = ra.parse_signature("create_network(self: B, flags: typing.SupportsInt = 0) -> N")
    assert sig.accepts(0, ()) and sig.accepts(1, ()) and sig.accepts(0, ("flags",)) and not sig.accepts(0, ("x",))


def test_a_wrong_call_fails_the_check(api: SimpleNamespace, tmp_path: Path) -> None:
    """A scratch copy of the loader with one misspelt module name and one short call is caught, by version."""
    src = (ROOT / "toolkit" / "backend" / "trt" / "loader.py").read_text()
    bad = src.replace("trt.Runtime(", "trt.Runtim(").replace(
        "def step_complete(self, phase_name: str, step: int)", "def step_complete(self, phase_name: str)").replace(
        "profile.set_shape(inp.name, self.shapes.min, self.shapes.opt, self.shapes.max)",
        "profile.set_shape(inp.name, self.shapes.min, self.shapes.max)")
    assert bad != src
    (tmp_path / "loader.py").write_text(bad)
    module = check_module_uses(api.data, [tmp_path / "loader.py"])
    assert module == [f"TensorRT {api.data['version']}: trt.Runtim does not exist"]
    fakes = check_fakes(api.data, [tmp_path / "loader.py"])
    assert any("IOptimizationProfile.set_shape" in p and "loader.py" in p for p in fakes), fakes
    overrides = check_subclasses(api.data, [tmp_path / "loader.py"])
    assert len(overrides) == 1 and "IProgressMonitor.step_complete" in overrides[0], overrides


# ---- compat.py's branches, run against the real module of each version ------------------------------------------

_COMPAT = r"""
import json
import tensorrt as trt
from toolkit.backend.trt import compat
t = compat.import_tensorrt()
flags = compat.network_creation_flags(t)
print(json.dumps({
    "major": compat.trt_major(t.__version__), "flags": flags,
    "strongly_typed": int(t.NetworkDefinitionCreationFlag.STRONGLY_TYPED),
    "progress_monitor": hasattr(t, "IProgressMonitor"),
    "precision_flags": [f for f in ("FP16", "INT8") if hasattr(t.BuilderFlag, f)],
    "nptype_float": str(t.nptype(t.DataType.FLOAT)), "nptype_half": str(t.nptype(t.DataType.HALF)),
}))
"""


def _run(api: SimpleNamespace, code: str, libs: bool = True) -> Any:
    return ra.run_with_bindings(code, api.bindings, api.libdir if libs else None,
                                extra_path=f"{api.shim}:{ROOT}")


def test_compat_branches_on_the_real_module(api: SimpleNamespace) -> None:
    r = _run(api, _COMPAT)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["major"] == api.major
    assert got["progress_monitor"]
    assert "float32" in got["nptype_float"] and "float16" in got["nptype_half"]
    if api.major == 10:  # weakly typed unless asked: the flag bit must be the real STRONGLY_TYPED
        assert got["flags"] == 1 << got["strongly_typed"] and got["flags"] != 0
        assert got["precision_flags"] == ["FP16", "INT8"]
    else:  # 11: always strongly typed, no flag; precision builder flags removed (compat.py's docstring)
        assert got["flags"] == 0
        assert got["precision_flags"] == []


def test_bindings_without_libraries_say_so(api: SimpleNamespace) -> None:
    """Bindings importable but libnvinfer & co. absent: one line saying that, not 'TensorRT is not installed'."""
    code = ("from toolkit.backend.trt import compat\nfrom toolkit.errors import TensorRTMissingError\n"
            "try:\n    compat.import_tensorrt()\nexcept TensorRTMissingError as e:\n    print(e)\n"
            "print(compat.tensorrt_status())\n")
    r = _run(api, code, libs=False)
    assert r.returncode == 0, r.stderr
    error, info = r.stdout.strip().splitlines()  # one line each: build-engine's error, toolkit info's entry
    assert error.startswith("TensorRT's Python bindings are present but its libraries are missing"), error
    assert f".so.{api.major}" in error and "not installed" not in error, error
    assert "bindings present, libraries missing" in info and f".so.{api.major}" in info, info


def test_no_tensorrt_at_all_says_so(tmp_path: Path) -> None:
    code = ("import sys\nsys.modules['tensorrt'] = None\nfrom toolkit.backend.trt import compat\n"
            "from toolkit.errors import TensorRTMissingError\n"
            "try:\n    compat.import_tensorrt()\nexcept TensorRTMissingError as e:\n    print(e)\n")
    r = ra.run_with_bindings(code + "print(compat.tensorrt_status())\n", tmp_path, None, extra_path=str(ROOT))
    assert r.returncode == 0, r.stderr
    error, info = r.stdout.strip().splitlines()
    assert error.startswith("TensorRT is not installed"), error
    assert info == "not installed"
