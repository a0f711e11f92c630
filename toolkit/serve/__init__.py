"""Serving on Triton Inference Server: ``toolkit serve`` (PyTriton), ``toolkit export-triton`` (a native
model repository) and the client helpers behind the ``triton://`` remote backend.

Nothing here imports PyTriton or tritonclient at import time; each entry point checks for them.
"""
