"""The guards of the uint8-codes pass (toolkit/quant/mask_codes.py) on hand-built nodes: which Q/DQ parameters
count as one per-tensor quantization and which MaxPool as the encoder's plain 2x2 pool. The pass itself is
checked bit for bit on a real graph in test_quant.py::test_cpu_int8_unpools_on_codes_bit_identically."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from toolkit.quant.mask_codes import _is_plain_pool, _per_tensor_qparams

SCALE, ZERO = np.array(0.05, np.float32), np.array(0, np.uint8)
INITS = {"s": SCALE, "z": ZERO, "s_ch": np.array([0.05, 0.1], np.float32), "z_ch": np.array([0, 0], np.uint8),
         "s_zero": np.array(0.0, np.float32), "s_neg": np.array(-0.05, np.float32)}


def _dq(*inputs: str) -> object:
    return helper.make_node("DequantizeLinear", ["x", *inputs], ["y"])


def test_a_scalar_positive_scale_and_zero_point_are_one_quantization() -> None:
    assert _per_tensor_qparams(_dq("s", "z"), INITS) == (SCALE.tobytes(), ZERO.tobytes())


@pytest.mark.parametrize("inputs", [
    ("s",),             # no zero point given (the default 0 is not read as a code here)
    ("s", "z_dyn"),     # a zero point computed at run time, not an initializer
    ("s_dyn", "z"),     # a scale computed at run time
    ("s_ch", "z"),      # per-channel scale
    ("s", "z_ch"),      # per-channel zero point
    ("s_zero", "z"),    # scale 0: dequantization is not strictly increasing, so codes do not order like values
    ("s_neg", "z"),     # a negative scale reverses the order
])
def test_anything_else_is_not(inputs: tuple[str, ...]) -> None:
    assert _per_tensor_qparams(_dq(*inputs), INITS) is None


def _pool(op: str = "MaxPool", outputs: tuple[str, ...] = ("p",), **attrs: object) -> object:
    return helper.make_node(op, ["x"], list(outputs), **{"kernel_shape": [2, 2], "strides": [2, 2], **attrs})


def test_the_plain_pool_is_a_2x2_stride_2_maxpool_with_one_output() -> None:
    assert _is_plain_pool(_pool())
    assert _is_plain_pool(_pool(pads=[0, 0, 0, 0], auto_pad="NOTSET"))  # defaults spelled out (bytes in ONNX)
    assert not _is_plain_pool(_pool("AveragePool"))
    assert not _is_plain_pool(_pool(outputs=("p", "indices")))  # the indices form pools differently
    assert not _is_plain_pool(_pool(kernel_shape=[3, 3]))
    assert not _is_plain_pool(_pool(ceil_mode=1))
