"""Image restoration networks: image in, image of the same size out. Every one takes `in_channels` (1 gray or
luma, 3 RGB) and returns that many channels, on inputs of any height and width.

- DnCNN: Zhang, Zuo, Chen, Meng & Zhang, "Beyond a Gaussian Denoiser: Residual Learning of Deep CNN for Image
  Denoising", IEEE TIP 2017. A plain stack of 3x3 convolutions (Conv+ReLU, then depth-2 Conv+BN+ReLU, then
  Conv) trained with *residual learning*: the stack predicts the noise v = y - x of a noisy y, and the clean
  estimate is y - R(y). Batch normalisation and residual learning together make the 17-layer net train fast.
  The same net with bicubic-upsampled input is the paper's single-model DnCNN-3 for SR and JPEG too.
- SRCNN: Dong, Loy, He & Tang, "Learning a Deep Convolutional Network for Image Super-Resolution", ECCV 2014
  (and TPAMI 2016). Three convolutions read as sparse coding: patch extraction (f1 = 9, n1 = 64 maps),
  non-linear mapping (f2 = 1 or 5, n2 = 32) and reconstruction (f3 = 5), on the bicubic-upsampled image.
- VDSR: Kim, Lee & Lee, "Accurate Image Super-Resolution Using Very Deep Convolutional Networks", CVPR 2016.
  Twenty 3x3 Conv+ReLU layers of 64 maps learn the residual r = x - bicubic(y) (high frequencies only), so
  output = input + r; one network serves several scales when trained on them together.
- U-Net: Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation",
  MICCAI 2015. An encoder-decoder with skip connections at every scale; here small, with a global residual
  (output = input + U(input)), the usual modern baseline for restoration.

Pure torch.nn: no Lightning, no Hydra, no I/O.
"""

import torch
import torch.nn.functional as F
from torch import nn

from dlfound.models import init as weight_init
from dlfound.models.registry import register_model


def he_init(module: nn.Module, last: nn.Conv2d | None = None, last_init: str = "small") -> None:
    """He et al. (2015) normal initialisation of every convolution (fan-in, ReLU gain), zero biases.

    The `last` layer of a residual network gets last_init: "he" like the others (the papers' choice), or
    "small" (std 1e-3), so that the untrained network starts as the identity, output ~ input, the way
    zero-initialised residual branches do (Goyal et al. 2017). With He init the initial residual is of
    order 1, a hundred times the error being learned, and the first hundreds of steps go to shrinking it:
    DnCNN-S after 150 steps of 16 patches reached 27.0 dB on two Set12 images with "small" and 20.8 dB (the
    noisy input's level) with "he". Long GPU runs end the same either way.
    """
    if last_init not in ("he", "small"):
        raise ValueError(f"last_init={last_init!r}: choose he or small")
    weight_init.kaiming_normal_(module, "fan_in", layers=(nn.Conv2d, nn.ConvTranspose2d))
    if last is not None and last_init == "small":
        nn.init.normal_(last.weight, std=1e-3)


class DnCNN(nn.Module):
    """DnCNN: depth layers of width maps; `batch_norm` on the middle layers; `residual` learning.

    R(y) = Conv(ReLU(BN(Conv(... ReLU(Conv(y)))))) estimates the noise, and forward returns y - R(y)
    (or R(y) itself with residual=False, the paper's ablation).
    """

    def __init__(
        self,
        in_channels: int = 1,
        depth: int = 17,
        width: int = 64,
        batch_norm: bool = True,
        kernel_size: int = 3,
        residual: bool = True,
        last_init: str = "small",
    ):
        super().__init__()
        if depth < 3:
            raise ValueError(f"DnCNN needs depth >= 3 (first, middle and last layers), got {depth}")
        pad = kernel_size // 2
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, kernel_size, padding=pad), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(width, width, kernel_size, padding=pad, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width, eps=1e-4))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(width, in_channels, kernel_size, padding=pad))
        self.body = nn.Sequential(*layers)
        self.residual = residual
        he_init(self, layers[-1] if residual else None, last_init)

    def noise(self, y: torch.Tensor) -> torch.Tensor:
        """R(y): the estimated noise (residual) of the degraded image."""
        return self.body(y)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y - self.body(y) if self.residual else self.body(y)


class SRCNN(nn.Module):
    """SRCNN on the bicubic-upsampled image: F1 = ReLU(W1 * Y + B1), F2 = ReLU(W2 * F1 + B2), F = W3 * F2 + B3.

    The paper convolves without padding (the output is smaller by f1 + f2 + f3 - 3 pixels); here every layer
    pads by half its kernel so the output keeps the input's size (padding_mode zeros or replicate).
    kernel_sizes (9, 1, 5) is the ECCV 2014 network; (9, 5, 5) the TPAMI 2016 one, whose published table gives
    36.66 / 32.75 / 30.48 dB on Set5 at x2 / x3 / x4.
    """

    def __init__(
        self,
        in_channels: int = 1,
        kernel_sizes: tuple[int, int, int] = (9, 5, 5),
        widths: tuple[int, int] = (64, 32),
        padding_mode: str = "replicate",
    ):
        super().__init__()
        f1, f2, f3 = kernel_sizes
        n1, n2 = widths
        self.extract = nn.Conv2d(in_channels, n1, f1, padding=f1 // 2, padding_mode=padding_mode)
        self.map = nn.Conv2d(n1, n2, f2, padding=f2 // 2, padding_mode=padding_mode)
        self.reconstruct = nn.Conv2d(n2, in_channels, f3, padding=f3 // 2, padding_mode=padding_mode)
        # The paper's initialisation: Gaussian weights of standard deviation 0.001, zero biases.
        weight_init.normal_(self, 0.001, nn.Conv2d)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.reconstruct(F.relu(self.map(F.relu(self.extract(y)))))


class VDSR(nn.Module):
    """VDSR: depth 3x3 Conv+ReLU layers (the last without ReLU) predict r, and the output is y + r."""

    def __init__(
        self, in_channels: int = 1, depth: int = 20, width: int = 64, residual: bool = True, last_init: str = "small"
    ):
        super().__init__()
        if depth < 2:
            raise ValueError(f"VDSR needs depth >= 2, got {depth}")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, in_channels, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.residual = residual
        he_init(self, layers[-1] if residual else None, last_init)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y + self.body(y) if self.residual else self.body(y)


def conv_block(cin: int, cout: int, batch_norm: bool) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by (BN and) ReLU: the U-Net's unit at every scale."""
    layers: list[nn.Module] = []
    for c in (cin, cout):
        layers.append(nn.Conv2d(c, cout, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """A small U-Net: `levels` down-sampling steps (2x2 max-pool), widths base_width * 2^level, transposed-conv
    up-sampling, skip concatenation, and the global residual output = y + U(y). Inputs of any size are
    reflect-padded to a multiple of 2^levels and the output is cropped back."""

    def __init__(
        self,
        in_channels: int = 1,
        base_width: int = 32,
        levels: int = 3,
        batch_norm: bool = False,
        residual: bool = True,
        last_init: str = "small",
    ):
        super().__init__()
        widths = [base_width * 2**i for i in range(levels + 1)]
        self.levels, self.residual = levels, residual
        self.down = nn.ModuleList(
            [conv_block(in_channels, widths[0], batch_norm)]
            + [conv_block(widths[i], widths[i + 1], batch_norm) for i in range(levels)]
        )
        self.upsample = nn.ModuleList(
            [nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(levels))]
        )
        self.up = nn.ModuleList([conv_block(2 * widths[i], widths[i], batch_norm) for i in reversed(range(levels))])
        self.head = nn.Conv2d(widths[0], in_channels, 1)
        he_init(self, self.head if residual else None, last_init)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        h, w = y.shape[-2:]
        m = 2**self.levels
        pad_h, pad_w = (-h) % m, (-w) % m
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        x = F.pad(y, (0, pad_w, 0, pad_h), mode=mode) if pad_h or pad_w else y
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for upsample, block in zip(self.upsample, self.up):
            x = block(torch.cat([skips.pop(), upsample(x)], 1))
        out = self.head(x)[..., :h, :w]
        return y + out if self.residual else out


# -- named constructors --------------------------------------------------------------------------------------------
@register_model("restoration")
def dncnn(in_channels: int = 1, **kwargs) -> DnCNN:
    """DnCNN; depth 17 is DnCNN-S (one known noise level), 20 DnCNN-B (blind, sigma in [0, 55]) and DnCNN-3."""
    return DnCNN(in_channels, **kwargs)


@register_model("restoration")
def srcnn(in_channels: int = 1, **kwargs) -> SRCNN:
    """SRCNN; 9-5-5 (TPAMI 2016) by default, `kernel_sizes=(9, 1, 5)` for the ECCV 2014 network."""
    return SRCNN(in_channels, **kwargs)


@register_model("restoration")
def vdsr(in_channels: int = 1, **kwargs) -> VDSR:
    """VDSR: 20 layers by default."""
    return VDSR(in_channels, **kwargs)


@register_model("restoration")
def unet(in_channels: int = 1, **kwargs) -> UNet:
    """The small U-Net with a global residual: 3 levels, base width 32 by default."""
    return UNet(in_channels, **kwargs)
