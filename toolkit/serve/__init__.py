"""Serving on Triton Inference Server: ``toolkit serve`` (PyTriton) and ``toolkit export-triton`` (a native
model repository). The client side (the ``triton://`` remote backend) is ``toolkit.backend.triton``.

Nothing here imports PyTriton or tritonclient at import time; each entry point checks for them.
"""
