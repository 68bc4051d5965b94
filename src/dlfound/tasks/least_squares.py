"""Least squares as an optimisation experiment: how fast the iterate reaches the minimiser, against the theory.

The regression task's mean squared error on data=quadratic, with a model whose weights are the iterate w
(model=linear). Given the data's minimiser w* and Hessian eigenvalues (facts of the data), it logs after every
step `train/distance` = ||w_k - w*|| and `train/sq_distance` (x = step in metrics.csv), and at the test

- `test/rate`: the measured rate, exp of the least-squares slope of log ||w_k - w*|| against k over the steps
  where the distance is between 1e-12 of its start (above float64's rounding) and the start, less the first
  tenth of them (the faster eigen-directions die out first; the slowest one sets the asymptotic rate);
- `test/theory_rate`: the theory's rate of torch.optim.SGD with this run's constant step eta and momentum beta
  on this quadratic, the largest spectral radius over the eigenvalues lambda of the iteration
  [[1 + beta - eta lambda, -beta], [1, 0]] (heavy ball; Polyak 1964), or of [[(1 + beta)(1 - eta lambda),
  -beta (1 - eta lambda)], [1, 0]] with nesterov: |1 - eta lambda| without momentum, 1 - mu/L at eta = 1/L,
  and (sqrt(kappa) - 1) / (sqrt(kappa) + 1) for heavy ball's optimal eta and beta;
- `test/start_distance`: ||w_0 - w*|| (w_0 = 0), where the theory's line starts;
- `test/floor`: the mean squared distance over the last half of the steps (SGD with a constant step levels
  off there, at a height proportional to the step);
- `test/slope`: the least-squares slope of log ||w_k - w*||^2 against log k over the last decade of the steps,
  averaged in bins (-1 for SGD with a step that decays like 1/k).
"""

import math

import torch

from dlfound.errors import ConfigError
from dlfound.tasks.regression import RegressionTask


def spectral_radius(eta: float, beta: float, nesterov: bool, eigenvalues: torch.Tensor) -> float:
    """max over lambda of the spectral radius of SGD's (heavy ball's, Nesterov's) iteration on lambda x^2 / 2."""
    shrink = 1 - eta * eigenvalues
    a, b = (
        ((1 + beta) * shrink, -beta * shrink)
        if nesterov
        else (1 + beta - eta * eigenvalues, torch.full_like(shrink, -beta))
    )
    companion = torch.zeros(len(eigenvalues), 2, 2, dtype=torch.float64)
    companion[:, 0, 0], companion[:, 0, 1], companion[:, 1, 0] = a, b, 1.0
    return torch.linalg.eigvals(companion).abs().max().item()


def linear_fit(x: torch.Tensor, y: torch.Tensor) -> float:
    """The least-squares slope of y against x."""
    x = x - x.mean()
    return float((x * (y - y.mean())).sum() / (x * x).sum())


def measured_rate(distances: torch.Tensor) -> float | None:
    """exp(slope of log distance against step) over the stretch described in the module docstring."""
    usable = (distances > 1e-12 * distances[0]).nonzero().flatten()
    if len(usable) < 10:
        return None
    steps = torch.arange(int(usable[-1]) + 1, dtype=torch.float64)[len(usable) // 10 :]
    return math.exp(linear_fit(steps, distances[steps.long()].log()))


def log_log_slope(sq_distances: torch.Tensor, bins: int = 10) -> float:
    """The slope of log ||w_k - w*||^2 against log k over the last decade of steps, k = 1, 2, ...: the squared
    distances averaged in `bins` bins of equal width in log k first, since one SGD run's fluctuate by tens of %."""
    n = len(sq_distances)
    edges = torch.logspace(torch.tensor(n / 10).log10(), torch.tensor(float(n)).log10(), bins + 1).round().long()
    parts = [(a, b) for a, b in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True) if b > a]
    centres = torch.tensor([((a + 1) * b) ** 0.5 for a, b in parts], dtype=torch.float64)
    means = torch.stack([sq_distances[a:b].mean() for a, b in parts])
    return linear_fit(centres.log(), means.log())


class LeastSquaresTask(RegressionTask):
    def __init__(
        self,
        net,
        optim: dict,
        sched: dict | None = None,
        init: str = "default",
        loss: str = "mse",
        compile: bool = False,
        channels_last: bool = False,
        ema_decay: float | None = None,
        optimum: torch.Tensor | None = None,
        hessian_eigenvalues: torch.Tensor | None = None,
    ):
        if loss != "mse":
            raise ConfigError(f"task=least_squares minimises the mean squared error (loss=mse), not loss={loss!r}")
        super().__init__(net, optim, sched, init, loss, compile, channels_last, ema_decay)
        # Facts of the data (absent when a checkpoint is rebuilt without it: then no distance is measured).
        self.optimum, self.hessian_eigenvalues = optimum, hessian_eigenvalues
        self.distances: list[float] = []

    def iterate(self) -> torch.Tensor:
        weights = list(self.net.parameters())
        if len(weights) != 1 or weights[0].shape != self.optimum.shape:
            raise ConfigError(
                f"task=least_squares measures the distance of the model's one weight matrix to the data's optimum "
                f"{tuple(self.optimum.shape)}; use model=linear (the model has {len(weights)} parameter tensors)"
            )
        return weights[0]

    def on_train_batch_end(self, outputs, batch, batch_idx):
        super().on_train_batch_end(outputs, batch, batch_idx)
        if self.optimum is None:
            return
        w = self.iterate().detach().double()
        distance = (w - self.optimum.to(w.device)).norm()
        self.distances.append(distance.item())
        self.log("train/distance", distance, on_step=True, on_epoch=False)
        self.log("train/sq_distance", distance**2, on_step=True, on_epoch=False)

    def on_test_epoch_end(self):
        super().on_test_epoch_end()
        if self.optimum is None or not self.distances:
            return
        start = self.optimum.norm().item()  # w_0 = 0
        distances = torch.tensor([start, *self.distances], dtype=torch.float64)
        rate = measured_rate(distances)
        if rate is not None:
            self.log("test/rate", rate)
        self.log("test/start_distance", start)
        self.log("test/floor", distances[-max(1, len(distances) // 2) :].pow(2).mean().item())
        self.log("test/slope", log_log_slope(distances[1:].pow(2)))
        optim = self.hparams.optim
        constant = not (self.hparams.sched or {}).get("_target_")
        plain = not optim.get("dampening") and not optim.get("weight_decay")  # decay would move the optimum
        if optim.get("_target_") == "torch.optim.SGD" and constant and plain:
            theory = spectral_radius(
                optim["lr"], optim.get("momentum", 0.0), optim.get("nesterov", False), self.hessian_eigenvalues
            )
            self.log("test/theory_rate", theory)
