"""Supervised classification with cross-entropy, the task behind every model in the classifier zoo, and behind
sequence classification (MNIST read row by row or pixel by pixel) and per-step classification (the copy problem:
logits [B, T, C] for targets [B, T], every step counted as one sample)."""

import torch
import torch.nn.functional as F
from torch import nn

from dlfound.tasks.base import Task
from dlfound.tasks.mixing import mix_batch
from dlfound.tasks.uncertainty import UncertaintyReport, check_mc_samples, dropout_on, mean_softmax


def per_step(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits [B, T, C] for targets [B, T] (a label at every step) become B*T samples."""
    if logits.dim() == 3 and y.dim() == 2:
        return logits.flatten(0, 1), y.flatten()
    return logits, y


class ClassificationTask(Task):
    """Cross-entropy, optionally label-smoothed (Szegedy et al. 2016), with opt-in mixup/CutMix on the batch
    and an L1 weight penalty. Networks with auxiliary heads (GoogLeNet) leave their training-time outputs in
    `net.aux_logits`; each adds `aux_weight` times its own cross-entropy (0.3 in Szegedy et al. 2015).

    Logs `train/loss_step` (every `trainer.log_every_n_steps`), `train/loss_epoch`, `train/acc`, and
    `{val,test}/loss`, `/acc`, and `/acc_top5` when there are more than five classes, as epoch means.

    The test also measures calibration and uncertainty (dlfound.tasks.uncertainty): `test/nll`, `/ece`, `/brier`,
    and `/ood_auroc` when the data module gives an out-of-distribution set as a second test loader, with a
    reliability diagram and entropy histogram. `mc_samples` > 1 is MC dropout (Gal & Ghahramani 2016): the test
    and `dlfound predict` average the softmax over that many passes with dropout on (validation keeps one
    deterministic pass); a network without dropout refuses it.
    """

    monitor = "val/acc"
    monitor_mode = "max"
    steps_in_groups = True

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optim: dict,
        sched: dict | None = None,
        init: str = "default",
        label_smoothing: float = 0.0,
        l1: float = 0.0,
        aux_weight: float = 0.3,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        compile: bool = False,
        channels_last: bool = False,
        ema_decay: float | None = None,
        mc_samples: int = 1,
    ):
        super().__init__(net, optim, sched, init, compile, channels_last, ema_decay)
        # Networks that sample on every pass (Bayes by Backprop) say so with `stochastic = True`.
        check_mc_samples(net, mc_samples, getattr(net, "stochastic", False))
        self.mc_samples = mc_samples
        self._report = UncertaintyReport()
        self.num_classes, self.label_smoothing, self.l1 = num_classes, label_smoothing, l1
        self.aux_weight, self.mixup_alpha, self.cutmix_alpha = aux_weight, mixup_alpha, cutmix_alpha
        self._sums: dict[str, torch.Tensor | None] = {}
        self._counts: dict[str, int] = {}
        # A network whose backward pass is written by hand (model.backprop=manual) carries the loss differentiated
        # by hand too; training uses it, so no step of the gradient is autograd's (evaluation needs no gradient).
        self.cross_entropy = getattr(net, "cross_entropy", F.cross_entropy)

    def _accumulate(self, stage: str, loss, logits, y) -> None:
        """Sums of loss, hits and top-5 hits stay on the device (the sample count in Python) and are logged once
        per epoch: a `self.log` call costs Lightning about half a millisecond, more than a small model's whole
        step on a CPU. Few operations, each costs tens of microseconds there."""
        n = y.shape[0]
        hits = (logits.argmax(1) == y).sum().float()
        if stage == "train":
            top5 = hits
        else:
            top5 = (logits.topk(min(5, logits.shape[1]), 1).indices == y[:, None]).any(1).sum().float()
        sums = torch.stack([loss.detach().float() * n, hits, top5])
        previous = self._sums.get(stage)
        self._sums[stage] = sums if previous is None else previous.add_(sums)
        self._counts[stage] = self._counts.get(stage, 0) + n

    def _log_epoch(self, stage: str) -> None:
        sums = self._sums.pop(stage, None)
        if sums is None:
            return
        sums = torch.cat([sums, sums.new_tensor([self._counts.pop(stage)])])
        if self._trainer is not None:
            # Summed over DDP ranks before dividing, so ranks of unequal shares give the exact whole-set metric.
            sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
        loss, acc, top5 = (sums[:3] / sums[3]).unbind()
        # Every rank now holds the same values; sync_dist only tells Lightning so.
        log = dict(on_step=False, on_epoch=True, sync_dist=True)
        self.log(f"{stage}/loss_epoch" if stage == "train" else f"{stage}/loss", loss, prog_bar=True, **log)
        self.log(f"{stage}/acc", acc, prog_bar=stage != "train", **log)
        if stage != "train" and self.num_classes > 5:
            self.log(f"{stage}/acc_top5", top5, **log)

    def on_train_epoch_end(self):
        self._log_epoch("train")

    def on_validation_epoch_end(self):
        self._log_epoch("val")

    def on_test_epoch_end(self):
        self._log_epoch("test")
        self._report.finish(self, "test")

    def step(self, batch, stage: str) -> torch.Tensor:
        if stage == "train":
            return self.training_loss(*batch)
        x, y = batch
        if stage == "test":  # the test averages mc_samples passes and feeds the uncertainty report
            probs, y = per_step(self.predict_probs(x), y)
            self._report.add(probs, y, ood=False)
            logits = probs.clamp_min(1e-12).log()
            loss = F.nll_loss(logits, y)
        else:
            logits, y = per_step(self.run_net(x), y)
            loss = F.cross_entropy(logits, y)
        self._accumulate(stage, loss, logits, y)
        return loss

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y_b, lam = y, 1.0
        if self.mixup_alpha > 0 or self.cutmix_alpha > 0:
            x, y, y_b, lam = mix_batch(x, y, self.mixup_alpha, self.cutmix_alpha)
        logits, y = per_step(self.run_net(x), y)

        def criterion(out):
            ce = self.cross_entropy(out, y, label_smoothing=self.label_smoothing)
            return (
                ce
                if lam == 1.0
                else lam * ce + (1 - lam) * self.cross_entropy(out, y_b, label_smoothing=self.label_smoothing)
            )

        loss = criterion(logits)
        for aux in getattr(self.net, "aux_logits", None) or []:
            loss = loss + self.aux_weight * criterion(aux)
        self._accumulate("train", loss, logits, y)
        every = self._trainer.log_every_n_steps if self._trainer is not None else 1
        if (self.global_step + 1) % every == 0:  # the steps at which Lightning's loggers write
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True)
        if self.l1:
            loss = loss + self.l1 * sum(p.abs().sum() for p in self.net.parameters() if p.ndim > 1)
        return loss

    def predict_probs(self, x: torch.Tensor) -> torch.Tensor:
        """p(y | x): the softmax of one pass, or its mean over `mc_samples` stochastic passes."""
        if self.mc_samples == 1:
            return self.run_net(x).softmax(-1)
        with dropout_on(self.model):
            return mean_softmax(self.run_net, x, self.mc_samples)

    def test_step(self, batch, batch_idx, dataloader_idx: int = 0):
        """Loader 0 is the test set; loader 1, when the data module has one, the out-of-distribution set, which
        only the uncertainty report sees."""
        if dataloader_idx == 0:
            self.step(batch, "test")
            return
        probs, y = per_step(self.predict_probs(batch[0]), batch[1])
        self._report.add(probs, y, ood=True)

    def predict_step(self, batch, batch_idx):
        return self.predict_probs(batch[0])
