"""Mutation testing of the core modules with mutmut 3: does the suite notice a small bug in each function?

Why a script: a whole-suite mutmut run over ``toolkit/`` would take days on a shared 2-core machine, so each
core module is mutated on its own, against only the few test files that cover it (``MODULES``), in a scratch
copy of the repository (the worktree is never touched). mutmut forks each mutant from one warm pytest
process, so torch is imported once per module, not once per mutant.

Usage (one command; ``nice`` it on a shared machine; not in CI: see docs/MUTATION.md for the time it takes):
    nice -n 19 python tools/mutation.py                    # every module in MODULES
    nice -n 19 python tools/mutation.py files metrics      # only these
    python tools/mutation.py --list                        # the module -> tests map
It writes ``<work>/<name>/survivors.txt`` (each surviving mutant's diff) and prints one score line per module.
Needs ``pip install mutmut==3.8.1`` (the ``mutation`` extra in pyproject.toml).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module name -> (file to mutate, tests that cover it: files or pytest node ids). Keep each test list to the
# files a bug in the module must fail: the run time grows with (mutants x tests).
MODULES: dict[str, tuple[str, list[str]]] = {
    "files": ("toolkit/files.py", ["tests/test_files.py", "tests/test_files_keep_previous.py"]),
    "metrics": ("toolkit/metrics.py", ["tests/test_metrics.py", "tests/test_metrics_edges.py"]),
    "unpool": ("toolkit/models/unpool.py", ["tests/models/test_unpool.py"]),
    "losses": ("train/losses.py", ["tests/train/test_losses.py",
                                   # the recipe file's loss tests only: its training runs take minutes
                                   *(f"tests/train/test_recipe.py::{t}" for t in (
                                       "test_enet_weights_are_one_over_log_of_c_plus_share",
                                       "test_class_weights_scale_only_the_positive_term",
                                       "test_hard_pixel_mining_averages_the_hardest_share"))]),
    "drift": ("toolkit/compare/drift.py", ["tests/compare/test_drift.py", "tests/compare/test_drift_reference.py"]),
    "comparator": ("toolkit/compare/comparator.py", ["tests/compare/test_parity.py"]),
    "results": ("toolkit/compare/results.py", ["tests/compare/test_parity.py"]),
    "evaluate": ("toolkit/evaluate.py", ["tests/test_evaluate.py",
                                         # class_map_at_size (the server's bounded-memory argmax); evaluate_model
                                         "tests/serve/test_limits.py::"
                                         "test_class_map_agrees_with_full_logits_argmax_but_at_rounding_ties",
                                         "tests/test_tta.py::test_single_scale_tta_scores_as_plain_eval"]),
    "quant-int8": ("toolkit/quant/int8.py", ["tests/quant/test_quant.py"]),
    "quant-calibration": ("toolkit/quant/calibration.py", ["tests/quant/test_quant.py"]),
    "pipeline": ("toolkit/video/pipeline.py", ["tests/video/test_pipeline.py", "tests/video/test_pipeline_order.py"]),
    # reported only: the TensorRT fake that kills these is another issue's work (issue 29, TRT part)
    "trt-runner": ("toolkit/backend/trt/runner.py", ["tests/backend/trt/test_trt_fake.py"]),
    "trt-sidecar": ("toolkit/backend/trt/sidecar.py", ["tests/backend/trt/test_sidecar.py"]),
}

# top-level folders whose import name differs from the folder's (setup.py: package_dir)
INSTALLED = {"train": "segnet_train"}


def installed_path(path: str) -> str:
    """``train/losses.py`` -> ``segnet_train/losses.py``: where the file sits in the scratch copy."""
    top, _, rest = path.partition("/")
    return f"{INSTALLED.get(top, top)}/{rest}"


def scratch_copy(dest: Path, target: str, tests: list[str]) -> None:
    """The package, the tests and a pyproject.toml whose [tool.mutmut] names one module and its tests."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    # train/ goes in under its installed name: the tests import ``segnet_train``, which would otherwise resolve
    # (through the editable install) to the unmutated checkout, and mutmut matches a mutant to the module name
    for folder, name in (("toolkit", "toolkit"), ("train", INSTALLED["train"]), ("tests", "tests")):
        shutil.copytree(ROOT / folder, dest / name, ignore=ignore)
    text = (ROOT / "pyproject.toml").read_text()
    text = re.sub(r"(?ms)^\[tool\.mutmut\].*?(?=^\[|\Z)", "", text)
    test_args = ", ".join(f'"{t}"' for t in tests)
    text += ("\n[tool.mutmut]\n"
             f'source_paths = ["toolkit", "{INSTALLED["train"]}"]\n'
             f'only_mutate = ["{installed_path(target)}"]\n'
             f"pytest_add_cli_args_test_selection = [{test_args}]\n"
             'pytest_add_cli_args = ["-p", "no:cacheprovider", "-x", "-q"]\n'
             "use_git_change_detection = false\n")
    (dest / "pyproject.toml").write_text(text)


def run_module(name: str, work: Path, jobs: int) -> tuple[str, float]:
    target, tests = MODULES[name]
    dest = work / name
    scratch_copy(dest, target, [t for t in tests if (ROOT / t.partition("::")[0]).exists()])
    # one thread per process: mutmut forks each mutant from a process that has imported torch, and a forked
    # child waits forever on the parent's OpenMP pool (every unpool mutant timed out before this)
    env = dict(os.environ, PYTHONPATH=str(dest), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               TOOLKIT_CAMVID=os.environ.get("TOOLKIT_CAMVID", str(ROOT.parent / "shared" / "camvid")))
    mutmut = [sys.executable, "-m", "mutmut"]
    t = time.perf_counter()
    log = dest / "mutmut.log"
    with open(log, "w") as f:
        subprocess.run([*mutmut, "run", "--max-children", str(jobs)], cwd=dest, env=env, stdout=f,
                       stderr=subprocess.STDOUT, check=False)
    took = time.perf_counter() - t
    out = subprocess.run([*mutmut, "results", "--all", "true"], cwd=dest, env=env, capture_output=True,
                         text=True, check=False).stdout
    status = dict(re.findall(r"^\s*(\S+): (\w[\w ]*)$", out, re.M))
    counts: dict[str, int] = {}
    for s in status.values():
        counts[s] = counts.get(s, 0) + 1
    survivors = [m for m, s in status.items() if s in ("survived", "no tests")]
    # the diffs in one process (mutmut 3.8's own function): `mutmut show` per survivor paid the start-up each
    # time, minutes for a module with 90 survivors
    script = ("import sys\nfrom mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant\n"
              "for m in sys.argv[1:]:\n    print(get_diff_for_mutant(m, path=find_mutant(m).path))\n"
              "    print('\\x00', flush=True)\n")
    diffs = subprocess.run([sys.executable, "-c", script, *survivors], cwd=dest, env=env, capture_output=True,
                           text=True, check=False).stdout.split("\x00\n") if survivors else []
    with open(dest / "survivors.txt", "w") as f:
        for i, m in enumerate(survivors):
            diff = diffs[i] if i < len(diffs) else ""
            if not diff.strip():  # another mutmut version: one `mutmut show` each
                diff = subprocess.run([*mutmut, "show", m], cwd=dest, env=env, capture_output=True, text=True,
                                      check=False).stdout
            f.write(f"## {m} ({status[m]})\n{diff}\n")
    total = len(status)
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    score = f"{100 * killed / total:.1f}%" if total else "n/a"
    line = (f"{name:18s} {target:34s} mutants {total:4d}  killed {killed:4d}  score {score:>6s}  "
            + "  ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k not in ("killed", "timeout"))
            + f"  ({took:.0f} s; {dest / 'survivors.txt'})")
    return line, took


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("modules", nargs="*", help=f"names from: {', '.join(MODULES)} (default: all)")
    p.add_argument("--work", type=Path, default=Path("/tmp/toolkit-mutation"), help="scratch folder")
    p.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1: a shared machine)")
    p.add_argument("--list", action="store_true", help="print the module -> tests map and exit")
    a = p.parse_args(argv)
    if a.list:
        for name, (target, tests) in MODULES.items():
            print(f"{name:18s} {target:34s} {' '.join(tests)}")
        return 0
    unknown = [m for m in a.modules if m not in MODULES]
    if unknown:
        print(f"error: unknown module {', '.join(unknown)}; expected one of {', '.join(MODULES)}", file=sys.stderr)
        return 2
    try:
        import mutmut  # noqa: F401
    except ImportError:
        print("error: mutmut is not installed; pip install mutmut==3.8.1", file=sys.stderr)
        return 2
    total = 0.0
    for name in a.modules or list(MODULES):
        line, took = run_module(name, a.work, a.jobs)
        total += took
        print(line, flush=True)
    print(f"total {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
