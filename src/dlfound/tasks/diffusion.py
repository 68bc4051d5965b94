"""Denoising diffusion probabilistic models (Ho, Jain & Abbeel 2020): train eps_theta(x_t, t) to predict the
noise in x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps with the paper's L_simple = E ||eps - eps_theta(x_t, t)||^2
(t uniform over the T steps), then denoise from pure noise (`dlfound.ops.samplers`).

- Images reach the network in [-1, 1] (data in [0, 1], scaled here); 2-D points as they are.
- Schedules: `linear` (the paper's, T = 1000) or `cosine` (Nichol & Dhariwal 2021); `timesteps` T.
- The weights' exponential moving average is on by default (the paper samples with decay 0.9999; the presets
  use less for short runs); validation, testing and sampling use it.
- Samplers: `ddpm` (ancestral, eta = 1, all T steps unless `sample_steps` says fewer) and `ddim` (Song et al.
  2021: `sample_steps`, default 50, and `eta`, default 0). Pictures during training use DDIM with
  `preview_steps` steps, which is fast and deterministic.
- Class-conditional networks are trained with the label dropped (replaced by the null class) with probability
  `cond_drop`, so one network is both conditional and unconditional; sampling with `guidance` w uses
  eps = (1 + w) eps(x, t, y) - w eps(x, t, none) (classifier-free guidance, Ho & Salimans 2022).

Logged: {train,val,test}/loss (L_simple); for images {val,test}/bpd, the variational bound in bits per dimension
(`dlfound.ops.likelihood`), the figure the flows report; sample quality as SampledQualityTask measures it
(KID/FID on images at test, MMD and mode coverage on 2-D data at validation and test). Pictures: samples, one
row per class for a conditional model, and one sample's path from noise to data (images) or the samples over
the data (2-D).
"""

import torch
import torch.nn.functional as F

from dlfound.errors import ConfigError
from dlfound.ops.likelihood import bits_per_dim, variational_bound
from dlfound.ops.noise_schedules import NoiseSchedule, make_betas
from dlfound.ops.samplers import ddim_sample
from dlfound.tasks.generative import StepwiseSamplingTask

SAMPLERS = ("ddpm", "ddim")


class DiffusionTask(StepwiseSamplingTask):
    def __init__(
        self,
        net,
        optim: dict,
        sched: dict | None = None,
        init: str = "default",
        timesteps: int = 1000,
        schedule: str = "linear",
        sampler: str = "ddpm",
        sample_steps: int | None = None,
        eta: float | None = None,
        guidance: float = 0.0,
        cond_drop: float = 0.1,
        preview_steps: int = 50,
        vlb_samples: int = 1,
        **measuring,
    ):
        """`measuring`: eval_samples, test_samples, features and the mixture's facts (see SampledQualityTask),
        and the switches of every task (compile, channels_last, ema_decay)."""
        super().__init__(net, optim, sched, init, **measuring)
        if not 0 <= cond_drop < 1:
            raise ConfigError(f"task.cond_drop is a probability below 1, got {cond_drop}")
        self.schedule = NoiseSchedule(make_betas(schedule, timesteps))
        self.cond_drop, self.preview_steps, self.vlb_samples = cond_drop, preview_steps, vlb_samples
        self.set_sampler()

    # -- sampling options, checked once ---------------------------------------------------------------------
    def set_sampler(
        self,
        sampler: str | None = None,
        steps: int | None = None,
        eta: float | None = None,
        guidance: float | None = None,
    ) -> None:
        """Choose how `sample` denoises. None keeps the configured value, or the sampler's default (ddpm: all T
        steps, eta 1; ddim: 50 steps, eta 0) when another sampler than the configured one is chosen."""
        configured = self.hparams
        same = sampler in (None, configured.sampler)
        sampler = configured.sampler if sampler is None else sampler
        steps = configured.sample_steps if steps is None and same else steps
        eta = configured.eta if eta is None and same else eta
        guidance = configured.guidance if guidance is None else guidance
        if sampler not in SAMPLERS:
            raise ConfigError(f"sampler={sampler!r}; diffusion models sample with one of {', '.join(SAMPLERS)}")
        T = self.schedule.steps
        steps = steps if steps is not None else (T if sampler == "ddpm" else min(50, T))
        if not 1 <= steps <= T:
            raise ConfigError(f"steps={steps}: a diffusion model trained with T={T} steps samples in 1 to {T} steps")
        eta = eta if eta is not None else (1.0 if sampler == "ddpm" else 0.0)
        if eta < 0:
            raise ConfigError(f"eta={eta}: DDIM's eta is at least 0 (0: deterministic, 1: DDPM's variance)")
        if guidance and not self.num_classes:
            raise ConfigError(
                f"guidance={guidance} needs a class-conditional model (model.conditional=true) "
                "trained with task.cond_drop > 0; this one is unconditional"
            )
        if guidance < 0:
            raise ConfigError(f"guidance={guidance}: the guidance scale w is at least 0 (0: plain conditional)")
        self.sampling = {"sampler": sampler, "steps": steps, "eta": eta, "guidance": guidance}

    def sampler_description(self) -> tuple[str, int]:
        s = self.sampling
        label = f"{s['sampler']} {s['steps']}"
        if s["eta"] != (1.0 if s["sampler"] == "ddpm" else 0.0):
            label += f" η={s['eta']:g}"
        if s["guidance"]:
            label += f" w={s['guidance']:g}"
        return label, s["steps"] * (2 if s["guidance"] else 1)  # guidance runs the net twice per step

    # -- data -----------------------------------------------------------------------------------------------
    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 - 1 if self.is_image else x

    def from_model(self, x: torch.Tensor) -> torch.Tensor:
        return super().from_model((x + 1) / 2 if self.is_image else x)

    # -- training -------------------------------------------------------------------------------------------
    def step(self, batch, stage: str) -> torch.Tensor:
        x, labels = batch
        x0 = self.to_model(x)
        y = labels if self.num_classes else None
        if y is not None and stage == "train" and self.cond_drop:
            y = torch.where(torch.rand(len(y), device=y.device) < self.cond_drop, self.num_classes, y)
        t = torch.randint(0, self.schedule.steps, (len(x),), device=x.device)
        noise = torch.randn_like(x0)
        loss = F.mse_loss(self.run_net(self.schedule.q_sample(x0, t, noise), t, y), noise)
        n = len(x)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True, batch_size=n)
        if stage != "train" and self.is_image:
            # The bound of the unconditional model (a conditional one through its null class): bits per
            # dimension of p(x), comparable with the flows'.
            nats = variational_bound(lambda x_t, t_: self.run_net(x_t, t_), self.schedule, x0, self.vlb_samples)
            self.log(f"{stage}/bpd", bits_per_dim(nats, x0[0].numel()).mean(), prog_bar=True, batch_size=n)
        return loss

    # -- sampling -------------------------------------------------------------------------------------------
    def noise_predictor(self, y: torch.Tensor | None, guidance: float):
        """eps(x_t, t) of the averaged network for labels y, with classifier-free guidance w when w > 0."""
        net = self.model

        def eps(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if y is None or not guidance:
                return net(x_t, t, y)
            none = torch.full_like(y, self.num_classes)
            conditional, unconditional = net(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([y, none])).chunk(2)
            return (1 + guidance) * conditional - guidance * unconditional

        return eps

    @torch.no_grad()
    def sample(
        self, n: int, temperature: float = 1.0, y=None, steps: int | None = None, eta: float | None = None, on_step=None
    ) -> torch.Tensor:
        """n samples in data space with the chosen sampler (`set_sampler`); `steps`/`eta` override it once."""
        if temperature != 1.0:
            raise ConfigError("diffusion models have no sampling temperature; leave temperature at 1")
        steps = self.sampling["steps"] if steps is None else steps
        eta = self.sampling["eta"] if eta is None else eta
        x = torch.randn(n, *self.data_shape, device=self.device)
        eps = self.noise_predictor(self.labels(y, n), self.sampling["guidance"])
        x0 = ddim_sample(eps, self.schedule, x, steps, eta, clip=self.is_image, on_step=on_step)
        return self.from_model(x0)

    def preview(self, n: int, y=None, on_step=None) -> torch.Tensor:
        """DDIM with `preview_steps` steps: the pictures during training, fast and deterministic."""
        return self.sample(n, y=y, steps=min(self.preview_steps, self.schedule.steps), eta=0.0, on_step=on_step)
