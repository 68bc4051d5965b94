"""Bayes by Backprop: Blundell, Cornebise, Kavukcuoglu & Wierstra, "Weight Uncertainty in Neural Networks", 2015.

A network of Bayesian layers (dlfound.models.bayesian) is trained by minimising the variational free energy,
split over the M minibatches of an epoch (eq. 8):

    F_i = pi_i KL[q(w | theta) || p(w)] - E_q[log p(D_i | w)],     sum_i pi_i = 1,

with one weight draw per step for the expectation and the KL (log q(w) - log p(w) at that draw). The loss here is
F_i divided by the batch size B, so that its likelihood term is the usual mean cross-entropy:

    loss = mean cross-entropy + kl_weight * pi_i * KL / B.

`kl_schedule: uniform` is pi_i = 1/M (eq. 9, the KL spread evenly: the exact ELBO over an epoch);
`kl_schedule: blundell` is the paper's pi_i = 2^(M - i) / (2^M - 1) (sec. 3.4), heavy on the first minibatches
and nearly zero after, so that the data dominate late in each epoch. M is the trainer's number of training batches.
`kl_weight` scales the whole KL (1: the ELBO; below 1 a "cold" posterior that fits faster on a small budget).

Prediction averages the softmax over `mc_samples` weight draws (the posterior predictive, eq. 1's expectation);
validation uses one draw. The test logs the ClassificationTask's metrics with calibration and OOD detection.
"""

import torch
import torch.nn.functional as F
from torch import nn

from dlfound.errors import ConfigError
from dlfound.tasks.classification import ClassificationTask

KL_SCHEDULES = ("uniform", "blundell")


class BayesByBackpropTask(ClassificationTask):
    """Logs, besides the ClassificationTask's: `train/nll` and `train/kl` (the KL of the weights, in nats, per epoch
    mean)."""

    # Its KL share depends on the batch's place in the epoch, counted in Lightning's batches.
    steps_in_groups = False

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optim: dict,
        sched: dict | None = None,
        init: str = "default",
        mc_samples: int = 10,
        kl_weight: float = 1.0,
        kl_schedule: str = "uniform",
        ema_decay: float | None = None,
    ):
        if not callable(getattr(net, "kl", None)):
            raise ConfigError(
                f"task=bbb trains networks with weight posteriors, whose kl() enters the loss; "
                f"{type(net).__name__} has none. Choose model=bbb_mlp or model=bbb_lenet5, or train "
                "this network with task=classification."
            )
        if kl_schedule not in KL_SCHEDULES:
            raise ConfigError(
                f"task.kl_schedule={kl_schedule!r} is not a schedule; choose one of {', '.join(KL_SCHEDULES)}"
            )
        if kl_weight < 0:
            raise ConfigError(f"task.kl_weight must be >= 0 (1: the ELBO), got {kl_weight}")
        super().__init__(net, num_classes, optim, sched, init, ema_decay=ema_decay, mc_samples=mc_samples)
        self.kl_weight, self.kl_schedule = kl_weight, kl_schedule

    def kl_share(self, batch_idx: int) -> float:
        """pi_i of minibatch i = batch_idx + 1 of M."""
        batches = int(self.trainer.num_training_batches) if self._trainer is not None else 1
        if self.kl_schedule == "uniform":
            return 1.0 / batches
        # 2^(M-i) / (2^M - 1), written as 2^-i / (1 - 2^-M) so that large M does not overflow.
        return 2.0 ** -(batch_idx + 1) / (1 - 2.0**-batches)

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = self.run_net(x)
        nll = F.cross_entropy(logits, y)
        kl = self.net.kl()
        loss = nll + self.kl_weight * self.kl_share(self.batch_in_epoch) * kl / y.shape[0]
        self._accumulate("train", loss, logits, y)
        log = dict(on_step=False, on_epoch=True)
        self.log("train/nll", nll.detach(), **log)
        self.log("train/kl", kl.detach(), **log)
        every = self._trainer.log_every_n_steps if self._trainer is not None else 1
        if (self.global_step + 1) % every == 0:
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss
