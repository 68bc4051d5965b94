"""Least-squares problems of a chosen condition number: the strongly convex quadratics of convergence theory.

n samples x_i in R^d and targets y_i = x_i . w_true + noise, built so that the mean squared error
f(w) = (1/n) sum_i (x_i . w - y_i)^2 (task=least_squares, a linear model whose weights are the iterate w) has the
Hessian H = (2/n) X^T X = Q diag(lambda) Q^T with eigenvalues spread evenly from mu = 1 / `condition` to L = 1 and
a random rotation Q. So f(w) - f* = 1/2 (w - w*)^T H (w - w*), gradient descent's step 1/L is lr=1, and its
distance to the minimiser w* shrinks like (1 - mu/L)^k. Without `noise` the targets are exact and f* = 0; with
it, w* (the least-squares solution of these n samples, computed exactly) differs from w_true and the gradients
of single samples disagree at w*: the source of SGD's noise floor.

Every training epoch is `steps` batches: the whole set each time (batch_size null: gradient descent), or
`batch_size` samples drawn with replacement (SGD). Validation and test see the whole set. The data module hands
the task the facts `optimum` (w*, [1, d]) and `hessian_eigenvalues` ([d]), from which it measures the distance
to the optimum and the theory's rate.
"""

import lightning as L
import torch
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

from dlfound.errors import ConfigError


class RepeatedBatches:
    """A batch sampler that yields every index of a set of `size`, `steps` times: full-batch gradient descent."""

    def __init__(self, size: int, steps: int):
        self.size, self.steps = size, steps

    def __iter__(self):
        return (list(range(self.size)) for _ in range(self.steps))

    def __len__(self) -> int:
        return self.steps


class QuadraticDataModule(L.LightningDataModule):
    def __init__(
        self,
        condition: float = 10.0,
        dim: int = 20,
        samples: int | None = None,
        noise: float = 0.0,
        steps: int = 500,
        batch_size: int | None = None,
        seed: int = 0,
        in_channels: int | None = None,
        num_classes: int = 1,
        image_size: int | None = None,
        **_,
    ):
        super().__init__()
        samples = samples or dim
        if condition < 1 or dim < 1 or samples < dim or steps < 1:
            raise ConfigError(
                f"data=quadratic needs condition >= 1, dim >= 1, samples >= dim (a unique least-squares "
                f"solution) and steps >= 1; got condition={condition}, dim={dim}, samples={samples}, steps={steps}"
            )
        if batch_size is not None and not 1 <= batch_size <= samples:
            raise ConfigError(f"data.batch_size={batch_size} must lie in 1..samples={samples}, or be null (full batch)")
        if in_channels not in (None, dim):
            raise ConfigError(f"data.in_channels={in_channels} but the samples have data.dim={dim} coordinates")
        self.condition, self.dim, self.samples, self.noise = float(condition), dim, samples, noise
        self.steps, self.batch_size, self.seed = steps, batch_size, seed
        self.in_channels, self.num_classes, self.image_size = dim, num_classes, None
        self.make()

    def make(self) -> None:
        """X = sqrt(n/2) U diag(sqrt(lambda)) Q^T with U [n, d] and Q [d, d] orthonormal, so (2/n) X^T X = H."""
        g = torch.Generator().manual_seed(self.seed)
        n, d = self.samples, self.dim
        eigenvalues = torch.linspace(1.0 / self.condition, 1.0, d, dtype=torch.float64)
        u, _ = torch.linalg.qr(torch.randn(n, d, generator=g, dtype=torch.float64))
        q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
        x = (n / 2) ** 0.5 * u * eigenvalues.sqrt() @ q.T
        w_true = torch.randn(d, generator=g, dtype=torch.float64)
        y = x @ (w_true / w_true.norm()) + self.noise * torch.randn(n, generator=g, dtype=torch.float64)
        # Rounded to float32 first, so that w* is the exact minimiser of the data the network sees in either precision.
        x, y = x.float().double(), y[:, None].float().double()
        self.hessian_eigenvalues = eigenvalues
        self.optimum = torch.linalg.lstsq(x, y).solution.T  # w* [1, d]
        self.x, self.y = x, y

    def setup(self, stage: str | None = None) -> None:
        # In the precision the trainer casts to (32-true by default; 64-true keeps every digit of the iterates).
        self.set = TensorDataset(self.x.float(), self.y.float())

    def train_dataloader(self) -> DataLoader:
        if self.batch_size is None:
            return DataLoader(self.set, batch_sampler=RepeatedBatches(self.samples, self.steps))
        draws = RandomSampler(
            self.set,
            replacement=True,
            num_samples=self.steps * self.batch_size,
            generator=torch.Generator().manual_seed(self.seed),
        )
        return DataLoader(self.set, batch_size=self.batch_size, sampler=draws)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.set, batch_size=self.samples)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()
