"""Noise schedules of diffusion models: the forward (noising) process of DDPM (Ho, Jain & Abbeel 2020) and its
closed forms, and the geometric noise levels of score models (Song & Ermon 2019).

With betas b_1..b_T, a_t = 1 - b_t and abar_t = a_1 ... a_t:
    q(x_t | x_0)        = N(sqrt(abar_t) x_0, (1 - abar_t) I)                          (the paper's eq. 4)
    q(x_{t-1} | x_t, x_0) = N(mu~_t, b~_t I),  mu~_t = c1_t x_0 + c2_t x_t               (eq. 6, 7)
        c1_t = sqrt(abar_{t-1}) b_t / (1 - abar_t),  c2_t = sqrt(a_t) (1 - abar_{t-1}) / (1 - abar_t),
        b~_t = (1 - abar_{t-1}) b_t / (1 - abar_t).
Time steps are 0-based in code: index i holds the paper's t = i + 1, and abar_{-1} (the paper's abar_0) is 1.
"""

import math

import torch
from torch import nn

from dlfound.errors import ConfigError

SCHEDULES = ("linear", "cosine")


def linear_betas(steps: int, beta_1: float = 1e-4, beta_T: float = 0.02) -> torch.Tensor:
    """Ho et al.'s schedule for T = 1000, rescaled for other T so that abar_T stays about the same."""
    scale = 1000 / steps
    return torch.linspace(scale * beta_1, scale * beta_T, steps, dtype=torch.float64)


def cosine_betas(steps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal 2021: abar(t) = cos^2(((t / T + s) / (1 + s)) pi / 2) / (the same at t = 0)."""
    t = torch.arange(steps + 1, dtype=torch.float64) / steps
    abar = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - abar[1:] / abar[:-1]).clamp(max=max_beta)


def make_betas(schedule: str, steps: int) -> torch.Tensor:
    if steps < 1:
        raise ConfigError(f"task.timesteps must be at least 1, got {steps}")
    if schedule == "linear":
        if steps <= 20:  # rescaled by 1000 / T, the last beta would reach 1 and destroy the signal in one step
            raise ConfigError(f"the linear schedule needs task.timesteps > 20, got {steps}; use task.schedule=cosine")
        return linear_betas(steps)
    if schedule == "cosine":
        return cosine_betas(steps)
    raise ConfigError(f"task.schedule={schedule!r}; choose one of {', '.join(SCHEDULES)}")


def gather(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t], shaped to broadcast over a batch like `like` ([B, 1, 1, 1] for images)."""
    return values[t].to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


class NoiseSchedule(nn.Module):
    """The per-step constants of one schedule, as buffers that follow the task to its device (not saved: the
    config rebuilds them), computed in float64 and stored in float32."""

    def __init__(self, betas: torch.Tensor):
        super().__init__()
        alphas = 1 - betas
        abar = torch.cumprod(alphas, 0)
        abar_prev = torch.cat([abar.new_ones(1), abar[:-1]])
        constants = {
            "betas": betas,
            "alphas_bar": abar,
            "alphas_bar_prev": abar_prev,
            "posterior_variance": betas * (1 - abar_prev) / (1 - abar),
            "posterior_c1": betas * abar_prev.sqrt() / (1 - abar),
            "posterior_c2": alphas.sqrt() * (1 - abar_prev) / (1 - abar),
        }
        for name, value in constants.items():
            self.register_buffer(name, value.float(), persistent=False)

    @property
    def steps(self) -> int:
        return len(self.betas)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps."""
        abar = gather(self.alphas_bar, t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x_0 from x_t and the noise in it: eq. 4 solved for x_0."""
        abar = gather(self.alphas_bar, t, x_t)
        return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()

    def predict_eps(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        abar = gather(self.alphas_bar, t, x_t)
        return (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()

    def posterior_mean(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """mu~_t(x_t, x_0), the mean of q(x_{t-1} | x_t, x_0)."""
        return gather(self.posterior_c1, t, x_t) * x0 + gather(self.posterior_c2, t, x_t) * x_t


def geometric_sigmas(sigma_max: float, sigma_min: float, levels: int) -> torch.Tensor:
    """Noise levels sigma_1 > ... > sigma_L in geometric progression (Song & Ermon 2019, NCSN)."""
    if not sigma_max > sigma_min > 0 or levels < 2:
        raise ConfigError(
            f"noise levels need sigma_max > sigma_min > 0 and at least 2 levels; got sigma_max="
            f"{sigma_max}, sigma_min={sigma_min}, levels={levels}"
        )
    return torch.exp(torch.linspace(math.log(sigma_max), math.log(sigma_min), levels))
