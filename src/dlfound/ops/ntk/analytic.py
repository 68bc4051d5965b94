"""The analytic neural tangent kernel of a one-hidden-layer ReLU network (the infinite-width limit).

For f(x) = sigma_w / sqrt(n) * W2 relu(sigma_w / sqrt(d) * W1 x + sigma_b b1) + sigma_b b2 with every parameter
N(0, 1) (the NTK parameterisation of `dlfound.models.ntk_mlp`), as the width n -> infinity the tangent kernel
<df(x)/dtheta, df(x')/dtheta> converges to (Jacot, Gabriel & Hongler 2018, Theorem 1):

    Sigma1(x, x') = sigma_w^2 / d * <x, x'> + sigma_b^2                      (first layer's covariance = its NTK)
    Sigma2(x, x') = sigma_w^2 * E[relu(u) relu(v)] + sigma_b^2                (the readout's covariance)
    Sdot(x, x')   = sigma_w^2 * E[relu'(u) relu'(v)]
    Theta(x, x')  = Sigma2(x, x') + Sigma1(x, x') * Sdot(x, x')

with (u, v) ~ N(0, [[Sigma1(x, x), Sigma1(x, x')], [Sigma1(x, x'), Sigma1(x', x')]]). The two expectations are
the arc-cosine kernels of degree 1 and 0 (Cho & Saul 2009): with theta the angle arccos(Sigma1(x, x') /
sqrt(Sigma1(x, x) Sigma1(x', x'))),

    E[relu(u) relu(v)]   = sqrt(Sigma1(x, x) Sigma1(x', x')) / (2 pi) * (sin theta + (pi - theta) cos theta)
    E[relu'(u) relu'(v)] = (pi - theta) / (2 pi).

Each output of a network with several outputs has this kernel, and different outputs are uncorrelated
(Theta ⊗ I). The standard parameterisation has no finite limit (its kernel grows like the width).
"""

import math

import torch
from torch import nn

from dlfound.errors import ConfigError


def arccos_kernels(sigma1: torch.Tensor, diag1: torch.Tensor, diag2: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The arc-cosine kernels of degree 1 and 0 (Cho & Saul 2009) of Gaussian pre-activations with
    cross-covariance `sigma1` [N1, N2] and variances `diag1` [N1], `diag2` [N2]: E[relu(u) relu(v)] and
    E[relu'(u) relu'(v)]."""
    norms = torch.sqrt(diag1[:, None] * diag2[None, :])
    # Rounding can push the cosine just past +-1, where arccos is nan.
    cos = (sigma1 / norms).clamp(-1.0, 1.0)
    theta = torch.arccos(cos)
    degree1 = norms / (2 * math.pi) * (torch.sin(theta) + (math.pi - theta) * cos)
    degree0 = (math.pi - theta) / (2 * math.pi)
    return degree1, degree0


def relu_ntk(
    x1: torch.Tensor, x2: torch.Tensor | None = None, weight_std: float = 1.0, bias_std: float = 0.0
) -> torch.Tensor:
    """Theta(x1, x2) [N1, N2] of the infinite-width one-hidden-layer ReLU network (module docstring), for inputs
    [N, ...] (flattened). The kernel of each output; computed in float64."""
    x1 = x1.flatten(1).double()
    x2 = x1 if x2 is None else x2.flatten(1).double()
    d = x1.shape[1]
    sw2, sb2 = weight_std**2, bias_std**2

    def sigma1(a, b):  # Sigma1: the covariance of the hidden pre-activations (and the first layer's NTK)
        return sw2 / d * a @ b.T + sb2

    cross = sigma1(x1, x2)
    diag1 = sw2 / d * (x1 * x1).sum(1) + sb2
    diag2 = sw2 / d * (x2 * x2).sum(1) + sb2
    degree1, degree0 = arccos_kernels(cross, diag1, diag2)
    sigma2 = sw2 * degree1 + sb2
    sigma_dot = sw2 * degree0
    return sigma2 + cross * sigma_dot


def analytic_ntk(model: nn.Module, x1: torch.Tensor, x2: torch.Tensor | None = None) -> torch.Tensor:
    """The infinite-width kernel [N1, N2] of `model`, a `dlfound.models.ntk_mlp.NTKMLP` in the NTK
    parameterisation, with its sigma_w and sigma_b: that of each output (`empirical_ntk`'s trace over O outputs
    tends to O times it)."""
    if getattr(model, "parameterization", None) != "ntk":
        raise ConfigError(
            f"the analytic NTK is the infinite-width limit of the one-hidden-layer ReLU network in the "
            f"NTK parameterisation (model=ntk_mlp model.parameterization=ntk); "
            f"{type(model).__name__} is not one, so compare it with its empirical kernel instead"
        )
    return relu_ntk(x1, x2, model.weight_std, model.bias_std)
