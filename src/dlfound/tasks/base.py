"""What every task shares: the network, its initialisation, and optimizers and schedulers built from config.

Hyperparameters are saved as plain dicts and numbers only (never modules or partials), so checkpoints load
with torch.load(weights_only=True).
"""

import lightning as L
from torch import nn

from dlfound.models.init import initialize
from dlfound.optim import build_optimizer, build_scheduler


class Task(L.LightningModule):
    def __init__(self, net: nn.Module, optim: dict, sched: dict | None = None, init: str = "default"):
        super().__init__()
        self.net = net
        initialize(self.net, init)
        self.save_hyperparameters(ignore=["net"], logger=False)

    def forward(self, x):
        return self.net(x)

    def configure_optimizers(self):
        optimizer = build_optimizer(self.net, self.hparams.optim)
        scheduler = build_scheduler(optimizer, self.hparams.sched, int(self.trainer.estimated_stepping_batches),
                                    self.trainer.max_epochs or 1)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
