"""LeNet-5: LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to document recognition", 1998.

Two convolution + subsampling stages extract features (C1: 6 maps of 5x5, S2, C3: 16 maps of 5x5, S4), and
three fully connected layers (C5: 120, F6: 84, output: classes) classify them. The paper feeds 32x32 images;
28x28 MNIST is zero-padded by 2 in C1 to the same geometry. The paper's squashing function is a scaled tanh
and its subsampling a trainable average; `activation="relu", pool="max"` gives the modern variant.
`dropout` > 0 (Srivastava et al. 2014) drops the input of each fully connected layer (C5, F6, output), the
network that MC dropout averages at test time (Gal & Ghahramani 2016); at 0 the layers are absent, so the
state_dict keys are those of the plain network. `backprop="manual"` builds it from layers whose backward pass is
written by hand (dlfound.models.manual_backprop: convolution through unfold, pooling, flatten; no dropout), with
the hand-differentiated loss as its `cross_entropy`.
"""

import torch
from torch import nn

from dlfound.models.layers import all_but_last
from dlfound.models.manual_backprop import Layers
from dlfound.models.registry import register_model

POOLS = ("avg", "max")


def lenet_geometry(image_size: int | None, vector_model: str) -> tuple[int, int]:
    """(C1's padding, the side of S4's maps): C1 pads 28x28 to the paper's 32x32; after C1, S2, C3 (no padding)
    and S4 the side is ((s + 2p - 4) // 2 - 4) // 2. Inputs too small for that, or flat, are a clear error that
    names the family's model for vectors."""
    if image_size is None:
        raise ValueError(f"LeNet-5 needs images, but this data set gives flat vectors; use model={vector_model}")
    padding = 2 if image_size < 32 else 0
    side = ((image_size + 2 * padding - 4) // 2 - 4) // 2
    if side < 1:
        raise ValueError(
            f"LeNet-5 needs images of at least 12x12 pixels, got {image_size}x{image_size}; "
            f"use model={vector_model} for smaller inputs"
        )
    return padding, side


class LeNet5(nn.Module):
    """`forward_features` gives F6's 84 activations, the input of the output layer (`num_features`)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int = 28,
        activation: str = "tanh",
        pool: str = "avg",
        dropout: float = 0.0,
        backprop: str = "autograd",
    ):
        super().__init__()
        kind = Layers(backprop)
        kind.refuse("dropout", dropout > 0)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if pool not in POOLS:
            raise ValueError(f"unknown pool {pool!r}; choose one of {', '.join(POOLS)}")
        padding, side = lenet_geometry(image_size, vector_model="mlp")
        self.features = nn.Sequential(
            kind.Conv2d(in_channels, 6, kernel_size=5, padding=padding),  # C1
            kind.activation(activation),
            kind.pools[pool](kernel_size=2, stride=2),  # S2
            kind.Conv2d(6, 16, kernel_size=5),  # C3
            kind.activation(activation),
            kind.pools[pool](kernel_size=2, stride=2),  # S4
        )

        def drop() -> list[nn.Module]:
            return [nn.Dropout(dropout)] if dropout > 0 else []

        self.classifier = nn.Sequential(
            kind.Flatten(),
            *drop(),
            kind.Linear(16 * side * side, 120),  # C5
            kind.activation(activation),
            *drop(),
            kind.Linear(120, 84),  # F6
            kind.activation(activation),
            *drop(),
            kind.Linear(84, num_classes),
        )
        self.num_features = 84
        if kind.manual:
            self.cross_entropy = kind.cross_entropy

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return all_but_last(self.classifier, self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier[-1](self.forward_features(x))


@register_model("classifier")
def lenet5(in_channels: int = 1, num_classes: int = 10, image_size: int = 28, **kwargs) -> LeNet5:
    return LeNet5(in_channels, num_classes, image_size, **kwargs)
