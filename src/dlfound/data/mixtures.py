"""2-D mixtures of Gaussians, the standard test of mode collapse in GANs: 8 modes on a ring (Metz et al., "Unrolled
Generative Adversarial Networks", 2017), a 5x5 grid of 25 modes (Srivastava et al., VEEGAN, 2017), and any
`centers` with mixture `weights` (kind=custom: Song & Ermon 2019's 0.8 N((5, 5), I) + 0.2 N((-5, -5), I)).

Samples are float vectors of shape [2]; the label is the index of the mode a sample came from, so a conditional
model can be asked for one mode. The data module exposes `mode_centers` [K, 2], `mode_std` and `mode_weights` [K],
which the generative tasks use to count the modes a model covers and the weight it gives each
(`dlfound.metrics.sample_quality.mode_coverage`, `mode_weights`).
"""

import math

import torch

from dlfound.data.memory import InMemoryDataModule
from dlfound.errors import ConfigError

KINDS = ("ring", "grid", "custom")


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


def custom_centers(centers, modes: int) -> torch.Tensor:
    if not centers or any(len(c) != 2 for c in centers) or len(centers) != modes:
        raise ConfigError(
            f"data.kind=custom needs data.centers, a list of {modes} (data.modes) points [x, y]; got {centers}"
        )
    return torch.tensor(centers, dtype=torch.float32)


def mixture_weights(weights, modes: int) -> torch.Tensor:
    if weights is None:
        return torch.full((modes,), 1 / modes)
    w = torch.tensor(weights, dtype=torch.float32)
    if w.shape != (modes,) or (w < 0).any() or w.sum() <= 0:
        raise ConfigError(
            f"data.weights must be {modes} (data.modes) non-negative numbers, not all zero; got {weights}"
        )
    return w / w.sum()


class GaussianMixtureDataModule(InMemoryDataModule):
    def __init__(
        self,
        kind: str = "ring",
        modes: int = 8,
        radius: float = 2.0,
        std: float = 0.02,
        centers: list[list[float]] | None = None,
        weights: list[float] | None = None,
        n_train: int = 25000,
        n_test: int = 2500,
        seed: int = 0,
        **kwargs,
    ):
        """kind=custom takes `centers` ([[x, y], ...]; `modes` must be their number); `weights` (any kind; None:
        equal) are the mixture weights, normalised here."""
        kwargs.setdefault("image_size", None)
        if kind not in KINDS:
            raise ConfigError(f"data.kind={kind!r}; choose one of {', '.join(KINDS)}")
        super().__init__(**kwargs)
        if self.num_classes != modes:
            raise ConfigError(f"data.num_classes must equal data.modes ({modes}): labels are the mode indices")
        self.kind, self.modes, self.radius, self.std = kind, modes, radius, std
        self.n_train, self.n_test, self.seed = n_train, n_test, seed
        self.mode_centers = custom_centers(centers, modes) if kind == "custom" else mixture_centers(kind, modes, radius)
        self.mode_std = std
        self.mode_weights = mixture_weights(weights, modes)
        self.equal_weights = weights is None

    def load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed + (0 if train else 1))
        n = self.n_train if train else self.n_test
        y = (
            torch.randint(0, self.modes, (n,), generator=g)
            if self.equal_weights
            else torch.multinomial(self.mode_weights, n, replacement=True, generator=g)
        )
        x = self.mode_centers[y] + self.std * torch.randn(n, 2, generator=g)
        return x, y

    @staticmethod
    def is_present(data_dir: str) -> bool:
        return True
