"""2-D toy classification sets: moons, circles, spirals and blobs, generated from a seed.

They make decision boundaries visible and train in seconds; samples are float vectors of shape [2].
"""

import math

import numpy as np
import torch

from dlfound.data.memory import InMemoryDataModule
from dlfound.errors import ConfigError


def spirals(n: int, classes: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`classes` interleaved Archimedean spiral arms (the CS231n spiral set)."""
    y = rng.integers(0, classes, n)
    r = rng.uniform(0.05, 1.0, n)
    theta = r * 4.0 + y * (2 * math.pi / classes) + rng.normal(0, noise, n)
    return np.stack([r * np.sin(theta), r * np.cos(theta)], 1), y


def make_toy(kind: str, n: int, classes: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    rng = np.random.default_rng(seed)
    if kind == "moons":
        return datasets.make_moons(n, noise=noise, random_state=seed)
    if kind == "circles":
        return datasets.make_circles(n, noise=noise, factor=0.5, random_state=seed)
    if kind == "blobs":
        return datasets.make_blobs(n, centers=classes, cluster_std=1.0 + noise, random_state=seed)
    if kind == "spirals":
        return spirals(n, classes, noise, rng)
    raise ConfigError(f"unknown toy set {kind!r}; choose moons, circles, spirals or blobs")


class Toy2DDataModule(InMemoryDataModule):
    def __init__(self, kind: str = "moons", n_train: int = 2000, n_test: int = 1000, noise: float = 0.1,
                 seed: int = 0, **kwargs):
        kwargs.setdefault("image_size", None)
        super().__init__(**kwargs)
        if kind in ("moons", "circles") and self.num_classes != 2:
            raise ConfigError(f"{kind} has 2 classes; set data.num_classes=2")
        self.kind, self.n_train, self.n_test, self.noise, self.seed = kind, n_train, n_test, noise, seed

    def load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.n_train if train else self.n_test
        x, y = make_toy(self.kind, n, self.num_classes, self.noise, self.seed + (0 if train else 1))
        return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)

    @staticmethod
    def is_present(data_dir: str) -> bool:
        return True
