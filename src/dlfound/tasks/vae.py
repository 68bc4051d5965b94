"""Training a VAE (any `dlfound.models.vae` network) by maximising the ELBO; measuring it by the ELBO and IWAE.

Per image, in nats:  -ELBO = rec + KL,  rec = -E_q[log p(x|z)] (one posterior sample),
KL = KL(q(z|x) || p(z)) (analytic). The training loss is rec + beta * KL: beta = 1 is the VAE of Kingma & Welling
(2014), beta > 1 the beta-VAE of Higgins et al. (2017), and `kl_warmup_epochs` ramps beta up from 0 (Bowman et
al., 2016; Sonderby et al., 2016).

At test time the task also reports the importance-weighted estimate of the negative log-likelihood
(Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", 2016):

    log p(x) >= log (1/k) sum_i p(x, z_i) / q(z_i|x),   z_i ~ q(z|x),

a bound that tightens as k grows and equals the ELBO for k = 1. Logged: {train,val,test}/nelbo, /rec, /kl and
test/nll_iw (k = `iw_samples`).

Data convention: images are grey values in [0, 1] (see `dlfound.tasks.generative`); with the Bernoulli likelihood
the reconstruction term is the binary cross-entropy on those grey values, as in pytorch/examples' VAE, unless
`binarize=dynamic`, which draws a binary image x ~ Bernoulli(grey values) for every batch (the usual protocol
for likelihoods on binarised MNIST).
"""

import math

import torch

from dlfound.errors import ConfigError
from dlfound.plots import image_grid
from dlfound.tasks.generative import GenerativeTask, interpolate_latents, sample_latents

BINARIZE = ("none", "dynamic")


class VAETask(GenerativeTask):
    monitor = "val/nelbo"
    monitor_mode = "min"

    def __init__(
        self,
        net,
        optim: dict,
        sched: dict | None = None,
        init: str = "default",
        beta: float = 1.0,
        kl_warmup_epochs: float = 0.0,
        iw_samples: int = 100,
        iw_chunk: int = 25,
        binarize: str = "none",
        mode_centers=None,
        **switches,
    ):
        super().__init__(net, optim, sched, init, mode_centers=mode_centers, **switches)
        if binarize not in BINARIZE:
            raise ConfigError(f"task.binarize={binarize!r}; choose one of {', '.join(BINARIZE)}")
        if binarize != "none" and net.likelihood != "bernoulli":
            raise ConfigError("task.binarize=dynamic needs the Bernoulli likelihood (model.likelihood=bernoulli)")
        if net.likelihood == "bernoulli" and len(net.data_shape) == 1:
            raise ConfigError(
                "the Bernoulli likelihood models values in [0, 1] (pixels); for points such as the 2-D "
                "toy sets use model.likelihood=gaussian"
            )
        if beta < 0 or iw_samples < 0:
            raise ConfigError(f"task.beta and task.iw_samples must be non-negative, got {beta} and {iw_samples}")
        self.beta, self.kl_warmup_epochs = beta, kl_warmup_epochs
        self.iw_samples, self.iw_chunk, self.binarize = iw_samples, max(1, iw_chunk), binarize

    # -- objective -----------------------------------------------------------------------------------------
    def _inputs(self, batch):
        x, y = batch
        if self.binarize == "dynamic":
            x = torch.bernoulli(x.clamp(0, 1))
        return x, (y if self.net.conditional else None)

    def elbo_terms(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(rec, kl) per sample in nats: -ELBO = rec + kl."""
        params, mu, logvar = self.run_net(x, y)
        return -self.model.log_likelihood(x, params), self.model.kl_divergence(mu, logvar)

    def current_beta(self) -> float:
        if not self.kl_warmup_epochs or not self.training:
            return self.beta
        batches = max(1, self.trainer.num_training_batches) if self._trainer else 1
        progress = self.current_epoch + self.trainer.fit_loop.epoch_loop.batch_progress.current.ready / batches
        return self.beta * min(1.0, progress / self.kl_warmup_epochs)

    def step(self, batch, stage: str) -> torch.Tensor:
        x, y = self._inputs(batch)
        rec, kl = self.elbo_terms(x, y)
        loss = (rec + self.current_beta() * kl).mean()
        n = len(x)
        on_step = stage == "train"
        self.log(f"{stage}/nelbo", (rec + kl).mean(), on_step=on_step, on_epoch=True, prog_bar=True, batch_size=n)
        self.log(f"{stage}/rec", rec.mean(), on_epoch=True, batch_size=n)
        self.log(f"{stage}/kl", kl.mean(), on_epoch=True, batch_size=n)
        if stage == "train" and self.beta != 1.0:
            self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=n)
        return loss

    @torch.no_grad()
    def iw_log_likelihood(self, x: torch.Tensor, y: torch.Tensor | None = None, k: int | None = None) -> torch.Tensor:
        """The importance-weighted lower bound on log p(x) with k samples per input, [N] nats."""
        k = k or self.iw_samples
        mu, logvar = self.model.encode(x, y)
        std = torch.exp(0.5 * logvar)
        log_w = []
        for start in range(0, k, self.iw_chunk):
            m = min(self.iw_chunk, k - start)
            eps = torch.randn(m, *mu.shape, device=mu.device, dtype=mu.dtype)  # [m, N, latent]
            z = mu + std * eps
            zf = z.reshape(-1, mu.shape[1])
            rep = lambda t: None if t is None else t.repeat(m, *([1] * (t.dim() - 1)))  # noqa: E731
            log_px = self.model.log_likelihood(rep(x), self.model.decode(zf, rep(y))).view(m, -1)
            log_pz = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(-1)
            log_qz = (-0.5 * eps.pow(2) - 0.5 * math.log(2 * math.pi) - 0.5 * logvar).sum(-1)
            log_w.append(log_px + log_pz - log_qz)
        return torch.logsumexp(torch.cat(log_w), 0) - math.log(k)

    # -- Lightning hooks: what evaluation adds to step ------------------------------------------------------
    def validation_step(self, batch, batch_idx):
        super().validation_step(batch, batch_idx)
        if batch_idx == 0:
            self.remember_reference(self._inputs(batch)[0])
            self._reference_labels = batch[1][:1000]

    def test_step(self, batch, batch_idx):
        super().test_step(batch, batch_idx)
        if self.iw_samples:
            x, y = self._inputs(batch)
            nll = -self.iw_log_likelihood(x, y)
            self.log("test/nll_iw", nll.mean(), on_epoch=True, batch_size=len(x))

    # -- sampling and pictures -----------------------------------------------------------------------------
    def sample(self, n: int, temperature: float = 1.0, y=None) -> torch.Tensor:
        return sample_latents(self, n, temperature, y)

    def interpolate(self, rows: int, steps: int, y=None) -> torch.Tensor:
        return interpolate_latents(self, rows, steps, y)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """E[x|z] at the posterior mean z = mu(x)."""
        mu, _ = self.model.encode(x, y)
        return self.model.mean(self.model.decode(mu, y))

    def log_pictures(self, reference):
        super().log_pictures(reference)
        if self.is_image and reference is not None and len(reference) >= 8:
            x = reference[: min(32, len(reference) // 8 * 8)]
            y = self._reference_labels[: len(x)].to(self.device) if self.net.conditional else None
            # Rows of 8 originals, each followed by a row of their reconstructions.
            rec = self.reconstruct(x, y)
            pairs = torch.stack([x.view(-1, 8, *x.shape[1:]), rec.view(-1, 8, *x.shape[1:])], 1).flatten(0, 2)
            self.picture("reconstructions", image_grid(pairs, nrow=8))
