"""ONNX export (three unpooling lowerings), the plugin <-> mask graph passes, metadata and checks."""

from toolkit.export.lowering import collapse_mask_groups, expand_plugin_nodes, register_plugin_schema
from toolkit.export.metadata import read_model_meta, read_props
from toolkit.export.onnx_export import ExportOnnx, export_checkpoint, export_onnx
from toolkit.export.onnx_io import load_onnx, save_onnx

__all__ = [
    "ExportOnnx", "collapse_mask_groups", "expand_plugin_nodes", "export_checkpoint", "export_onnx", "load_onnx",
    "read_model_meta", "read_props", "register_plugin_schema", "save_onnx",
]
