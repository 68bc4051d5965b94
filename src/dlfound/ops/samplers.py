"""Samplers of diffusion and score models: from noise to data with a trained noise predictor eps(x_t, t) or a
score s(x, sigma).

DDIM (Song, Meng & Ermon 2021) over a subsequence tau_1 > ... > tau_S of the T steps, with abar' = abar at the
next (smaller) step of the subsequence, and abar' = 1 after the last:
    x0^ = (x_t - sqrt(1 - abar) eps) / sqrt(abar)
    sigma = eta sqrt((1 - abar') / (1 - abar)) sqrt(1 - abar / abar')
    x' = sqrt(abar') x0^ + sqrt(1 - abar' - sigma^2) eps + sigma z
eta = 0 is the deterministic DDIM; eta = 1 over all T steps is DDPM's ancestral sampler (Ho et al. 2020, Alg. 2)
with variance b~_t, since then sigma^2 = b~_t and the update is the posterior mean mu~_t(x_t, x0^) plus noise.
So one loop serves both. For images x0^ is clipped to [-1, 1] (as Ho et al.'s code does) and eps recomputed from
the clipped x0^, which keeps the update the posterior mean of the clipped estimate.

Annealed Langevin dynamics (Song & Ermon 2019, Alg. 1): for each noise level sigma_i, from the largest down,
`steps_per_level` steps of  x <- x + (a_i / 2) s(x, sigma_i) + sqrt(a_i) z  with a_i = step_size sigma_i^2 / sigma_L^2.
Plain Langevin dynamics is the same loop with the smallest level alone.
"""

from collections.abc import Callable

import torch

from dlfound.ops.noise_schedules import NoiseSchedule

# on_step(step_index, number_of_steps, x): progress bars and pictures of the path watch the sampler through this.
StepHook = Callable[[int, int, torch.Tensor], None]


def spaced_steps(total: int, steps: int) -> torch.Tensor:
    """`steps` of the time indices 0..total-1, evenly spaced, largest first (both ends included)."""
    return torch.linspace(total - 1, 0, steps).round().long().unique_consecutive()


@torch.no_grad()
def ddim_sample(
    eps_model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    schedule: NoiseSchedule,
    x: torch.Tensor,
    steps: int,
    eta: float = 0.0,
    clip: bool = False,
    on_step: StepHook | None = None,
) -> torch.Tensor:
    """Denoise the pure noise `x` in `steps` steps (see the module docstring)."""
    times = spaced_steps(schedule.steps, steps).tolist()
    abar_all = schedule.alphas_bar
    for i, t in enumerate(times):
        abar = abar_all[t]
        abar_next = abar_all[times[i + 1]] if i + 1 < len(times) else abar.new_tensor(1.0)
        eps = eps_model(x, torch.full((len(x),), t, device=x.device, dtype=torch.long))
        x0 = (x - (1 - abar).sqrt() * eps) / abar.sqrt()
        if clip:
            x0 = x0.clamp(-1, 1)
            eps = (x - abar.sqrt() * x0) / (1 - abar).sqrt()
        sigma = eta * ((1 - abar_next) / (1 - abar) * (1 - abar / abar_next)).clamp(min=0).sqrt()
        x = abar_next.sqrt() * x0 + (1 - abar_next - sigma**2).clamp(min=0).sqrt() * eps
        if i + 1 < len(times) and eta > 0:
            x = x + sigma * torch.randn_like(x)
        if on_step is not None:
            on_step(i, len(times), x)
    return x


@torch.no_grad()
def annealed_langevin(
    score: Callable[[torch.Tensor, int], torch.Tensor],
    x: torch.Tensor,
    sigmas: torch.Tensor,
    step_size: float,
    steps_per_level: int,
    on_step: StepHook | None = None,
) -> torch.Tensor:
    """Annealed Langevin dynamics from `x` through the levels `sigmas` (largest first); `score(x, i)` is the
    score at level sigmas[i]. Pass the last level alone for plain Langevin dynamics with step `step_size`."""
    total = len(sigmas) * steps_per_level
    for level, sigma in enumerate(sigmas):
        a = step_size * float(sigma / sigmas[-1]) ** 2
        for k in range(steps_per_level):
            x = x + a / 2 * score(x, level) + a**0.5 * torch.randn_like(x)
            if on_step is not None:
                on_step(level * steps_per_level + k, total, x)
    return x
