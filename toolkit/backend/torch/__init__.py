"""PyTorch backend: checkpoint loader and eager runner."""
