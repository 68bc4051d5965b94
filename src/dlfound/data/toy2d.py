"""2-D toy classification sets: moons, circles, spirals, blobs, xor and separable, generated from a seed.

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


def xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points around the four corners (+-1, +-1), class 1 where exactly one coordinate is positive: the set no
    linear classifier separates (Minsky & Papert 1969)."""
    corners = rng.integers(0, 2, (n, 2))
    x = (2.0 * corners - 1) + rng.normal(0, noise, (n, 2))
    return x, corners[:, 0] ^ corners[:, 1]


def separable(n: int, margin: float, line_seed: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points of [-1, 1]^2 on either side of a random line (not through the origin; the same line for the
    training and test points of one `line_seed`), none closer to it than `margin`: linearly separable with margin
    at least `margin`, as the perceptron convergence theorem needs."""
    line = np.random.default_rng(line_seed)
    theta, offset = line.uniform(0, 2 * math.pi), line.uniform(-0.3, 0.3)
    normal = np.array([math.cos(theta), math.sin(theta)])
    kept = np.empty((0, 2))
    while len(kept) < n:
        x = rng.uniform(-1, 1, (2 * n, 2))
        kept = np.concatenate([kept, x[np.abs(x @ normal + offset) >= margin]])
    x = kept[:n]
    return x, (x @ normal + offset > 0).astype(np.int64)


def make_toy(kind: str, n: int, classes: int, noise: float, seed: int, split: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n points of the set `kind` from `seed`; split 1 (the test points) draws other points of the same set."""
    from sklearn import datasets

    set_seed, seed = seed, seed + split
    rng = np.random.default_rng(seed)
    if kind == "moons":
        return datasets.make_moons(n, noise=noise, random_state=seed)
    if kind == "circles":
        return datasets.make_circles(n, noise=noise, factor=0.5, random_state=seed)
    if kind == "blobs":
        return datasets.make_blobs(n, centers=classes, cluster_std=1.0 + noise, random_state=seed)
    if kind == "spirals":
        return spirals(n, classes, noise, rng)
    if kind == "xor":
        return xor(n, noise, rng)
    if kind == "separable":  # noise is the margin here
        return separable(n, noise, set_seed, rng)
    raise ConfigError(f"unknown toy set {kind!r}; choose moons, circles, spirals, blobs, xor or separable")


class Toy2DDataModule(InMemoryDataModule):
    def __init__(
        self, kind: str = "moons", n_train: int = 2000, n_test: int = 1000, noise: float = 0.1, seed: int = 0, **kwargs
    ):
        kwargs.setdefault("image_size", None)
        super().__init__(**kwargs)
        if kind in ("moons", "circles", "xor", "separable") and self.num_classes != 2:
            raise ConfigError(f"{kind} has 2 classes; set data.num_classes=2")
        self.kind, self.n_train, self.n_test, self.noise, self.seed = kind, n_train, n_test, noise, seed

    def load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.n_train if train else self.n_test
        x, y = make_toy(self.kind, n, self.num_classes, self.noise, self.seed, split=0 if train else 1)
        return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)

    @staticmethod
    def is_present(data_dir: str) -> bool:
        return True
