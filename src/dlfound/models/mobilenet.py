"""MobileNetV2: Sandler, Howard, Zhu, Zhmoginov & Chen, "MobileNetV2: inverted residuals and linear
bottlenecks", CVPR 2018.

The inverted residual block expands a thin input by a factor t with a 1x1 convolution, filters it with a
cheap 3x3 depthwise convolution (one filter per channel), and projects it back with a 1x1 convolution that has
no non-linearity (the linear bottleneck: ReLU6 in a low-dimensional space would destroy information). The
residual connects the thin ends when the shapes agree. Table 2 lists the stages as (t, c, n, s): expansion,
output channels, repeats, stride of the first repeat; `width_mult` scales every width (rounded to multiples
of 8).

- ImageNet stem: a 3x3 stride-2 convolution with 32 maps; 3,504,872 parameters at width 1.0 (as torchvision).
- Small stem: stride 1 in the first convolution and in the second stage (24 channels), as the CIFAR
  reproductions do, so 32x32 input ends at 4x4 instead of 1x1.
`forward_features` gives the pooled `last_channel` (1280) features after the dropout, the input of the classifier's
linear layer (`num_features`).
Initialisation as torchvision: He normal (fan-out) convolutions, N(0, 0.01) classifier, zero biases.
"""

from collections.abc import Sequence

import torch
from torch import nn

from dlfound.models import init as weight_init
from dlfound.models.layers import ConvNormAct, all_but_last, check_stem, conv1x1
from dlfound.models.registry import register_model

# Table 2: t (expansion), c (output channels), n (repeats), s (stride of the first repeat).
SETTINGS = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of divisor, never more than 10 % below value (the reference rounding)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn_relu6(
    in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, groups: int = 1
) -> ConvNormAct:
    return ConvNormAct(in_channels, out_channels, kernel_size, stride, groups, activation=nn.ReLU6)


class InvertedResidual(nn.Module):
    """1x1 expand (ReLU6) -> 3x3 depthwise (ReLU6) -> 1x1 linear projection, + x when shapes agree."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = int(round(in_channels * expand_ratio))
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(conv_bn_relu6(in_channels, hidden, kernel_size=1))
        layers += [
            conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),  # depthwise
            conv1x1(hidden, out_channels),
            nn.BatchNorm2d(out_channels),
        ]  # linear
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    """Args: width_mult; settings (the (t, c, n, s) table); dropout before the classifier; stem."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1000,
        image_size: int | None = None,
        stem: str = "small",
        width_mult: float = 1.0,
        settings: Sequence[Sequence[int]] | None = None,
        dropout: float = 0.2,
        last_channel: int = 1280,
    ):
        super().__init__()
        check_stem(stem, small="stride-1 stem, for 28-64 px")
        settings = [list(s) for s in (settings or SETTINGS)]
        if any(len(s) != 4 for s in settings):
            raise ValueError("each MobileNetV2 setting is [t, c, n, s]")
        small = stem == "small"
        if small:
            settings[1][3] = 1  # the CIFAR variants keep the resolution in the 24-channel stage too
        width = make_divisible(32 * width_mult)
        self.last_channel = make_divisible(last_channel * max(1.0, width_mult))
        layers: list[nn.Module] = [conv_bn_relu6(in_channels, width, stride=1 if small else 2)]
        for t, c, n, s in settings:
            out = make_divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(width, out, s if i == 0 else 1, t))
                width = out
        layers.append(conv_bn_relu6(width, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.last_channel, num_classes))
        self.num_features = self.last_channel
        weight_init.kaiming_normal_(self, "fan_out")
        weight_init.normal_(self, 0.01, nn.Linear)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return all_but_last(self.classifier, torch.flatten(self.pool(self.features(x)), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier[-1](self.forward_features(x))


@register_model("classifier")
def mobilenet_v2(in_channels: int = 3, num_classes: int = 1000, image_size: int | None = None, **kwargs) -> MobileNetV2:
    return MobileNetV2(in_channels, num_classes, image_size, **kwargs)
