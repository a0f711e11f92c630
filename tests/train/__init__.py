"""Tests of the training package, imported as ``segnet_train`` (its installed name) from this checkout's ``train/``.

Loaded here, once, so every test module (and the processes DDP's test spawns, which import this package
first) can ``import segnet_train``.
"""

from toolkit.cli.train import training_package

training_package()
