"""The linear model f(x) = W x, whose weights are the iterate of an optimisation experiment.

With the mean squared error it is least squares (data=quadratic, task=least_squares): the loss is a quadratic in
W, so what the optimizer does to W is what convergence theory describes. No bias (the quadratic's minimiser is
the weight vector alone) and the weights start at zero, so every run of one problem starts from the same point
and its distance to the optimum is the norm of the optimum.
"""

import torch
from torch import nn

from dlfound.models.mlp import flat_features
from dlfound.models.registry import register_model


class LinearModel(nn.Module):
    """f(x) = W x for flattened inputs; `forward_features` is the flattened input (`num_features` wide)."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int | None = None):
        super().__init__()
        self.num_features = flat_features(in_channels, image_size)
        self.flatten = nn.Flatten()
        self.readout = nn.Linear(self.num_features, num_classes, bias=False)
        nn.init.zeros_(self.readout.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.forward_features(x))


@register_model("classifier")
def linear(in_channels: int = 1, num_classes: int = 1, image_size: int | None = None) -> LinearModel:
    """The linear model W x without bias, started at W = 0: least squares with task=least_squares."""
    return LinearModel(in_channels, num_classes, image_size)
