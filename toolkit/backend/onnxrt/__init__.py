"""ONNX Runtime backend: session loader (CPU/CUDA/TensorRT EP) and runner; plugin nodes via custom ops."""
