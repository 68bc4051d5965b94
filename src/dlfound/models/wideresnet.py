"""Wide residual networks: Zagoruyko & Komodakis, "Wide residual networks", BMVC 2016.

Widening residual networks beats deepening them: WRN-d-k is a pre-activation ResNet of depth d = 6n + 4 with
stages of 16k, 32k and 64k channels (k is the `widen_factor`), n basic blocks B(3,3) per stage
(BN-ReLU-conv3x3-BN-ReLU-[dropout]-conv3x3), 1x1 projection shortcuts where the width changes, and a
16-channel 3x3 stem. WRN-28-10 has 36.5M parameters and reaches 3.89 % CIFAR-10 and 18.85 % CIFAR-100 test
error with dropout 0.3 between the convolutions (mean/std-normalised input; szagoruyko/wide-residual-networks).

Built as `resnet.ResNet(block="preact_basic", widths=[16k, 32k, 64k], stem_width=16, dropout=...)`.
"""

from dlfound.models.registry import register_model
from dlfound.models.resnet import ResNet


def wide_resnet(
    in_channels: int = 3,
    num_classes: int = 10,
    image_size: int | None = None,
    depth: int = 28,
    widen_factor: int = 10,
    dropout: float = 0.0,
    **kwargs,
) -> ResNet:
    if (depth - 4) % 6:
        raise ValueError(f"wide ResNets have depth 6n+4 (16, 22, 28, 40, ...), got {depth}")
    n = (depth - 4) // 6
    k = widen_factor
    return ResNet(
        in_channels,
        num_classes,
        image_size,
        block="preact_basic",
        layers=[n, n, n],
        widths=[16 * k, 32 * k, 64 * k],
        stem_width=16,
        dropout=dropout,
        **kwargs,
    )


@register_model("classifier")
def wrn28_10(**kwargs) -> ResNet:
    kwargs.setdefault("depth", 28)
    kwargs.setdefault("widen_factor", 10)
    return wide_resnet(**kwargs)
