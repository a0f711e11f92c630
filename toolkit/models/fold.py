"""BatchNorm folded into the convolution before it, for inference: one kernel instead of two per block.

In eval mode BatchNorm is an affine map per channel, so conv -> BN equals one conv with scaled weights and a
bias. On a GPU that halves the kernels of every conv block (each of them a pass over the feature map), which
is most of what ``torch.compile`` otherwise gains; ``TorchRunner`` folds on its fast path (CUDA, or bf16 on a
CPU) and leaves the fp32 CPU reference as trained.
"""

from __future__ import annotations

import copy
import itertools

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in eval mode) with every Conv2d -> BatchNorm2d pair inside an nn.Sequential fused;
    the BatchNorm becomes an Identity. Other modules are left as they are."""
    model = copy.deepcopy(model).eval()
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for first, second in itertools.pairwise(names):
            conv, bn = seq._modules[first], seq._modules[second]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq._modules[first] = fuse_conv_bn_eval(conv, bn)
                seq._modules[second] = nn.Identity()
    return model
