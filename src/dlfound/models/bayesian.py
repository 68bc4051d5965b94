"""Bayes by Backprop: Blundell, Cornebise, Kavukcuoglu & Wierstra, "Weight Uncertainty in Neural Networks", 2015.

Every weight has a Gaussian posterior q(w | theta) = N(mu, sigma^2) with sigma = softplus(rho) = log(1 + exp(rho)),
so that sigma stays positive while rho is unconstrained. A forward pass draws w = mu + sigma * eps, eps ~ N(0, 1),
and gradients reach mu and rho through the draw (the reparameterisation trick). The prior is the paper's scale
mixture of two zero-mean Gaussians,

    p(w) = pi N(w | 0, sigma1^2) + (1 - pi) N(w | 0, sigma2^2),      sigma1 > sigma2,

a heavy-tailed prior with many weights near zero. Training minimises the variational free energy (eq. 2)

    F = KL[q(w | theta) || p(w)] - E_q[log p(D | w)],

whose KL each layer estimates from its own sampled weights, log q(w | theta) - log p(w) (eq. 1: a Monte Carlo
estimate with one draw), or computes in closed form when the prior is a single Gaussian (`prior_pi=1`).

`local_reparam=True` samples the pre-activations instead of the weights (Kingma, Salimans & Welling, "Variational
Dropout and the Local Reparameterization Trick", 2015): for a factorised Gaussian posterior the output of a linear
map is Gaussian with mean x mu^T and variance x^2 sigma^2^T, which is drawn directly with one noise value per
output and sample, so samples in a batch see independent weights and the gradient's variance falls. The same
holds for convolutions. The KL is then estimated from a separate weight draw (mixture prior) or in closed form.

Layers sample in training and evaluation alike: prediction averages the softmax over several forward passes (the
task's `mc_samples`). `net.kl()` is the sum of every Bayesian layer's KL for its latest forward pass.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from dlfound.models.lenet import lenet_geometry
from dlfound.models.mlp import flat_features
from dlfound.models.registry import register_model

# The paper's prior for MNIST, from its grid: pi = 1/2, -log sigma1 = 0, -log sigma2 = 6.
PRIOR_PI, PRIOR_SIGMA1, PRIOR_SIGMA2 = 0.5, 1.0, math.exp(-6)
# sigma = softplus(-5) = 0.0067 at the start: the network begins nearly deterministic and learns its noise.
RHO_INIT = -5.0
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def gaussian_log_prob(w: torch.Tensor, mu, sigma) -> torch.Tensor:
    """log N(w | mu, sigma^2), elementwise."""
    sigma = torch.as_tensor(sigma, dtype=w.dtype, device=w.device)
    return -LOG_SQRT_2PI - sigma.log() - (w - mu) ** 2 / (2 * sigma**2)


class ScaleMixturePrior(nn.Module):
    """p(w) = pi N(0, sigma1^2) + (1 - pi) N(0, sigma2^2); pi = 1 is the single Gaussian N(0, sigma1^2)."""

    def __init__(self, pi: float = PRIOR_PI, sigma1: float = PRIOR_SIGMA1, sigma2: float = PRIOR_SIGMA2):
        super().__init__()
        if not 0.0 < pi <= 1.0 or sigma1 <= 0 or sigma2 <= 0:
            raise ValueError(
                f"the prior needs 0 < pi <= 1 and positive sigmas; got pi={pi}, sigma1={sigma1}, sigma2={sigma2}"
            )
        self.pi, self.sigma1, self.sigma2 = pi, sigma1, sigma2

    @property
    def gaussian(self) -> bool:
        return self.pi == 1.0

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        """Summed over w; the mixture in log space (logsumexp), as sigma2 = e^-6 underflows a plain sum."""
        first = gaussian_log_prob(w, 0.0, self.sigma1)
        if self.gaussian:
            return first.sum()
        second = gaussian_log_prob(w, 0.0, self.sigma2)
        return torch.logaddexp(first + math.log(self.pi), second + math.log(1 - self.pi)).sum()

    def kl_closed_form(self, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """KL[N(mu, sigma^2) || N(0, sigma1^2)] summed over the weights (single-Gaussian prior only):
        log(sigma1 / sigma) + (sigma^2 + mu^2) / (2 sigma1^2) - 1/2."""
        return (math.log(self.sigma1) - sigma.log() + (sigma**2 + mu**2) / (2 * self.sigma1**2) - 0.5).sum()


class BayesLayer(nn.Module):
    """Gaussian posteriors over a weight tensor and a bias; subclasses say how the weights act on the input
    (`affine`: the layer's own linear map, as F.linear or F.conv2d)."""

    def __init__(
        self,
        weight_shape: tuple[int, ...],
        fan_in: int,
        bias: bool,
        local_reparam: bool,
        prior: ScaleMixturePrior | None,
    ):
        super().__init__()
        bound = 1 / math.sqrt(fan_in)  # the means start as torch's default layers do
        self.weight_mu = nn.Parameter(torch.empty(weight_shape).uniform_(-bound, bound))
        self.weight_rho = nn.Parameter(torch.full(weight_shape, RHO_INIT))
        self.bias_mu = nn.Parameter(torch.empty(weight_shape[0]).uniform_(-bound, bound)) if bias else None
        self.bias_rho = nn.Parameter(torch.full((weight_shape[0],), RHO_INIT)) if bias else None
        self.local_reparam = local_reparam
        self.prior = prior or ScaleMixturePrior()
        self._kl = torch.zeros(())

    def posteriors(self):
        """(mu, sigma) pairs of the weight and, when present, the bias."""
        yield self.weight_mu, F.softplus(self.weight_rho)
        if self.bias_mu is not None:
            yield self.bias_mu, F.softplus(self.bias_rho)

    def kl(self) -> torch.Tensor:
        """KL[q || p] of the latest forward pass: log q(w) - log p(w) at its weight draw, or the closed form."""
        return self._kl

    def _kl_estimate(self, draws: list[torch.Tensor] | None) -> torch.Tensor:
        pairs = list(self.posteriors())
        if self.prior.gaussian:
            return sum(self.prior.kl_closed_form(mu, sigma) for mu, sigma in pairs)
        if draws is None:  # local reparameterisation drew no weights: draw some for the estimate alone
            draws = [mu + sigma * torch.randn_like(mu) for mu, sigma in pairs]
        return sum(
            gaussian_log_prob(w, mu, sigma).sum() - self.prior.log_prob(w)
            for w, (mu, sigma) in zip(draws, pairs, strict=True)
        )

    def affine(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pairs = list(self.posteriors())
        if self.local_reparam:
            (w_mu, w_sigma), b = pairs[0], pairs[1] if len(pairs) > 1 else None
            mean = self.affine(x, w_mu, b[0] if b else None)
            var = self.affine(x * x, w_sigma**2, b[1] ** 2 if b else None)
            self._kl = self._kl_estimate(None)
            # The pre-activation's own distribution N(mean, var), one draw per sample and unit.
            return mean + var.clamp_min(1e-16).sqrt() * torch.randn_like(mean)
        draws = [mu + sigma * torch.randn_like(mu) for mu, sigma in pairs]  # w = mu + softplus(rho) * eps
        self._kl = self._kl_estimate(draws)
        return self.affine(x, draws[0], draws[1] if len(draws) > 1 else None)


class BayesLinear(BayesLayer):
    """A fully connected layer with a Gaussian posterior over its weights and bias."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        local_reparam: bool = False,
        prior: ScaleMixturePrior | None = None,
    ):
        super().__init__((out_features, in_features), in_features, bias, local_reparam, prior)
        self.in_features, self.out_features = in_features, out_features

    def affine(self, x, weight, bias):
        return F.linear(x, weight, bias)


class BayesConv2d(BayesLayer):
    """A 2-D convolution with a Gaussian posterior over its kernels and bias."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        local_reparam: bool = False,
        prior: ScaleMixturePrior | None = None,
    ):
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        super().__init__(shape, in_channels * kernel_size * kernel_size, bias, local_reparam, prior)
        self.stride, self.padding = stride, padding

    def affine(self, x, weight, bias):
        return F.conv2d(x, weight, bias, self.stride, self.padding)


class BayesianNet(nn.Module):
    """A network whose Bayesian layers each hold the KL of their latest draw; `kl()` sums them."""

    # Every pass draws new weights, so averaging passes (task.mc_samples) is meaningful without dropout.
    stochastic = True

    def kl(self) -> torch.Tensor:
        return sum(m.kl() for m in self.modules() if isinstance(m, BayesLayer))


def _prior(prior_pi: float, prior_sigma1: float, prior_sigma2: float) -> ScaleMixturePrior:
    return ScaleMixturePrior(prior_pi, prior_sigma1, prior_sigma2)


class BayesMLP(BayesianNet):
    """The paper's MNIST network: fully connected ReLU layers (2 x 400 to 2 x 1200 in the paper)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int | None = 28,
        hidden=(400, 400),
        local_reparam: bool = False,
        prior_pi: float = PRIOR_PI,
        prior_sigma1: float = PRIOR_SIGMA1,
        prior_sigma2: float = PRIOR_SIGMA2,
    ):
        super().__init__()
        prior = _prior(prior_pi, prior_sigma1, prior_sigma2)
        layers: list[nn.Module] = [nn.Flatten()]
        width = flat_features(in_channels, image_size)
        for size in hidden:
            layers += [BayesLinear(width, size, local_reparam=local_reparam, prior=prior), nn.ReLU()]
            width = size
        self.features = nn.Sequential(*layers)
        self.classifier = BayesLinear(width, num_classes, local_reparam=local_reparam, prior=prior)
        self.num_features = width

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class BayesLeNet5(BayesianNet):
    """LeNet-5 (LeCun et al. 1998) with every convolution and fully connected layer Bayesian; the modern
    variant's ReLU and max pooling, on 28x28 inputs padded to the paper's 32x32 as in models/lenet.py."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int = 28,
        local_reparam: bool = False,
        prior_pi: float = PRIOR_PI,
        prior_sigma1: float = PRIOR_SIGMA1,
        prior_sigma2: float = PRIOR_SIGMA2,
    ):
        super().__init__()
        prior = _prior(prior_pi, prior_sigma1, prior_sigma2)
        padding, side = lenet_geometry(image_size, vector_model="bbb_mlp")
        lr = dict(local_reparam=local_reparam, prior=prior)
        self.features = nn.Sequential(
            BayesConv2d(in_channels, 6, 5, padding=padding, **lr),
            nn.ReLU(),
            nn.MaxPool2d(2),  # C1, S2
            BayesConv2d(6, 16, 5, **lr),
            nn.ReLU(),
            nn.MaxPool2d(2),  # C3, S4
            nn.Flatten(),
            BayesLinear(16 * side * side, 120, **lr),
            nn.ReLU(),  # C5
            BayesLinear(120, 84, **lr),
            nn.ReLU(),  # F6
        )
        self.classifier = BayesLinear(84, num_classes, **lr)
        self.num_features = 84

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model("bayesian")
def bbb_mlp(in_channels: int = 1, num_classes: int = 10, image_size: int | None = 28, **kwargs) -> BayesMLP:
    """Bayes by Backprop MLP, 2 x 400 by default; `hidden`, `local_reparam`, `prior_*` as `BayesMLP`."""
    return BayesMLP(in_channels, num_classes, image_size, **kwargs)


@register_model("bayesian")
def bbb_lenet5(in_channels: int = 1, num_classes: int = 10, image_size: int = 28, **kwargs) -> BayesLeNet5:
    """Bayes by Backprop LeNet-5; `local_reparam`, `prior_*` as `BayesLeNet5`."""
    return BayesLeNet5(in_channels, num_classes, image_size, **kwargs)
