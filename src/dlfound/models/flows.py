"""Normalizing flows: NICE (Dinh, Krueger & Bengio, 2015), RealNVP (Dinh, Sohl-Dickstein & Bengio, 2017) and
Glow (Kingma & Dhariwal, 2018).

A flow is an invertible map z = f(x) onto a simple base density p_Z (a standard normal, or NICE's logistic), and
the change of variables gives the exact log-likelihood

    log p(x) = log p_Z(f(x)) + log |det df/dx|.

f is a stack of bijections whose Jacobian determinants are cheap:
- coupling layers split x into (x_a, x_b) and transform x_b given x_a: additively, y_b = x_b + t(x_a), with
  determinant 1 (NICE), or affinely, y_b = x_b * exp(s(x_a)) + t(x_a), with log-determinant sum s(x_a)
  (RealNVP, Glow). s and t are any networks, and the inverse needs only their forward pass.
- the split is a binary mask: alternating coordinates of a vector, a spatial checkerboard, or half of the channels.
- squeezing (2x2 space-to-depth) trades resolution for channels; multi-scale flows factor out half of the
  channels after each scale, so later layers work on fewer dimensions (RealNVP).
- actnorm, y = (x - b) * exp(-log sigma) per channel, initialised on the first batch so that its output has zero
  mean and unit variance (Glow); the invertible 1x1 convolution, y = W x per pixel with W = P L (U + diag(s)) in
  LU form, so that log |det| = H W sum log |s| (Glow).
- NICE ends with a diagonal scaling exp(s); RealNVP begins with a logit transform of the [0, 1] data.

Every flow here maps its input to a flat z [N, D] (factored-out parts first) and back:
`forward(x) -> (z, logdet)`, `inverse(z) -> x`, `log_prob(x)`, `sample(n, temperature)`. Images are [N, C, H, W]
and 2-D toy points [N, 2]; dequantisation of discrete pixels is the task's job (`dlfound.tasks.flow`).
"""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlfound.models.layers import data_shape_of
from dlfound.models.registry import register_model

BASES = ("normal", "logistic")


def _sum_per_sample(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).sum(1)


# -- bijections: forward(x) -> (y, logdet [N]), inverse(y) -> x ----------------------------------------------
class LogitTransform(nn.Module):
    """x in [0, 1] -> logit(alpha + (1 - 2 alpha) x), so that the flow works on the whole real line (RealNVP)."""

    def __init__(self, alpha: float = 0.05):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        s = self.alpha + (1 - 2 * self.alpha) * x
        y = torch.log(s) - torch.log1p(-s)
        logdet = _sum_per_sample(math.log(1 - 2 * self.alpha) - torch.log(s) - torch.log1p(-s))
        return y, logdet

    def inverse(self, y):
        return (torch.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha)


class Shift(nn.Module):
    """y = x + shift (Glow centres its [0, 1] inputs with shift = -0.5); log-determinant 0."""

    def __init__(self, shift: float):
        super().__init__()
        self.shift = shift

    def forward(self, x):
        return x + self.shift, x.new_zeros(len(x))

    def inverse(self, y):
        return y - self.shift


class Squeeze(nn.Module):
    """[C, H, W] -> [4C, H/2, W/2]: each 2x2 block of pixels becomes 4 channels (RealNVP)."""

    def forward(self, x):
        n, c, h, w = x.shape
        y = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, c * 4, h // 2, w // 2)
        return y, x.new_zeros(n)

    def inverse(self, y):
        n, c4, h, w = y.shape
        c = c4 // 4
        return y.view(n, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c, h * 2, w * 2)


def _channel_view(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """A per-channel vector v [C] shaped to broadcast over x ([N, C] or [N, C, H, W])."""
    return v.view(1, -1, *([1] * (x.dim() - 2)))


def _pixels(x: torch.Tensor) -> int:
    return x.shape[2] * x.shape[3] if x.dim() == 4 else 1


class ActNorm(nn.Module):
    """y = (x + bias) * exp(log_scale) per channel; the first batch sets them so that y has zero mean and unit
    variance per channel (Glow's data-dependent initialisation). log |det| = pixels * sum log_scale."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    @torch.no_grad()
    def _initialize(self, x):
        dims = [0, *range(2, x.dim())]
        self.bias.copy_(-x.mean(dims))
        self.log_scale.copy_(-torch.log(x.std(dims).clamp_min(1e-6)))
        if torch.distributed.is_available() and torch.distributed.is_initialized():  # same start on every rank
            for t in (self.bias, self.log_scale):
                torch.distributed.all_reduce(t)
                t.div_(torch.distributed.get_world_size())
        self.initialized.fill_(1)

    def forward(self, x):
        if not self.initialized and len(x) > 1:
            self._initialize(x)
        y = (x + _channel_view(x, self.bias)) * _channel_view(x, self.log_scale.exp())
        return y, (self.log_scale.sum() * _pixels(x)).expand(len(x))

    def inverse(self, y):
        return y * _channel_view(y, (-self.log_scale).exp()) - _channel_view(y, self.bias)


class InvertibleLinear(nn.Module):
    """The invertible 1x1 convolution of Glow (a learned invertible linear map on channels; on [N, D] vectors a
    learned invertible D x D matrix), in LU form: W = P L (U + diag(sign * exp(log_s))).
    log |det| = pixels * sum log_s."""

    def __init__(self, channels: int):
        super().__init__()
        q = torch.linalg.qr(torch.randn(channels, channels))[0]  # a random rotation to start from
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("p", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.register_buffer("eye", torch.eye(channels))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(torch.abs(s)))

    def weight(self) -> torch.Tensor:
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * self.log_s.exp())
        return self.p @ lower @ upper

    def _mix(self, x, w):
        if x.dim() == 4:
            return F.conv2d(x, w[:, :, None, None])
        return x @ w.T

    def forward(self, x):
        return self._mix(x, self.weight()), (self.log_s.sum() * _pixels(x)).expand(len(x))

    def inverse(self, y):
        return self._mix(y, torch.linalg.inv(self.weight()))


class Coupling(nn.Module):
    """Coupling layer: x_a = mask * x conditions the other part,
        additive (NICE):   y = x_a + (1 - mask) * (x + t(x_a)),                       log |det| = 0
        affine (RealNVP):  y = x_a + (1 - mask) * (x * exp(s(x_a)) + t(x_a)),         log |det| = sum (1 - mask) s
    with s = scale * tanh(raw) (RealNVP's bounded log-scale) and a network that outputs (raw, t), its last layer
    zero-initialised so that the layer starts as the identity (Glow)."""

    def __init__(self, net: nn.Module, mask: torch.Tensor, affine: bool, channels: int):
        super().__init__()
        self.net, self.affine = net, affine
        self.register_buffer("mask", mask)
        self.scale = nn.Parameter(torch.ones(channels)) if affine else None

    def _s_t(self, x_a):
        return _scale_shift(self.net(x_a), self.scale if self.affine else None)

    def forward(self, x):
        x_a = x * self.mask
        s, t = self._s_t(x_a)
        free = 1 - self.mask
        if s is None:
            return x_a + free * (x + t), x.new_zeros(len(x))
        s = s * free
        return x_a + free * (x * s.exp() + t), _sum_per_sample(s)

    def inverse(self, y):
        y_a = y * self.mask
        s, t = self._s_t(y_a)
        free = 1 - self.mask
        if s is None:
            return y_a + free * (y - t)
        return y_a + free * ((y - t) * torch.exp(-s * free))


def _scale_shift(out: torch.Tensor, scale: torch.Tensor | None):
    """(log-scale s, shift t) from a coupling net's output; s is None for additive coupling (no scale)."""
    if scale is None:
        return None, out
    raw, t = out.chunk(2, dim=1)
    return _channel_view(raw, scale) * torch.tanh(raw), t


class ChannelCoupling(nn.Module):
    """Coupling on halves of the channels, x = (x_a, x_b) (RealNVP's channel-wise mask, Glow's coupling): the net
    sees x_a only, so it has C/2 inputs instead of C with half of them zero. Same equations as `Coupling`."""

    def __init__(self, net: nn.Module, channels: int, affine: bool, parity: int):
        super().__init__()
        self.net, self.affine, self.parity = net, affine, parity
        self.split = channels // 2
        self.scale = nn.Parameter(torch.ones(channels - self.split)) if affine else None

    def _halves(self, x):
        a, b = x[:, : self.split], x[:, self.split :]
        return (b, a) if self.parity else (a, b)

    def _join(self, a, b):
        return torch.cat([b, a] if self.parity else [a, b], 1)

    def _s_t(self, x_a):
        return _scale_shift(self.net(x_a), self.scale if self.affine else None)

    def forward(self, x):
        a, b = self._halves(x)
        s, t = self._s_t(a)
        if s is None:
            return self._join(a, b + t), x.new_zeros(len(x))
        return self._join(a, b * s.exp() + t), _sum_per_sample(s)

    def inverse(self, y):
        a, b = self._halves(y)
        s, t = self._s_t(a)
        return self._join(a, b - t if s is None else (b - t) * torch.exp(-s))


class Scaling(nn.Module):
    """NICE's last layer: y = x * exp(s), a learned diagonal scaling; log |det| = sum s.

    With `init_std`, the first batch sets s so that each output dimension has that standard deviation (the base
    density's), as Glow's actnorm does. MNIST's background pixels vary only by the dequantisation noise and need
    scales of about e^7, which plain gradient steps from s = 0 take thousands of updates to reach."""

    def __init__(self, dim: int, init_std: float | None = None):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.init_std = init_std
        self.register_buffer("initialized", torch.tensor(0 if init_std else 1, dtype=torch.uint8))

    def forward(self, x):
        if not self.initialized and len(x) > 1:
            with torch.no_grad():
                self.log_scale.copy_(math.log(self.init_std) - torch.log(x.std(0).clamp_min(1e-6)))
                if torch.distributed.is_available() and torch.distributed.is_initialized():
                    torch.distributed.all_reduce(self.log_scale.data)
                    self.log_scale.data.div_(torch.distributed.get_world_size())
                self.initialized.fill_(1)
        return x * self.log_scale.exp(), self.log_scale.sum().expand(len(x))

    def inverse(self, y):
        return y * torch.exp(-self.log_scale)


class Split(nn.Module):
    """Factor out half of the channels (multi-scale architecture). With `learned_prior` (Glow), the factored-out
    half z_b has a Gaussian prior whose mean and log-scale a zero-initialised convolution computes from the kept
    half z_a; it leaves the flow as eps = (z_b - mu(z_a)) * exp(-log_sigma(z_a)), log |det| = -sum log_sigma,
    so that every flow ends on the same standard base density."""

    def __init__(self, channels: int, learned_prior: bool):
        super().__init__()
        self.keep = channels // 2
        self.prior = zero_conv(self.keep, 2 * (channels - self.keep)) if learned_prior else None

    def forward(self, h):
        a, b = h[:, : self.keep], h[:, self.keep :]
        if self.prior is None:
            return a, b, h.new_zeros(len(h))
        mu, log_sigma = self.prior(a).chunk(2, 1)
        return a, (b - mu) * torch.exp(-log_sigma), -_sum_per_sample(log_sigma)

    def inverse(self, a, eps):
        if self.prior is None:
            return torch.cat([a, eps], 1)
        mu, log_sigma = self.prior(a).chunk(2, 1)
        return torch.cat([a, mu + eps * log_sigma.exp()], 1)


# -- coupling networks -----------------------------------------------------------------------------------------
def zero_conv(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 3, padding=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def mlp_net(d_in: int, d_out: int, hidden: int, depth: int) -> nn.Sequential:
    """`depth` hidden ReLU layers of width `hidden`; the output layer starts at zero (an identity coupling)."""
    layers: list[nn.Module] = []
    width = d_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    out = nn.Linear(width, d_out)
    nn.init.zeros_(out.weight)
    nn.init.zeros_(out.bias)
    return nn.Sequential(*layers, out)


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, channels, 1)
        )

    def forward(self, x):
        return x + self.body(x)


def conv_net(c_in: int, c_out: int, hidden: int, blocks: int) -> nn.Sequential:
    """3x3 conv, `blocks` residual blocks (RealNVP's ResNet coupling network; blocks=0 and a 1x1 conv in the
    middle is Glow's conv-ReLU-conv-ReLU-conv), and a zero-initialised 3x3 output conv."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, hidden, 3, padding=1), nn.ReLU()]
    if blocks:
        layers += [*(ResBlock(hidden) for _ in range(blocks)), nn.ReLU()]
    else:
        layers += [nn.Conv2d(hidden, hidden, 1), nn.ReLU()]
    return nn.Sequential(*layers, zero_conv(hidden, c_out))


def checkerboard(height: int, width: int, parity: int) -> torch.Tensor:
    grid = (torch.arange(height)[:, None] + torch.arange(width)[None, :] + parity) % 2
    return grid.float().view(1, 1, height, width)


def alternating(dim: int, parity: int) -> torch.Tensor:
    return ((torch.arange(dim) + parity) % 2).float()


# -- the flow --------------------------------------------------------------------------------------------------
class Flow(nn.Module):
    """A sequence of bijections, optionally in scales separated by `Split`s, onto a standard base density.

    `scales` is a list of lists of bijections; after every scale but the last, `splits[i]` factors out half of
    the channels. `shapes` records the shape of each factored-out part and of the final tensor, so that a flat
    z [N, D] can be cut back into them.
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        scales: list[list[nn.Module]],
        splits: list[nn.Module],
        shapes: list[tuple[int, ...]],
        base: str = "normal",
        flatten: bool = False,
    ):
        super().__init__()
        if base not in BASES:
            raise ValueError(f"unknown base density {base!r}; choose one of {', '.join(BASES)}")
        self.data_shape = tuple(data_shape)
        self.dim = math.prod(self.data_shape)
        self.scales = nn.ModuleList(nn.ModuleList(s) for s in scales)
        self.splits = nn.ModuleList(splits)
        self.shapes = [tuple(s) for s in shapes]
        self.base, self.flatten = base, flatten
        self.num_classes = 0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x -> (z [N, D], log |det dz/dx| [N])."""
        h = x.flatten(1) if self.flatten else x
        logdet = x.new_zeros(len(x))
        pieces = []
        for i, scale in enumerate(self.scales):
            for layer in scale:
                h, ld = layer(h)
                logdet = logdet + ld
            if i < len(self.splits):
                h, eps, ld = self.splits[i](h)
                logdet = logdet + ld
                pieces.append(eps.flatten(1))
        pieces.append(h.flatten(1))
        return torch.cat(pieces, 1), logdet

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        sizes = [math.prod(s) for s in self.shapes]
        parts = [p.reshape(len(z), *s) for p, s in zip(z.split(sizes, 1), self.shapes)]
        h = parts[-1]
        for i in reversed(range(len(self.scales))):
            if i < len(self.splits):
                h = self.splits[i].inverse(h, parts[i])
            for layer in reversed(self.scales[i]):
                h = layer.inverse(h)
        return h.view(len(z), *self.data_shape)

    def base_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        if self.base == "logistic":  # NICE: log p(z) = -(softplus(z) + softplus(-z))
            return -(F.softplus(z) + F.softplus(-z)).sum(1)
        return (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) in nats per sample, by the change of variables."""
        z, logdet = self(x)
        return self.base_log_prob(z) + logdet

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0) -> torch.Tensor:
        """x = f^-1(z) for z from the base density with its scale multiplied by `temperature`."""
        device = next(self.parameters()).device
        if self.base == "logistic":
            u = torch.rand(n, self.dim, device=device).clamp(1e-6, 1 - 1e-6)
            z = torch.log(u) - torch.log1p(-u)
        else:
            z = torch.randn(n, self.dim, device=device)
        return self.inverse(temperature * z)


def _check_image(name: str, data_shape, levels: int):
    c, h, w = data_shape
    if h % 2**levels or w % 2**levels:
        raise ValueError(
            f"{name} squeezes the image {levels} times, so its side must be divisible by {2**levels}; "
            f"got {h}x{w}. Change model.num_scales (or model.levels)"
        )


def _vector_flow(
    dim: int, num_layers: int, hidden: int, depth: int, affine: bool, actnorm: bool = False, linear: bool = False
) -> list[nn.Module]:
    """Couplings on alternating coordinates for flat vectors, optionally with Glow's actnorm and an invertible
    linear map before each."""
    layers: list[nn.Module] = []
    for i in range(num_layers):
        if actnorm:
            layers.append(ActNorm(dim))
        if linear:
            layers.append(InvertibleLinear(dim))
        layers.append(
            Coupling(mlp_net(dim, 2 * dim if affine else dim, hidden, depth), alternating(dim, i % 2), affine, dim)
        )
    return layers


@register_model("flow")
def nice(
    in_channels: int,
    image_size: int | None = None,
    num_layers: int = 4,
    hidden: int = 1000,
    depth: int = 5,
    base: str = "logistic",
    data_init: bool = True,
) -> Flow:
    """NICE: additive couplings on alternating coordinates of the flattened input, each with an MLP of `depth`
    hidden ReLU layers, and a final diagonal scaling; logistic base density. The paper's MNIST model: 4 couplings
    with 5 x 1000 units on [0, 1] data. `data_init` starts the scaling from the first batch (see `Scaling`)."""
    shape = data_shape_of(in_channels, image_size)
    dim = math.prod(shape)
    base_std = math.pi / math.sqrt(3) if base == "logistic" else 1.0
    layers = _vector_flow(dim, num_layers, hidden, depth, affine=False) + [
        Scaling(dim, base_std if data_init else None)
    ]
    return Flow(shape, [layers], [], [(dim,)], base=base, flatten=True)


@register_model("flow")
def realnvp(
    in_channels: int,
    image_size: int | None = None,
    num_scales: int = 2,
    hidden: int = 64,
    blocks: int = 2,
    couplings: int = 3,
    alpha: float = 0.05,
    num_layers: int = 8,
    depth: int = 2,
) -> Flow:
    """RealNVP's multi-scale architecture on images: a logit transform, then per scale `couplings` affine
    checkerboard couplings, a squeeze, `couplings` channel couplings, and the split of half of the channels; the
    last scale is 4 checkerboard couplings. Coupling networks are ResNets of `blocks` blocks of width `hidden`.
    On flat vectors (the 2-D toy sets): `num_layers` affine couplings on alternating coordinates with MLPs of
    `depth` hidden layers of `hidden` units."""
    if not image_size:
        dim = in_channels
        return Flow((dim,), [_vector_flow(dim, num_layers, hidden, depth, affine=True)], [], [(dim,)])
    shape = (in_channels, image_size, image_size)
    _check_image("RealNVP", shape, num_scales)
    c, h, w = shape
    scales, splits, shapes = [], [], []
    for i in range(num_scales + 1):
        layers: list[nn.Module] = [LogitTransform(alpha)] if i == 0 else []
        last = i == num_scales
        for j in range(4 if last else couplings):
            layers.append(Coupling(conv_net(c, 2 * c, hidden, blocks), checkerboard(h, w, j % 2), True, c))
        if not last:
            layers.append(Squeeze())
            c, h, w = 4 * c, h // 2, w // 2
            for j in range(couplings):
                layers.append(ChannelCoupling(conv_net(c // 2, 2 * (c - c // 2), hidden, blocks), c, True, j % 2))
            splits.append(Split(c, learned_prior=False))
            shapes.append((c - c // 2, h, w))
            c = c // 2
        scales.append(layers)
    shapes.append((c, h, w))
    return Flow(shape, scales, splits, shapes)


@register_model("flow")
def glow(
    in_channels: int,
    image_size: int | None = None,
    levels: int = 2,
    steps: int = 8,
    hidden: int = 128,
    learned_prior: bool = True,
    alpha: float | None = None,
    num_layers: int = 8,
    depth: int = 2,
) -> Flow:
    """Glow: per level a squeeze, `steps` flow steps (actnorm, invertible 1x1 convolution, affine channel
    coupling with a conv-ReLU-conv1x1-ReLU-conv network of width `hidden`), and a split with a learned prior
    (not after the last level). Inputs are centred by -0.5 as in the paper, or, with `alpha`, go through
    RealNVP's logit transform instead. On flat vectors: `num_layers` steps of actnorm, invertible linear map and
    affine coupling with MLPs."""
    if not image_size:
        dim = in_channels
        return Flow(
            (dim,), [_vector_flow(dim, num_layers, hidden, depth, True, actnorm=True, linear=True)], [], [(dim,)]
        )
    shape = (in_channels, image_size, image_size)
    _check_image("Glow", shape, levels)
    c, h, w = shape
    scales, splits, shapes = [], [], []
    for i in range(levels):
        layers: list[nn.Module] = [] if i else [Shift(-0.5) if alpha is None else LogitTransform(alpha)]
        layers.append(Squeeze())
        c, h, w = 4 * c, h // 2, w // 2
        for j in range(steps):
            layers += [
                ActNorm(c),
                InvertibleLinear(c),
                ChannelCoupling(conv_net(c // 2, 2 * (c - c // 2), hidden, 0), c, True, 0),
            ]
        if i < levels - 1:
            splits.append(Split(c, learned_prior))
            shapes.append((c - c // 2, h, w))
            c = c // 2
        scales.append(layers)
    shapes.append((c, h, w))
    return Flow(shape, scales, splits, shapes)
