"""Densely connected networks: Huang, Liu, van der Maaten & Weinberger, "Densely connected convolutional
networks", CVPR 2017.

Inside a dense block every layer receives the feature maps of all preceding layers, x_l = H_l([x_0, ...,
x_{l-1}]) (concatenation), and adds `growth_rate` (k) new maps. H_l is BN-ReLU-conv3x3; the bottleneck
version (DenseNet-B) puts BN-ReLU-conv1x1 to `bn_size` * k maps first. Between blocks a transition layer
(BN-ReLU-conv1x1-avgpool2) halves the side and keeps a fraction theta (`compression`, DenseNet-C; 0.5 in
DenseNet-BC) of the channels. Feature reuse makes the networks accurate with few parameters.

- ImageNet DenseNet-121/169/201 (k=32, blocks of 6-12-{24,32,48}-16 layers, theta=0.5): a 7x7 stride-2 conv
  with 64 maps, BN-ReLU and a 3x3 stride-2 max-pool as stem; parameter counts equal torchvision's.
- DenseNet-BC for CIFAR (`densenet_bc`): three dense blocks of (depth - 4) / 6 bottleneck layers, a 3x3
  stem with 2k maps: depth 100, k=12 has 0.8M parameters (4.51 % CIFAR-10+ error, 22.27 % CIFAR-100+);
  depth 250, k=24: 15.3M; depth 190, k=40: 25.6M. `bottleneck=False, compression=1` gives the plain DenseNet
  (depth 40, k=12: 1.0M, 16 stem maps).

The small stem is the paper's CIFAR one: a single 3x3 convolution (the first dense layer normalises it).
`forward_features` gives the pooled features after the final BN-ReLU (`num_features`), the classifier's input.
Initialisation as torchvision: He normal for convolutions, BN weights 1 and biases 0, classifier bias 0.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlfound.models import init as weight_init
from dlfound.models.layers import check_stem, conv1x1, conv3x3
from dlfound.models.registry import register_model


class DenseLayer(nn.Module):
    """H_l: [BN-ReLU-conv1x1 to bn_size*k,] BN-ReLU-conv3x3 to k new maps, concatenated to the input."""

    def __init__(self, in_features: int, growth_rate: int, bn_size: int | None, drop_rate: float):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        if bn_size:
            layers += [nn.BatchNorm2d(width), nn.ReLU(inplace=True), conv1x1(width, bn_size * growth_rate)]
            width = bn_size * growth_rate
        layers += [nn.BatchNorm2d(width), nn.ReLU(inplace=True), conv3x3(width, growth_rate)]
        if drop_rate > 0:
            layers.append(nn.Dropout(drop_rate))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return torch.cat([x, self.layers(x)], 1)


class DenseBlock(nn.Sequential):
    def __init__(self, num_layers: int, in_features: int, growth_rate: int, bn_size: int | None, drop_rate: float):
        super().__init__(
            *(DenseLayer(in_features + i * growth_rate, growth_rate, bn_size, drop_rate) for i in range(num_layers))
        )


class Transition(nn.Sequential):
    """BN-ReLU-conv1x1 (compress the channels) - 2x2 average pool."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(
            nn.BatchNorm2d(in_features),
            nn.ReLU(inplace=True),
            conv1x1(in_features, out_features),
            nn.AvgPool2d(2, stride=2),
        )


class DenseNet(nn.Module):
    """Stem, dense blocks joined by transitions, BN-ReLU, global average pool, linear classifier.

    Args:
        growth_rate: k, the maps each layer adds.
        block_config: layers per dense block.
        num_init_features: maps of the stem convolution (64 on ImageNet, 2k for DenseNet-BC on CIFAR).
        bn_size: bottleneck width factor (4 in the paper); 0 or None for plain H_l without bottleneck.
        compression: theta in (0, 1], the fraction of channels a transition keeps.
        drop_rate: dropout after each new map (the paper uses 0.2 on CIFAR without augmentation).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1000,
        image_size: int | None = None,
        growth_rate: int = 32,
        block_config: Sequence[int] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int | None = 4,
        compression: float = 0.5,
        drop_rate: float = 0.0,
        stem: str = "small",
    ):
        super().__init__()
        check_stem(stem)
        if not 0.0 < compression <= 1.0:
            raise ValueError(f"compression (theta) must be in (0, 1], got {compression}")
        if stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, num_init_features, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(num_init_features),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        else:
            self.stem = nn.Sequential(conv3x3(in_channels, num_init_features))
        blocks: list[nn.Module] = []
        features = num_init_features
        for i, num_layers in enumerate(block_config):
            blocks.append(DenseBlock(num_layers, features, growth_rate, bn_size, drop_rate))
            features += num_layers * growth_rate
            if i != len(block_config) - 1:
                out = int(features * compression)
                blocks.append(Transition(features, out))
                features = out
        self.blocks = nn.Sequential(*blocks)
        self.final_norm = nn.BatchNorm2d(features)
        self.classifier = nn.Linear(features, num_classes)
        self.num_features = features
        weight_init.kaiming_normal_(self, "fan_in")
        weight_init.zero_bias_(self, nn.Linear)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.final_norm(self.blocks(self.stem(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


def _densenet(k: int, blocks: Sequence[int], stem_features: int, **kwargs) -> DenseNet:
    """A DenseNet with these growth rate, blocks and stem maps, unless the keywords say otherwise."""
    return DenseNet(**{"growth_rate": k, "block_config": blocks, "num_init_features": stem_features, **kwargs})


# ImageNet DenseNets (Table 1): k=32, 64 stem maps; with the small stem, the CIFAR reproductions' DenseNet-121.
@register_model("classifier")
def densenet121(**kwargs) -> DenseNet:
    return _densenet(32, (6, 12, 24, 16), 64, **kwargs)


@register_model("classifier")
def densenet169(**kwargs) -> DenseNet:
    return _densenet(32, (6, 12, 32, 32), 64, **kwargs)


@register_model("classifier")
def densenet201(**kwargs) -> DenseNet:
    return _densenet(32, (6, 12, 48, 32), 64, **kwargs)


def densenet_bc(
    depth: int = 100, growth_rate: int = 12, compression: float = 0.5, bottleneck: bool = True, **kwargs
) -> DenseNet:
    """The paper's CIFAR DenseNets: three blocks of (depth - 4) / 6 bottleneck layers (DenseNet-BC) or
    (depth - 4) / 3 plain layers (DenseNet, with bottleneck=False and compression=1)."""
    per_layer = 6 if bottleneck else 3
    if (depth - 4) % per_layer:
        raise ValueError(f"CIFAR DenseNets have depth {per_layer}n+4 (DenseNet-BC: 100, 190, 250), got {depth}")
    n = (depth - 4) // per_layer
    kwargs.setdefault("num_init_features", 2 * growth_rate if bottleneck else 16)
    return DenseNet(
        growth_rate=growth_rate,
        block_config=(n, n, n),
        bn_size=4 if bottleneck else None,
        compression=compression,
        **kwargs,
    )


@register_model("classifier")
def densenet_bc100(**kwargs) -> DenseNet:
    kwargs.setdefault("depth", 100)
    kwargs.setdefault("growth_rate", 12)
    return densenet_bc(**kwargs)
