"""Training for the toolkit's SegNets (``toolkit train``): losses, schedule, loop, resumable state, DDP.

Imports ``toolkit``; ``toolkit`` imports it only inside the ``train`` command.
"""

from .loop import TrainConfig, train

__all__ = ["TrainConfig", "train"]
