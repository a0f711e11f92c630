"""The bottom layer, below ``export``, ``backend`` and everything else that handles model files:

- ``onnx_file``: load an ONNX file (one clear error for a bad one), save it atomically, and read what the
  graph says about itself: precision, unpool lowering, op counts, input/output names, metadata_props;
- ``metadata``: the toolkit's ``metadata_props`` (write, read, rebuild a ``ModelMeta``);
- ``meta``: ``ModelMeta``, what every model file says about its model, and ``dataset_info``: its label
  space and normalisation (``DatasetInfo``); neither needs torch;
- ``names``: the runner tensor names, the unpool plugin's op names, the mask-subgraph tag;
- ``loader``: ``BaseLoader`` and ``resolve`` (Polygraphy-style lazy loaders).

It imports only ``onnx``, the standard library, ``toolkit.errors`` and ``toolkit.files`` (no torch, no
other toolkit package); ``tests/test_import_direction.py`` keeps it that way.
"""
