"""Training a normalizing flow (any `dlfound.models.flows.Flow`) by maximum likelihood.

Images: pixels are discrete, k in {0, ..., 255}, and a continuous density on them would grow without bound by
piling up on the 256 values. Uniform dequantisation (Theis, van den Oord & Bethge, 2016; used by NICE, RealNVP
and Glow) trains on y = (k + u) / 256, u ~ U[0, 1)^D instead; log p(y) then bounds the discrete log-likelihood,
and the test metric is bits per dimension on the 0..255 scale:

    bpd = (-log p(y) + D log 256) / (D log 2),

the number the papers report (MNIST: NICE 4.36, RealNVP 1.06, Glow 1.05). `n_bits` < 8 reduces the pixels to
2^n_bits levels first (Glow's 5-bit images).

2-D toy sets: the data are already continuous; the loss and metric are the negative log-likelihood in nats.

Logged: {train,val,test}/bpd and /nll (nats per sample, on the 0..255 scale for images) for images; /nll for
vectors. The monitor is val/bpd (images) or val/nll (vectors).
"""

import math

import torch

from dlfound.errors import ConfigError
from dlfound.plots import density_plot, image_grid, scatter_plot, side_by_side, square_limits
from dlfound.tasks.generative import GenerativeTask, fixed_noise


class FlowTask(GenerativeTask):
    calls_forward = False  # log_prob and sample, not forward

    def __init__(
        self,
        net,
        optim: dict,
        sched: dict | None = None,
        init: str = "default",
        n_bits: int = 8,
        dequantize: bool = True,
        sample_temperature: float = 0.7,
        mode_centers=None,
        **switches,
    ):
        super().__init__(net, optim, sched, init, mode_centers=mode_centers, **switches)
        if not 1 <= n_bits <= 8:
            raise ConfigError(f"task.n_bits must be between 1 and 8, got {n_bits}")
        self.n_bits, self.dequantize, self.sample_temperature = n_bits, dequantize, sample_temperature

    def nll(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(nats per sample, bits per dimension or None) for a batch of data in [0, 1] (images) or vectors."""
        if not self.is_image:
            return -self.model.log_prob(x), None
        bins = 2**self.n_bits
        # The stored pixel values k/255, back to discrete levels 0..bins-1.
        k = torch.floor(torch.round(x.clamp(0, 1) * 255) / 2 ** (8 - self.n_bits))
        y = (k + (torch.rand_like(x) if self.dequantize else 0.5)) / bins
        dim = y[0].numel()
        nats = -self.model.log_prob(y) + dim * math.log(bins)
        return nats, nats / (dim * math.log(2))

    @property
    def monitor(self) -> str:
        return "val/bpd" if self.is_image else "val/nll"

    def step(self, batch, stage: str) -> torch.Tensor:
        x = batch[0]
        nats, bpd = self.nll(x)
        n = len(x)
        on_step = stage == "train"
        self.log(
            f"{stage}/nll",
            nats.mean(),
            on_step=on_step and bpd is None,
            on_epoch=True,
            prog_bar=bpd is None,
            batch_size=n,
        )
        if bpd is not None:
            self.log(f"{stage}/bpd", bpd.mean(), on_step=on_step, on_epoch=True, prog_bar=True, batch_size=n)
        loss = bpd.mean() if bpd is not None else nats.mean()
        if stage == "train" and not torch.isfinite(loss):
            raise FloatingPointError(
                "the flow's loss became non-finite; lower optim.lr or set trainer.gradient_clip_val (e.g. 50)"
            )
        return loss

    def validation_step(self, batch, batch_idx):
        super().validation_step(batch, batch_idx)
        if batch_idx == 0:
            self.remember_reference(batch[0])

    # -- sampling and pictures -----------------------------------------------------------------------------
    def sample(self, n: int, temperature: float = 1.0, y=None) -> torch.Tensor:
        x = self.model.sample(n, temperature)
        if self.is_image:
            x = torch.nan_to_num(x, nan=0.0).clamp(0, 1)
        return x

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.log_prob(x)

    def log_pictures(self, reference):
        if self.is_image:
            with fixed_noise():
                grids = [
                    image_grid(self.sample(self.picture_samples, t), nrow=8) for t in (1.0, self.sample_temperature)
                ]
            self.picture("samples", side_by_side(*grids))  # left: temperature 1, right: sample_temperature
        elif self.data_shape == (2,):
            samples = self.fixed_samples()
            limits = square_limits(reference, samples) if reference is not None else square_limits(samples)
            self.picture(
                "samples",
                side_by_side(
                    scatter_plot(samples, reference, limits, size=384),
                    density_plot(self.log_prob, limits, size=384, device=self.device),
                ),
            )
