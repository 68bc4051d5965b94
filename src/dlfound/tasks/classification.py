"""Supervised classification with cross-entropy, the task behind every model in the classifier zoo."""

import torch
import torch.nn.functional as F
from torch import nn

from dlfound.tasks.base import Task


class ClassificationTask(Task):
    """Cross-entropy (optionally label-smoothed, Szegedy et al. 2016) plus an optional L1 weight penalty.

    Logs `{train,val,test}/loss` and `/acc`, and `/acc_top5` when there are more than five classes.
    """

    monitor = "val/acc"
    monitor_mode = "max"

    def __init__(self, net: nn.Module, num_classes: int, optim: dict, sched: dict | None = None,
                 init: str = "default", label_smoothing: float = 0.0, l1: float = 0.0):
        super().__init__(net, optim, sched, init)
        self.num_classes, self.label_smoothing, self.l1 = num_classes, label_smoothing, l1

    def _step(self, batch, stage: str):
        x, y = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing if stage == "train" else 0.0)
        n = y.shape[0]
        training = stage == "train"
        # Evaluation metrics are averaged over all DDP ranks; training ones stay per rank (no sync per step).
        log = dict(on_epoch=True, batch_size=n, sync_dist=not training)
        self.log(f"{stage}/loss", loss, on_step=training, prog_bar=True, **log)
        self.log(f"{stage}/acc", (logits.argmax(1) == y).float().mean(), prog_bar=not training, **log)
        if not training and self.num_classes > 5:
            top5 = (logits.topk(5, 1).indices == y[:, None]).any(1).float().mean()
            self.log(f"{stage}/acc_top5", top5, **log)
        return loss

    def training_step(self, batch, batch_idx):
        loss = self._step(batch, "train")
        if self.l1:
            loss = loss + self.l1 * sum(p.abs().sum() for p in self.net.parameters() if p.ndim > 1)
        return loss

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx):
        return self.net(batch[0]).softmax(-1)
