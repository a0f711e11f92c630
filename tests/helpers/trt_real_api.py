"""The real TensorRT Python API (names, signatures, enum members), read from NVIDIA's binding wheels on a CPU.

The ``tensorrt-cu12-bindings`` wheels hold only the pybind11 module; it links against libnvinfer,
libnvonnxparser and libnvinfer_plugin but needs just nine C entry points from them at import time. We
compile stand-in libraries that export those (all returning null) so ``import tensorrt_bindings``
succeeds, then dump every class, member, pybind11 signature line and enum member as JSON, one
subprocess per version. Nothing of TensorRT runs: this verifies names, signatures and enums, not behaviour.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# TensorRT major -> the bindings wheel we check against (the versions docs/TENSORRT.md names).
VERSIONS = {10: "10.13.3.9.post1", 11: "11.4.0.106"}
WHEEL = "tensorrt-cu12-bindings"

# The C entry points tensorrt.so imports (`nm -D --undefined-only tensorrt.so`); never TensorRT's code.
STUB_C = """\
void *createInferBuilder_INTERNAL(void *l, int v) { return 0; }
void *createInferRefitter_INTERNAL(void *e, void *l, int v) { return 0; }
void *createInferRuntime_INTERNAL(void *l, int v) { return 0; }
void *getBuilderPluginRegistry(int c) { return 0; }
void *getPluginRegistry(void) { return 0; }
void *createNvOnnxParser_INTERNAL(void *n, void *l, int v) { return 0; }
void *createNvOnnxParserRefitter_INTERNAL(void *r, void *l, int v) { return 0; }
int getNvOnnxParserVersion(void) { return 0; }
int initLibNvInferPlugins(void *l, const char *ns) { return 0; }
"""
STUB_LIBS = ("libnvinfer", "libnvonnxparser", "libnvinfer_plugin")

_DUMP = r"""
import inspect, json, re, sys
import tensorrt_bindings as trt

def sigs(obj, name):
    doc = getattr(obj, "__doc__", None) or ""
    lines = [re.sub(r"^\d+\. ", "", l.strip()) for l in doc.splitlines()]
    out = [l for l in lines if l.startswith(name + "(")]
    if not out and inspect.isfunction(obj):
        out = [name + str(inspect.signature(obj))]
    return out

api = {"version": trt.__version__, "classes": {}, "functions": {}}
for cname in dir(trt):
    obj = getattr(trt, cname)
    if inspect.isclass(obj):
        members = {}
        for m in dir(obj):
            if m.startswith("__") and m != "__init__":
                continue
            try:
                attr = inspect.getattr_static(obj, m)
            except AttributeError:
                continue
            val = getattr(obj, m, None)
            if isinstance(attr, property):
                members[m] = {"kind": "property", "writable": attr.fset is not None}
            elif callable(val) and not isinstance(val, type(obj)) and not inspect.isclass(val):
                members[m] = {"kind": "method", "signatures": sigs(val, m)}
            elif inspect.isclass(val):
                members[m] = {"kind": "class", "name": val.__name__}
            else:
                members[m] = {"kind": "value", "int": int(val) if hasattr(val, "__int__") else None}
        enum = getattr(obj, "__members__", None)
        api["classes"][cname] = {
            "members": members,
            "enum": {k: int(v) for k, v in enum.items()} if isinstance(enum, dict) else None}
    elif callable(obj):
        api["functions"][cname] = sigs(obj, cname)
json.dump(api, sys.stdout)
"""


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "segnet-toolkit" / "trt-bindings"


def bindings_dir(major: int) -> Path:
    """A ``pip install --target`` folder holding tensorrt_bindings of that major: env var, else the cache."""
    env = os.environ.get(f"TOOLKIT_TRT_BINDINGS_{major}")
    return Path(env) if env else cache_root() / VERSIONS[major]


def install_bindings(major: int, target: Path) -> str | None:
    """``pip install --target`` the wheel (no deps); None when done, else why not (one line)."""
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check",
           "--retries", "0", "--timeout", "10", "--target", str(target), f"{WHEEL}=={VERSIONS[major]}"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"pip failed to run: {e}"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return f"`pip install {WHEEL}=={VERSIONS[major]}` failed: {last}"
    return None


def ensure_bindings(major: int) -> tuple[Path | None, str]:
    """The bindings folder of ``major`` (installing it into the cache if absent), or None and the reason."""
    d = bindings_dir(major)
    if (d / "tensorrt_bindings" / "__init__.py").is_file():
        return d, ""
    if os.environ.get(f"TOOLKIT_TRT_BINDINGS_{major}"):
        return None, f"TOOLKIT_TRT_BINDINGS_{major}={d} holds no tensorrt_bindings package"
    tmp = d.with_name(f"{d.name}.tmp{os.getpid()}")  # installed aside, then renamed: a half install is never used
    why = install_bindings(major, tmp)
    if why is None and (tmp / "tensorrt_bindings" / "__init__.py").is_file():
        try:
            tmp.replace(d)
        except OSError:  # another process put it there first
            shutil.rmtree(tmp, ignore_errors=True)
        if (d / "tensorrt_bindings" / "__init__.py").is_file():
            return d, ""
    shutil.rmtree(tmp, ignore_errors=True)
    return None, why or f"{WHEEL}=={VERSIONS[major]} installed no tensorrt_bindings package"


def build_stubs(major: int, out: Path) -> Path:
    """Compile the stand-in libnvinfer/libnvonnxparser/libnvinfer_plugin ``.so.<major>`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    src = out / "stub.c"
    src.write_text(STUB_C)
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise RuntimeError("no C compiler (gcc/cc) to build the stand-in TensorRT libraries")
    first = out / f"{STUB_LIBS[0]}.so.{major}"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(first), str(src)], check=True, capture_output=True)
    for lib in STUB_LIBS[1:]:
        shutil.copyfile(first, out / f"{lib}.so.{major}")
    return out


def run_with_bindings(code: str, bindings: Path, libdir: Path | None,
                      extra_path: str = "") -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python that sees the bindings (and the stand-in libraries, unless None)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(bindings), extra_path) if p)
    env.pop("LD_LIBRARY_PATH", None)
    if libdir is not None:
        env["LD_LIBRARY_PATH"] = str(libdir)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def dump_api(bindings: Path, libdir: Path) -> dict:
    r = run_with_bindings(_DUMP, bindings, libdir)
    if r.returncode != 0:
        raise RuntimeError(f"importing tensorrt_bindings from {bindings} failed: {r.stderr.strip()[-2000:]}")
    return json.loads(r.stdout)


# ---- signatures --------------------------------------------------------------------------------------------------


@dataclass
class Param:
    name: str
    has_default: bool


@dataclass
class Signature:
    text: str
    params: list[Param] = field(default_factory=list)  # without self
    varargs: bool = False

    def accepts(self, npos: int, kwnames: tuple[str, ...]) -> bool:
        """Whether a call with ``npos`` positional args and these keyword names binds to this signature."""
        if self.varargs:
            return True
        if npos > len(self.params):
            return False
        names = [p.name for p in self.params]
        if any(k not in names[npos:] for k in kwnames):
            return False
        return all(p.has_default or i < npos or p.name in kwnames for i, p in enumerate(self.params))


def _split_top(s: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts]


def parse_signature(line: str) -> Signature:
    """``name(self: X, flags: int = 0) -> Y`` (pybind11) into its parameters, self left out."""
    m = re.match(r"^\w+\((.*)\)(\s*->.*)?$", line)
    if m is None:
        return Signature(line, varargs=True)
    params = []
    for part in _split_top(m.group(1)):
        name = part.split(":")[0].split("=")[0].strip()
        if name in ("self", "/", "*"):
            continue
        if name.startswith("*"):
            return Signature(line, varargs=True)
        params.append(Param(name, "=" in part))
    return Signature(line, params)
