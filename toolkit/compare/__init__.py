"""Parity: run candidates (ONNX fp32/fp16/int8, TensorRT engines) and a PyTorch reference on one split."""

from toolkit.compare.comparator import Comparator, compare_files, compare_with_provenance, measure_speed, tolerance_for
from toolkit.compare.drift import DriftAccumulator, DriftOptions, WorstFrame, WorstFrames, boundary_band
from toolkit.compare.results import DEFAULT_TOLERANCES, CandidateResult, ParityReport, Tolerance

__all__ = ["DEFAULT_TOLERANCES", "CandidateResult", "Comparator", "DriftAccumulator", "DriftOptions", "ParityReport",
           "Tolerance", "WorstFrame", "WorstFrames", "boundary_band", "compare_files", "compare_with_provenance",
           "measure_speed",
           "tolerance_for"]
