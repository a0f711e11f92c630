"""Plugin library: discovery order, TensorRT header discovery, the CMake build driver, registry loading, and the
names shared between the Python exporter and the C++ plugin."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from toolkit.backend.trt import plugin_lib as pl
from toolkit.core import names as unpool
from toolkit.errors import PluginLibraryError

HEADER = pl.ENGINES_DIR / "unpool" / "unpoolPlugin.h"


def _lib(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x7fELF")
    return path


def test_constants_match_plugin_header() -> None:
    if not HEADER.is_file():
        pytest.skip(f"{HEADER} not present (the C++ plugin is not in this checkout)")
    text = HEADER.read_text()

    def const(name: str) -> str:
        m = re.search(rf'constexpr\s+char\s+const\s*\*\s*{name}\s*=\s*"([^"]*)"', text)
        assert m, f"{name} not found in {HEADER}"
        return m.group(1)

    assert const("kMASK_UNPOOL_PLUGIN_NAME") == unpool.PLUGIN_OP_TYPE
    assert const("kMASK_UNPOOL_PLUGIN_VERSION") == unpool.PLUGIN_VERSION
    assert const("kMASK_UNPOOL_PLUGIN_NAMESPACE") == unpool.PLUGIN_NAMESPACE
    assert const("kMASK_UNPOOL_ONNX_DOMAIN") == unpool.PLUGIN_DOMAIN
    assert const("kSEGNET_PLUGIN_LIBRARY_NAME") == pl.LIBRARY_NAME


def test_discovery_order(tmp_path: Path) -> None:
    explicit, env_lib, default = (_lib(tmp_path / d / pl.LIBRARY_NAME) for d in ("a", "b", "c"))
    env = {pl.ENV_PLUGIN_LIB: str(env_lib)}
    assert pl.find_plugin_library(explicit, env=env, candidates=[default]) == explicit.resolve()
    assert pl.find_plugin_library(explicit.parent, env=env) == explicit.resolve()  # a folder holding the library
    assert pl.find_plugin_library(None, env=env, candidates=[default]) == env_lib.resolve()
    assert pl.find_plugin_library(None, env={}, candidates=[tmp_path / "none.so", default]) == default.resolve()
    assert pl.find_plugin_library(None, env={}, candidates=[tmp_path / "none.so"]) is None


def test_discovery_errors(tmp_path: Path) -> None:
    with pytest.raises(PluginLibraryError, match="--plugin .*no such file.*toolkit build-plugin"):
        pl.find_plugin_library(tmp_path / "missing.so", env={})
    with pytest.raises(PluginLibraryError, match="SEGNET_PLUGIN_LIB=.*no such file"):
        pl.find_plugin_library(None, env={pl.ENV_PLUGIN_LIB: str(tmp_path / "gone.so")})


def _fake_trt_root(root: Path, version_style: str = "11") -> Path:
    inc = root / "include"
    inc.mkdir(parents=True)
    (inc / "NvInfer.h").write_text("// fake\n")
    if version_style == "11":
        text = "#define TRT_MAJOR_ENTERPRISE 11\n#define TRT_MINOR_ENTERPRISE 1\n#define TRT_PATCH_ENTERPRISE 0\n"
    else:
        text = "#define NV_TENSORRT_MAJOR 10\n#define NV_TENSORRT_MINOR 3\n#define NV_TENSORRT_PATCH 0\n"
    (inc / "NvInferVersion.h").write_text(text)
    return root


def test_find_headers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pl, "_pip_tensorrt_dirs", lambda: [])
    monkeypatch.setattr(pl, "STANDARD_TRT_ROOTS", ())
    monkeypatch.setattr(pl, "STANDARD_INCLUDE_DIRS", ())
    r11, r10 = _fake_trt_root(tmp_path / "trt11"), _fake_trt_root(tmp_path / "trt10", "10")
    h = pl.find_tensorrt_headers(r11, env={})
    assert (h.root, h.include_dir, h.version) == (r11, r11 / "include", "11.1.0")
    assert pl.find_tensorrt_headers(None, env={"TENSORRT_ROOT": str(r10)}).version == "10.3.0"
    monkeypatch.setattr(pl, "_pip_tensorrt_dirs", lambda: [r10])
    assert pl.find_tensorrt_headers(None, env={}).root == r10
    with pytest.raises(PluginLibraryError, match="--tensorrt-root .*no include/NvInfer.h"):
        pl.find_tensorrt_headers(tmp_path / "empty", env={})


def test_headers_not_found_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pl, "_pip_tensorrt_dirs", lambda: [])
    monkeypatch.setattr(pl, "STANDARD_TRT_ROOTS", (str(tmp_path / "usr"),))
    monkeypatch.setattr(pl, "STANDARD_INCLUDE_DIRS", (str(tmp_path / "inc"),))
    with pytest.raises(PluginLibraryError) as e:
        pl.find_tensorrt_headers(None, env={"TENSORRT_ROOT": str(tmp_path / "nowhere")})
    msg = str(e.value)
    assert "NvInfer.h" in msg and "nowhere (TENSORRT_ROOT)" in msg and "libnvinfer-dev" in msg
    assert "--tensorrt-root" in msg and "\n" not in msg


def test_build_tools_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pl.shutil, "which", lambda name: None)
    with pytest.raises(PluginLibraryError, match="cmake not found"):
        pl.check_build_tools(env={})
    monkeypatch.setattr(pl.shutil, "which", lambda name: "/usr/bin/cmake" if name == "cmake" else None)
    monkeypatch.setattr(pl, "cmake_version", lambda cmake: (3, 25, 1))
    monkeypatch.setattr(pl.Path, "is_file", lambda self: False)
    with pytest.raises(PluginLibraryError, match="nvcc .* not found"):
        pl.check_build_tools(env={})


class FakeRun:
    """Records the cmake commands; the build step 'produces' the library."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_at = fail_at

    def __call__(self, args: list[str], **kwargs: object) -> SimpleNamespace:
        self.calls.append(args)
        if self.fail_at == len(self.calls):
            return SimpleNamespace(returncode=1, stdout="-- Configuring\n", stderr="CMake Error: nvcc fatal\n")
        if "--build" in args:
            _lib(Path(args[args.index("--build") + 1]) / pl.LIBRARY_NAME)
        return SimpleNamespace(returncode=0, stdout="", stderr="")


def test_build_plugin_drives_cmake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pl, "check_build_tools", lambda env=None: ("cmake", Path("/opt/cuda/bin/nvcc")))
    root = _fake_trt_root(tmp_path / "trt")
    src = tmp_path / "engines"
    src.mkdir()
    (src / "CMakeLists.txt").write_text("project(x)\n")
    run = FakeRun()
    lib = pl.build_plugin(root, tmp_path / "build", cuda_archs="86,89", jobs=3, source_dir=src, run=run)
    assert lib == tmp_path / "build" / pl.LIBRARY_NAME and lib.is_file()
    configure, build = run.calls
    assert configure[:5] == ["cmake", "-S", str(src), "-B", str(tmp_path / "build")]
    assert f"-DTENSORRT_ROOT={root}" in configure and "-DCMAKE_CUDA_ARCHITECTURES=86;89" in configure
    assert "-DCMAKE_CUDA_COMPILER=/opt/cuda/bin/nvcc" in configure
    assert build == ["cmake", "--build", str(tmp_path / "build"), "-j", "3"]
    with pytest.raises(PluginLibraryError, match=r"(?s)failed \(exit 1\):\n.*nvcc fatal"):
        pl.build_plugin(root, tmp_path / "b2", source_dir=src, run=FakeRun(fail_at=1))
    with pytest.raises(PluginLibraryError, match="--cuda-arch sm_86"):
        pl.build_plugin(root, tmp_path / "b3", cuda_archs="sm_86", source_dir=src, run=FakeRun())
    with pytest.raises(PluginLibraryError, match="source checkout"):
        pl.build_plugin(root, tmp_path / "b4", source_dir=tmp_path / "nope", run=FakeRun())
    old = _fake_trt_root(tmp_path / "trt8", "10")
    (old / "include" / "NvInferVersion.h").write_text("#define NV_TENSORRT_MAJOR 8\n")
    with pytest.raises(PluginLibraryError, match="needs TensorRT >= 10"):
        pl.build_plugin(old, tmp_path / "b5", source_dir=src, run=FakeRun())


class FakeRegistry:
    def __init__(self, handle: object = "handle", creator: object = "creator") -> None:
        self.handle, self.creator, self.loads = handle, creator, 0

    def load_library(self, path: str) -> object:
        self.loads += 1
        return self.handle

    def get_creator(self, name: str, version: str, namespace: str) -> object:
        assert (name, version, namespace) == (unpool.PLUGIN_OP_TYPE, unpool.PLUGIN_VERSION, unpool.PLUGIN_NAMESPACE)
        return self.creator


def test_load_plugin_library_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pl, "_LOADED", {})
    lib = _lib(tmp_path / pl.LIBRARY_NAME)
    reg = FakeRegistry()
    trt = SimpleNamespace(get_plugin_registry=lambda: reg)
    assert pl.load_plugin_library(trt, lib) == "handle"
    assert pl.load_plugin_library(trt, lib) == "handle" and reg.loads == 1  # a second loadLibrary would fail
    for bad, fragment in ((FakeRegistry(handle=None), "could not load"),
                          (FakeRegistry(creator=None), "registers no SegNetMaskUnpool")):
        monkeypatch.setattr(pl, "_LOADED", {})
        with pytest.raises(PluginLibraryError, match=fragment):
            pl.load_plugin_library(SimpleNamespace(get_plugin_registry=lambda b=bad: b), lib)


def _real_trt_headers() -> Path | None:
    for cand in (os.environ.get("TENSORRT_ROOT"), "/usr", "/usr/local/TensorRT", "/opt/tensorrt"):
        if cand and (Path(cand) / "include" / "NvInfer.h").is_file():
            return Path(cand)
    return None


@pytest.mark.slow
def test_build_plugin_for_real(tmp_path: Path) -> None:
    """Compiles engines/ with CMake + nvcc for one architecture against real TensorRT headers (TENSORRT_ROOT)."""
    root = _real_trt_headers()
    if shutil.which("cmake") is None or pl.find_nvcc() is None or root is None or not HEADER.is_file():
        pytest.skip("needs cmake, nvcc, TensorRT headers (set TENSORRT_ROOT) and engines/")
    lib = pl.build_plugin(root, tmp_path / "build", cuda_archs="80", jobs=2)
    syms = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True).stdout
    assert "getCreators" in syms and "setLoggerFinder" in syms
