"""A one-hidden-layer ReLU network in the NTK or the standard parameterisation, for neural-tangent-kernel experiments.

NTK parameterisation (Jacot, Gabriel & Hongler 2018; Lee et al. 2019, eq. 1): every weight and bias is drawn
N(0, 1) and the scale lives in the forward pass,

    h = sigma_w / sqrt(d) * W1 x + sigma_b * b1,        f(x) = sigma_w / sqrt(n) * W2 relu(h) + sigma_b * b2,

with d the input size and n the `width`. Gradient descent then moves each weight by O(1 / sqrt(n)), so as n grows
the network's tangent kernel stays at its initial value and converges to the deterministic kernel of
`dlfound.ops.ntk.analytic`. The standard parameterisation draws W ~ N(0, sigma_w^2 / fan_in), b ~ N(0, sigma_b^2) and
computes W x + b: the same function at initialisation, but its tangent kernel grows like the width.
"""

import math

import torch
from torch import nn

from dlfound.models.mlp import flat_features
from dlfound.models.registry import register_model

PARAMETERIZATIONS = ("ntk", "standard")


class ScaledLinear(nn.Linear):
    """y = weight_scale * W x + bias_scale * b with the stored W, b ~ N(0, 1) (NTK parameterisation), or
    y = W x + b with W ~ N(0, weight_scale^2), b ~ N(0, bias_scale^2) and both scales 1 in the forward pass
    (standard parameterisation): equal in distribution at initialisation. An nn.Linear, so what looks for the
    last linear layer (feature hooks, `init=` schemes) finds it."""

    def __init__(
        self, in_features: int, out_features: int, weight_std: float, bias_std: float, ntk: bool, bias: bool = True
    ):
        super().__init__(in_features, out_features, bias)
        weight_scale, bias_scale = weight_std / math.sqrt(in_features), bias_std
        self.weight_scale, self.bias_scale = (weight_scale, bias_scale) if ntk else (1.0, 1.0)
        self.init_std = (1.0, 1.0) if ntk else (weight_scale, bias_scale)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if not hasattr(self, "init_std"):  # nn.Linear's constructor calls this before the scales are known
            return
        nn.init.normal_(self.weight, std=self.init_std[0])
        if self.bias is not None:
            nn.init.normal_(self.bias, std=self.init_std[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.weight_scale * (x @ self.weight.T)
        return out if self.bias is None else out + self.bias_scale * self.bias


class NTKMLP(nn.Module):
    """f(x) = readout(relu(hidden(x))), one hidden layer of `width` ReLU units (see the module docstring).

    `weight_std` (sigma_w) and `bias_std` (sigma_b) are the kernel's hyperparameters; `bias=False` drops both
    biases (sigma_b = 0). `forward_features` gives relu(h), [N, width], the input of the readout.

    `kink_range` = [low, high] (one input only) draws the hidden layer so that the units' kinks -b_i / w_i lie
    one in each of `width` equal parts of [low, high], at a uniform place within it, with w_i = +-weight_std of
    alternating sign: every stretch of the interval gets a kink, where N(0, 1) weights and biases scatter them like a
    Cauchy variable (half outside [-1, 1]). Universal-approximation experiments use it so that training is limited
    by the width, not by where the kinks started.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int | None = None,
        width: int = 1024,
        parameterization: str = "ntk",
        weight_std: float = 1.0,
        bias_std: float = 1.0,
        bias: bool = True,
        kink_range: tuple[float, float] | None = None,
    ):
        super().__init__()
        if parameterization not in PARAMETERIZATIONS:
            raise ValueError(
                f"parameterization must be one of {', '.join(PARAMETERIZATIONS)}, got {parameterization!r}"
            )
        if width < 1:
            raise ValueError(f"width must be a positive number of hidden units, got {width}")
        self.parameterization = parameterization
        self.weight_std, self.bias_std = float(weight_std), float(bias_std) if bias else 0.0
        ntk = parameterization == "ntk"
        self.flatten = nn.Flatten()
        self.hidden = ScaledLinear(flat_features(in_channels, image_size), width, weight_std, bias_std, ntk, bias)
        self.readout = ScaledLinear(width, num_classes, weight_std, bias_std, ntk, bias)
        self.num_features = width
        if kink_range is not None:
            self.place_kinks(*kink_range)

    @torch.no_grad()
    def place_kinks(self, low: float, high: float) -> None:
        """The stratified kinks of `kink_range` (see the class docstring), written as stored weights."""
        layer = self.hidden
        if layer.in_features != 1 or layer.bias is None or layer.bias_scale == 0 or not low < high:
            raise ValueError(
                f"kink_range places the kinks of units of one input with biases in [low, high]; got "
                f"{layer.in_features} inputs, bias={layer.bias is not None}, range [{low}, {high}]"
            )
        width = layer.out_features
        # Alternating directions, the first unit facing left: the units active at the two ends face outwards, and
        # (measured on sin(2 pi x)) training from random signs stalls more often, e.g. width 16 at 0.19 for 0.08.
        sign = (torch.arange(width) % 2).to(layer.weight.dtype) * 2 - 1
        kinks = low + (high - low) * (torch.arange(width) + torch.rand(width)) / width
        weight = sign * self.weight_std  # w_i, the weight the forward pass applies
        layer.weight.copy_((weight / layer.weight_scale)[:, None])
        layer.bias.copy_(-weight * kinks / layer.bias_scale)  # w_i x + b_i = 0 at x = kink_i

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.hidden(self.flatten(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.forward_features(x))


@register_model("classifier")
def ntk_mlp(in_channels: int = 1, num_classes: int = 1, image_size: int | None = None, **kwargs) -> NTKMLP:
    """The one-hidden-layer ReLU network of NTK experiments; `width`, `parameterization` (ntk or standard),
    `weight_std`, `bias_std`, `bias` as `NTKMLP`."""
    return NTKMLP(in_channels, num_classes, image_size, **kwargs)
