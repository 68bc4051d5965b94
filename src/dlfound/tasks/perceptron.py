"""Rosenblatt's perceptron rule, and Novikoff's bound on the number of mistakes it makes.

The rule (Rosenblatt 1958): present the training examples one at a time; when unit k misjudges an example x,
t_k (w_k . x + b_k) <= 0 with t_k = +1 for x's class and -1 otherwise, add t_k (x, 1) to (w_k, b_k). No gradient
and no learning rate (from zero weights a rate only rescales them). An epoch without a mistake ends training: the
perceptron has converged.

Novikoff (1962): if a unit vector u separates the augmented examples x~ = (x, 1) with margin gamma
(t u . x~ >= gamma for all of them) and R = max ||x~||, unit k makes at most (R / gamma)^2 mistakes, in any order
of presentation. The task takes gamma from the separator of a hard-margin linear SVM (sklearn's SVC, C = 1e6) on
the examples of its first epoch, the SVM's intercept folded into u so that u . x~ is its score: any separator's
margin gives a valid bound, the SVM's the tightest one. When a linear program finds no separator at all, there is no
bound (NaN) and the run stops at trainer.max_epochs, saying so.

Logs `train/mistakes` (per epoch, at validation; it is the monitored metric, so the best checkpoint is the epoch
with the fewest mistakes: Gallant's pocket algorithm when the data is not separable), `{val,test}/acc`, and at
test `test/updates` (all units, from the start), `test/novikoff_bound` (summed over the units) and
`test/converged` (1 or 0). For 2-D inputs, the decision regions after every epoch (TensorBoard and RUN/images/).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlfound.errors import ConfigError
from dlfound.plots import decision_regions, square_limits
from dlfound.tasks.base import Task

# The margin's SVM and linear program run on at most this many examples (beyond: no bound, said in results).
BOUND_MAX_SAMPLES = 20_000
# Validation points drawn over the decision regions.
PICTURE_POINTS = 1000


def is_separable(x: np.ndarray, t: np.ndarray) -> bool:
    """Whether some u has t_i u . x_i >= 1 for every i: a linear program's feasibility (scipy's HiGHS)."""
    from scipy.optimize import linprog

    result = linprog(
        np.zeros(x.shape[1]),
        A_ub=-(t[:, None] * x),
        b_ub=-np.ones(len(x)),
        bounds=[(None, None)] * x.shape[1],
        method="highs",
    )
    return result.status == 0


def margin(x: np.ndarray, t: np.ndarray) -> float:
    """The margin min_i t_i u . x_i / ||u|| of the hard-margin SVM's separator u of the augmented examples x (last
    coordinate 1), or NaN when they are not linearly separable."""
    from sklearn.svm import SVC

    if (t == t[0]).all():  # one class only: the bias alone separates it
        return 1.0
    if not is_separable(x, t):
        return math.nan
    svm = SVC(kernel="linear", C=1e6).fit(x, t)
    u = svm.coef_[0].copy()
    u[-1] += svm.intercept_[0]
    return float((t * (x @ u)).min() / np.linalg.norm(u))


def novikoff_bound(x: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """Sum over the one-vs-rest units of (R / gamma_k)^2 for the examples x [N, D] with classes y [N]."""
    xa = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], 1).numpy()
    radius = float(np.linalg.norm(xa, axis=1).max())
    labels = y.numpy()
    total = 0.0
    for k in range(num_classes):
        gamma = margin(xa, np.where(labels == k, 1.0, -1.0))
        total += (radius / gamma) ** 2
        if num_classes == 2:  # the second unit mirrors the first: same margin, same mistakes
            return 2 * total
    return total


class PerceptronTask(Task):
    monitor = "train/mistakes"
    monitor_mode = "min"

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optim: dict | None = None,
        sched: dict | None = None,
        init: str = "default",
        compile: bool = False,
        channels_last: bool = False,
        ema_decay: float | None = None,
    ):
        layer = getattr(net, "classifier", None)
        hidden = [name for name, _ in net.named_parameters() if not name.startswith("classifier.")]
        if not isinstance(layer, nn.Linear) or hidden or not hasattr(net, "forward_features"):
            raise ConfigError(
                f"task=perceptron trains one linear layer by Rosenblatt's rule, and "
                f"{type(net).__name__} has more ({', '.join(hidden[:3]) or 'no classifier layer'}). "
                "Use model=perceptron, or task=classification for a network with hidden layers "
                "(experiment=mlp_xor: an MLP solves XOR)"
            )
        if ema_decay is not None:
            raise ConfigError("task=perceptron keeps no average of its weights; drop task.ema_decay")
        super().__init__(net, optim or {}, None, init, compile, channels_last, None)
        self.automatic_optimization = False
        self.num_classes = num_classes
        # In the checkpoints: the test of the best checkpoint reports the run up to that epoch.
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("bound", torch.tensor(math.nan, dtype=torch.float64))
        self.register_buffer("converged", torch.zeros((), dtype=torch.bool))
        self._mistakes = 0
        self._first_epoch: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._hits: list[torch.Tensor] = []
        self._points: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._bound_skipped = False

    def configure_optimizers(self):
        return None  # the rule updates the weights itself

    def on_train_epoch_start(self):
        self._mistakes = 0

    @torch.no_grad()
    def step(self, batch, stage: str) -> None:
        """Training applies the rule (no loss, no optimizer); validation and testing count hits."""
        if stage == "train":
            self.update(*batch)
            return
        x, y = batch
        self._hits.append(torch.stack([(self.net(x).argmax(1) == y).sum(), torch.tensor(len(y), device=y.device)]))
        if stage == "val" and x[0].numel() == 2 and sum(len(p) for p, _ in self._points) < PICTURE_POINTS:
            self._points.append((x.reshape(len(x), 2).cpu(), y.cpu()))

    def update(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x = self.net.forward_features(x).float()
        if self.current_epoch == 0 and not self.trainer.sanity_checking:
            self._first_epoch.append((x.cpu(), y.cpu()))
        layer = self.net.classifier
        targets = torch.where(F.one_hot(y, self.num_classes).bool(), 1.0, -1.0)
        for xi, ti in zip(x, targets):  # one example at a time: the rule is online
            wrong = ti * layer(xi) <= 0
            n = int(wrong.sum())
            if n:
                step = ti * wrong
                layer.weight.add_(step[:, None] * xi)
                layer.bias.add_(step)
                self._mistakes += n
                self.updates += n

    def _log_accuracy(self, stage: str) -> None:
        if self._hits:
            hits, n = torch.stack(self._hits).sum(0).float()
            self.log(f"{stage}/acc", hits / n, prog_bar=True)
        self._hits = []

    def on_validation_epoch_end(self):
        self._log_accuracy("val")
        points, self._points = self._points, []
        if self.trainer.sanity_checking:
            return
        if self.current_epoch == 0 and self._first_epoch:
            self.bound.fill_(self.margin_bound())
        self.log("train/mistakes", float(self._mistakes), prog_bar=True)
        if self._mistakes == 0:
            self.converged.fill_(True)
            self.trainer.should_stop = True
        if points and self.trainer.loggers:  # a run folder's picture, not one for a bare Trainer's working directory
            self.draw_regions(torch.cat([p for p, _ in points]), torch.cat([c for _, c in points]))

    def margin_bound(self) -> float:
        x = torch.cat([x for x, _ in self._first_epoch])
        y = torch.cat([y for _, y in self._first_epoch])
        self._first_epoch = []
        if len(x) > BOUND_MAX_SAMPLES:
            self._bound_skipped = True
            print(
                f"perceptron: {len(x):,} training examples; Novikoff's bound is computed for at most "
                f"{BOUND_MAX_SAMPLES:,} (test/novikoff_bound is NaN)"
            )
            return math.nan
        return novikoff_bound(x, y, self.num_classes)

    def draw_regions(self, points: torch.Tensor, labels: torch.Tensor) -> None:
        def predict(grid: torch.Tensor) -> torch.Tensor:
            return self.net(grid.to(self.device)).argmax(1)

        self.picture("decision_regions", decision_regions(predict, points, labels, square_limits(points)))

    def on_train_end(self):
        if not bool(self.converged) and self.trainer.is_global_zero:
            if self._bound_skipped:
                separable = "the data was too large to check whether it is separable"
            elif math.isnan(float(self.bound)):
                separable = "no hyperplane separates the classes: the data is not linearly separable"
            else:
                separable = f"Novikoff's bound allows {float(self.bound):,.0f} updates; train longer"
            print(
                f"perceptron: did not converge in {self.current_epoch} epochs (every epoch still had "
                f"mistakes; {separable}). The best checkpoint is the epoch with the fewest mistakes."
            )

    def on_test_epoch_end(self):
        self._log_accuracy("test")
        self.log("test/updates", self.updates.float())
        self.log("test/novikoff_bound", self.bound.float())
        self.log("test/converged", self.converged.float())

    def predict_step(self, batch, batch_idx):
        return self.net(batch[0]).argmax(1)
