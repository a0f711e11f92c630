"""toolkit/evaluate.py against fake runners whose class maps are known: the resize rules, the padding stride, the
confusion matrix with the label space's ignore label, the frame hook, the progress bar and evaluate_model's checks.
Milliseconds per test (the mutation map's tests for evaluate.py, with tests/test_evaluate.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from toolkit.backend.base import BaseRunner
from toolkit.core.dataset import FrameSet
from toolkit.core.dataset_info import DatasetInfo
from toolkit.core.description import ModelDescription
from toolkit.core.meta import ModelMeta
from toolkit.core.names import OUTPUT_NAME
from toolkit.data.transforms import normalize
from toolkit.errors import DatasetError, ToolkitError
from toolkit.evaluate import (
    class_map_at_size,
    evaluate_model,
    evaluate_split,
    iter_frames,
    open_split,
    postprocess_logits,
    predict_logits,
    preprocess,
)

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
IGNORE = 9  # not 255: the label space's own ignore label must reach the confusion matrix
INFO = DatasetInfo(("a", "b", "c"), ((0, 0, 0), (1, 1, 1), (2, 2, 2)), ignore_index=IGNORE, mean=MEAN, std=STD)


def _meta(input_size: tuple[int, int] = (8, 8), stride: int = 8, info: DatasetInfo = INFO) -> ModelMeta:
    return ModelMeta("segnet", 4, info, input_size=input_size, output_stride=stride)


class Planes(BaseRunner):
    """Logits whose argmax is the input's first channel rounded to a class id (0..K-1); records each feed."""

    backend = "fake"

    def __init__(self, meta: ModelMeta | None = None, name: str = "planes", classes: int = 3) -> None:
        super().__init__(name, description=ModelDescription(meta))
        self.classes, self.feeds = classes, []

    def _activate_impl(self) -> ModelDescription:
        return self.description

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        (x,) = feed.values()
        self.feeds.append(x)
        ids = np.clip(np.rint(x[:, :1]), 0, self.classes - 1)
        return {OUTPUT_NAME: -np.abs(np.arange(self.classes, dtype=np.float32)[None, :, None, None] - ids)}


def _image_of_classes(ids: np.ndarray) -> np.ndarray:
    """An RGB uint8 image whose first channel normalises (MEAN, STD) to ``ids``: x = (v/255 - 0.5)/0.25."""
    v = np.rint((ids * STD[0] + MEAN[0]) * 255).astype(np.uint8)
    return np.repeat(v[..., None], 3, axis=2)


# --- preprocess / postprocess ------------------------------------------------------------------------------

@pytest.mark.parametrize(("src", "size", "interp"), [
    ((16, 24), (7, 10), cv2.INTER_AREA),      # smaller: area averaging (not by 2, where linear is the same)
    ((16, 40), (20, 50), cv2.INTER_LINEAR),   # larger (H smaller than the source's W): linear
    ((16, 40), (16, 30), cv2.INTER_LINEAR),   # same H, narrower: the rule reads H only
])
def test_the_resize_averages_down_and_interpolates_up(src: tuple[int, int], size: tuple[int, int],
                                                      interp: int) -> None:
    img = np.random.default_rng(0).integers(0, 256, (*src, 3), dtype=np.uint8)
    pre = preprocess(img, MEAN, STD, size, stride=1)  # no padding
    want = normalize(cv2.resize(img, size[::-1], interpolation=interp), MEAN, STD)
    assert pre.tensor.dtype == np.float32 and np.array_equal(pre.tensor[0], want)
    assert pre.valid_hw == size and pre.source_hw == src


def test_padding_follows_the_stride_and_pads_one_side_alone() -> None:
    img = np.full((20, 24, 3), 255, np.uint8)
    pre = preprocess(img, MEAN, STD, stride=8)
    assert pre.tensor.shape == (1, 3, 24, 24) and pre.valid_hw == (20, 24)  # only H padded
    assert np.all(pre.tensor[0, :, :20] == 2.0) and not pre.tensor[0, :, 20:].any()  # zeros below the frame
    assert preprocess(np.zeros((20, 20, 3), np.uint8), MEAN, STD, stride=16).tensor.shape == (1, 3, 32, 32)
    same = preprocess(img, MEAN, STD, input_size=(20, 24), stride=4)
    assert same.tensor.shape == (1, 3, 20, 24) and np.array_equal(same.tensor[0], normalize(img, MEAN, STD))


def test_postprocess_resizes_linearly_and_returns_float32() -> None:
    rng = np.random.default_rng(0)
    pre = preprocess(np.zeros((6, 8, 3), np.uint8), MEAN, STD, stride=8)  # padded to 8x8
    logits = rng.normal(size=(1, 3, 8, 8)).astype(np.float32)
    out = postprocess_logits(logits, pre, (12, 16))
    want = cv2.resize(np.ascontiguousarray(logits[0, :, :6, :8].transpose(1, 2, 0)), (16, 12),
                      interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
    assert out.shape == (3, 12, 16) and np.array_equal(out, want)
    one = postprocess_logits(logits[:, :1], pre, (12, 16))  # one class: OpenCV drops the channel axis
    assert one.shape == (1, 12, 16) and np.array_equal(one[0], want[0])
    half = postprocess_logits(logits.astype(np.float16), pre)  # an fp16 engine's output, at the frame size
    assert half.dtype == np.float32 and half.flags.c_contiguous and half.shape == (3, 6, 8)


def test_class_map_at_size_takes_fp16_logits() -> None:
    rng = np.random.default_rng(1)
    pre = preprocess(np.zeros((6, 8, 3), np.uint8), MEAN, STD, stride=8)
    logits = rng.normal(size=(1, 4, 8, 8)).astype(np.float16)
    got = class_map_at_size(logits, pre, (12, 16))
    assert got.dtype == np.uint8 and got.shape == (12, 16)
    assert np.array_equal(got, postprocess_logits(logits.astype(np.float32), pre, (12, 16)).argmax(0))


def test_predict_logits_uses_the_input_size_and_stride() -> None:
    runner = Planes(_meta())
    img = _image_of_classes(np.zeros((16, 24)))
    with runner:
        out = predict_logits(runner, img, MEAN, STD, input_size=(8, 12), stride=8)
        predict_logits(runner, img, MEAN, STD, input_size=(8, 12), stride=16)
    assert [f.shape for f in runner.feeds] == [(1, 3, 8, 16), (1, 3, 16, 16)]
    assert out.shape == (3, 16, 24)  # back at the frame's size


def test_iter_frames_follows_the_indices() -> None:
    images = [np.full((2, 2, 3), i, np.uint8) for i in range(3)]
    data = FrameSet(images, [np.zeros((2, 2), np.uint8)] * 3, INFO)
    assert [im[0, 0, 0] for im, _ in iter_frames(data, [2, 0])] == [2, 0]
    assert [im[0, 0, 0] for im, _ in iter_frames(data)] == [0, 1, 2]


# --- evaluate_split ----------------------------------------------------------------------------------------

def _frames() -> tuple[FrameSet, list[np.ndarray]]:
    """Two 8x8 frames; the fake predicts ``pred``; labels differ from it in known pixels, some are IGNORE."""
    rng = np.random.default_rng(0)
    preds = [rng.integers(0, 3, (8, 8)) for _ in range(2)]
    labels = []
    for p in preds:
        label = p.copy().astype(np.uint8)
        label[0, :4] = (p[0, :4] + 1) % 3
        label[1, :] = IGNORE
        labels.append(label)
    return FrameSet([_image_of_classes(p) for p in preds], labels, INFO), preds


def _expected_matrix(data: FrameSet, preds: list[np.ndarray]) -> np.ndarray:
    m = np.zeros((3, 3), np.int64)
    for (_, label), p in zip(iter_frames(data), preds, strict=True):
        keep = label != IGNORE
        np.add.at(m, (label[keep], p[keep]), 1)
    return m


def test_the_confusion_matrix_counts_label_against_prediction_without_ignored_pixels() -> None:
    data, preds = _frames()
    with Planes(_meta()) as runner:
        (cm,) = evaluate_split([runner], data)
    assert np.array_equal(cm.matrix, _expected_matrix(data, preds))
    assert cm.matrix.sum() == 2 * 7 * 8 and cm.ignore_index == IGNORE


def test_each_runner_gets_its_metas_input_size_and_stride() -> None:
    data, preds = _frames()
    a, b = Planes(_meta(), "a"), Planes(None, "b")  # b has no metadata of its own: the given metas are used
    with a, b:
        cms = evaluate_split([a, b], data, [_meta(), _meta(input_size=(4, 4), stride=4)])
    assert [f.shape for f in a.feeds] == [(1, 3, 8, 8)] * 2 and [f.shape for f in b.feeds] == [(1, 3, 4, 4)] * 2
    assert np.array_equal(cms[0].matrix, _expected_matrix(data, preds))
    with Planes(_meta(stride=16)) as c:  # its own meta by default
        evaluate_split([c], data)
    assert c.feeds[0].shape == (1, 3, 16, 16)


def test_runners_and_metas_must_pair_up() -> None:
    data, _ = _frames()
    with Planes(_meta()) as a, Planes(_meta()) as b, pytest.raises(ValueError):
        evaluate_split([a, b], data, [_meta()])
    with Planes(_meta()) as a, pytest.raises(ValueError):  # a meta too many is an error as well
        evaluate_split([a], data, [_meta(), _meta()])


def test_a_runner_of_another_class_count_is_refused() -> None:
    data, _ = _frames()
    with Planes(_meta(), "ref") as a, Planes(_meta(), "other", classes=4) as b, pytest.raises(ToolkitError) as e:
        evaluate_split([a, b], data)
    assert str(e.value) == "'other' outputs 4 classes, ref 3: compare models of the same label space"


def test_a_runner_without_metadata_is_refused() -> None:
    data, _ = _frames()
    with Planes(None, "bare") as runner, pytest.raises(ToolkitError) as e:
        evaluate_split([runner], data)
    assert str(e.value) == ("bare: carries no toolkit metadata (classes, normalisation, input size); evaluate its "
                            "source checkpoint, or compare backends with `toolkit parity`")


def test_the_frame_hook_sees_every_frames_outputs() -> None:
    data, preds = _frames()
    seen: list[tuple] = []
    with Planes(_meta()) as runner:
        evaluate_split([runner], data, on_frame=lambda *args: seen.append(args))
    assert [s[0] for s in seen] == [0, 1]
    for (index, image, label, logits, maps), p in zip(seen, preds, strict=True):
        im, lb = data.load(index)
        assert image is im and label is lb
        assert len(logits) == 1 and logits[0].shape == (3, 8, 8) and np.array_equal(maps[0], p)


def test_the_progress_bar_only_when_asked(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from tqdm import tqdm

    # A lock of this test's own: tqdm's default one holds a multiprocessing semaphore shared with every forked
    # process, and its refresh() does not release it when drawing raises (a broken bar under mutation testing),
    # which then blocked every later mutant's process (all timeouts).
    monkeypatch.setattr(tqdm, "_lock", threading.RLock(), raising=False)
    data, _ = _frames()
    with Planes(_meta()) as runner:
        evaluate_split([runner], data)
        assert capsys.readouterr().err == ""
        evaluate_split([runner], data, progress=True)
        err = capsys.readouterr().err
        evaluate_split([runner], data, progress=True, desc="parity")
        named = capsys.readouterr().err
    assert "eval: " in err and "0/2 " in err and "img/s" in err
    assert "\n" not in err and err.endswith("\r")  # leave=False: the bar is wiped, not left on its own line
    assert "parity: " in named and "eval" not in named


# --- open_split / evaluate_model ---------------------------------------------------------------------------

def test_open_split_synthetic_and_camvid(synthetic_dir: Path) -> None:
    from toolkit.data import SyntheticScenes
    from toolkit.data.synthetic import SYNTHETIC_SIZE, SYNTHETIC_VAL, SYNTHETIC_VAL_SEED_OFFSET

    ds = open_split("synthetic")
    assert len(ds) == SYNTHETIC_VAL and ds.load(0)[0].shape[:2] == SYNTHETIC_SIZE
    ref = SyntheticScenes(2, size=SYNTHETIC_SIZE, seed=SYNTHETIC_VAL_SEED_OFFSET)
    assert np.array_equal(ds.load(1)[0], ref.load(1)[0]) and len(open_split(Path("synthetic"), limit=2)) == 2
    assert len(open_split(synthetic_dir)) == 4 and len(open_split(synthetic_dir, "train")) == 8  # val by default
    assert len(open_split(synthetic_dir, "train", limit=3)) == 3


class _Factory:
    """Stands in for toolkit.backend.make_runner: records its arguments, returns a Planes runner."""

    def __init__(self, meta: ModelMeta | None) -> None:
        self.meta, self.calls = meta, []

    def __call__(self, model: object, **kw: object) -> Planes:
        self.calls.append((model, kw))
        return Planes(self.meta, "m", classes=self.meta.num_classes if self.meta else 3)


def _synthetic_info() -> DatasetInfo:
    from toolkit.data import synthetic_info

    return synthetic_info()


def test_evaluate_model_scores_the_split_on_the_device_asked(synthetic_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    import threading

    from tqdm import tqdm

    import toolkit.backend

    monkeypatch.setattr(tqdm, "_lock", threading.RLock(), raising=False)  # see the progress-bar test

    info = _synthetic_info()
    factory = _Factory(_meta(input_size=(64, 96), info=info))
    monkeypatch.setattr(toolkit.backend, "make_runner", factory)
    scores, matrix, meta, ds = evaluate_model("m.onnx", synthetic_dir, limit=3)
    assert capsys.readouterr().err == ""  # no progress bar unless asked
    assert factory.calls == [("m.onnx", {"device": "cpu"})] and len(ds) == 3 and meta is factory.meta
    assert matrix.sum() == scores.num_pixels > 0 and matrix.shape == (info.num_classes,) * 2
    evaluate_model(None, synthetic_dir, "train", device="cuda", progress=True)
    assert factory.calls[-1] == (None, {"device": "cuda"}) and "eval: " in capsys.readouterr().err


def test_evaluate_model_refusals(synthetic_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import toolkit.backend

    monkeypatch.setattr(toolkit.backend, "make_runner", _Factory(None))
    with pytest.raises(ToolkitError) as e:
        evaluate_model("m.onnx", synthetic_dir)
    assert str(e.value) == ("m.onnx: carries no toolkit metadata (classes, normalisation, input size); evaluate its "
                            "source checkpoint, or compare backends with `toolkit parity`")
    monkeypatch.setattr(toolkit.backend, "make_runner", _Factory(_meta()))
    with pytest.raises(DatasetError) as d:
        evaluate_model("m.onnx", synthetic_dir)
    assert str(d.value) == (f"model classes ['a', 'b', 'c'] differ from the dataset's "
                            f"{list(_synthetic_info().class_names)}: evaluate on the data it was trained for")
