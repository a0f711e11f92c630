"""pad_to_multiple: the one padding rule every frame, profile and benchmark shape goes through."""

from __future__ import annotations

import pytest

from toolkit.core.shapes import check_multiple, pad_to_multiple
from toolkit.errors import InputShapeError


@pytest.mark.parametrize(("hw", "padded"), [((360, 480), (360, 480)), ((180, 240), (184, 240)),
                                            ((361, 479), (368, 480)), ((1, 1), (8, 8)), ((0, 8), (0, 8))])
def test_pads_up_to_multiples_of_the_stride(hw: tuple[int, int], padded: tuple[int, int]) -> None:
    assert pad_to_multiple(*hw) == padded
    assert pad_to_multiple(*hw, 8) == padded


def test_other_multiples() -> None:
    assert pad_to_multiple(5, 7, 1) == (5, 7) and pad_to_multiple(5, 7, 4) == (8, 8)
    with pytest.raises(ValueError, match="multiple=0"):
        pad_to_multiple(5, 7, 0)


def test_as_hw_takes_two_numbers_from_a_file() -> None:
    from toolkit.core.shapes import as_hw

    assert as_hw(["360", "480"]) == (360, 480) and as_hw([96, 128]) == (96, 128)
    with pytest.raises(ValueError, match="input_size 1x360x480: expected H x W"):
        as_hw([1, 360, 480], "input_size")


def test_a_colour_or_mean_of_other_than_three_values_is_malformed_metadata() -> None:
    from toolkit.core.dataset_info import DatasetInfo
    from toolkit.errors import DatasetError

    good = {"class_names": ["a", "b"], "palette": [[1, 2, 3], [4, 5, 6]], "mean": [0.5, 0.5, 0.5]}
    assert DatasetInfo.from_dict(good).palette == ((1, 2, 3), (4, 5, 6))
    with pytest.raises(DatasetError, match=r"colour \[4, 5, 6, 7\]: expected three values"):
        DatasetInfo.from_dict({**good, "palette": [[1, 2, 3], [4, 5, 6, 7]]})
    with pytest.raises(DatasetError, match=r"mean \[0.5\]: expected three values"):
        DatasetInfo.from_dict({**good, "mean": [0.5]})


def test_check_multiple_names_the_padding_at_the_models_stride() -> None:
    check_multiple(368, 480, 16)
    check_multiple(360, 480)  # 8: every stride-8 SegNet
    with pytest.raises(InputShapeError, match="input 360x480: H and W must be multiples of 16; pad to 368x480"):
        check_multiple(360, 480, 16)
    with pytest.raises(InputShapeError, match="x 1x3x360x480: .* pad to 1x3x368x480!"):
        check_multiple(360, 480, 16, what="x", prefix="1x3x", hint="!")


def test_onnx_metadata_without_a_stride_reads_as_8() -> None:
    """Files exported before the key existed are stride-8 SegNets; new files carry their own."""
    import onnx

    from toolkit.core.meta import ModelMeta
    from toolkit.core.metadata import meta_props, read_model_meta, write_props
    from toolkit.data import synthetic_info

    meta = ModelMeta("enhanced_s2", 4, synthetic_info(), input_size=(360, 480), output_stride=16)
    props = meta_props(meta, "mask")
    assert props["output_stride"] == "16" and "multiples of 16" in props["input_layout"]
    new = read_model_meta(write_props(onnx.ModelProto(), props))
    assert new is not None and new.output_stride == 16 and new.padded_input_size == (368, 480)
    del props["output_stride"]
    old = read_model_meta(write_props(onnx.ModelProto(), props))
    assert old is not None and old.output_stride == 8 and old.padded_input_size == (360, 480)

