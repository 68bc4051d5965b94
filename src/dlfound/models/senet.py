"""Squeeze-and-excitation networks: Hu, Shen & Sun, "Squeeze-and-excitation networks", CVPR 2018.

An SE block recalibrates the channels of a feature map U [N, C, H, W]: it squeezes each channel to one number
by global average pooling, z = mean_{h,w} U, excites with a bottleneck of two fully connected layers,
s = sigmoid(W2 relu(W1 z)) with W1: C -> C/r and W2: C/r -> C (r is the `reduction` ratio, 16 in the paper),
and scales the channels, U * s. In a residual network it rescales the residual branch before the addition.

The block, `SqueezeExcitation`, lives in `dlfound.models.layers` (and is re-exported here); it plugs into any
residual family through its `se_reduction` option (ResNet, pre-activation ResNet, ResNeXt, the CIFAR ResNets,
wide ResNets: `model.se_reduction=16`). SE-ResNet-50 at 224x224 has 28,088,024 parameters (ResNet-50's
25,557,032 plus 2,530,992 in the SE blocks; the paper: "~2.5 million additional parameters"), the count of the
authors' and timm's `seresnet50`. SE-ResNet-18 with the small stem is the SENet-18 of the CIFAR reproductions.
"""

from dlfound.models.layers import SqueezeExcitation  # noqa: F401 (re-exported)
from dlfound.models.registry import register_model
from dlfound.models.resnet import ResNet, resnet18, resnet50


@register_model("classifier")
def se_resnet18(se_reduction: int = 16, **kwargs) -> ResNet:
    return resnet18(se_reduction=se_reduction, **kwargs)


@register_model("classifier")
def se_resnet50(se_reduction: int = 16, **kwargs) -> ResNet:
    return resnet50(se_reduction=se_reduction, **kwargs)
