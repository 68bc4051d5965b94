"""A smooth function sampled on a grid: the small regression sets of kernel and width-scaling experiments.

Training inputs are the `side`^dim points of a regular grid of [low, high]^dim; validation and test inputs the
points of a finer grid (`test_side` per axis), so a 1-D fit can be drawn as a curve. Targets [N, 1]:
sin: prod_i sin(x_i);  abs: sum_i |x_i| / dim;  product: prod_i x_i. Deterministic, no download, full batches
by default (batch_size: null is the whole training set, the gradient descent of the NTK theory).
"""

import math

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from dlfound.errors import ConfigError

TARGETS = {
    "sin": lambda x: torch.sin(x).prod(1, keepdim=True),
    "abs": lambda x: x.abs().mean(1, keepdim=True),
    "product": lambda x: x.prod(1, keepdim=True),
}


def grid(side: int, dim: int, low: float, high: float) -> torch.Tensor:
    """[side^dim, dim]: every point of the regular grid with `side` points per axis, ends included."""
    axis = torch.linspace(low, high, side)
    return torch.cartesian_prod(*[axis] * dim).reshape(-1, dim)


class GridFunctionDataModule(L.LightningDataModule):
    def __init__(self, target: str = "sin", dim: int = 1, low: float = -math.pi, high: float = math.pi,
                 side: int = 16, test_side: int = 200, noise: float = 0.0, seed: int = 0,
                 batch_size: int | None = None, in_channels: int | None = None, num_classes: int = 1,
                 image_size: int | None = None, **_):
        super().__init__()
        if target not in TARGETS:
            raise ConfigError(f"data.target={target!r}: choose {', '.join(TARGETS)}")
        if dim < 1 or side < 2 or test_side < 2 or not low < high:
            raise ConfigError(f"data needs dim >= 1, side >= 2, test_side >= 2 and low < high; got dim={dim}, "
                              f"side={side}, test_side={test_side}, low={low}, high={high}")
        if side ** dim > 100_000 or test_side ** dim > 100_000:
            raise ConfigError(f"a grid of side {max(side, test_side)} in {dim} dimensions has more than 100,000 "
                              "points; lower data.side or data.test_side")
        self.target, self.dim, self.low, self.high = target, dim, low, high
        self.side, self.test_side, self.noise, self.seed, self.batch_size = side, test_side, noise, seed, batch_size
        self.in_channels, self.num_classes, self.image_size = dim, num_classes, None
        if in_channels not in (None, dim):
            raise ConfigError(f"data.in_channels={in_channels} but the inputs have data.dim={dim} coordinates")

    def setup(self, stage: str | None = None) -> None:
        f = TARGETS[self.target]
        x = grid(self.side, self.dim, self.low, self.high)
        y = f(x) + self.noise * torch.randn(len(x), 1, generator=torch.Generator().manual_seed(self.seed))
        x_test = grid(self.test_side, self.dim, self.low, self.high)
        self.train_set, self.test_set = TensorDataset(x, y), TensorDataset(x_test, f(x_test))

    def _loader(self, dataset: TensorDataset, shuffle: bool) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size or len(dataset), shuffle=shuffle,
                          generator=torch.Generator().manual_seed(self.seed) if shuffle else None)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=bool(self.batch_size) and self.batch_size < len(self.train_set))

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)
