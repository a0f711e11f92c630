"""SegNet deployment toolkit: train, export, quantize and run SegNet-family segmentation models.

Heavy optional libraries (onnxruntime, tensorrt, cv2, CUDA bindings) are imported lazily by the
modules that need them, so ``import toolkit`` and ``toolkit --help`` work on a CPU-only machine.
"""

__version__ = "0.1.0"
