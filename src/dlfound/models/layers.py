"""Building blocks shared by several model families: stems, convolutions, activations, squeeze-excitation.

A family file keeps the blocks that are its paper's own (ResNet's residual blocks, DenseNet's dense layers, ...);
what two or more families use lives here, so that no family imports another for a layer.
"""

import torch
from torch import nn

# -- stems -------------------------------------------------------------------------------------------------------
# "small": a 3x3 stride-1 first layer without the early pools, for 28-64 px inputs (MNIST, CIFAR); "imagenet": the
# paper's own stem for 224 px inputs.
STEMS = ("small", "imagenet")


def check_stem(stem: str, small: str = "3x3 conv, for 28-64 px", imagenet: str = "224 px") -> None:
    """A clear error for an unknown stem; `small` and `imagenet` say what each stem is in this family."""
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; choose small ({small}) or imagenet ({imagenet})")


# -- convolutions --------------------------------------------------------------------------------------------------
def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias (a batch norm follows it)."""
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias (a batch norm follows it)."""
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class ConvNormAct(nn.Sequential):
    """conv -> [BN] -> activation, with "same" padding for odd kernels; the conv has a bias only without BN.

    Children are numbered 0 (conv), 1 (BN) and then the activation, as GoogLeNet's and MobileNetV2's checkpoints
    (and torchvision's Conv2dNormActivation) name them.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        norm: bool = True,
        eps: float = 1e-5,
        activation: type[nn.Module] = nn.ReLU,
    ):
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=not norm
            )
        ]
        if norm:
            layers.append(nn.BatchNorm2d(out_channels, eps=eps))
        layers.append(activation(inplace=True))
        super().__init__(*layers)


# -- activations ---------------------------------------------------------------------------------------------------
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


# -- squeeze-and-excitation ----------------------------------------------------------------------------------------
class SqueezeExcitation(nn.Module):
    """Hu, Shen & Sun, "Squeeze-and-excitation networks", CVPR 2018: x * sigmoid(W2 relu(W1 avgpool(x))).

    Squeeze each channel of U [N, C, H, W] to its mean z, excite with W1: C -> C/r and W2: C/r -> C (r is the
    `reduction` ratio, 16 in the paper), and rescale the channels by s = sigmoid(W2 relu(W1 z)). The fully
    connected layers are written as 1x1 convolutions.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        if reduction < 1:
            raise ValueError(f"the SE reduction ratio must be a positive integer, got {reduction}")
        hidden = max(1, channels // reduction)
        self.squeeze = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)  # W1: C -> C/r
        self.fc2 = nn.Conv2d(hidden, channels, 1)  # W2: C/r -> C

    def forward(self, x):
        s = self.squeeze(x)
        s = self.fc2(self.fc1(s).relu()).sigmoid()
        return x * s


# -- heads ---------------------------------------------------------------------------------------------------------
def all_but_last(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Run every layer of `layers` but the last: a classifier's features, the input of its final linear layer.
    (Slicing, layers[:-1], would build a new Sequential at every call.)"""
    *body, _ = layers
    for layer in body:
        x = layer(x)
    return x


# -- shapes --------------------------------------------------------------------------------------------------------
def data_shape_of(in_channels: int, image_size: int | None) -> tuple[int, ...]:
    """[C, H, W] for square images, [C] for flat vectors (image_size None, as the 2-D toy sets)."""
    return (in_channels, image_size, image_size) if image_size else (in_channels,)
