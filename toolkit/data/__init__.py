"""Datasets (CamVid list-file layout, procedural synthetic scenes), transforms and label-space info."""

from toolkit.data.camvid import CamVid, list_splits, read_image_rgb, read_label
from toolkit.data.synthetic import SyntheticScenes, make_scene, synthetic_info, write_synthetic_camvid
from toolkit.data.transforms import EvalTransform, TrainTransform, normalize

__all__ = [
    "CamVid", "EvalTransform", "SyntheticScenes", "TrainTransform", "list_splits", "make_scene", "normalize",
    "read_image_rgb",
    "read_label", "synthetic_info", "write_synthetic_camvid",
]
