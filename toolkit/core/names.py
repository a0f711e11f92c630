"""Names that several layers share: the runner tensors, the unpool plugin op, the mask-subgraph tag.

``input`` is N x 3 x H x W float32, normalised; ``logits`` is N x K x H x W float32. The plugin names
are shared with the TensorRT plugin (engines/unpool/unpoolPlugin.h), the ONNX exporter and the PyTorch
op; a test asserts they match. ``GROUP_TAG`` names the nodes of an expanded plugin node
(``<plugin node>/mask/<role>``), the contract of the reverse pass.
"""

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
OUTPUT_STRIDE = 8  # three 2x2 pools: H and W of the input must be multiples of this

PLUGIN_OP_TYPE = "SegNetMaskUnpool"
PLUGIN_VERSION = "1"
PLUGIN_NAMESPACE = ""
PLUGIN_DOMAIN = "trt.plugins"

GROUP_TAG = "/mask/"
