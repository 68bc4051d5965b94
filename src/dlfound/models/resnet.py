"""Residual networks: He, Zhang, Ren & Sun, "Deep residual learning for image recognition", CVPR 2016, and
He, Zhang, Ren & Sun, "Identity mappings in deep residual networks", ECCV 2016 (pre-activation).

Each block learns a residual F(x) added to its input, y = relu(F(x) + shortcut(x)), so a deep stack only has
to learn corrections to the identity and gradients reach early layers through the shortcuts. The basic block
is two 3x3 convolutions; the bottleneck block is 1x1 (reduce) - 3x3 - 1x1 (expand by 4). Pre-activation
blocks reorder each branch to BN-ReLU-conv, y = x + F(x), keeping the shortcut path a pure identity.

One `ResNet` class builds every variant from `block`, `layers` (blocks per stage) and `widths` (channels per
stage, before the block's expansion):
- ImageNet ResNet-18/34/50/101/152 (paper Table 1, torchvision's "v1.5" with the stride in the 3x3 conv of
  the bottleneck; the same parameter counts as v1).
- The paper's CIFAR ResNets (section 4.2): 6n+2 layers in three stages of 16, 32 and 64 channels, with
  parameter-free option A shortcuts (stride-2 subsampling plus zero channel padding): ResNet-20 has 0.27M
  parameters, ResNet-110 1.7M.
- Pre-activation ResNets (`block="preact_basic"` / `"preact_bottleneck"`), e.g. PreAct-ResNet-110 and -164.
- ResNeXt (`groups`, `width_per_group`; see resnext.py), SE-ResNet (`se_reduction`; see senet.py) and the
  wide ResNets (`dropout`, `stem_width`; see wideresnet.py) are the same class with those options set.

Stems: "imagenet" is the paper's 7x7 stride-2 convolution and 3x3 stride-2 max-pool (224 -> 56); "small" is
one 3x3 stride-1 convolution without the max-pool, as in the paper's CIFAR networks and kuangliu/pytorch-cifar.
Initialisation follows the paper (He et al. 2015 "kaiming" normal, fan-out) with BN weights 1 and biases 0;
`zero_init_residual=True` starts every residual branch at zero (Goyal et al. 2017), as torchvision offers.
`shortcut=False` removes every shortcut: the "plain" networks the paper compares against (Fig. 1 and 6).
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlfound.models import init as weight_init
from dlfound.models.layers import SqueezeExcitation, check_stem, conv1x1, conv3x3
from dlfound.models.registry import register_model


class PadShortcut(nn.Module):
    """Option A of the paper: subsample by `stride` and append zero channels; adds no parameters."""

    def __init__(self, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.extra, self.stride = out_planes - in_planes, stride

    def forward(self, x):
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))


def make_shortcut(in_planes: int, out_planes: int, stride: int, kind: str | bool, norm: bool) -> nn.Module | None:
    """None is the identity. Where the shape changes: option A (zero padding) or B (1x1 projection, + BN
    unless the block is pre-activated and its input already normalised). A plain block (kind False) has none."""
    if kind is False or (stride == 1 and in_planes == out_planes):
        return None
    if kind == "A":
        return PadShortcut(in_planes, out_planes, stride)
    layers = [conv1x1(in_planes, out_planes, stride)]
    if norm:
        layers.append(nn.BatchNorm2d(out_planes))
    return nn.Sequential(*layers)


def shortcut_of(block: nn.Module, x: torch.Tensor) -> torch.Tensor | float:
    """What a block adds to its branch: the shortcut of x, or nothing (0) in a plain network."""
    if block.plain:
        return 0.0
    return x if block.shortcut is None else block.shortcut(x)


class BasicBlock(nn.Module):
    """y = relu(BN(conv3x3(relu(BN(conv3x3(x))))) + shortcut(x)); SE rescales the branch before the sum."""

    expansion = 1

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int = 1,
        shortcut: str | bool = "B",
        groups: int = 1,
        width_per_group: int = 64,
        se_reduction: int | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        if groups != 1 or width_per_group != 64:
            raise ValueError("basic blocks have no groups or width_per_group; use block=bottleneck (ResNeXt)")
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = SqueezeExcitation(planes, se_reduction) if se_reduction else nn.Identity()
        self.shortcut = make_shortcut(in_planes, planes, stride, shortcut, norm=True)
        self.plain = shortcut is False

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(self.dropout(out))))
        identity = shortcut_of(self, x)
        return F.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (stride, `groups` for ResNeXt) -> 1x1 expand by 4, then add the shortcut and ReLU.

    The 3x3 convolution has width = planes * (width_per_group / 64) * groups channels: `planes` for ResNet,
    cardinality C times bottleneck width d for ResNeXt (Xie et al. 2017, template (c) with grouped conv).
    """

    expansion = 4

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int = 1,
        shortcut: str | bool = "B",
        groups: int = 1,
        width_per_group: int = 64,
        se_reduction: int | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        width = int(planes * (width_per_group / 64.0)) * groups
        out_planes = planes * self.expansion
        self.conv1 = conv1x1(in_planes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv3 = conv1x1(width, out_planes)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.se = SqueezeExcitation(out_planes, se_reduction) if se_reduction else nn.Identity()
        self.shortcut = make_shortcut(in_planes, out_planes, stride, shortcut, norm=True)
        self.plain = shortcut is False

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.se(self.bn3(self.conv3(self.dropout(out))))
        identity = shortcut_of(self, x)
        return F.relu(out + identity)


class PreActBasicBlock(nn.Module):
    """y = x + conv3x3(relu(BN(conv3x3(relu(BN(x)))))) (He et al. 2016b). A projection shortcut takes the
    pre-activated input, as in the authors' code. `dropout` between the convolutions is the wide ResNet's."""

    expansion = 1

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int = 1,
        shortcut: str | bool = "B",
        groups: int = 1,
        width_per_group: int = 64,
        se_reduction: int | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        if groups != 1 or width_per_group != 64:
            raise ValueError("basic blocks have no groups or width_per_group; use block=preact_bottleneck")
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = conv3x3(planes, planes)
        self.se = SqueezeExcitation(planes, se_reduction) if se_reduction else nn.Identity()
        self.shortcut = make_shortcut(in_planes, planes, stride, shortcut, norm=False)
        self.plain = shortcut is False

    def forward(self, x):
        pre = F.relu(self.bn1(x))
        identity = shortcut_of(self, pre)
        out = self.conv1(pre)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return self.se(out) + identity


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck: BN-ReLU-1x1, BN-ReLU-3x3 (stride), BN-ReLU-1x1 (expand by 4), plus x."""

    expansion = 4

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int = 1,
        shortcut: str | bool = "B",
        groups: int = 1,
        width_per_group: int = 64,
        se_reduction: int | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        width = int(planes * (width_per_group / 64.0)) * groups
        out_planes = planes * self.expansion
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = conv1x1(in_planes, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn3 = nn.BatchNorm2d(width)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv3 = conv1x1(width, out_planes)
        self.se = SqueezeExcitation(out_planes, se_reduction) if se_reduction else nn.Identity()
        self.shortcut = make_shortcut(in_planes, out_planes, stride, shortcut, norm=False)
        self.plain = shortcut is False

    def forward(self, x):
        pre = F.relu(self.bn1(x))
        identity = shortcut_of(self, pre)
        out = self.conv1(pre)
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(self.dropout(F.relu(self.bn3(out))))
        return self.se(out) + identity


BLOCKS = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
    "preact_basic": PreActBasicBlock,
    "preact_bottleneck": PreActBottleneck,
}


class ResNet(nn.Module):
    """Stem, len(layers) stages of residual blocks (each stage after the first halves the side and starts
    with a strided block), global average pooling and one linear classifier.

    Args:
        block: basic, bottleneck, preact_basic or preact_bottleneck.
        layers: blocks per stage, e.g. [2, 2, 2, 2] (ResNet-18) or [3, 3, 3] (ResNet-20).
        widths: `planes` of each stage; a stage outputs planes * expansion channels.
        stem: small (3x3 stride-1 conv) or imagenet (7x7 stride-2 conv + max-pool).
        stem_width: channels of the stem convolution (default widths[0]; 16 for wide ResNets).
        shortcut: A (zero-padding identity, parameter-free) or B (1x1 projection) where the shape changes;
            False: no shortcuts at all, the paper's plain network of the same depth.
        groups, width_per_group: ResNeXt's cardinality C and bottleneck width d.
        se_reduction: add a squeeze-and-excitation block with this reduction ratio r to every block.
        dropout: dropout between the convolutions of each block (wide ResNets).
        zero_init_residual: zero the last BN of each (post-activation) block so that it starts as identity.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1000,
        image_size: int | None = None,
        block: str = "basic",
        layers: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (64, 128, 256, 512),
        stem: str = "small",
        stem_width: int | None = None,
        shortcut: str | bool = "B",
        groups: int = 1,
        width_per_group: int = 64,
        se_reduction: int | None = None,
        dropout: float = 0.0,
        zero_init_residual: bool = False,
    ):
        super().__init__()
        check_stem(stem)
        if block not in BLOCKS:
            raise ValueError(f"unknown block {block!r}; choose one of {', '.join(BLOCKS)}")
        if shortcut is not False and shortcut not in ("A", "B"):  # not `in (.., False)`: 0 == False
            raise ValueError(
                f"unknown shortcut {shortcut!r}; choose A (zero padding), B (projection) or false "
                "(no shortcuts: the plain network)"
            )
        if len(layers) != len(widths) or not layers:
            raise ValueError(f"layers {list(layers)} and widths {list(widths)} must list one entry per stage")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        block_cls = BLOCKS[block]
        preact = block.startswith("preact")
        stem_width = stem_width or widths[0]
        self.stem = self._make_stem(in_channels, stem_width, stem, preact)
        options = dict(
            shortcut=shortcut,
            groups=groups,
            width_per_group=width_per_group,
            se_reduction=se_reduction,
            dropout=dropout,
        )
        stages, in_planes = [], stem_width
        for i, (count, planes) in enumerate(zip(layers, widths)):
            blocks = []
            for j in range(count):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(block_cls(in_planes, planes, stride, **options))
                in_planes = planes * block_cls.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        # Pre-activation networks end with the BN-ReLU that their last block leaves out.
        self.final_norm = nn.Sequential(nn.BatchNorm2d(in_planes), nn.ReLU(inplace=True)) if preact else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        self.num_features = in_planes
        self.reset_parameters(zero_init_residual)

    @staticmethod
    def _make_stem(in_channels: int, width: int, stem: str, preact: bool) -> nn.Sequential:
        if stem == "imagenet":
            return nn.Sequential(
                nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        if preact:  # the first block normalises and activates the stem's output itself
            return nn.Sequential(conv3x3(in_channels, width))
        return nn.Sequential(conv3x3(in_channels, width), nn.BatchNorm2d(width), nn.ReLU(inplace=True))

    def reset_parameters(self, zero_init_residual: bool = False) -> None:
        # He normal (fan-out) convolutions; the SE blocks' 1x1 convolutions keep their default biases.
        weight_init.kaiming_normal_(self, "fan_out", zero_bias=False)
        if zero_init_residual:
            for m in self.modules():
                if hasattr(m, "zero_init_last"):
                    m.zero_init_last()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features [N, num_features], the input of `fc`."""
        x = self.final_norm(self.stages(self.stem(x)))
        return torch.flatten(self.pool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


def _resnet(
    block: str,
    layers: Sequence[int],
    in_channels: int = 3,
    num_classes: int = 1000,
    image_size: int | None = None,
    **kwargs,
) -> ResNet:
    return ResNet(in_channels, num_classes, image_size, block=block, layers=layers, **kwargs)


# ImageNet ResNets (He et al. 2016, Table 1); with the small stem they are the usual CIFAR ResNet-18/34/50.
@register_model("classifier")
def resnet18(**kwargs) -> ResNet:
    return _resnet("basic", [2, 2, 2, 2], **kwargs)


@register_model("classifier")
def resnet34(**kwargs) -> ResNet:
    return _resnet("basic", [3, 4, 6, 3], **kwargs)


@register_model("classifier")
def resnet50(**kwargs) -> ResNet:
    return _resnet("bottleneck", [3, 4, 6, 3], **kwargs)


@register_model("classifier")
def resnet101(**kwargs) -> ResNet:
    return _resnet("bottleneck", [3, 4, 23, 3], **kwargs)


@register_model("classifier")
def resnet152(**kwargs) -> ResNet:
    return _resnet("bottleneck", [3, 8, 36, 3], **kwargs)


# The CIFAR ResNets of section 4.2: depth 6n+2, stages of 16/32/64 channels, option A shortcuts.
def cifar_resnet(depth: int = 20, **kwargs) -> ResNet:
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNets have depth 6n+2 (20, 32, 44, 56, 110, ...), got {depth}")
    n = (depth - 2) // 6
    kwargs.setdefault("shortcut", "A")
    return _resnet("basic", [n, n, n], widths=kwargs.pop("widths", [16, 32, 64]), **kwargs)


@register_model("classifier")
def resnet20(**kwargs) -> ResNet:
    return cifar_resnet(20, **kwargs)


@register_model("classifier")
def resnet32(**kwargs) -> ResNet:
    return cifar_resnet(32, **kwargs)


@register_model("classifier")
def resnet44(**kwargs) -> ResNet:
    return cifar_resnet(44, **kwargs)


@register_model("classifier")
def resnet56(**kwargs) -> ResNet:
    return cifar_resnet(56, **kwargs)


@register_model("classifier")
def resnet110(**kwargs) -> ResNet:
    return cifar_resnet(110, **kwargs)


# Pre-activation ResNets (He et al. 2016b): the 18-layer one of the CIFAR reproductions, and the paper's
# CIFAR ResNet-110 (basic, 1.7M) and ResNet-164 (bottleneck, 9n+2 layers, 1.7M) with projection shortcuts.
@register_model("classifier")
def preact_resnet18(**kwargs) -> ResNet:
    return _resnet("preact_basic", [2, 2, 2, 2], **kwargs)


def preact_cifar_resnet(depth: int = 110, bottleneck: bool = False, **kwargs) -> ResNet:
    per_block = 9 if bottleneck else 6
    if (depth - 2) % per_block:
        raise ValueError(f"pre-activation CIFAR ResNets have depth {per_block}n+2, got {depth}")
    n = (depth - 2) // per_block
    block = "preact_bottleneck" if bottleneck else "preact_basic"
    return _resnet(block, [n, n, n], widths=kwargs.pop("widths", [16, 32, 64]), **kwargs)


@register_model("classifier")
def preact_resnet110(**kwargs) -> ResNet:
    return preact_cifar_resnet(110, bottleneck=False, **kwargs)


@register_model("classifier")
def preact_resnet164(**kwargs) -> ResNet:
    return preact_cifar_resnet(164, bottleneck=True, **kwargs)
