"""2-D mixtures of Gaussians, the standard test of mode collapse in GANs: 8 modes on a ring (Metz et al., "Unrolled
Generative Adversarial Networks", 2017) and a 5x5 grid of 25 modes (Srivastava et al., VEEGAN, 2017).

Samples are float vectors of shape [2]; the label is the index of the mode a sample came from, so a conditional
model can be asked for one mode. The data module exposes `mode_centers` [K, 2] and `mode_std`, which the GAN
task uses to count the modes a generator covers (`dlfound.metrics.sample_quality.mode_coverage`).
"""

import math

import torch

from dlfound.data.memory import InMemoryDataModule
from dlfound.errors import ConfigError

KINDS = ("ring", "grid")


def mixture_centers(kind: str, modes: int, radius: float) -> torch.Tensor:
    if kind == "ring":  # `modes` centres evenly spaced on a circle of the given radius
        angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
        return torch.stack([radius * torch.cos(angles), radius * torch.sin(angles)], 1).float()
    side = round(math.sqrt(modes))
    if side * side != modes:
        raise ConfigError(f"a grid mixture needs a square number of modes, got data.modes={modes}")
    # VEEGAN's grid: centres at -2r .. 2r in steps of r for the 5x5 case (r = radius / 2 for side 5).
    coords = torch.linspace(-radius, radius, side)
    return torch.cartesian_prod(coords, coords).float()


class GaussianMixtureDataModule(InMemoryDataModule):
    def __init__(self, kind: str = "ring", modes: int = 8, radius: float = 2.0, std: float = 0.02,
                 n_train: int = 25000, n_test: int = 2500, seed: int = 0, **kwargs):
        kwargs.setdefault("image_size", None)
        if kind not in KINDS:
            raise ConfigError(f"data.kind={kind!r}; choose one of {', '.join(KINDS)}")
        super().__init__(**kwargs)
        if self.num_classes != modes:
            raise ConfigError(f"data.num_classes must equal data.modes ({modes}): labels are the mode indices")
        self.kind, self.modes, self.radius, self.std = kind, modes, radius, std
        self.n_train, self.n_test, self.seed = n_train, n_test, seed
        self.mode_centers = mixture_centers(kind, modes, radius)
        self.mode_std = std

    def load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed + (0 if train else 1))
        n = self.n_train if train else self.n_test
        y = torch.randint(0, self.modes, (n,), generator=g)
        x = self.mode_centers[y] + self.std * torch.randn(n, 2, generator=g)
        return x, y

    @staticmethod
    def is_present(data_dir: str) -> bool:
        return True
