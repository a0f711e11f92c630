"""Model registry and architectures; importing this package fills the registry."""

from toolkit.models import segnet as _segnet  # noqa: F401  (registers enhanced, segnet, enhanced_s2)
from toolkit.models.registry import create_model, list_models, model_output_stride, register_model
from toolkit.models.unpool import UNPOOL_MODES, set_unpool_mode

__all__ = ["UNPOOL_MODES", "create_model", "list_models", "model_output_stride", "register_model", "set_unpool_mode"]
