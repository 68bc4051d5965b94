"""What the generative tasks (VAE, flow, GAN) share: data in [0, 1], sampling, and pictures of the samples.

Generative models describe pixel intensities, not standardised inputs: their task configs say
`normalize_inputs: false`, which the data configs follow (`data.normalize`), so images reach the network as grey
values in [0, 1] and samples come back in the same range. The 2-D toy sets are used as they are; on a Gaussian
mixture the run builder hands the task the mixture's `mode_centers`, drawn under 2-D samples.

Every generative task offers `sample(n, temperature=1.0, y=None)` (samples in data space, on the task's device),
which `dlfound sample` and the pictures below use. At the end of each validation epoch a task logs pictures to
TensorBoard (`add_image`) and writes them as PNG files into RUN/images/: samples from fixed noise, plus what the
family adds (reconstructions, per-class rows, 2-D scatter plots, density maps).
"""

from pathlib import Path

import numpy as np
import torch

from dlfound.images import write_picture
from dlfound.pictures import image_grid, scatter_plot, square_limits
from dlfound.tasks.base import Task


class GenerativeTask(Task):
    monitor_mode = "min"
    # How many samples the pictures show.
    picture_samples = 64

    def __init__(self, net, optim: dict, sched: dict | None = None, init: str = "default",
                 mode_centers: torch.Tensor | None = None, **switches):
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

        raise ConfigError(f"interpolate=true needs a model with a latent space to walk in (VAEs, GANs); "
                          f"{type(self).__name__} has none")

    def labels(self, y, n: int) -> torch.Tensor | None:
        """A class index (or None, or labels) as a label tensor of length n on the task's device."""
        if y is None or not self.num_classes:
            return None
        return torch.as_tensor(y, device=self.device).long().expand(n).clone() if np.ndim(y) == 0 else \
            torch.as_tensor(y, device=self.device).long()

    def class_rows(self, per_class: int = 8) -> torch.Tensor:
        """Samples of a conditional model, one row per class."""
        y = torch.arange(self.num_classes, device=self.device).repeat_interleave(per_class)
        return self.sample(len(y), y=y)

    # -- pictures ------------------------------------------------------------------------------------------
    def picture(self, name: str, picture: np.ndarray) -> None:
        """Log one picture to TensorBoard and write it to RUN/images/NAME_epochEEE.png (rank zero only)."""
        if not self.trainer.is_global_zero:
            return
        from lightning.pytorch.loggers import TensorBoardLogger

        for logger in self.trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(f"images/{name}", picture, self.current_epoch, dataformats="HWC")
        folder = Path(self.trainer.default_root_dir) / "images"
        write_picture(picture, folder / f"{name}_epoch{self.current_epoch:03d}.png")

    def log_pictures(self, reference: torch.Tensor | None) -> None:
        """Samples from fixed noise as an image grid, or as a scatter plot over the reference data in 2-D."""
        samples = self.fixed_samples()
        if self.is_image:
            self.picture("samples", image_grid(samples, nrow=8))
            if self.num_classes:
                self.picture("classes", image_grid(self.class_rows(), nrow=8))
        elif self.data_shape == (2,):
            self.picture("samples", scatter_plot(samples, reference, square_limits(reference, samples),
                                                 centers=self.mode_centers))

    def fixed_samples(self) -> torch.Tensor:
        """Samples from the same noise every epoch, so that the pictures show the model change, not the noise."""
        n = self.picture_samples if self.is_image else 1000
        state = torch.random.get_rng_state()
        cuda_state = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        torch.manual_seed(1234)
        try:
            y = torch.arange(n, device=self.device) % self.num_classes if self.num_classes else None
            return self.sample(n, y=y)
        finally:
            torch.random.set_rng_state(state)
            if cuda_state is not None:
                torch.cuda.set_rng_state_all(cuda_state)

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


class LatentVariableTask(GenerativeTask):
    """A generative task whose network decodes a latent z ~ N(0, I) (VAEs, GANs): its `net.sample(n, y,
    temperature, z=...)` gives samples, and straight lines between latents give interpolations."""

    def sample(self, n: int, temperature: float = 1.0, y=None) -> torch.Tensor:
        return self.model.sample(n, self.labels(y, n), temperature)

    @torch.no_grad()
    def interpolate(self, rows: int, steps: int, y=None) -> torch.Tensor:
        a, b = torch.randn(2, rows, 1, self.net.latent_dim, device=self.device)
        t = torch.linspace(0, 1, steps, device=self.device).view(1, steps, 1)
        z = ((1 - t) * a + t * b).reshape(rows * steps, -1)
        return self.model.sample(len(z), self.labels(y, len(z)), z=z)
