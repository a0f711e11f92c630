"""FP16 conversion and INT8 (Q/DQ) quantization of ONNX models, with cached calibration."""

from toolkit.quant.calibration import CALIB_METHODS, ImageFeeds, calibration_images
from toolkit.quant.fp16 import convert_fp16
from toolkit.quant.int8 import TARGETS, QuantReport, quantize_int8
from toolkit.quant.quantize_file import Calibration, QuantizeResult, quantize_file

__all__ = ["CALIB_METHODS", "TARGETS", "Calibration", "ImageFeeds", "QuantReport", "QuantizeResult",
           "calibration_images", "convert_fp16", "quantize_file", "quantize_int8"]
