"""Score-based generative modelling with noise conditioning (Song & Ermon 2019, "Generative Modeling by Estimating
Gradients of the Data Distribution", NCSN): learn s_theta(x, sigma) ~ grad_x log p_sigma(x), the score of the data
blurred by N(0, sigma^2 I), at noise levels sigma_1 > ... > sigma_L in geometric progression, then sample by
annealed Langevin dynamics (`dlfound.ops.samplers.annealed_langevin`).

- The network's output is divided by sigma (s = net(x, level) / sigma, Song & Ermon 2020's parametrisation): the
  true score's size scales as 1 / sigma.
- `objective=dsm`: denoising score matching (Vincent 2011), for x~ = x + sigma z the target is -z / sigma, weighted
  by lambda(sigma) = sigma^2:   L = 1/2 E ||sigma s(x~, sigma) + z||^2.
- `objective=ssm`: sliced score matching (Song, Garg, Shi & Ermon 2019) at each noise level, with no knowledge of
  the noise: L = E_v [ v^T grad_x (v^T s) + 1/2 (v^T s)^2 ] sigma^2 on x~, v ~ N(0, I), with one projection.
- `sampler=annealed` (the paper's algorithm 1) or `sampler=langevin`: plain Langevin dynamics with the score at
  the smallest level alone, for as many steps in total; on a mixture with unequal weights it gets the weights
  wrong (the paper's Figure 3), which test/heaviest_mode_weight shows. Chains start uniform on
  [-init_range, init_range]^D.

Logged: {train,val,test}/loss, and sample quality as SampledQualityTask measures it.
"""

import torch

from dlfound.errors import ConfigError
from dlfound.ops.noise_schedules import geometric_sigmas
from dlfound.ops.samplers import annealed_langevin
from dlfound.tasks.generative import StepwiseSamplingTask

OBJECTIVES = ("dsm", "ssm")
SAMPLERS = ("annealed", "langevin")
# Langevin steps per level for the pictures drawn during training.
PREVIEW_STEPS = 20


class ScoreTask(StepwiseSamplingTask):
    def __init__(
        self,
        net,
        optim: dict,
        sched: dict | None = None,
        init: str = "default",
        sigma_max: float = 20.0,
        sigma_min: float = 1.0,
        levels: int = 10,
        objective: str = "dsm",
        sampler: str = "annealed",
        step_size: float = 0.1,
        steps_per_level: int = 100,
        init_range: float = 8.0,
        **measuring,
    ):
        """Defaults: Song & Ermon's toy experiment (10 levels from 20 to 1; 100 steps of 0.1 per level)."""
        super().__init__(net, optim, sched, init, **measuring)
        if objective not in OBJECTIVES:
            raise ConfigError(f"task.objective={objective!r}; choose one of {', '.join(OBJECTIVES)}")
        if step_size <= 0 or steps_per_level < 1:
            raise ConfigError(
                f"Langevin dynamics needs task.step_size > 0 and task.steps_per_level >= 1; got "
                f"{step_size} and {steps_per_level}"
            )
        self.register_buffer("sigmas", geometric_sigmas(sigma_max, sigma_min, levels), persistent=False)
        self.objective, self.init_range = objective, init_range
        self.step_size = step_size
        self.set_sampler()

    def set_sampler(
        self,
        sampler: str | None = None,
        steps: int | None = None,
        eta: float | None = None,
        guidance: float | None = None,
    ) -> None:
        """Choose annealed or plain Langevin dynamics and the steps per level (None: as configured)."""
        if eta is not None or guidance:
            raise ConfigError(
                "eta= and guidance= apply to diffusion models (task=ddpm); a score model samples by "
                "Langevin dynamics: choose sampler=annealed|langevin and steps= (per noise level)"
            )
        sampler = self.hparams.sampler if sampler is None else sampler
        if sampler not in SAMPLERS:
            raise ConfigError(f"sampler={sampler!r}; score models sample with one of {', '.join(SAMPLERS)}")
        if steps is not None and steps < 1:
            raise ConfigError(f"steps={steps}: Langevin dynamics needs at least 1 step per noise level")
        self.sampler = sampler
        self.steps_per_level = self.hparams.steps_per_level if steps is None else steps

    def sampler_description(self) -> tuple[str, int]:
        steps = self.steps_per_level * len(self.sigmas)
        if self.sampler == "annealed":
            return f"annealed {self.steps_per_level}×{len(self.sigmas)}", steps
        return f"langevin {steps}", steps

    def score(self, x: torch.Tensor, level: torch.Tensor, net=None) -> torch.Tensor:
        """s(x, sigma_level) = net(x, level) / sigma_level, for [B] level indices."""
        sigma = self.sigmas[level].view(-1, *([1] * (x.dim() - 1)))
        out = self.run_net(x, level) if net is None else net(x, level)
        return out / sigma

    def score_matching_loss(self, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
        """The objective on a batch, each example at a random noise level."""
        level = torch.randint(0, len(self.sigmas), (len(x),), device=x.device)
        sigma = self.sigmas[level].view(-1, *([1] * (x.dim() - 1)))
        z = torch.randn_like(x)
        noisy = x + sigma * z
        dims = tuple(range(1, x.dim()))
        if self.objective == "dsm":
            return 0.5 * ((sigma * self.score(noisy, level) + z) ** 2).sum(dims).mean()
        with torch.enable_grad():  # the Jacobian-vector product, also in validation
            noisy = noisy.detach().requires_grad_(True)
            v = torch.randn_like(x)
            projected = (v * self.score(noisy, level)).sum(dims)
            (grad,) = torch.autograd.grad(projected.sum(), noisy, create_graph=create_graph)
            return (((v * grad).sum(dims) + 0.5 * projected**2) * sigma.flatten() ** 2).mean()

    def step(self, batch, stage: str) -> torch.Tensor:
        x = batch[0]
        loss = self.score_matching_loss(x, create_graph=stage == "train")
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True, batch_size=len(x))
        return loss

    def preview(self, n: int, y=None, on_step=None) -> torch.Tensor:
        """The pictures during training: at most PREVIEW_STEPS steps per level."""
        return self.sample(n, y=y, steps=min(self.steps_per_level, PREVIEW_STEPS), on_step=on_step)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, y=None, steps: int | None = None, on_step=None) -> torch.Tensor:
        """n samples by the chosen Langevin dynamics; `steps` (per level) overrides the configured number once."""
        if temperature != 1.0:
            raise ConfigError("score models have no sampling temperature; leave temperature at 1")
        if y is not None and self.num_classes:
            raise ConfigError("class-conditional score models are not supported; use task=ddpm for classes")
        net = self.model
        x = (torch.rand(n, *self.data_shape, device=self.device) * 2 - 1) * self.init_range
        levels = self.sigmas if self.sampler == "annealed" else self.sigmas[-1:]
        steps = (steps or self.steps_per_level) * (1 if self.sampler == "annealed" else len(self.sigmas))
        first = 0 if self.sampler == "annealed" else len(self.sigmas) - 1

        def score(x_: torch.Tensor, k: int) -> torch.Tensor:
            return self.score(x_, torch.full((len(x_),), first + k, device=x_.device, dtype=torch.long), net)

        return self.from_model(annealed_langevin(score, x, levels, self.step_size, steps, on_step=on_step))
