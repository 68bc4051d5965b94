"""Softmax regression and the multilayer perceptron.

Softmax regression is the linear classifier p(y|x) = softmax(Wx + b) (LeCun et al. 1998 report 12.0 % MNIST
test error for it). The MLP stacks affine maps and non-linearities, h_{l+1} = act(BN(W_l h_l + b_l)), with
optional batch norm (Ioffe & Szegedy, 2015) and dropout (Srivastava et al., 2014) after each hidden layer.
"""

from collections.abc import Sequence

from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name; unknown names list the known ones."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def flat_features(in_channels: int, image_size: int | None) -> int:
    """Inputs are [N, C, H, W] images (flattened here) or [N, C] vectors when image_size is None."""
    return in_channels * (image_size * image_size if image_size else 1)


class MLP(nn.Module):
    """A fully connected classifier. `hidden=()` gives softmax regression."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int | None = None,
        hidden: Sequence[int] = (256, 128),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = flat_features(in_channels, image_size)
        for size in hidden:
            layers.append(nn.Linear(width, size, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


def softmax_regression(in_channels: int = 1, num_classes: int = 10, image_size: int | None = 28) -> MLP:
    return MLP(in_channels, num_classes, image_size, hidden=())
