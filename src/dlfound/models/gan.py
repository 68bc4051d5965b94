"""Generative adversarial networks: the generator and discriminator pairs (the losses live in `dlfound.tasks.gan`).

- GAN (Goodfellow et al., "Generative Adversarial Nets", 2014): a generator G maps noise z ~ N(0, I) to samples,
  a discriminator D tells them from data, and the two play min_G max_D E[log D(x)] + E[log(1 - D(G(z)))].
  `gan` is the fully connected pair.
- DCGAN (Radford, Metz & Chintala, 2016): an all-convolutional pair; G upsamples with stride-2 transposed
  convolutions, batch norm and ReLU, and ends in tanh; D downsamples with stride-2 convolutions and LeakyReLU(0.2),
  with batch norm on all but its first layer; weights start from N(0, 0.02). `dcgan`.
- WGAN (Arjovsky, Chintala & Bottou, 2017) and WGAN-GP (Gulrajani et al., 2017) use the same networks with D as a
  critic (no sigmoid); WGAN-GP's gradient penalty is per sample, so its critic has layer norm or no norm instead
  of batch norm (`d_norm`).
- Conditional GAN (Mirza & Osindero, 2014): with `conditional=True` both networks see the one-hot label: G as extra
  inputs next to z, D as extra inputs (MLP) or constant extra image channels (DCGAN). `cgan` is the MLP one.
- Spectral normalisation (Miyato et al., 2018): `spectral_norm=True` divides each discriminator weight by its
  largest singular value, keeping D 1-Lipschitz per layer.

Images are generated in [-1, 1] (tanh); `GAN.sample` returns them in the data range [0, 1], and `GAN.to_model`
maps data in [0, 1] to [-1, 1] for the discriminator. 2-D points are used as they are.
"""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from dlfound.models import init as weight_init
from dlfound.models.layers import data_shape_of
from dlfound.models.registry import register_model

D_NORMS = ("batch", "layer", "none")


def _maybe_sn(layer: nn.Module, enabled: bool) -> nn.Module:
    return _spectral_norm(layer) if enabled else layer


def _norm(kind: str, channels: int, image: bool) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels) if image else nn.BatchNorm1d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels) if image else nn.LayerNorm(channels)
    return nn.Identity()


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: conv and linear weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0."""
    weight_init.normal_(module, 0.02, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear), norm_std=0.02)


# -- fully connected ---------------------------------------------------------------------------------------
class MLPGenerator(nn.Module):
    def __init__(
        self,
        latent_dim: int,
        data_shape: Sequence[int],
        hidden: Sequence[int],
        num_classes: int = 0,
        batch_norm: bool = True,
    ):
        super().__init__()
        self.data_shape = tuple(data_shape)
        layers: list[nn.Module] = []
        width = latent_dim + num_classes
        for size in hidden:
            layers += [nn.Linear(width, size), _norm("batch" if batch_norm else "none", size, False), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, math.prod(data_shape)))
        if len(self.data_shape) == 3:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z, onehot=None):
        h = z if onehot is None else torch.cat([z, onehot], 1)
        return self.net(h).view(len(z), *self.data_shape)


class MLPDiscriminator(nn.Module):
    def __init__(
        self,
        data_shape: Sequence[int],
        hidden: Sequence[int],
        num_classes: int = 0,
        spectral_norm: bool = False,
        norm: str = "none",
    ):
        super().__init__()
        layers: list[nn.Module] = []
        width = math.prod(data_shape) + num_classes
        for size in hidden:
            layers += [_maybe_sn(nn.Linear(width, size), spectral_norm), _norm(norm, size, False), nn.LeakyReLU(0.2)]
            width = size
        layers.append(_maybe_sn(nn.Linear(width, 1), spectral_norm))
        self.net = nn.Sequential(*layers)

    def forward(self, x, onehot=None):
        h = x.flatten(1)
        return self.net(h if onehot is None else torch.cat([h, onehot], 1)).squeeze(1)


# -- convolutional -----------------------------------------------------------------------------------------
def upsamplings(image_size: int) -> int:
    """How many times DCGAN doubles the side: the most (up to 4) that leave a start side >= 4 (28 -> 7 -> 14 -> 28,
    32 -> 4 -> ... -> 32, 64 -> 4 -> ... -> 64)."""
    n = 0
    while n < 4 and image_size % 2 ** (n + 1) == 0 and image_size // 2 ** (n + 1) >= 4:
        n += 1
    if n == 0:
        raise ValueError(f"DCGAN needs an even image side of at least 8 pixels, got {image_size}")
    return n


class DCGANGenerator(nn.Module):
    def __init__(
        self, latent_dim: int, out_channels: int, image_size: int, base_channels: int = 64, num_classes: int = 0
    ):
        super().__init__()
        n = upsamplings(image_size)
        self.data_shape = (out_channels, image_size, image_size)
        self.start = (base_channels * 2 ** (n - 1), image_size // 2**n, image_size // 2**n)
        # Projecting z to the first feature map is DCGAN's first layer (a 1x1-input transposed convolution).
        self.project = nn.Sequential(
            nn.Linear(latent_dim + num_classes, math.prod(self.start), bias=False),
            nn.BatchNorm1d(math.prod(self.start)),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        channels = self.start[0]
        for _ in range(n - 1):
            layers += [
                nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(channels // 2),
                nn.ReLU(),
            ]
            channels //= 2
        layers += [nn.ConvTranspose2d(channels, out_channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z, onehot=None):
        h = self.project(z if onehot is None else torch.cat([z, onehot], 1))
        return self.net(h.view(len(z), *self.start))


class DCGANDiscriminator(nn.Module):
    def __init__(
        self,
        in_channels: int,
        image_size: int,
        base_channels: int = 64,
        num_classes: int = 0,
        norm: str = "batch",
        spectral_norm: bool = False,
    ):
        super().__init__()
        if norm not in D_NORMS:
            raise ValueError(f"unknown discriminator norm {norm!r}; choose one of {', '.join(D_NORMS)}")
        n = upsamplings(image_size)
        layers: list[nn.Module] = []
        channels, width = in_channels + num_classes, base_channels
        for i in range(n):
            layers.append(_maybe_sn(nn.Conv2d(channels, width, 4, 2, 1, bias=i == 0 or norm == "none"), spectral_norm))
            if i > 0:
                layers.append(_norm(norm, width, True))
            layers.append(nn.LeakyReLU(0.2))
            channels, width = width, width * 2
        side = image_size // 2**n
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = _maybe_sn(nn.Linear(channels * side * side, 1), spectral_norm)

    def forward(self, x, onehot=None):
        if onehot is not None:  # the label as constant extra channels
            x = torch.cat([x, onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)
        return self.head(self.features(x)).squeeze(1)


# -- the pair ----------------------------------------------------------------------------------------------
class GAN(nn.Module):
    """A generator and a discriminator, with the latent size, the data shape and the label handling they share."""

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        latent_dim: int,
        data_shape: Sequence[int],
        num_classes: int = 0,
    ):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim, self.data_shape, self.num_classes = latent_dim, tuple(data_shape), num_classes
        self.conditional = num_classes > 0

    @property
    def is_image(self) -> bool:
        return len(self.data_shape) == 3

    def onehot(self, y: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if not self.conditional:
            return None
        if y is None:
            raise ValueError("a conditional GAN needs labels y")
        return F.one_hot(y.long(), self.num_classes).float().expand(n, -1)

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        """Data ([0, 1] images) -> the generator's range ([-1, 1])."""
        return x * 2 - 1 if self.is_image else x

    def to_data(self, g: torch.Tensor) -> torch.Tensor:
        return (g + 1) / 2 if self.is_image else g

    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """G(z[, y]) in the generator's range."""
        return self.generator(z, self.onehot(y, len(z)))

    def discriminate(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """D's logit (or critic value) [N] for x in the generator's range."""
        return self.discriminator(x, self.onehot(y, len(x)))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.generate(z, y)

    @torch.no_grad()
    def sample(
        self, n: int, y: torch.Tensor | None = None, temperature: float = 1.0, z: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Samples in the data range from z ~ N(0, temperature^2 I) (or the given z)."""
        device = next(self.parameters()).device
        if z is None:
            z = temperature * torch.randn(n, self.latent_dim, device=device)
        return self.to_data(self.generate(z, y))


def _shape_and_classes(in_channels, image_size, num_classes, conditional):
    if conditional and num_classes < 2:
        raise ValueError(f"a conditional GAN needs labelled data with at least 2 classes, got {num_classes}")
    return data_shape_of(in_channels, image_size), num_classes if conditional else 0


@register_model("gan")
def gan(
    in_channels: int,
    image_size: int | None = None,
    num_classes: int = 0,
    conditional: bool = False,
    latent_dim: int = 100,
    g_hidden: Sequence[int] = (256, 512, 1024),
    d_hidden: Sequence[int] = (512, 256),
    g_batch_norm: bool = True,
    d_norm: str = "none",
    spectral_norm: bool = False,
) -> GAN:
    """The fully connected GAN: G is z -> g_hidden (ReLU, batch norm) -> data (tanh for images), D is data ->
    d_hidden (LeakyReLU 0.2) -> one logit. Works for images and for 2-D points."""
    shape, classes = _shape_and_classes(in_channels, image_size, num_classes, conditional)
    g = MLPGenerator(latent_dim, shape, g_hidden, classes, g_batch_norm)
    d = MLPDiscriminator(shape, d_hidden, classes, spectral_norm, d_norm)
    return GAN(g, d, latent_dim, shape, classes)


mlp_gan = gan  # the name of older configs' targets


@register_model("gan")
def cgan(
    in_channels: int, image_size: int | None = None, num_classes: int = 0, conditional: bool = True, **kwargs
) -> GAN:
    """The conditional GAN of Mirza & Osindero (2014): the fully connected pair, both given the one-hot label."""
    return gan(in_channels, image_size, num_classes, conditional, **kwargs)


@register_model("gan")
def dcgan(
    in_channels: int,
    image_size: int | None,
    num_classes: int = 0,
    conditional: bool = False,
    latent_dim: int = 100,
    base_channels: int = 64,
    d_norm: str = "batch",
    spectral_norm: bool = False,
) -> GAN:
    """DCGAN for square images whose side halves to >= 4 at least once (MNIST 28, CIFAR 32, 64, ...)."""
    if not image_size:
        raise ValueError("DCGAN needs images; for 2-D points use the MLP GAN (model=gan)")
    shape, classes = _shape_and_classes(in_channels, image_size, num_classes, conditional)
    g = DCGANGenerator(latent_dim, in_channels, image_size, base_channels, classes)
    d = DCGANDiscriminator(in_channels, image_size, base_channels, classes, d_norm, spectral_norm)
    pair = GAN(g, d, latent_dim, shape, classes)
    dcgan_init(pair)
    return pair
