"""Squeeze-and-excitation networks: Hu, Shen & Sun, "Squeeze-and-excitation networks", CVPR 2018.

An SE block recalibrates the channels of a feature map U [N, C, H, W]: it squeezes each channel to one number
by global average pooling, z = mean_{h,w} U, excites with a bottleneck of two fully connected layers,
s = sigmoid(W2 relu(W1 z)) with W1: C -> C/r and W2: C/r -> C (r is the `reduction` ratio, 16 in the paper),
and scales the channels, U * s. In a residual network it rescales the residual branch before the addition.

`SqueezeExcitation` plugs into any residual family through its `se_reduction` option (ResNet, pre-activation
ResNet, ResNeXt, the CIFAR ResNets, wide ResNets: `model.se_reduction=16`). SE-ResNet-50 at 224x224 has
28,088,024 parameters (ResNet-50's 25,557,032 plus 2,530,992 in the SE blocks; the paper: "~2.5 million
additional parameters"), the count of the authors' and timm's `seresnet50`. SE-ResNet-18 with the small stem
is the SENet-18 of the CIFAR reproductions.
"""

from torch import nn


class SqueezeExcitation(nn.Module):
    """x * sigmoid(W2 relu(W1 avgpool(x))); the fully connected layers are written as 1x1 convolutions."""

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


def se_resnet18(se_reduction: int = 16, **kwargs):
    # Imported here, not at the top: resnet.py imports SqueezeExcitation from this module.
    from dlfound.models.resnet import resnet18

    return resnet18(se_reduction=se_reduction, **kwargs)


def se_resnet50(se_reduction: int = 16, **kwargs):
    from dlfound.models.resnet import resnet50

    return resnet50(se_reduction=se_reduction, **kwargs)
