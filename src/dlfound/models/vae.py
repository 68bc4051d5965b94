"""Variational autoencoders: Kingma & Welling, "Auto-Encoding Variational Bayes", 2014 (arXiv 2013).

A VAE is a latent-variable model p(x, z) = p(z) p(x|z) with the prior p(z) = N(0, I) and a decoder network that
gives the parameters of p(x|z). An encoder network q(z|x) = N(mu(x), diag sigma^2(x)) approximates the
posterior, and both are trained together by maximising the evidence lower bound (ELBO)

    log p(x) >= E_q[log p(x|z)] - KL(q(z|x) || p(z)),

estimated with the reparameterisation z = mu + sigma * eps, eps ~ N(0, I), so that gradients reach the encoder
through the sample. The KL term between two Gaussians is analytic:
KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2).

Variants in this file (the training objective lives in `dlfound.tasks.vae`):
- `MLPVAE` (`vae`): the paper's fully connected encoder and decoder (784-400-20 on MNIST with `hidden=[400]`).
- `ConvVAE` (`conv_vae`): strided convolutions encode, transposed convolutions decode.
- Conditional VAE (Sohn, Lee & Yan, "Learning Structured Output Representation using Deep Conditional Generative
  Models", 2015): `conditional=True` (`cvae`) feeds the one-hot label to both networks, q(z|x, y) and p(x|z, y),
  so that `sample(n, y=...)` draws a chosen class.
- beta-VAE (Higgins et al., 2017) weights the KL term by beta > 1: that is a training option, `task.beta`.

Likelihoods p(x|z), chosen by `likelihood`:
- "bernoulli": the decoder gives logits and log p(x|z) = -BCE(logits, x), summed over pixels. On grey values in
  [0, 1] (not binarised) this is the convention of Kingma & Welling's code and of pytorch/examples; it is a
  cross-entropy, not the likelihood of a discrete random variable, unless the data are binarised.
- "gaussian": the decoder gives the mean, and a learned log standard deviation per dimension (shared across
  samples) completes N(x; mean, sigma^2). Use it for real-valued data such as the 2-D toy sets.
"""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlfound.models.layers import data_shape_of
from dlfound.models.registry import register_model

LIKELIHOODS = ("bernoulli", "gaussian")


def mlp(widths: Sequence[int], activation=nn.ReLU, last_activation: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2 or last_activation:
            layers.append(activation())
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """What every VAE shares: the prior, the reparameterisation, the likelihood, sampling.

    Subclasses provide `encoder(x, onehot) -> [N, 2 * latent_dim]` (mean and log-variance) and
    `decoder(z, onehot) -> [N, *data_shape]` (the parameters of p(x|z)).
    """

    def __init__(
        self, data_shape: Sequence[int], latent_dim: int, likelihood: str, num_classes: int, conditional: bool
    ):
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {likelihood!r}; choose one of {', '.join(LIKELIHOODS)}")
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim}")
        if conditional and num_classes < 2:
            raise ValueError(f"a conditional VAE needs labelled data with at least 2 classes, got {num_classes}")
        self.data_shape = tuple(data_shape)
        self.latent_dim, self.likelihood = latent_dim, likelihood
        self.num_classes = num_classes if conditional else 0
        self.conditional = conditional
        # Gaussian likelihood: one learned log standard deviation per data dimension.
        self.log_sigma = nn.Parameter(torch.zeros(self.data_shape)) if likelihood == "gaussian" else None

    # -- the two networks ----------------------------------------------------------------------------------
    def _onehot(self, y: torch.Tensor | None, n: int, device) -> torch.Tensor | None:
        if not self.conditional:
            return None
        if y is None:
            raise ValueError("a conditional VAE needs the labels y")
        return F.one_hot(y.to(device).long(), self.num_classes).float().expand(n, -1)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x[, y]) as (mu, log sigma^2), each [N, latent_dim]."""
        h = self.encoder(x, self._onehot(y, len(x), x.device))
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The parameters of p(x|z[, y]): logits (bernoulli) or the mean (gaussian), shaped like x."""
        return self.decoder(z, self._onehot(y, len(z), z.device))

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None):
        """(decoder parameters, mu, logvar) for one posterior sample per input."""
        mu, logvar = self.encode(x, y)
        return self.decode(self.reparameterize(mu, logvar), y), mu, logvar

    # -- densities -----------------------------------------------------------------------------------------
    def log_likelihood(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per sample, summed over data dimensions: [N]."""
        if self.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(params, x, reduction="none").flatten(1).sum(1)
        log_sigma = self.log_sigma.clamp(-7.0, 5.0)
        ll = -0.5 * ((x - params) / log_sigma.exp()) ** 2 - log_sigma - 0.5 * math.log(2 * math.pi)
        return ll.flatten(1).sum(1)

    @staticmethod
    def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(N(mu, sigma^2) || N(0, I)) per sample: [N]."""
        return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x|z]: the Bernoulli probabilities, or the Gaussian mean."""
        return torch.sigmoid(params) if self.likelihood == "bernoulli" else params

    @torch.no_grad()
    def sample(
        self, n: int, y: torch.Tensor | None = None, temperature: float = 1.0, z: torch.Tensor | None = None
    ) -> torch.Tensor:
        """E[x|z] for z ~ N(0, temperature^2 I) (or the given z)."""
        device = next(self.parameters()).device
        if z is None:
            z = temperature * torch.randn(n, self.latent_dim, device=device)
        return self.mean(self.decode(z, y))


# -- fully connected ---------------------------------------------------------------------------------------
class _MLPEncoder(nn.Module):
    def __init__(self, data_dim: int, num_classes: int, hidden: Sequence[int], latent_dim: int):
        super().__init__()
        self.net = mlp([data_dim + num_classes, *hidden, 2 * latent_dim])

    def forward(self, x, onehot):
        h = x.flatten(1)
        return self.net(h if onehot is None else torch.cat([h, onehot], 1))


class _MLPDecoder(nn.Module):
    def __init__(self, data_shape, num_classes: int, hidden: Sequence[int], latent_dim: int):
        super().__init__()
        self.data_shape = tuple(data_shape)
        self.net = mlp([latent_dim + num_classes, *reversed(hidden), math.prod(data_shape)])

    def forward(self, z, onehot):
        out = self.net(z if onehot is None else torch.cat([z, onehot], 1))
        return out.view(len(z), *self.data_shape)


class MLPVAE(VAE):
    """Kingma & Welling's VAE: x -> hidden (ReLU) -> (mu, log sigma^2); z -> reversed hidden -> p(x|z).

    `hidden=[400], latent_dim=20` on MNIST is the 784-400-20 model of pytorch/examples.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int | None = None,
        latent_dim: int = 20,
        hidden: Sequence[int] = (400,),
        likelihood: str = "bernoulli",
        num_classes: int = 0,
        conditional: bool = False,
    ):
        super().__init__(data_shape_of(in_channels, image_size), latent_dim, likelihood, num_classes, conditional)
        data_dim = math.prod(self.data_shape)
        self.encoder = _MLPEncoder(data_dim, self.num_classes, hidden, latent_dim)
        self.decoder = _MLPDecoder(self.data_shape, self.num_classes, hidden, latent_dim)


# -- convolutional -----------------------------------------------------------------------------------------
class _ConvEncoder(nn.Module):
    def __init__(
        self, in_channels: int, channels: Sequence[int], side: int, num_classes: int, hidden: int, latent_dim: int
    ):
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out in zip([in_channels, *channels[:-1]], channels):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]  # halves the side
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = mlp([channels[-1] * side * side + num_classes, hidden, 2 * latent_dim])

    def forward(self, x, onehot):
        h = self.features(x)
        return self.head(h if onehot is None else torch.cat([h, onehot], 1))


class _ConvDecoder(nn.Module):
    def __init__(
        self, out_channels: int, channels: Sequence[int], side: int, num_classes: int, hidden: int, latent_dim: int
    ):
        super().__init__()
        self.start = (channels[-1], side, side)
        self.head = mlp([latent_dim + num_classes, hidden, channels[-1] * side * side], last_activation=True)
        layers: list[nn.Module] = []
        backwards = list(reversed(channels))
        for c_in, c_out in zip(backwards, [*backwards[1:], out_channels]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]  # doubles the side
        self.features = nn.Sequential(*layers[:-1])

    def forward(self, z, onehot):
        h = self.head(z if onehot is None else torch.cat([z, onehot], 1))
        return self.features(h.view(len(z), *self.start))


class ConvVAE(VAE):
    """Convolutional VAE: each entry of `channels` is a 4x4 stride-2 convolution that halves the image side
    (28 -> 14 -> 7 for MNIST), then a hidden fully connected layer to (mu, log sigma^2); the decoder mirrors it
    with transposed convolutions. The image side must be divisible by 2^len(channels)."""

    def __init__(
        self,
        in_channels: int,
        image_size: int | None,
        latent_dim: int = 32,
        channels: Sequence[int] = (32, 64),
        hidden: int = 256,
        likelihood: str = "bernoulli",
        num_classes: int = 0,
        conditional: bool = False,
    ):
        if not image_size:
            raise ValueError("the convolutional VAE needs images; for flat vectors use the MLP VAE (model=vae)")
        channels = list(channels)
        if not channels or image_size % 2 ** len(channels):
            raise ValueError(
                f"the convolutional VAE halves the image side {len(channels)} times, so image_size must "
                f"be divisible by {2 ** len(channels)}; got {image_size}. Change model.channels"
            )
        super().__init__(data_shape_of(in_channels, image_size), latent_dim, likelihood, num_classes, conditional)
        side = image_size // 2 ** len(channels)
        self.encoder = _ConvEncoder(in_channels, channels, side, self.num_classes, hidden, latent_dim)
        self.decoder = _ConvDecoder(in_channels, channels, side, self.num_classes, hidden, latent_dim)


# -- named constructors --------------------------------------------------------------------------------------------
@register_model("vae")
def vae(in_channels: int, image_size: int | None = None, num_classes: int = 0, **kwargs) -> MLPVAE:
    """Kingma & Welling's fully connected VAE; `latent_dim`, `hidden`, `likelihood`, `conditional` as `MLPVAE`."""
    return MLPVAE(in_channels, image_size, num_classes=num_classes, **kwargs)


@register_model("vae")
def cvae(
    in_channels: int, image_size: int | None = None, num_classes: int = 0, conditional: bool = True, **kwargs
) -> MLPVAE:
    """The conditional VAE of Sohn, Lee & Yan (2015): the fully connected VAE given the one-hot label."""
    return MLPVAE(in_channels, image_size, num_classes=num_classes, conditional=conditional, **kwargs)


@register_model("vae")
def conv_vae(in_channels: int, image_size: int | None = None, num_classes: int = 0, **kwargs) -> ConvVAE:
    """The convolutional VAE; `latent_dim`, `channels`, `hidden`, `likelihood`, `conditional` as `ConvVAE`."""
    return ConvVAE(in_channels, image_size, num_classes=num_classes, **kwargs)
