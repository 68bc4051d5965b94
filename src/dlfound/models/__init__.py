"""The model zoo: plain `torch.nn.Module`s, usable from a notebook without Lightning or Hydra.

Every classifier shares one constructor contract: `in_channels`, `num_classes`, `image_size`, then the
family's own options. `image_size` is the side of a square input (None for flat vectors).
"""

from dlfound.models.lenet import LeNet5, lenet5
from dlfound.models.mlp import MLP, softmax_regression

__all__ = ["MLP", "LeNet5", "lenet5", "softmax_regression"]
