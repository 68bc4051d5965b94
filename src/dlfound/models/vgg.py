"""VGG: Simonyan & Zisserman, "Very deep convolutional networks for large-scale image recognition", ICLR 2015.

Depth with the smallest useful filters: stacks of 3x3 convolutions (stride 1, padding 1, ReLU) separated by
2x2 max-pools, the channels doubling 64 -> 512 as the side halves. Two 3x3 layers see a 5x5 field and three a
7x7 one, with fewer parameters and more non-linearities than one large filter. Configurations A, B, D and E
(VGG-11/13/16/19, Table 1) end in three fully connected layers (4096, 4096, classes) with dropout 0.5.
`batch_norm=True` adds BN after every convolution (Ioffe & Szegedy 2015; torchvision's vgg*_bn).

- ImageNet head (stem="imagenet"): adaptive average pooling to 7x7 and the paper's classifier; parameter counts
  equal torchvision's (VGG-16: 138,357,544).
- Small head (stem="small"): the CIFAR reproductions' (kuangliu/pytorch-cifar): the same convolutions, global
  average pooling of the 1x1 map and a single linear layer 512 -> classes (VGG-16-BN: 14.7M). The first
  convolution is already 3x3, so the two variants differ only in the head. Max-pools round up (ceil_mode), so
  28x28 input shrinks 28-14-7-4-2-1 instead of vanishing; powers of two are unaffected.
`forward_features` gives the input of the last linear layer (`num_features`): the second hidden layer's output
after its ReLU and dropout (ImageNet head), or the pooled 512 features (small head).
Initialisation as torchvision: He normal (fan-out) convolutions, N(0, 0.01) linear layers, zero biases.
"""

from collections.abc import Sequence

import torch
from torch import nn

from dlfound.models import init as weight_init
from dlfound.models.layers import all_but_last, check_stem
from dlfound.models.registry import register_model

# Numbers are 3x3 conv widths, "M" a 2x2 max-pool (the paper's Table 1 columns A, B, D, E).
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_features(in_channels: int, config: Sequence[int | str], batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_channels
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
            continue
        layers.append(nn.Conv2d(width, int(item), 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(item)))
        layers.append(nn.ReLU(inplace=True))
        width = int(item)
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """Args: config: A, B, D, E (VGG-11/13/16/19) or a list of widths and "M"; batch_norm; dropout and
    hidden (the width of the two hidden fully connected layers) of the ImageNet head."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1000,
        image_size: int | None = None,
        config: str | Sequence[int | str] = "D",
        batch_norm: bool = False,
        stem: str = "small",
        dropout: float = 0.5,
        hidden: int = 4096,
    ):
        super().__init__()
        check_stem(stem, small="CIFAR head", imagenet="the paper's, 224 px")
        if isinstance(config, str):
            if config not in CONFIGS:
                raise ValueError(f"unknown VGG config {config!r}; choose one of {', '.join(CONFIGS)} or list widths")
            config = CONFIGS[config]
        self.features = make_features(in_channels, config, batch_norm)
        width = [c for c in config if c != "M"][-1]
        if stem == "imagenet":
            self.pool = nn.AdaptiveAvgPool2d(7)
            self.classifier = nn.Sequential(
                nn.Flatten(),
                nn.Linear(int(width) * 7 * 7, hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Linear(hidden, hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Linear(hidden, num_classes),
            )
        else:
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(int(width), num_classes))
        self.num_features = self.classifier[-1].in_features
        weight_init.kaiming_normal_(self, "fan_out")
        weight_init.normal_(self, 0.01, nn.Linear)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return all_but_last(self.classifier, self.pool(self.features(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier[-1](self.forward_features(x))


def _vgg(
    layers: str, bn: bool, in_channels: int = 3, num_classes: int = 1000, image_size: int | None = None, **kwargs
) -> VGG:
    """VGG of configuration `layers` with batch norm `bn`, unless the keywords `config`, `batch_norm` say otherwise."""
    return VGG(in_channels, num_classes, image_size, **{"config": layers, "batch_norm": bn, **kwargs})


@register_model("classifier")
def vgg11(**kwargs) -> VGG:
    return _vgg("A", False, **kwargs)


@register_model("classifier")
def vgg11_bn(**kwargs) -> VGG:
    return _vgg("A", True, **kwargs)


@register_model("classifier")
def vgg13(**kwargs) -> VGG:
    return _vgg("B", False, **kwargs)


@register_model("classifier")
def vgg13_bn(**kwargs) -> VGG:
    return _vgg("B", True, **kwargs)


@register_model("classifier")
def vgg16(**kwargs) -> VGG:
    return _vgg("D", False, **kwargs)


@register_model("classifier")
def vgg16_bn(**kwargs) -> VGG:
    return _vgg("D", True, **kwargs)


@register_model("classifier")
def vgg19(**kwargs) -> VGG:
    return _vgg("E", False, **kwargs)


@register_model("classifier")
def vgg19_bn(**kwargs) -> VGG:
    return _vgg("E", True, **kwargs)
