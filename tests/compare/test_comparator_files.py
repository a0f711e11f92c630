"""The comparator's file-level entry points (``candidate_runner``, ``compare_files``, ``compare_with_provenance``,
``measure_speed``, ``preflight_candidate``, ``refuse_unknown_precision``) on tiny models, in seconds: the tiny
checkpoint (tests/helpers/models.py), a one-convolution ONNX graph carrying the toolkit's metadata (written
here in milliseconds, where exporting the SegNet takes ~10 s), and two in-memory synthetic frames. Fast enough
for the mutation map (docs/MUTATION.md); test_parity.py checks the real exported models' numbers.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from tests.helpers.models import INPUT_SIZE, WIDTH, tiny_checkpoint, tiny_model
from tests.helpers.video import FakeRunner
from toolkit.assets import default_checkpoint_path
from toolkit.backend.onnxrt.runner import OnnxrtRunner
from toolkit.backend.torch.runner import TorchRunner
from toolkit.checkpoint import read_checkpoint, save_checkpoint
from toolkit.compare import Comparator, DriftOptions, Tolerance, compare_files, compare_with_provenance, measure_speed
from toolkit.compare.comparator import candidate_runner, preflight_candidate, refuse_unknown_precision
from toolkit.core import defaults
from toolkit.core.dataset import FrameSet
from toolkit.core.meta import ModelMeta
from toolkit.core.metadata import meta_props, write_props
from toolkit.core.names import INPUT_NAME, OUTPUT_NAME
from toolkit.core.onnx_file import save_onnx
from toolkit.data import make_scene, synthetic_info
from toolkit.errors import DeviceError, ToolkitError, UnknownNameError
from toolkit.files import file_sha256

FRAMES = 2
PLAN = {"fp16": ["conv"], "budget_ms": 5.0}


@pytest.fixture(autouse=True)
def _torch_threads() -> None:
    """make_runner sets PyTorch's process-wide thread count: put it back for the other tests."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory)


def conv_onnx(path: Path, source_sha256: str = "", extra: dict[str, str] | None = None,
              names: tuple[str, str] = (INPUT_NAME, OUTPUT_NAME)) -> Path:
    """A 1x1 convolution to the synthetic classes, with the metadata toolkit export writes."""
    k = synthetic_info().num_classes
    w = np.random.default_rng(1).standard_normal((k, 3, 1, 1)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", [names[0], "w"], [names[1]], name="conv")], "g",
        [helper.make_tensor_value_info(names[0], TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info(names[1], TensorProto.FLOAT, ["N", k, "H", "W"])],
        initializer=[numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    meta = ModelMeta("enhanced", WIDTH, synthetic_info(), input_size=INPUT_SIZE)
    return save_onnx(write_props(model, meta_props(meta, "mask", source_sha256=source_sha256, extra=extra)), path)


def frames(n: int = FRAMES) -> FrameSet:
    info = synthetic_info()
    scenes = [make_scene(i, INPUT_SIZE, info.num_classes) for i in range(n)]
    return FrameSet([s[0] for s in scenes], [s[1] for s in scenes], info)


# ---- candidate_runner: which runner each spec builds -------------------------------------------------------

def test_each_spec_builds_its_runner(ckpt: Path, tmp_path: Path) -> None:
    onnx_path = conv_onnx(tmp_path / "conv.onnx")
    plain, low, graph = (candidate_runner(s, "cpu") for s in (ckpt, f"{ckpt}@BF16", onnx_path))
    assert isinstance(plain, TorchRunner) and isinstance(low, TorchRunner) and isinstance(graph, OnnxrtRunner)
    assert (plain.name, plain.source, plain.info.precision) == (f"torch:{ckpt.name}", str(ckpt), "fp32")
    # the precision is split off the file and named: the checkpoint itself, run in PyTorch at bf16
    assert (low.name, low.source, low.info.precision) == (f"torch:{ckpt.name}@bf16", str(ckpt), "bf16")
    assert (graph.name, graph.source, graph.backend) == (f"onnxrt:{onnx_path.name}", str(onnx_path), "onnxrt")


def test_a_candidate_is_refused_for_what_it_cannot_do(ckpt: Path) -> None:
    with pytest.raises(UnknownNameError, match=r"'@fp61' is not a precision .* Did you mean '.*@fp16'\?"):
        candidate_runner(f"{ckpt}@fp61", "cpu")
    with pytest.raises(DeviceError, match="^--device tensorrt: tiny.safetensors is a PyTorch checkpoint"):
        candidate_runner(ckpt, "tensorrt")
    with pytest.raises(ToolkitError, match="^--threads 0: expected 1 or more$"):
        candidate_runner(ckpt, "cpu", threads=0)
    with pytest.raises(ToolkitError, match="^model.engine: the trt backend takes no thread count"):
        candidate_runner("model.engine", "cpu", threads=1)


# ---- compare_files: the specs, options and dataset reach the comparison ------------------------------------

def test_compare_files_runs_every_spec_against_the_reference(ckpt: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    ref_sha = file_sha256(ckpt)
    onnx_path = conv_onnx(tmp_path / "conv.onnx", source_sha256=ref_sha)
    report = compare_files(ckpt, [ckpt, f"{ckpt}@bf16", onnx_path], frames(), max_miou_drop=1.5,
                           min_pixel_agreement=90.0, dataset_info={"split": "val"},
                           drift=DriftOptions(band_px=2, worst_frames=1))
    assert report.reference["name"] == f"torch:{ckpt.name}" and report.reference["sha256"] == ref_sha
    assert report.reference["band_px"] == 2 and report.dataset == {"split": "val", "images": FRAMES}
    same, low, graph = report.candidates
    assert [c.name for c in report.candidates] == [f"torch:{ckpt.name}", f"torch:{ckpt.name}@bf16",
                                                   "onnxrt:conv.onnx"]
    assert [(c.backend, c.precision) for c in report.candidates] == [("torch", "fp32"), ("torch", "bf16"),
                                                                     ("onnxrt", "fp32")]
    assert same.pixel_agreement == 100.0 and same.max_abs_logit_diff == 0.0 and same.delta_miou == 0.0
    assert graph.pixel_agreement < 100.0  # another model: the comparison is of what each spec names
    for c in report.candidates:
        assert c.tolerance == Tolerance(1.5, 90.0) and c.temporal is None
    assert (same.sha256, low.sha256, graph.sha256) == (ref_sha, ref_sha, file_sha256(onnx_path))
    assert (same.source_matches, graph.source_matches) == (None, True)
    assert len(report.worst_frames[2]) == 1  # of the FRAMES that differ, as many as asked
    assert "parity" not in capsys.readouterr().err  # no progress bar unless asked


def test_compare_files_passes_temporal_and_progress_on(ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = compare_files(ckpt, [f"{ckpt}@bf16"], frames(3), temporal=True, progress=True)
    (low,) = report.candidates
    assert low.temporal is not None and low.temporal["frames"] == 3
    assert report.dataset == {"images": 3}
    err = capsys.readouterr().err
    assert "parity:" in err and "| 0/3 [" in err  # the progress bar, over every frame


def test_an_onnx_reference_runs_on_onnx_runtimes_cpu(ckpt: Path, tmp_path: Path) -> None:
    """The reference runs on the CPU provider (ONNX Runtime refuses "CPU": its device names are lowercase)."""
    ref = conv_onnx(tmp_path / "ref.onnx")
    report = compare_files(ref, [ref], frames(1))
    assert report.reference["name"] == "onnxrt:ref.onnx" and report.reference["backend"] == "onnxrt"
    assert report.candidates[0].pixel_agreement == 100.0 and report.reference["sha256"] == file_sha256(ref)


# ---- compare_with_provenance: each file's sha256, the plan, whether it came from the reference -------------

class Provenance(FakeRunner):
    def __init__(self, name: str, source: str, props: dict[str, str]) -> None:
        super().__init__()
        self.name, self.source = name, source
        d = self.description
        self._description = type(d)(d.meta, d.precision, d.lowering, props)


def test_each_candidate_gets_its_files_provenance(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    ref_file = tmp_path / "ref.safetensors"
    ref_file.write_bytes(b"the reference")
    own = tmp_path / "own.onnx"
    own.write_bytes(b"a candidate's own file")
    listed = tmp_path / "listed.onnx"
    listed.write_bytes(b"a file named on the command line")
    ref_sha, other = file_sha256(ref_file), "f" * 64
    runners = [Provenance("own", str(own), {"source_sha256": ref_sha, "mixed_precision_plan": json.dumps(PLAN)}),
               Provenance("listed", "", {"source_sha256": other}),
               Provenance("unknown", "", {})]
    with caplog.at_level(logging.WARNING, logger="toolkit.compare.comparator"):
        report = compare_with_provenance(Comparator(FakeRunner(), runners), ref_file,
                                         [tmp_path / "unused.onnx", listed, tmp_path / "missing.engine"],
                                         frames_for_fakes(), dataset_info={"split": "test"})
    own_r, listed_r, unknown_r = report.candidates
    assert report.reference["sha256"] == ref_sha and report.dataset == {"split": "test", "images": FRAMES}
    # a runner's own source wins over the listed path; a path that is no file has no sha256
    assert (own_r.sha256, listed_r.sha256, unknown_r.sha256) == (file_sha256(own), file_sha256(listed), None)
    assert (own_r.source_matches, listed_r.source_matches, unknown_r.source_matches) == (True, False, None)
    assert (own_r.plan, listed_r.plan, unknown_r.plan) == (PLAN, None, None)
    assert [r.getMessage() for r in caplog.records] == [
        f"listed was exported from another checkpoint (sha256 {other[:12]}...) than the reference "
        f"({ref_sha[:12]}...)"]
    assert "parity" not in capsys.readouterr().err  # no progress bar unless asked


def frames_for_fakes() -> FrameSet:
    """The fake runners' label space (tests/helpers/video.py: 3 classes)."""
    from tests.helpers.video import HW, NUM_CLASSES

    scenes = [make_scene(i, HW, NUM_CLASSES) for i in range(FRAMES)]
    return FrameSet([s[0] for s in scenes], [s[1] for s in scenes], synthetic_info(NUM_CLASSES))


def test_no_reference_file_is_the_embedded_default(capsys: pytest.CaptureFixture[str]) -> None:
    candidate = Provenance("a", "", {"source_sha256": "ab"})
    report = compare_with_provenance(Comparator(FakeRunner(), [candidate]), None, ["/models/a.onnx"],
                                     frames_for_fakes(), progress=True)
    assert report.reference["sha256"] == file_sha256(default_checkpoint_path())
    assert report.candidates[0].source_matches is False and "parity" in capsys.readouterr().err


def test_the_comparator_shows_no_progress_unless_asked(capsys: pytest.CaptureFixture[str]) -> None:
    Comparator(FakeRunner(), [Provenance("a", "", {})]).run(frames_for_fakes())
    assert "parity" not in capsys.readouterr().err


def test_every_candidate_needs_its_file(tmp_path: Path) -> None:
    """The files name the candidates in order: a list of another length is a caller's bug, not a silent skip."""
    with pytest.raises(ValueError, match="zip"):
        compare_with_provenance(Comparator(FakeRunner(), [Provenance("a", "", {}), Provenance("b", "", {})]), None,
                                ["/models/a.onnx"], frames_for_fakes())


# ---- measure_speed: the reference and every candidate timed at the reference's padded input size ----------

def test_speed_of_reference_and_candidates(tmp_path: Path) -> None:
    odd = tmp_path / "odd.safetensors"  # an input size that is no multiple of the stride: bench pads it
    save_checkpoint(odd, tiny_model(), ModelMeta("enhanced", WIDTH, synthetic_info(), input_size=(60, 90)))
    meta = read_checkpoint(odd)[1]
    assert meta.padded_input_size != meta.input_size
    onnx_path = conv_onnx(tmp_path / "conv.onnx")
    speed = measure_speed(odd, [f"{odd}@bf16", onnx_path], iterations=3)
    assert [s["name"] for s in speed] == [f"torch:{odd.name}", f"torch:{odd.name}@bf16", "onnxrt:conv.onnx"]
    assert [s["model"] for s in speed] == [str(odd), f"{odd}@bf16", str(onnx_path)]
    assert [s["precision"] for s in speed] == ["fp32", "bf16", "fp32"]
    for s in speed:
        assert s["shape"] == [1, 3, *meta.padded_input_size] and s["iterations"] == 3 and s["threads"] is None
        lat = s["latency_ms"]
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"] and s["throughput_fps"] > 0
    assert speed[0]["ratio"] is None  # ratios are against the reference
    assert [s["ratio"] for s in speed[1:]] == [round(s["throughput_fps"] / speed[0]["throughput_fps"], 3)
                                              for s in speed[1:]]


def test_speed_defaults_the_reference_and_iterations(ckpt: Path) -> None:
    (default,) = measure_speed(None, [], iterations=1)
    meta = read_checkpoint(default_checkpoint_path())[1]
    assert default["model"] == "embedded default" and default["shape"] == [1, 3, *meta.padded_input_size]
    (plain,) = measure_speed(ckpt, [], threads=1)
    assert plain["iterations"] == defaults.BENCH_ITERATIONS and plain["threads"] == 1  # as toolkit bench


def test_speed_passes_device_and_threads_to_every_runner(ckpt: Path) -> None:
    with pytest.raises(DeviceError, match="^--device tensorrt: tiny.safetensors"):
        measure_speed(ckpt, [ckpt], device="tensorrt", iterations=1)  # the candidate's device; the reference: cpu
    with pytest.raises(ToolkitError, match="^--threads 0: expected 1 or more$"):
        measure_speed(ckpt, [], iterations=1, threads=0)
    with pytest.raises(ToolkitError, match="^model.engine: the trt backend takes no thread count"):
        measure_speed(ckpt, ["model.engine"], iterations=1, threads=1)


# ---- preflight_candidate and refuse_unknown_precision: refused before anything loads -----------------------

def test_preflight_refuses_a_graph_with_other_tensor_names(ckpt: Path, tmp_path: Path) -> None:
    other = conv_onnx(tmp_path / "other.onnx", names=("data", "output"))
    with pytest.raises(ToolkitError, match=f"^{other}: the model takes \\['data'\\] and gives \\['output'\\]"):
        preflight_candidate(other)
    with pytest.raises(UnknownNameError, match="'@fp8' is not a precision"):
        preflight_candidate(f"{ckpt}@fp8")
    preflight_candidate(conv_onnx(tmp_path / "good.onnx"))


def test_preflight_passes_what_it_does_not_read(ckpt: Path, tmp_path: Path) -> None:
    """Checkpoints, engines and served models are checked when they load; an ONNX graph's weights are not read."""
    for spec in (ckpt, f"{ckpt}@fp16", "triton://localhost:8001/segnet", tmp_path / "missing.onnx"):
        preflight_candidate(spec)
    model = onnx.load(str(conv_onnx(tmp_path / "external.onnx")))
    onnx.save(model, str(tmp_path / "external.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="external.data", size_threshold=0)
    (tmp_path / "external.data").unlink()
    preflight_candidate(tmp_path / "external.onnx")


def test_an_unknown_precision_is_refused_with_the_choices(ckpt: Path) -> None:
    choices = "auto, fp32, fp16, bf16"
    tail = (f"after '@' use {choices}. An int8 candidate is a file: toolkit quantize writes an ONNX one, "
            "toolkit build-engine a TensorRT engine.")
    with pytest.raises(UnknownNameError) as e:
        refuse_unknown_precision(f"{ckpt}@fp8")
    assert str(e.value) == f"{ckpt}@fp8: '@fp8' is not a precision a checkpoint runs at in PyTorch; {tail}"
    with pytest.raises(UnknownNameError) as e:  # the close match, whatever the case it was typed in
        refuse_unknown_precision("enhanced-w16@FP61")
    assert str(e.value) == ("enhanced-w16@FP61: '@FP61' is not a precision a checkpoint runs at in PyTorch; "
                            f"{tail} Did you mean 'enhanced-w16@fp16'?")


def test_what_is_no_model_and_precision_is_left_to_the_model_lookup(tmp_path: Path) -> None:
    """No '@', nothing before it, an existing file whose name has the '@', or no model before it: not refused
    here (a file is taken whole; a missing model gets resolve_model's own error)."""
    at = tmp_path / "m@x.safetensors"
    at.write_bytes(b"")
    whole = tmp_path / "a.safetensors@fp8"
    whole.write_bytes(b"")
    (tmp_path / "a.safetensors").write_bytes(b"")
    for text in ("model.onnx", "@fp8", str(whole), str(tmp_path / "nosuch.safetensors@fp8"), "enhanced-w99@fp8"):
        refuse_unknown_precision(text)
    with pytest.raises(UnknownNameError, match="'@fp8' is not a precision"):  # the last '@' splits it
        refuse_unknown_precision(f"{at}@fp8")
