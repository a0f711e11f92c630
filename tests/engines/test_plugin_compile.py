"""Compile checks of the SegNetMaskUnpool TensorRT plugin (engines/) without a GPU or TensorRT libraries.

* constants in unpoolPlugin.h == "SegNetMaskUnpool" / "1" and == engines/unpool/README.md
* nvcc -c of the CUDA kernel
* g++ -c of the plugin sources against TensorRT headers (TENSORRT_INCLUDE_DIR / TENSORRT_ROOT / standard paths)
* link of libsegnet_plugins.so (no libnvinfer needed) and its exported entry points
* run of engines/tests/unpool_plugin_host_test.cpp: the plugin driven through getCreators(), like loadLibrary() does
* optional cmake configure + build (one architecture) when cmake is available
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINES_DIR = REPO_ROOT / "engines"
UNPOOL_DIR = ENGINES_DIR / "unpool"

EXPECTED_NAME = "SegNetMaskUnpool"
EXPECTED_VERSION = "1"
EXPECTED_NAMESPACE = ""
EXPECTED_DOMAIN = "trt.plugins"
EXPECTED_LIBRARY = "libsegnet_plugins.so"

PLUGIN_CPP_SOURCES = (
    ENGINES_DIR / "unpool" / "unpoolPlugin.cpp",
    ENGINES_DIR / "common" / "segnetPluginCommon.cpp",
    ENGINES_DIR / "api" / "segnetPluginApi.cpp",
)


def header_constants() -> dict[str, str]:
    text = (UNPOOL_DIR / "unpoolPlugin.h").read_text()
    return dict(re.findall(r'constexpr\s+char\s+const\s*\*\s*(k\w+)\s*=\s*"([^"]*)"\s*;', text))


def readme_contract() -> dict[str, str]:
    """Rows of the contract table in engines/unpool/README.md: | key | `value` |"""
    text = (UNPOOL_DIR / "README.md").read_text()
    rows = re.findall(r"^\|\s*([^|`]+?)\s*\|\s*`([^`]*)`\s*\|", text, flags=re.MULTILINE)
    return {key.strip(): value for key, value in rows}


# ---------------------------------------------------------------------------------------------------------------------
# Constants (no tools needed)
# ---------------------------------------------------------------------------------------------------------------------

def test_header_constants():
    consts = header_constants()
    assert consts["kMASK_UNPOOL_PLUGIN_NAME"] == EXPECTED_NAME
    assert consts["kMASK_UNPOOL_PLUGIN_VERSION"] == EXPECTED_VERSION
    assert consts["kMASK_UNPOOL_PLUGIN_NAMESPACE"] == EXPECTED_NAMESPACE
    assert consts["kMASK_UNPOOL_ONNX_DOMAIN"] == EXPECTED_DOMAIN
    assert consts["kSEGNET_PLUGIN_LIBRARY_NAME"] == EXPECTED_LIBRARY


def test_readme_matches_header_constants():
    consts = header_constants()
    table = readme_contract()
    assert table["plugin name / ONNX op_type"] == consts["kMASK_UNPOOL_PLUGIN_NAME"]
    assert table["plugin version"] == consts["kMASK_UNPOOL_PLUGIN_VERSION"]
    assert table["plugin namespace"] == consts["kMASK_UNPOOL_PLUGIN_NAMESPACE"]
    assert table["ONNX node domain"] == consts["kMASK_UNPOOL_ONNX_DOMAIN"]
    assert table["shared library"] == consts["kSEGNET_PLUGIN_LIBRARY_NAME"]


def test_cmake_lists_sources_explicitly():
    """Every source of the folder is listed in its CMakeLists.txt (no globbing) and the library name is right."""
    listed = (UNPOOL_DIR / "CMakeLists.txt").read_text()
    for name in ("unpoolKernel.cu", "unpoolKernel.h", "unpoolPlugin.cpp", "unpoolPlugin.h", "unpoolWindow.h"):
        assert name in listed
    top = (ENGINES_DIR / "CMakeLists.txt").read_text()
    for cmake_file in ENGINES_DIR.rglob("CMakeLists.txt"):
        assert not re.search(r"file\s*\(\s*GLOB", cmake_file.read_text(), flags=re.IGNORECASE), cmake_file
    assert "add_subdirectory(${plugin_dir})" in top and re.search(r"SEGNET_PLUGIN_DIRS\s+unpool", top)
    assert "OUTPUT_NAME segnet_plugins" in top


# ---------------------------------------------------------------------------------------------------------------------
# Compilation
# ---------------------------------------------------------------------------------------------------------------------

def test_kernel_compiles_with_nvcc(nvcc, kernel_object, run):
    assert kernel_object.is_file() and kernel_object.stat().st_size > 0
    version = run([nvcc, "--version"]).stdout.strip().splitlines()[-2:]
    print("nvcc:", " | ".join(version))


@pytest.fixture(scope="module")
def plugin_objects(cxx, trt_include, cuda_include, build_dir, run, trt_version_of) -> list[Path]:
    print(f"TensorRT headers {trt_version_of(trt_include)} from {trt_include}")
    objects = []
    for src in PLUGIN_CPP_SOURCES:
        obj = build_dir / (src.stem + ".o")
        run([
            cxx, "-std=c++17", "-c", str(src), "-o", str(obj), "-O2", "-fPIC", "-fvisibility=hidden",
            "-fvisibility-inlines-hidden", "-Wall", "-Wextra", "-Werror",
            "-I", str(ENGINES_DIR), "-isystem", str(trt_include), "-isystem", str(cuda_include),
        ])
        objects.append(obj)
    return objects


def test_plugin_sources_compile_against_trt_headers(plugin_objects):
    assert all(obj.is_file() and obj.stat().st_size > 0 for obj in plugin_objects)


@pytest.fixture(scope="module")
def plugin_library(cxx, plugin_objects, kernel_object, cudart_static_dir, build_dir, run) -> Path:
    lib = build_dir / EXPECTED_LIBRARY
    # --no-undefined without -lnvinfer: the library only implements TensorRT interfaces.
    run([
        cxx, "-shared", "-o", str(lib), *map(str, plugin_objects), str(kernel_object),
        "-L", str(cudart_static_dir), "-lcudart_static", "-ldl", "-lpthread", "-lrt",
        "-Wl,--no-undefined", "-Wl,-z,relro", "-Wl,-Bsymbolic",
    ])
    return lib


def test_library_exports_loadlibrary_entry_points(plugin_library, run):
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm not found")
    out = run([nm, "-D", "--defined-only", str(plugin_library)]).stdout
    exported = {line.split()[-1] for line in out.splitlines() if re.search(r"\s[TD]\s", line)}
    assert {"getCreators", "setLoggerFinder"} <= exported
    assert "getPluginCreators" not in exported
    # Hidden visibility: no C++ plugin symbols leak out of the library.
    assert not [s for s in exported if "segnet" in s.lower()]


def test_plugin_host_behaviour(cxx, trt_include, cuda_include, cudart_static_dir, plugin_library, build_dir, run):
    exe = build_dir / "unpool_plugin_host_test"
    run([
        cxx, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror",
        str(ENGINES_DIR / "tests" / "unpool_plugin_host_test.cpp"),
        "-o", str(exe), "-I", str(ENGINES_DIR), "-isystem", str(trt_include), "-isystem", str(cuda_include),
        "-L", str(cudart_static_dir), "-lcudart_static", "-ldl", "-lpthread", "-lrt",
    ])
    result = run([str(exe), str(plugin_library)], timeout=120)
    print(result.stdout)
    assert ", 0 failures" in result.stdout


def test_cmake_configure_and_build(trt_include, nvcc, build_dir, run):
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake not found")
    if not (trt_include / "NvInferVersion.h").is_file():
        pytest.skip("NvInferVersion.h missing next to NvInfer.h")
    fake_root = build_dir / "trt_root"
    if not (fake_root / "include").exists():
        fake_root.mkdir()
        (fake_root / "include").symlink_to(trt_include, target_is_directory=True)
    bdir = build_dir / "cmake_build"
    run([
        cmake, "-S", str(ENGINES_DIR), "-B", str(bdir), f"-DTENSORRT_ROOT={fake_root}",
        f"-DCMAKE_CUDA_COMPILER={nvcc}", "-DCMAKE_CUDA_ARCHITECTURES=75", "-DCMAKE_BUILD_TYPE=Release",
    ], timeout=180)
    run([cmake, "--build", str(bdir), "-j", "8"], timeout=300)
    assert (bdir / EXPECTED_LIBRARY).is_file()
