"""TensorRT backend: preflight, plugin library, engine build (loaders), sidecar checks and the runner.

Nothing here imports ``tensorrt`` or the CUDA bindings at module level: the preflight, shape-profile,
sidecar and plugin-discovery code runs on any machine, and only building or running an engine needs
TensorRT 10/11 and a GPU. Written against the TensorRT 10/11 Python API documentation; see
docs/TENSORRT.md for what was executed where.
"""
