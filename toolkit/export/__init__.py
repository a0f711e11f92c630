"""ONNX export (three unpooling lowerings), the plugin <-> mask graph passes and the export checks.

Reading, writing and describing ONNX files (``load_onnx``, ``save_onnx``, metadata, precision and
lowering detection) is ``toolkit.core``, the layer below both this package and ``toolkit.backend``.
"""

from toolkit.export.lowering import collapse_mask_groups, expand_plugin_nodes, register_plugin_schema
from toolkit.export.onnx_export import ExportOnnx, export_checkpoint, export_file, export_onnx

__all__ = [
    "ExportOnnx", "collapse_mask_groups", "expand_plugin_nodes", "export_checkpoint", "export_file", "export_onnx",
    "register_plugin_schema",
]
