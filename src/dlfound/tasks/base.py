"""What every task shares: the network, its initialisation, optimizers and schedulers built from config, and
the efficiency switches that work with any network: torch.compile, channels_last and an EMA of the weights.

Hyperparameters are saved as plain dicts and numbers only (never modules or partials), so checkpoints load
with torch.load(weights_only=True).
"""

import lightning as L
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from dlfound.models.init import initialize
from dlfound.optim import build_optimizer, build_scheduler


class Task(L.LightningModule):
    def __init__(self, net: nn.Module, optim: dict, sched: dict | None = None, init: str = "default",
                 compile: bool = False, channels_last: bool = False, ema_decay: float | None = None):
        super().__init__()
        self.net = net
        initialize(self.net, init)
        self.channels_last = channels_last
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        # Polyak averaging of the weights (and buffers); validation and test use the average.
        self.ema = AveragedModel(self.net, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True) \
            if ema_decay else None
        self.use_compile = compile
        self._compiled = None
        self.save_hyperparameters(ignore=["net"], logger=False)

    def log(self, name: str, value, *args, **kwargs) -> None:
        """Validation and test metrics are averaged over DDP ranks, each of which sees its own share of the set,
        so results.json holds the figure for the whole set and not rank 0's share. Training metrics stay per
        rank unless a task asks: syncing a per-step value costs an all-reduce every step."""
        if not name.startswith("train/"):
            kwargs.setdefault("sync_dist", True)
        super().log(name, value, *args, **kwargs)

    def forward(self, x):
        return self.run_net(x)

    def run_net(self, x: torch.Tensor) -> torch.Tensor:
        """The network as this task runs it: EMA weights when evaluating, compiled when asked."""
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.ema is not None and not self.training:
            return self.ema.module(x)
        if self.use_compile:
            if self._compiled is None:
                # Kept outside the module tree, so state dict keys stay those of the plain network and a
                # compiled run's checkpoint loads into an uncompiled one.
                object.__setattr__(self, "_compiled", torch.compile(self.net))
            return self._compiled(x)
        return self.net(x)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self.ema is not None:
            self.ema.update_parameters(self.net)

    def configure_optimizers(self):
        optimizer = build_optimizer(self.net, self.hparams.optim)
        scheduler = build_scheduler(optimizer, self.hparams.sched, int(self.trainer.estimated_stepping_batches),
                                    self.trainer.max_epochs or 1)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
