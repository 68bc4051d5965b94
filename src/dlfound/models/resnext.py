"""ResNeXt: Xie, Girshick, Dollar, Tu & He, "Aggregated residual transformations for deep neural networks",
CVPR 2017.

A ResNeXt block aggregates C parallel transformations of the same topology (C is the `cardinality`),
y = x + sum_{i=1..C} T_i(x), each T_i a 1x1 -> 3x3 -> 1x1 bottleneck of width d. Summing C paths equals one
bottleneck whose 3x3 convolution is grouped into C groups of d channels (the paper's equivalent form (c)),
which is how it is built here: `resnet.Bottleneck` with groups=C and width_per_group=d. Increasing
cardinality is a more effective way to gain accuracy than going deeper or wider at the same complexity.

- ResNeXt-50 (32x4d) for ImageNet: ResNet-50's stages with C=32, d=4 (25,028,904 parameters, as torchvision).
- ResNeXt-29 for CIFAR (section 5.3): a 3x3 64-channel stem, three stages of three bottleneck blocks (9 x 3
  + 2 = 29 layers) with outputs 256, 512 and 1024 channels and d=64 in the first stage (doubled per stage):
  8x64d has 34.4M parameters, 16x64d 68.1M.
"""

from dlfound.models.registry import register_model
from dlfound.models.resnet import ResNet


@register_model("classifier")
def resnext50_32x4d(
    in_channels: int = 3,
    num_classes: int = 1000,
    image_size: int | None = None,
    cardinality: int = 32,
    width: int = 4,
    **kwargs,
) -> ResNet:
    return ResNet(
        in_channels,
        num_classes,
        image_size,
        block="bottleneck",
        layers=[3, 4, 6, 3],
        groups=cardinality,
        width_per_group=width,
        **kwargs,
    )


def resnext29(
    in_channels: int = 3,
    num_classes: int = 10,
    image_size: int | None = None,
    cardinality: int = 8,
    width: int = 64,
    **kwargs,
) -> ResNet:
    """ResNeXt-29 (C x d): stage widths 64, 128, 256 (x4 output channels) give 3x3 convolutions of C*d, 2C*d
    and 4C*d channels."""
    return ResNet(
        in_channels,
        num_classes,
        image_size,
        block="bottleneck",
        layers=[3, 3, 3],
        widths=[64, 128, 256],
        groups=cardinality,
        width_per_group=width,
        **kwargs,
    )


@register_model("classifier")
def resnext29_8x64d(**kwargs) -> ResNet:
    return resnext29(cardinality=kwargs.pop("cardinality", 8), width=kwargs.pop("width", 64), **kwargs)


@register_model("classifier")
def resnext29_16x64d(**kwargs) -> ResNet:
    return resnext29(cardinality=kwargs.pop("cardinality", 16), width=kwargs.pop("width", 64), **kwargs)
