"""AOTInductor backend: a checkpoint compiled ahead of time into a ``.pt2`` package (``package.py``) and its runner."""
