"""Mutation testing of the core modules with mutmut 3: does the suite notice a small bug in each function?

Why a script: a whole-suite mutmut run over ``toolkit/`` would take days on a shared 2-core machine, so each
core module is mutated on its own, against only the few test files that cover it (``MODULES``), in a scratch
copy of the repository (the worktree is never touched). mutmut forks each mutant from one warm pytest
process, so torch is imported once per module, not once per mutant.

Usage (one command; ``nice`` it on a shared machine; not in CI: see docs/MUTATION.md for the time it takes):
    nice -n 19 python tools/mutation.py                    # every module in MODULES
    nice -n 19 python tools/mutation.py files metrics      # only these
    nice -n 19 python tools/mutation.py pipeline --max-minutes 20   # a capped run: the rest "not checked"
    python tools/mutation.py --list                        # the module -> tests map
It writes ``<work>/<name>/survivors.txt`` (each surviving mutant's diff) and prints one score line per module.
Needs ``pip install mutmut==3.8.1`` (the ``mutation`` extra in pyproject.toml).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module name -> (file to mutate, tests that cover it: files or pytest node ids). Keep each test list to the
# files a bug in the module must fail: the run time grows with (mutants x tests).
MODULES: dict[str, tuple[str, list[str]]] = {
    "files": ("toolkit/files.py", ["tests/test_files.py", "tests/test_files_keep_previous.py",
                                "tests/test_files_units.py"]),
    "metrics": ("toolkit/metrics.py", ["tests/test_metrics.py", "tests/test_metrics_edges.py"]),
    "unpool": ("toolkit/models/unpool.py", ["tests/models/test_unpool.py"]),
    "losses": ("train/losses.py", ["tests/train/test_losses.py",
                                   # the recipe file's loss tests only: its training runs take minutes
                                   *(f"tests/train/test_recipe.py::{t}" for t in (
                                       "test_enet_weights_are_one_over_log_of_c_plus_share",
                                       "test_class_weights_scale_only_the_positive_term",
                                       "test_hard_pixel_mining_averages_the_hardest_share"))]),
    "drift": ("toolkit/compare/drift.py", ["tests/compare/test_drift.py", "tests/compare/test_drift_reference.py",
                                           "tests/compare/test_drift_summary.py"]),
    "temporal": ("toolkit/compare/temporal.py", ["tests/compare/test_temporal.py",
                                                 "tests/compare/test_temporal_summary.py"]),
    # fake runners and tiny models (seconds): test_parity.py exports real models (~15 s), too slow per mutant here
    "comparator": ("toolkit/compare/comparator.py", ["tests/compare/test_comparator_unit.py",
                                                     "tests/compare/test_comparator_files.py"]),
    "results": ("toolkit/compare/results.py", ["tests/compare/test_results_unit.py"]),
    # hand-written five-node graphs (milliseconds): test_layers.py exports the real SegNet (~10 s)
    "layers": ("toolkit/compare/layers.py", ["tests/compare/test_layers_unit.py"]),
    "spot-check": ("toolkit/compare/spot_check.py", ["tests/compare/test_spot_check.py"]),
    "html": ("toolkit/compare/html.py", ["tests/compare/test_html.py", "tests/compare/test_html_content.py"]),
    "evaluate": ("toolkit/evaluate.py", ["tests/test_evaluate.py", "tests/test_evaluate_units.py",
                                         # class_map_at_size (the server's bounded-memory argmax); evaluate_model
                                         "tests/serve/test_limits.py::"
                                         "test_class_map_agrees_with_full_logits_argmax_but_at_rounding_ties",
                                         "tests/test_tta.py::test_single_scale_tta_scores_as_plain_eval"]),
    # the hand-built-graph tests only: test_quant.py exports the tiny SegNet (~13 s per pytest process)
    "quant-int8": ("toolkit/quant/int8.py", ["tests/quant/test_int8_units.py"]),
    "quant-calibration": ("toolkit/quant/calibration.py", ["tests/quant/test_calibration_units.py",
                                                           "tests/quant/test_int8_units.py"]),
    "quant-fp16": ("toolkit/quant/fp16.py", ["tests/quant/test_fp16_units.py"]),
    # a fake evaluation (drift from the layers kept): test_planner.py runs `toolkit quantize --budget` end to end
    "quant-planner": ("toolkit/quant/planner.py", ["tests/quant/test_planner_units.py"]),
    # quantize_planned with its pieces faked (Planner, quantize_file, run_once, write_planned, bench_plan)
    "quant-plan-file": ("toolkit/quant/plan_file.py", ["tests/quant/test_plan_file_units.py"]),
    # the one test that runs the pass (bit-identical logits, the codes' roles); ~13 s per mutant (its fixtures export
    # and calibrate the tiny model in each forked child)
    "quant-mask-codes": ("toolkit/quant/mask_codes.py",
                         ["tests/quant/test_quant.py::test_cpu_int8_unpools_on_codes_bit_identically",
                          "tests/quant/test_mask_codes_units.py"]),
    # fast unit tests first (no video, no thread left hanging): they kill most mutants before an end-to-end test
    # can block on a broken queue; the order test holds the planted bug (frames in completion order)
    "pipeline": ("toolkit/video/pipeline.py", ["tests/video/test_pipeline_units.py",
                                               "tests/video/test_pipeline_run_units.py",
                                               "tests/video/test_pipeline_order.py", "tests/video/test_pipeline.py"]),
    # the fake with TensorRT's semantics (queued copies, copy direction, dtypes, enqueue before capture)
    "trt-runner": ("toolkit/backend/trt/runner.py", ["tests/backend/trt/test_trt_fake.py",
                                                     "tests/backend/trt/test_trt_fake_semantics.py",
                                                     "tests/backend/trt/test_trt_runner_contract.py"]),
    "trt-sidecar": ("toolkit/backend/trt/sidecar.py", ["tests/backend/trt/test_sidecar.py",
                                                       "tests/backend/trt/test_sidecar_fields.py",
                                                       "tests/backend/trt/test_trt_fake.py"]),
}

# mutmut's wall-clock limit per mutant is (tests' time + 1 s) x 15 (its default): ~1 min for each pipeline mutant
# that blocks a queue forever. 5 still leaves a clean run 5x its measured time; a timeout counts as killed.
TIMEOUT_MULTIPLIER = {"pipeline": 5.0}

# the tests run in the map's order (mutmut passes them as a set: any order), so with -x a fast test listed first
# kills a mutant before a slow or blocking one starts; a conftest.py at the scratch copy's root sorts them
_ORDER_CONFTEST = """
ORDER = {order!r}


def _rank(nodeid):
    for i, t in enumerate(ORDER):
        if nodeid == t or nodeid.startswith(t + ("[" if "::" in t else "::")):
            return i
    return len(ORDER)


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: _rank(item.nodeid))
"""

# top-level folders whose import name differs from the folder's (setup.py: package_dir)
INSTALLED = {"train": "segnet_train"}


def installed_path(path: str) -> str:
    """``train/losses.py`` -> ``segnet_train/losses.py``: where the file sits in the scratch copy."""
    top, _, rest = path.partition("/")
    return f"{INSTALLED.get(top, top)}/{rest}"


_SEP = "\n@@mutant@@\n"
_SHOW = f"""
import sys
from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant
path = find_mutant(sys.argv[1]).path
for name in sys.argv[1:]:
    print({_SEP!r} + get_diff_for_mutant(name, path=path))
"""


def scratch_copy(dest: Path, target: str, tests: list[str], timeout_multiplier: float | None = None) -> None:
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
    if timeout_multiplier is not None:
        text += f"timeout_multiplier = {timeout_multiplier}\n"
    (dest / "pyproject.toml").write_text(text)
    (dest / "conftest.py").write_text(_ORDER_CONFTEST.format(order=tests))


def run_module(name: str, work: Path, jobs: int, max_minutes: float | None = None,
               report_only: bool = False) -> tuple[str, float]:
    target, tests = MODULES[name]
    dest = work / name
    if not report_only:
        scratch_copy(dest, target, [t for t in tests if (ROOT / t.partition("::")[0]).exists()],
                     TIMEOUT_MULTIPLIER.get(name))
    # one thread per process: mutmut forks each mutant from a process that has imported torch, and a forked
    # child waits forever on the parent's OpenMP pool (every unpool mutant timed out before this)
    env = dict(os.environ, PYTHONPATH=str(dest), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               TOOLKIT_CAMVID=os.environ.get("TOOLKIT_CAMVID", str(ROOT.parent / "shared" / "camvid")))
    mutmut = [sys.executable, "-m", "mutmut"]
    t = time.perf_counter()
    log = dest / "mutmut.log"
    capped = False
    if not report_only:
        with open(log, "w") as f:
            # its own session, so that a time cap ends mutmut and its forked children together; mutmut saves
            # each mutant's result as it finishes, so what ran by then is reported ("not checked": the rest)
            proc = subprocess.Popen([*mutmut, "run", "--max-children", str(jobs)], cwd=dest, env=env, stdout=f,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                proc.wait(timeout=None if max_minutes is None else 60 * max_minutes)
            except subprocess.TimeoutExpired:
                capped = True
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
    took = time.perf_counter() - t
    out = subprocess.run([*mutmut, "results", "--all", "true"], cwd=dest, env=env, capture_output=True,
                         text=True, check=False).stdout
    status = dict(re.findall(r"^\s*(\S+): (\w[\w ]*)$", out, re.M))
    counts: dict[str, int] = {}
    for s in status.values():
        counts[s] = counts.get(s, 0) + 1
    survivors = [m for m, s in status.items() if s in ("survived", "no tests")]
    # every diff from one process (`mutmut show` per survivor walks and loads the whole tree each time: 10 min
    # for the runner's 117 survivors on the shared machine)
    diffs = subprocess.run([sys.executable, "-c", _SHOW, *survivors], cwd=dest, env=env, capture_output=True,
                           text=True, check=False).stdout if survivors else ""
    with open(dest / "survivors.txt", "w") as f:
        for m, diff in zip(survivors, diffs.split(_SEP)[1:], strict=False):
            f.write(f"## {m} ({status[m]})\n{diff.strip()}\n\n")
    total = len(status)
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    score = f"{100 * killed / total:.1f}%" if total else "n/a"
    checked = total - counts.get("not checked", 0)
    if checked != total:  # a capped run: the score over what ran as well
        score += f" ({100 * killed / checked:.1f}% of {checked} run)" if checked else " (none run)"
    line = (f"{name:18s} {target:34s} mutants {total:4d}  killed {killed:4d}  score {score:>6s}  "
            + "  ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k not in ("killed", "timeout"))
            + f"  ({took:.0f} s{', capped' if capped else ''}; {dest / 'survivors.txt'})")
    return line, took


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("modules", nargs="*", help=f"names from: {', '.join(MODULES)} (default: all)")
    p.add_argument("--work", type=Path, default=Path("/tmp/toolkit-mutation"), help="scratch folder")
    p.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1: a shared machine)")
    p.add_argument("--list", action="store_true", help="print the module -> tests map and exit")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop each module's run after this long and report what ran (the rest: 'not checked')")
    p.add_argument("--report-only", action="store_true",
                   help="re-read the results of an earlier run in --work (no new run)")
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
        line, took = run_module(name, a.work, a.jobs, a.max_minutes, a.report_only)
        total += took
        print(line, flush=True)
    print(f"total {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
