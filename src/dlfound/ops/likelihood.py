"""The DDPM variational bound on -log p(x_0) (Ho et al. 2020, eq. 5), in nats per image:

    L = KL(q(x_T | x_0) || N(0, I))                                   L_T: no network, exact
      + sum_{t=2..T} KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))     L_{t-1}
      - log p(x_0 | x_1)                                              L_0: the discretised decoder (eq. 13)

with p(x_{t-1} | x_t) = N(mu~_t(x_t, x0^), b~_t I) (the sampler's variance) and x0^ from the predicted noise, so
each L_{t-1} = c1_t^2 ||x_0 - x0^||^2 / (2 b~_t). The decoder is N(x0^, b_1 I) integrated over each pixel's bin
of width 2/255 on [-1, 1] (the edge bins reach to infinity), which makes L a bound on the negative log-likelihood
of the discrete 8-bit image: divided by D log 2 it is bits per dimension on the scale the flows report.
The T - 1 middle terms are estimated by T - 1 times their mean over `samples` uniformly drawn t per image: an
unbiased estimate of the bound whose noise averages out over a test set.
"""

import math
from collections.abc import Callable

import torch

from dlfound.ops.noise_schedules import NoiseSchedule, gather

BIN = 1 / 255  # half a bin on [-1, 1]


def normal_kl(mean1, var1, mean2, var2) -> torch.Tensor:
    """KL(N(mean1, var1) || N(mean2, var2)), elementwise."""
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1)


def discretized_gaussian_nll(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """-log P(x's bin) under N(mean, std^2), x on the 256 levels of [-1, 1], elementwise."""
    upper, lower = (x + BIN - mean) / std, (x - BIN - mean) / std
    log_below = torch.special.log_ndtr(upper)  # the first bin holds everything below it
    log_above = torch.special.log_ndtr(-lower)  # the last bin holds everything above it
    log_bin = torch.log((torch.special.ndtr(upper) - torch.special.ndtr(lower)).clamp(min=1e-12))
    return -torch.where(x < -1 + BIN, log_below, torch.where(x > 1 - BIN, log_above, log_bin))


def variational_bound(
    eps_model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    samples: int = 1,
) -> torch.Tensor:
    """An unbiased estimate of the bound L in nats, one per image of `x0` (in [-1, 1] on 256 levels)."""
    n, last = len(x0), schedule.steps - 1
    dims = tuple(range(1, x0.dim()))
    abar_T = schedule.alphas_bar[last]
    prior = normal_kl(abar_T.sqrt() * x0, 1 - abar_T, torch.zeros_like(x0), torch.ones_like(x0)).sum(dims)

    def predicted_x0(t: torch.Tensor) -> torch.Tensor:
        x_t = schedule.q_sample(x0, t, torch.randn_like(x0))
        return schedule.predict_x0(x_t, t, eps_model(x_t, t))

    first = torch.zeros(n, dtype=torch.long, device=x0.device)
    decoder = discretized_gaussian_nll(x0, predicted_x0(first), schedule.betas[0].sqrt()).sum(dims)
    middle = torch.zeros(n, device=x0.device)
    if last > 0:
        for _ in range(samples):
            t = torch.randint(1, last + 1, (n,), device=x0.device)
            weight = gather(schedule.posterior_c1, t, x0) ** 2 / (2 * gather(schedule.posterior_variance, t, x0))
            middle += (weight * (x0 - predicted_x0(t)) ** 2).sum(dims)
        middle *= last / samples
    return prior + decoder + middle


def bits_per_dim(nats: torch.Tensor, dims: int) -> torch.Tensor:
    return nats / (dims * math.log(2))
