"""Softmax regression and the multilayer perceptron.

Softmax regression is the linear classifier p(y|x) = softmax(Wx + b) (LeCun et al. 1998 report 12.0 % MNIST
test error for it). The MLP stacks affine maps and non-linearities, h_{l+1} = act(BN(W_l h_l + b_l)), with
optional batch norm (Ioffe & Szegedy, 2015) and dropout (Srivastava et al., 2014) after each hidden layer.
"""

from collections.abc import Sequence

import torch
from torch import nn

from dlfound.models.manual_backprop import Layers
from dlfound.models.registry import register_model


def flat_features(in_channels: int, image_size: int | None) -> int:
    """Inputs are [N, C, H, W] images (flattened here) or [N, C] vectors when image_size is None."""
    return in_channels * (image_size * image_size if image_size else 1)


class MLP(nn.Module):
    """A fully connected classifier. `hidden=()` gives softmax regression.

    `forward_features` gives the last hidden layer's output (after its dropout), or the flattened input when
    there is no hidden layer: the input of the output layer, `num_features` wide. `backprop="manual"` builds it
    from layers whose backward pass is written by hand (dlfound.models.manual_backprop; no batch norm or dropout),
    and gives it the hand-differentiated loss as `cross_entropy`.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int | None = None,
        hidden: Sequence[int] = (256, 128),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        backprop: str = "autograd",
    ):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        kind = Layers(backprop)
        kind.refuse("batch norm", batch_norm)
        kind.refuse("dropout", dropout > 0)
        layers: list[nn.Module] = [kind.Flatten()]
        width = flat_features(in_channels, image_size)
        for size in hidden:
            layers.append(kind.Linear(width, size, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(kind.activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        self.features = nn.Sequential(*layers)
        self.classifier = kind.Linear(width, num_classes)
        self.num_features = width
        if kind.manual:
            self.cross_entropy = kind.cross_entropy

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


@register_model("classifier")
def mlp(in_channels: int = 1, num_classes: int = 10, image_size: int | None = 28, **kwargs) -> MLP:
    """The multilayer perceptron; `hidden`, `activation`, `dropout`, `batch_norm`, `backprop` as `MLP`."""
    return MLP(in_channels, num_classes, image_size, **kwargs)


@register_model("classifier")
def deep_mlp(
    in_channels: int = 1,
    num_classes: int = 10,
    image_size: int | None = 28,
    depth: int = 10,
    width: int = 128,
    activation: str = "sigmoid",
    **kwargs,
) -> MLP:
    """`depth` hidden layers of `width` units without normalisation: the deep, narrow network through which
    sigmoid gradients vanish (Glorot & Bengio 2010); `batch_norm`, `dropout` as `MLP`."""
    return MLP(in_channels, num_classes, image_size, hidden=[width] * depth, activation=activation, **kwargs)


@register_model("classifier")
def softmax(in_channels: int = 1, num_classes: int = 10, image_size: int | None = 28) -> MLP:
    """Softmax regression: one affine map to the class scores."""
    return MLP(in_channels, num_classes, image_size, hidden=())


softmax_regression = softmax  # the name of older configs' targets
