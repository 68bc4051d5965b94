"""Network in network: Lin, Chen & Yan, "Network in network", ICLR 2014.

An "mlpconv" layer replaces the linear filter of a convolution by a small multilayer perceptron shared over
positions: a kxk convolution followed by two 1x1 convolutions (the "cascaded cross-channel parametric
pooling"), each with ReLU. Instead of fully connected layers, the last mlpconv produces one map per class and
global average pooling turns each map into its class score, which adds no parameters and resists overfitting.

- Small stem: the paper's CIFAR-10 network (from the authors' released Caffe definition): three mlpconv layers
  (5x5-192, 1x1-160, 1x1-96 | 5x5-192, 1x1-192, 1x1-192 | 3x3-192, 1x1-192, 1x1-classes), 3x3 stride-2 max-
  then average-pool with dropout 0.5 between them, and global average pooling: 0.97M parameters, 8.81 %
  CIFAR-10 test error with augmentation (10.41 % without).
- ImageNet stem: the paper reports no ImageNet network; this is the four-mlpconv ImageNet NiN of the
  authors' model-zoo release as laid out in Dive into Deep Learning (Zhang et al.): 11x11-96 stride 4, 5x5-256,
  3x3-384 and 3x3-classes mlpconvs with 3x3 stride-2 max-pools and dropout 0.5 before the last (7.4M at 1000
  classes). No torchvision reference exists.
NiN has no fully connected layer: the scores are the averaged class maps, so `forward_features` gives those
(`num_features` = num_classes) and the head is the identity, forward(x) = forward_features(x).
Pools round up (Caffe's convention), so 32 -> 16 -> 8 and 28 -> 14 -> 7. The paper states no initialisation;
He normal is used here. Without batch norm, NiN wants a smaller learning rate than the BN networks (~0.01-0.05).
"""

import torch
from torch import nn

from dlfound.models import init as weight_init
from dlfound.models.layers import check_stem
from dlfound.models.registry import register_model


def mlpconv(
    in_channels: int, widths: tuple[int, int, int], kernel_size: int, stride: int = 1, padding: int = 0
) -> list[nn.Module]:
    """kxk conv -> ReLU -> 1x1 conv -> ReLU -> 1x1 conv -> ReLU: a shared MLP over each kxk patch."""
    a, b, c = widths
    return [
        nn.Conv2d(in_channels, a, kernel_size, stride=stride, padding=padding),
        nn.ReLU(inplace=True),
        nn.Conv2d(a, b, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(b, c, 1),
        nn.ReLU(inplace=True),
    ]


class NiN(nn.Module):
    """Args: stem (small: the paper's CIFAR network; imagenet: the ImageNet NiN); dropout between mlpconvs."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        image_size: int | None = None,
        stem: str = "small",
        dropout: float = 0.5,
    ):
        super().__init__()
        check_stem(stem, small="the paper's CIFAR NiN")
        if stem == "small":
            layers = [
                *mlpconv(in_channels, (192, 160, 96), 5, padding=2),
                nn.MaxPool2d(3, stride=2, ceil_mode=True),
                nn.Dropout(dropout),
                *mlpconv(96, (192, 192, 192), 5, padding=2),
                nn.AvgPool2d(3, stride=2, ceil_mode=True),
                nn.Dropout(dropout),
                *mlpconv(192, (192, 192, num_classes), 3, padding=1),
            ]
        else:
            layers = [
                *mlpconv(in_channels, (96, 96, 96), 11, stride=4),
                nn.MaxPool2d(3, stride=2, ceil_mode=True),
                *mlpconv(96, (256, 256, 256), 5, padding=2),
                nn.MaxPool2d(3, stride=2, ceil_mode=True),
                *mlpconv(256, (384, 384, 384), 3, padding=1),
                nn.MaxPool2d(3, stride=2, ceil_mode=True),
                nn.Dropout(dropout),
                *mlpconv(384, (num_classes, num_classes, num_classes), 3, padding=1),
            ]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)  # global average pooling: one score per class map
        self.num_features = num_classes
        weight_init.kaiming_normal_(self, "fan_in")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The globally averaged class maps [N, num_classes], which are the scores."""
        return torch.flatten(self.pool(self.features(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


@register_model("classifier")
def nin(in_channels: int = 3, num_classes: int = 10, image_size: int | None = None, **kwargs) -> NiN:
    """Network in network; `stem`, `dropout` as `NiN`."""
    return NiN(in_channels, num_classes, image_size, **kwargs)
