"""Test helpers, in one place: tiny models, ONNX graphs, TensorRT stand-ins, runners, reports, ports and tools.

Test modules import these (``from tests.helpers.models import tiny_onnx``); fixtures stay in the conftest.py
of the folder that uses them. No test module imports another test module or a conftest.py
(tests/test_helpers_layout.py holds that).
"""
