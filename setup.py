"""Package layout only (the rest is in pyproject.toml): ``train/`` is installed as ``segnet_train``.

pyproject's ``packages.find`` cannot rename a folder; a top-level ``train`` in site-packages would
collide with any other project's ``train`` module (docs/DESIGN.md, "The training package").
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["toolkit", "toolkit.*"]), "segnet_train"],
      package_dir={"segnet_train": "train"})
