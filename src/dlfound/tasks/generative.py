"""What the generative tasks (VAE, flow, GAN, diffusion) share: data in [0, 1], sampling, pictures of the samples,
and (for the families with no likelihood to report) measuring sample quality.

Generative models describe pixel intensities, not standardised inputs: their task configs say
`normalize_inputs: false`, which the data configs follow (`data.normalize`), so images reach the network as grey
values in [0, 1] and samples come back in the same range. The 2-D toy sets are used as they are; on a Gaussian
mixture the run builder hands the task the mixture's `mode_centers`, drawn under 2-D samples.

Every generative task offers `sample(n, temperature=1.0, y=None)` (samples in data space, on the task's device),
which `dlfound sample` and the pictures below use. At the end of each validation epoch a task logs pictures to
TensorBoard (`add_image`) and writes them as PNG files into RUN/images/: samples from fixed noise, plus what the
family adds (reconstructions, per-class rows, 2-D scatter plots, density maps).
"""

import time
from contextlib import contextmanager

import numpy as np
import torch

from dlfound.metrics.sample_quality import PixelFeatures, features_of, score_features, score_points
from dlfound.plots import image_grid, scatter_plot, square_limits
from dlfound.tasks.base import Task


def readable_duration(seconds: float) -> str:
    """12 s, 3 min 10 s, 2 h 05 min, 3 days 4 h."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 86400} days {seconds % 86400 // 3600} h"


class SamplingProgress:
    """A line every `every` seconds while a validation or test phase samples in many steps: how much is drawn and
    the time left, extrapolated from the time so far (the steps of a sampler all cost the same)."""

    every = 30.0

    def __init__(self, what: str, total: int, say):
        self.what, self.total, self.say = what, total, say
        self.started = self.shown = time.monotonic()
        self.done = 0

    def step(self, batch: int, i: int, steps: int) -> None:
        now = time.monotonic()
        if now - self.shown < self.every:
            return
        self.shown = now
        fraction = min(1.0, (self.done + batch * (i + 1) / steps) / self.total)
        left = (now - self.started) * (1 - fraction) / fraction
        self.say(
            f"{self.what}: {fraction:.1%} of {self.total} samples drawn in {readable_duration(now - self.started)}"
            f", about {readable_duration(left)} left"
        )


@contextmanager
def fixed_noise(seed: int = 1234):
    """Draw the pictures' samples from the same noise every epoch, leaving training's random streams untouched."""
    with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if torch.cuda.is_available() else []):
        torch.manual_seed(seed)
        yield


class GenerativeTask(Task):
    # How many samples the pictures show.
    picture_samples = 64

    def __init__(
        self,
        net,
        optim: dict,
        sched: dict | None = None,
        init: str = "default",
        mode_centers: torch.Tensor | None = None,
        **switches,
    ):
        """`switches`: compile, channels_last and ema_decay (see Task); `mode_centers`: [K, 2] centres of a
        Gaussian-mixture data set, or None."""
        super().__init__(net, optim, sched, init, **switches)
        self.mode_centers = mode_centers

    # -- data ----------------------------------------------------------------------------------------------
    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(self.net.data_shape)

    @property
    def is_image(self) -> bool:
        return len(self.data_shape) == 3

    @property
    def num_classes(self) -> int:
        """Classes a conditional model can be asked for; 0 for unconditional models."""
        return int(getattr(self.net, "num_classes", 0) or 0)

    def check_class(self, y: int | None) -> None:
        from dlfound.errors import ConfigError

        if y is not None and not self.num_classes:
            raise ConfigError("class=... needs a conditional model (model.conditional=true); this one is not")
        if y is not None and not 0 <= y < self.num_classes:
            raise ConfigError(f"class={y} is out of range: this model knows classes 0..{self.num_classes - 1}")

    # -- what each family provides -------------------------------------------------------------------------
    def sample(self, n: int, temperature: float = 1.0, y: torch.Tensor | int | None = None) -> torch.Tensor:
        raise NotImplementedError

    def interpolate(self, rows: int, steps: int, y: torch.Tensor | int | None = None) -> torch.Tensor:
        """rows x steps samples along straight lines between pairs of random latents ([rows * steps, ...])."""
        from dlfound.errors import ConfigError

        raise ConfigError(
            f"interpolate=true needs a model with a latent space to walk in (VAEs, GANs); "
            f"{type(self).__name__} has none"
        )

    def labels(self, y, n: int) -> torch.Tensor | None:
        """A class index (or None, or labels) as a label tensor of length n on the task's device."""
        if y is None or not self.num_classes:
            return None
        return (
            torch.as_tensor(y, device=self.device).long().expand(n).clone()
            if np.ndim(y) == 0
            else torch.as_tensor(y, device=self.device).long()
        )

    def preview(self, n: int, y=None, **options) -> torch.Tensor:
        """Samples for the pictures during training; a family with a slow sampler uses a faster one here."""
        return self.sample(n, y=y, **options)

    def class_rows(self, per_class: int = 8) -> torch.Tensor:
        """Samples of a conditional model, one row per class."""
        y = torch.arange(self.num_classes, device=self.device).repeat_interleave(per_class)
        return self.preview(len(y), y=y)

    # -- pictures ------------------------------------------------------------------------------------------
    def log_pictures(self, reference: torch.Tensor | None) -> None:
        """Samples from fixed noise as an image grid, or as a scatter plot over the reference data in 2-D."""
        samples = self.fixed_samples()
        if self.is_image:
            self.picture("samples", image_grid(samples, nrow=8))
            if self.num_classes:
                self.picture("classes", image_grid(self.class_rows(), nrow=8))
        elif self.data_shape == (2,):
            self.picture(
                "samples",
                scatter_plot(samples, reference, square_limits(reference, samples), centers=self.mode_centers),
            )

    def fixed_samples(self) -> torch.Tensor:
        """Samples from the same noise every epoch, so that the pictures show the model change, not the noise."""
        n = self.picture_samples if self.is_image else 1000
        with fixed_noise():
            y = torch.arange(n, device=self.device) % self.num_classes if self.num_classes else None
            return self.preview(n, y=y)

    def on_validation_epoch_start(self) -> None:
        self._reference = None

    def remember_reference(self, x: torch.Tensor) -> None:
        """Keep the first validation samples to draw under the model's samples (2-D) or to reconstruct."""
        if getattr(self, "_reference", None) is None:
            self._reference = x[:1000].detach()

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return
        was_training = self.training
        self.eval()
        with torch.no_grad():
            self.log_pictures(getattr(self, "_reference", None))
        self.train(was_training)


# Sampling and interpolation of a task whose network decodes a latent z ~ N(0, I) (VAEs, GANs): its `net.sample(n,
# y, temperature, z=...)` gives samples, and straight lines between latents give interpolations. Functions the two
# tasks call, not a base class: the GAN's one line of bases is the sample-quality measurement's.
def sample_latents(task: GenerativeTask, n: int, temperature: float = 1.0, y=None) -> torch.Tensor:
    return task.model.sample(n, task.labels(y, n), temperature)


@torch.no_grad()
def interpolate_latents(task: GenerativeTask, rows: int, steps: int, y=None) -> torch.Tensor:
    a, b = torch.randn(2, rows, 1, task.net.latent_dim, device=task.device)
    t = torch.linspace(0, 1, steps, device=task.device).view(1, steps, 1)
    z = ((1 - t) * a + t * b).reshape(rows * steps, -1)
    return task.model.sample(len(z), task.labels(y, len(z)), z=z)


class SampledQualityTask(GenerativeTask):
    """A generative task scored by its samples, with as many generated samples as real held-out ones:
      images: {stage}/kid (KID on the features of the `features` network, which the run builder loads from the
              config's `fid_features`: a dlfound classifier checkpoint, `inception:PATH`, or the raw pixels when
              null) and {stage}/fid when a feature network is given;
      2-D points: {stage}/mmd (multi-bandwidth Gaussian-kernel MMD^2) and, on mixtures whose data module knows its
              modes (data=ring8, grid25, gmm2d), test/modes_covered, test/hq_fraction, test/weight_error and
              test/heaviest_mode_weight.
    Validation scores at most `eval_samples` (0: none), testing at most `test_samples` (None: the whole set). Each
    evaluation batch is `step`ped (a family with no held-out loss, the GAN, logs nothing there) and sampled."""

    def __init__(
        self,
        net,
        optim: dict,
        sched: dict | None = None,
        init: str = "default",
        eval_samples: int = 2000,
        test_samples: int | None = None,
        features: torch.nn.Module | None = None,
        mode_centers: torch.Tensor | None = None,
        mode_std: float | None = None,
        mode_weights: torch.Tensor | None = None,
        **switches,
    ):
        super().__init__(net, optim, sched, init, mode_centers=mode_centers, **switches)
        self.eval_samples, self.test_samples = eval_samples, test_samples
        self.mode_std, self.mode_weights = mode_std, mode_weights
        # A plain dict: the feature network is no submodule, so it is never saved in this task's checkpoints.
        self._extractors = {"features": features if features is not None else PixelFeatures()}
        self.measures_fid = features is not None
        self._real, self._fake, self._count = [], [], 0

    def extractor(self):
        return self._extractors["features"].to(self.device)

    def collect_samples(self, batch, limit: int | None) -> None:
        """Keep this batch's real data and as many samples (with the batch's labels for a conditional model)."""
        x, labels = batch
        n = len(x) if limit is None else min(len(x), limit - self._count)
        if n <= 0 or self.trainer.sanity_checking:
            return
        self._real.append(x[:n].detach())
        self._fake.append(self.draw(n, labels[:n] if self.num_classes else None, limit))
        self._count += n

    def draw(self, n: int, y, limit: int | None) -> torch.Tensor:
        """This evaluation batch's samples (`limit`: how many the phase draws at most)."""
        return self.sample(n, y=y)

    def measure_samples(self, stage: str) -> None:
        if not self._real:
            return
        real, fake = torch.cat(self._real), torch.cat(self._fake)
        self._real, self._fake, self._count = [], [], 0
        if self.is_image:
            extractor = self.extractor()
            metrics = score_features(features_of(extractor, real), features_of(extractor, fake), self.measures_fid)
        elif stage == "test" and self.mode_centers is not None:
            metrics = score_points(real, fake, self.mode_centers, self.mode_std, self.mode_weights)
        else:
            metrics = score_points(real, fake)
        for key, value in metrics.items():
            self.log(f"{stage}/{key}", value, prog_bar=key in ("kid", "mmd", "fid", "modes_covered"))

    def validation_step(self, batch, batch_idx):
        super().validation_step(batch, batch_idx)
        if batch_idx == 0:
            self.remember_reference(batch[0])
        self.collect_samples(batch, self.eval_samples)

    def test_step(self, batch, batch_idx):
        super().test_step(batch, batch_idx)
        self.collect_samples(batch, self.test_samples)

    def on_validation_epoch_start(self):
        super().on_validation_epoch_start()
        self._real, self._fake, self._count = [], [], 0

    def on_validation_epoch_end(self):
        self.measure_samples("val")
        super().on_validation_epoch_end()

    def on_test_epoch_start(self):
        self._real, self._fake, self._count = [], [], 0

    def on_test_epoch_end(self):
        self.measure_samples("test")


class StepwiseSamplingTask(SampledQualityTask):
    """A generative task that samples in many small steps from noise (diffusion, score models): `set_sampler`
    chooses how, `sample(..., on_step=hook)` reports each step (progress bars), and `sample_path` keeps one sample's
    states along the way, drawn as a strip for images. Subclasses implement `step` (the loss of a batch at a
    stage); validation and testing also score samples."""

    # Frames of the path picture.
    path_frames = 10

    @property
    def monitor(self) -> str:
        # The loss at random t (or noise level) is a noisy monitor; on 2-D data, sampling is cheap enough to pick by
        # MMD.
        return "val/mmd" if not self.is_image and self.eval_samples else "val/loss"

    def set_sampler(
        self,
        sampler: str | None = None,
        steps: int | None = None,
        eta: float | None = None,
        guidance: float | None = None,
    ) -> None:
        raise NotImplementedError

    def sampler_description(self) -> tuple[str, int]:
        """(how `sample` draws, e.g. 'ddim 50', network evaluations per sample), for tables."""
        raise NotImplementedError

    def draw(self, n: int, y, limit: int | None) -> torch.Tensor:
        """Sampling in a validation or test phase, watched step by step: a long phase shows the time left."""
        trainer = self.trainer
        if self._count == 0:
            stage = "testing" if trainer.testing else "validation"
            batches = sum(trainer.num_test_batches if trainer.testing else trainer.num_val_batches)
            total = min(limit or n * batches, n * batches) if batches != float("inf") else (limit or n)
            self._progress = SamplingProgress(
                f"{stage} samples ({self.sampler_description()[0]})", int(total), self.print
            )

        samples = self.sample(n, y=y, on_step=lambda i, steps, x: self._progress.step(n, i, steps))
        self._progress.done += n
        return samples

    def seconds_per_sample(self, batch: int) -> float:
        """Seconds per sample of the configured sampler, timed over a few steps on `batch` samples (without
        touching the run's random streams)."""
        stamps: list[float] = []
        total_steps = []

        class Enough(Exception):
            pass

        def tick(i: int, steps: int, x: torch.Tensor) -> None:
            stamps.append(time.perf_counter())
            total_steps[:] = [steps]
            if len(stamps) == 3:
                raise Enough

        training = self.training
        self.eval()
        started = time.perf_counter()
        try:
            with fixed_noise():
                self.sample(batch, on_step=tick)
        except Enough:
            pass
        finally:
            self.train(training)
        # The first step warms up; the later ones are what each step costs.
        per_step = (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else stamps[0] - started
        return per_step * total_steps[0] / batch

    def from_model(self, x: torch.Tensor) -> torch.Tensor:
        """A sampler's state in data space."""
        return x.clamp(0, 1) if self.is_image else x

    def sample_path(self, y=None, on_step=None, fast: bool = False) -> torch.Tensor:
        """One sample's states from noise to data, `path_frames` of them evenly spaced over the steps of the chosen
        sampler (or of the pictures' faster one, `fast`)."""
        frames, kept = [], set()

        def keep(i: int, total: int, x: torch.Tensor) -> None:
            if on_step is not None:
                on_step(i, total, x)
            if not kept:
                kept.update(round(k * (total - 1) / (self.path_frames - 1)) for k in range(self.path_frames))
            if i in kept:
                frames.append(self.from_model(x[:1]))

        (self.preview if fast else self.sample)(1, y=y, on_step=keep)
        return torch.cat(frames)

    def log_pictures(self, reference):
        super().log_pictures(reference)
        if self.is_image:
            with fixed_noise():
                path = self.sample_path(0 if self.num_classes else None, fast=True)
            self.picture("path", image_grid(path, nrow=len(path)))
