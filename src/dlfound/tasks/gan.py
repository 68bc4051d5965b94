"""Adversarial training of a `dlfound.models.gan.GAN` pair, with Lightning's manual optimisation.

Each training batch of real data makes one discriminator (critic) step; every `n_critic`-th batch also makes one
generator step. Losses (`loss`), with l = D's output:
  minimax         (Goodfellow et al. 2014)   D: -log s(l_real) - log(1 - s(l_fake))   G: log(1 - s(l_fake))
  nonsaturating   (the same paper's advice)  D: as minimax                            G: -log s(l_fake)
  wgan            (Arjovsky et al. 2017)     D: l_fake - l_real, weights clipped to [-clip, clip]   G: -l_fake
  wgan_gp         (Gulrajani et al. 2017)    D: l_fake - l_real + gp_weight (||grad D(x_hat)|| - 1)^2 on
                                             x_hat = e x + (1 - e) G(z), e ~ U[0, 1]                G: -l_fake
  hinge           (Lim & Ye 2017; Miyato et al. 2018)  D: relu(1 - l_real) + relu(1 + l_fake)   G: -l_fake
(s is the sigmoid.) The two optimizers come from `optim_g` and `optim_d`: keys laid over the run's `optim`
config, or a whole config of their own when they name another `_target_` (WGAN's RMSprop).

Sample quality is measured on held-out data at the end of each validation and test epoch, with as many generated
samples as real ones (`dlfound.tasks.generative.SampledQualityTask`: KID and FID for images, MMD and mode coverage
for 2-D points). The monitor (best checkpoint) is val/kid for images and val/mmd for points.
"""

import torch
import torch.nn.functional as F

from dlfound.errors import ConfigError
from dlfound.tasks.generative import SampledQualityTask, interpolate_latents, sample_latents
from dlfound.tasks.optim import build_optimizer

LOSSES = ("minimax", "nonsaturating", "wgan", "wgan_gp", "hinge")


def merge_optim(base: dict, over: dict | None) -> dict:
    if not over:
        return dict(base)
    if over.get("_target_") and over["_target_"] != base.get("_target_"):
        return dict(over)
    return {**base, **over}


class GANTask(SampledQualityTask):
    calls_forward = False  # the generator and discriminator, not forward

    def __init__(
        self,
        net,
        optim: dict,
        sched: dict | None = None,
        init: str = "default",
        loss: str = "nonsaturating",
        n_critic: int = 1,
        clip: float = 0.01,
        gp_weight: float = 10.0,
        optim_g: dict | None = None,
        optim_d: dict | None = None,
        **measuring,
    ):
        """`measuring`: eval_samples, test_samples, features and the mixture's facts (see SampledQualityTask),
        and the switches of every task (compile, channels_last, ema_decay)."""
        super().__init__(net, optim, sched, init, **measuring)
        self.automatic_optimization = False
        if loss not in LOSSES:
            raise ConfigError(f"task.loss={loss!r}; choose one of {', '.join(LOSSES)}")
        if n_critic < 1:
            raise ConfigError(f"task.n_critic must be at least 1, got {n_critic}")
        if sched and sched.get("_target_"):
            raise ConfigError("the GAN task does not use learning-rate schedulers; run it with sched=none")
        if loss == "wgan_gp" and any(
            isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for m in net.discriminator.modules()
        ):
            raise ConfigError(
                "WGAN-GP penalises each sample's gradient, which batch norm in the critic mixes "
                "across the batch; use model.d_norm=layer or model.d_norm=none"
            )
        self.loss, self.n_critic, self.clip, self.gp_weight = loss, n_critic, clip, gp_weight

    @property
    def monitor(self) -> str:
        return "val/kid" if self.net.is_image else "val/mmd"

    def sample(self, n: int, temperature: float = 1.0, y=None) -> torch.Tensor:
        return sample_latents(self, n, temperature, y)

    def interpolate(self, rows: int, steps: int, y=None) -> torch.Tensor:
        return interpolate_latents(self, rows, steps, y)

    # -- optimisation --------------------------------------------------------------------------------------
    def configure_optimizers(self):
        opt_g = build_optimizer(self.net.generator, merge_optim(self.hparams.optim, self.hparams.optim_g))
        opt_d = build_optimizer(self.net.discriminator, merge_optim(self.hparams.optim, self.hparams.optim_d))
        return [opt_g, opt_d]

    def _latent(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.net.latent_dim, device=self.device)

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor, y) -> tuple[torch.Tensor, dict]:
        l_real, l_fake = self.net.discriminate(real, y), self.net.discriminate(fake, y)
        if self.loss in ("minimax", "nonsaturating"):
            loss = F.softplus(-l_real).mean() + F.softplus(l_fake).mean()  # -log s(l_r) - log(1 - s(l_f))
            return loss, {"d_real": torch.sigmoid(l_real).mean(), "d_fake": torch.sigmoid(l_fake).mean()}
        if self.loss == "hinge":
            return F.relu(1 - l_real).mean() + F.relu(1 + l_fake).mean(), {}
        wasserstein = l_real.mean() - l_fake.mean()
        stats = {"wasserstein": wasserstein}
        loss = -wasserstein
        if self.loss == "wgan_gp":
            e = torch.rand(len(real), *([1] * (real.dim() - 1)), device=real.device)
            x_hat = (e * real + (1 - e) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(self.net.discriminate(x_hat, y).sum(), x_hat, create_graph=True)
            penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
            loss = loss + self.gp_weight * penalty
            stats["gp"] = penalty
        return loss, stats

    def generator_loss(self, fake: torch.Tensor, y) -> torch.Tensor:
        l_fake = self.net.discriminate(fake, y)
        if self.loss == "minimax":
            return -F.softplus(l_fake).mean()  # log(1 - s(l))
        if self.loss == "nonsaturating":
            return F.softplus(-l_fake).mean()  # -log s(l)
        return -l_fake.mean()

    def step(self, batch, stage: str) -> torch.Tensor | None:
        """Training makes the adversarial updates; evaluation has no loss to log, only the samples that
        SampledQualityTask's hooks collect and score."""
        return self.adversarial_updates(batch) if stage == "train" else None

    def adversarial_updates(self, batch) -> torch.Tensor:
        x, labels = batch
        y = labels if self.net.conditional else None
        real = self.net.to_model(x)
        n = len(x)
        opt_g, opt_d = self.optimizers()

        # Discriminator (critic) step on this batch.
        self.toggle_optimizer(opt_d)
        with torch.no_grad():
            fake = self.net.generate(self._latent(n), y)
        d_loss, stats = self.discriminator_loss(real, fake, y)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        if self.loss == "wgan":
            with torch.no_grad():
                for p in self.net.discriminator.parameters():
                    p.clamp_(-self.clip, self.clip)
        self.untoggle_optimizer(opt_d)
        self.log("train/d_loss", d_loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        for key, value in stats.items():
            self.log(f"train/{key}", value, on_step=False, on_epoch=True, batch_size=n)

        # Generator step every n_critic batches.
        if (self.batch_in_epoch + 1) % self.n_critic == 0:
            self.toggle_optimizer(opt_g)
            g_loss = self.generator_loss(self.net.generate(self._latent(n), y), y)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()
            self.untoggle_optimizer(opt_g)
            self.log("train/g_loss", g_loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        # Lightning hands this to callbacks as outputs["loss"] (the non-finite-loss check watches it).
        return d_loss.detach()
