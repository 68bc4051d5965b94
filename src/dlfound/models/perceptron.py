"""Rosenblatt's perceptron (Rosenblatt 1958): a linear threshold unit, y = sign(w . x + b).

One unit per class, each separating its class from the rest (one-vs-rest; for two classes the second unit
mirrors the first), the prediction the unit with the largest score. The weights start at zero, where Novikoff's
mistake bound counts from. The network has no training rule of its own: `task=perceptron` updates it on
mistakes, with no gradient (dlfound.tasks.perceptron); trained by gradient descent on cross-entropy
(`task=classification`) it is softmax regression.
"""

import torch
from torch import nn

from dlfound.models.mlp import flat_features
from dlfound.models.registry import register_model


class Perceptron(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, image_size: int | None = None):
        super().__init__()
        self.num_features = flat_features(in_channels, image_size)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(self.num_features, num_classes)
        nn.init.zeros_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


@register_model("classifier")
def perceptron(in_channels: int = 2, num_classes: int = 2, image_size: int | None = None) -> Perceptron:
    """Rosenblatt's perceptron: one linear threshold unit per class, weights from zero."""
    return Perceptron(in_channels, num_classes, image_size)
