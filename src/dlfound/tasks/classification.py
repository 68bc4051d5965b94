"""Supervised classification with cross-entropy, the task behind every model in the classifier zoo."""

import torch.nn.functional as F
from torch import nn

from dlfound.tasks.base import Task
from dlfound.tasks.mixing import mix_batch


class ClassificationTask(Task):
    """Cross-entropy, optionally label-smoothed (Szegedy et al. 2016), with opt-in mixup/CutMix on the batch
    and an L1 weight penalty. Networks with auxiliary heads (GoogLeNet) leave their training-time outputs in
    `net.aux_logits`; each adds `aux_weight` times its own cross-entropy (0.3 in Szegedy et al. 2015).

    Logs `{train,val,test}/loss` and `/acc`, and `/acc_top5` when there are more than five classes.
    """

    monitor = "val/acc"
    monitor_mode = "max"

    def __init__(self, net: nn.Module, num_classes: int, optim: dict, sched: dict | None = None,
                 init: str = "default", label_smoothing: float = 0.0, l1: float = 0.0, aux_weight: float = 0.3,
                 mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0, compile: bool = False,
                 channels_last: bool = False, ema_decay: float | None = None):
        super().__init__(net, optim, sched, init, compile, channels_last, ema_decay)
        self.num_classes, self.label_smoothing, self.l1 = num_classes, label_smoothing, l1
        self.aux_weight, self.mixup_alpha, self.cutmix_alpha = aux_weight, mixup_alpha, cutmix_alpha

    def _log_metrics(self, stage: str, loss, logits, y) -> None:
        training = stage == "train"
        # Evaluation metrics are averaged over all DDP ranks; training ones stay per rank (no sync per step).
        log = dict(on_epoch=True, batch_size=y.shape[0], sync_dist=not training)
        self.log(f"{stage}/loss", loss, on_step=training, prog_bar=True, **log)
        self.log(f"{stage}/acc", (logits.argmax(1) == y).float().mean(), on_step=False, prog_bar=not training, **log)
        if not training and self.num_classes > 5:
            top5 = (logits.topk(5, 1).indices == y[:, None]).any(1).float().mean()
            self.log(f"{stage}/acc_top5", top5, **log)

    def training_step(self, batch, batch_idx):
        x, y = batch
        y_b, lam = y, 1.0
        if self.mixup_alpha > 0 or self.cutmix_alpha > 0:
            x, y, y_b, lam = mix_batch(x, y, self.mixup_alpha, self.cutmix_alpha)
        logits = self.run_net(x)

        def criterion(out):
            ce = F.cross_entropy(out, y, label_smoothing=self.label_smoothing)
            return ce if lam == 1.0 else lam * ce + (1 - lam) * F.cross_entropy(out, y_b, label_smoothing=self.label_smoothing)

        loss = criterion(logits)
        for aux in getattr(self.net, "aux_logits", None) or []:
            loss = loss + self.aux_weight * criterion(aux)
        self._log_metrics("train", loss, logits, y)
        if self.l1:
            loss = loss + self.l1 * sum(p.abs().sum() for p in self.net.parameters() if p.ndim > 1)
        return loss

    def _evaluate(self, batch, stage: str):
        x, y = batch
        logits = self.run_net(x)
        self._log_metrics(stage, F.cross_entropy(logits, y), logits, y)

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def predict_step(self, batch, batch_idx):
        return self.run_net(batch[0]).softmax(-1)
