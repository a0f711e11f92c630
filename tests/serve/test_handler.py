"""Serving pieces that need no Triton: the batch handler, the stub's library path, ports, URLs, errors."""

from __future__ import annotations

import os
import socket
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from toolkit.backend import backend_for, make_runner
from toolkit.backend.triton import client as tc
from toolkit.errors import InputShapeError, ToolkitError
from toolkit.evaluate import predict_logits
from toolkit.serve.handler import SegmentationHandler
from toolkit.serve.server import check_ports_free, child_environment, stub_library_path


def frames(n: int, h: int = 70, w: int = 100, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_frames_match_infer_path_bit_for_bit(tiny_checkpoint: Path) -> None:
    """Batch 1 through the handler == predict_logits (what `infer` runs), logits and class map."""
    with make_runner(str(tiny_checkpoint)) as runner:
        meta = runner.meta
        handler = SegmentationHandler(runner, meta, "rgb", max_batch=1)
        imgs = frames(2)
        (out,) = handler.infer_frames([imgs], [True])
        for i in range(2):
            ref = predict_logits(runner, imgs[i], meta.dataset.mean, meta.dataset.std, meta.input_size)
            assert np.array_equal(out["logits"][i], ref)
            assert np.array_equal(out["classes"][i], ref.argmax(0).astype(np.uint8))
        assert out["classes"].shape == (2, 70, 100) and out["classes"].dtype == np.uint8


def test_onnx_runner_serves_the_same_way(tiny_onnx: Path) -> None:
    """The handler is backend-agnostic: with the ONNX Runtime runner it equals that runner's infer path."""
    pytest.importorskip("onnxruntime")
    with make_runner(str(tiny_onnx)) as runner:
        # the exporter ships with the toolkit and writes the metadata: its absence is a regression, not a skip
        assert runner.meta is not None, "the exported ONNX file lost its toolkit metadata"
        handler = SegmentationHandler(runner, runner.meta, "rgb", max_batch=1)
        img = frames(1)
        (out,) = handler.infer_frames([img], [True])
        ds = runner.meta.dataset
        assert np.array_equal(out["logits"][0], predict_logits(runner, img[0], ds.mean, ds.std, runner.meta.input_size))


def test_bgr_frames_are_flipped_and_logits_only_on_request(tiny_checkpoint: Path) -> None:
    with make_runner(str(tiny_checkpoint)) as runner:
        rgb = SegmentationHandler(runner, runner.meta, "rgb", max_batch=4)
        bgr = SegmentationHandler(runner, runner.meta, "bgr", max_batch=4)
        imgs = frames(1)
        (a,) = rgb.infer_frames([imgs], [False])
        (b,) = bgr.infer_frames([imgs[..., ::-1].copy()], [False])
        assert set(a) == {"classes"} and np.array_equal(a["classes"], b["classes"])


def test_requests_of_other_sizes_batch_together(tiny_checkpoint: Path) -> None:
    """Frames of any size are resized to the model input, so one call runs them as one batch."""
    with make_runner(str(tiny_checkpoint)) as runner:
        handler = SegmentationHandler(runner, runner.meta, "rgb", max_batch=8)
        outs = handler.infer_frames([frames(1, 64, 96), frames(2, 120, 160, seed=1)], [True, False])
        assert outs[0]["classes"].shape == (1, 64, 96) and outs[1]["classes"].shape == (2, 120, 160)
        assert outs[0]["logits"].shape == (1, runner.meta.num_classes, 64, 96) and "logits" not in outs[1]


def test_tensor_requests_equal_the_runner(tiny_checkpoint: Path) -> None:
    x = np.random.default_rng(2).standard_normal((3, 3, 64, 96)).astype(np.float32)
    with make_runner(str(tiny_checkpoint)) as runner:
        handler = SegmentationHandler(runner, runner.meta, max_batch=8)
        (out,) = handler.infer_tensors([x])
        assert np.array_equal(out["logits"], runner.infer({"input": x})["logits"])


@pytest.mark.parametrize(("arr", "message"), [
    (np.zeros((1, 64, 96, 3), np.float32), "expected uint8 N x H x W x 3"),
    (np.zeros((1, 64, 96, 4), np.uint8), "expected uint8 N x H x W x 3"),
    (np.zeros((0, 64, 96, 3), np.uint8), "empty frame batch"),
    (np.zeros((1, 0, 96, 3), np.uint8), "empty frame batch"),
])
def test_bad_frames_are_one_clear_error(tiny_checkpoint: Path, arr: np.ndarray, message: str) -> None:
    with make_runner(str(tiny_checkpoint)) as runner:
        handler = SegmentationHandler(runner, runner.meta)
        with pytest.raises(InputShapeError, match=message):
            handler.infer_frames([arr], [False])


def test_bad_tensor_sizes_are_refused(tiny_checkpoint: Path) -> None:
    with make_runner(str(tiny_checkpoint)) as runner:
        handler = SegmentationHandler(runner, runner.meta)
        with pytest.raises(InputShapeError, match="multiples of 8; pad to 64x104"):
            handler.infer_tensors([np.zeros((1, 3, 64, 100), np.float32)])
        with pytest.raises(InputShapeError, match="float32 N x 3 x H x W"):
            handler.infer_tensors([np.zeros((1, 3, 64, 96), np.float64)])


def test_stub_library_path_puts_this_interpreters_libdir_first() -> None:
    libdir = sysconfig.get_config_var("LIBDIR")
    assert stub_library_path({}) == libdir
    got = stub_library_path({"LD_LIBRARY_PATH": f"/opt/a:{libdir}:/opt/b"}).split(os.pathsep)
    assert got == [libdir, "/opt/a", "/opt/b"]


def test_child_environment_reaches_tritonserver_not_this_process() -> None:
    """Issue 27: LD_LIBRARY_PATH used to be set in os.environ for the whole process; now only the environment
    PyTriton prepares for tritonserver (inherited by the stubs it forks) gets this interpreter's libdir first."""
    libdir = sysconfig.get_config_var("LIBDIR")

    class FakeServer:  # PyTriton 0.7's TritonServer: _get_env copies os.environ and adds its libs dir
        def _get_env(self) -> dict[str, str]:
            return {"LD_LIBRARY_PATH": "/opt/pytriton/lib", "PATH": "/usr/bin"}

    class FakeTriton:  # ... created by Triton.run through _initialize_server
        _triton_server: FakeServer | None = None

        def _initialize_server(self) -> None:
            self._triton_server = FakeServer()

    before = dict(os.environ)
    triton = FakeTriton()
    child_environment(triton, lambda env: {**env, "LD_LIBRARY_PATH": stub_library_path(env)})
    triton._initialize_server()
    assert triton._triton_server is not None
    env = triton._triton_server._get_env()
    assert env == {"LD_LIBRARY_PATH": os.pathsep.join([libdir, "/opt/pytriton/lib"]), "PATH": "/usr/bin"}
    assert dict(os.environ) == before


def test_port_in_use_is_one_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ToolkitError, match=f"http port {port} on 127.0.0.1 is not free.*--http-port"):
            check_ports_free("127.0.0.1", {"http": port, "grpc": 1, "metrics": 2})
    with pytest.raises(ToolkitError, match="ports must differ"):
        check_ports_free("127.0.0.1", {"http": 9000, "grpc": 9000})


def test_triton_urls() -> None:
    u = tc.parse_triton_url("triton://127.0.0.1:9000/segnet_tensor")
    assert (u.host, u.port, u.model, u.protocol, u.version) == ("127.0.0.1", 9000, "segnet_tensor", "http", "")
    g = tc.parse_triton_url("triton://localhost/segnet_onnx/2?protocol=grpc")
    assert (g.port, g.protocol, g.version) == (8001, "grpc", "2")
    assert str(g) == "triton://localhost:8001/segnet_onnx/2?protocol=grpc"
    for bad, msg in (("triton://host:80", "missing host or model"), ("triton://h/m?protocol=udp", "not http or grpc"),
                     ("triton://h:xx/m", "port is not a number")):
        with pytest.raises(ToolkitError, match=msg):
            tc.parse_triton_url(bad)
    assert backend_for("triton://h:1/m") == "triton"
    # a Path-typed CLI option turns triton:// into triton:/
    assert tc.parse_triton_url(str(Path("triton://h:1/m"))) == tc.parse_triton_url("triton://h:1/m")
    assert make_runner(Path("triton://127.0.0.1:9/m")).url.port == 9
    runner = make_runner("triton://127.0.0.1:9/m")  # nothing is contacted before activate()
    assert runner.backend == "triton" and runner.name == "triton:m"


def test_error_line_keeps_the_message_of_a_server_traceback() -> None:
    class Fake(Exception):
        def message(self) -> str:
            return ("Traceback (most recent call last):\n  File \"x.py\", line 1\n"
                    "toolkit.errors.InputShapeError: input 64x100: H and W must be multiples of 8\n")

    assert tc.error_line(Fake()) == "input 64x100: H and W must be multiples of 8 (InputShapeError)"
    assert tc.error_line(RuntimeError("plain")) == "plain"


def test_a_frames_on_device_runner_serves_class_maps_without_logits(tiny_checkpoint: Path) -> None:
    """PyTorch on CUDA takes the frames itself (``infer_frame``): a request without logits goes there and gets
    the host path's class maps; one that asks for logits keeps the host path, since logits never leave the GPU
    in the other. The frames runner runs the real device logic on the CPU (tests/helpers/cpu_frames.py):
    device preprocessing, the resize back to each frame's size, the argmax."""
    from tests.helpers.cpu_frames import CpuFramesRunner
    from toolkit.backend.torch.loader import LoadCheckpoint

    with make_runner(str(tiny_checkpoint)) as host, CpuFramesRunner(LoadCheckpoint(tiny_checkpoint)) as device:
        imgs = [frames(2, seed=1), frames(1, 128, 192, seed=2)]
        want = SegmentationHandler(host, host.meta, "bgr").infer_frames(imgs, [False, False])
        got = SegmentationHandler(device, device.meta, "bgr").infer_frames(imgs, [False, False])
        # class maps at each frame's own size
        assert device.frame_calls == [((70, 100, 3), (70, 100))] * 2 + [((128, 192, 3), (128, 192))]
        for w, g in zip(want, got, strict=True):
            assert set(g) == {"classes"} and g["classes"].shape == w["classes"].shape
            # exact: both sizes shrink to 64x96, where the device preprocessing equals the host's, and the model
            # is the same fp32 one (enlarging is a uint8 level apart: tests/backend/test_torch_fast_path.py)
            assert np.array_equal(w["classes"], g["classes"])
        SegmentationHandler(device, device.meta, "rgb").infer_frames(imgs[:1], [True])
        assert len(device.frame_calls) == 3  # logits asked for: the host path
