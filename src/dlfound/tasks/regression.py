"""Regression with a mean-squared or mean-absolute error: the adding problem, and any network with real outputs.

Logs {train,val,test}/mse and /mae as epoch means over samples (the loss is `loss`: mse or mae), and monitors
val/mse. Outputs and targets have the same shape ([B] for one output, [B, D] for several).
"""

import torch
import torch.nn.functional as F

from dlfound.errors import ConfigError
from dlfound.tasks.base import Task

LOSSES = {"mse": F.mse_loss, "mae": F.l1_loss}


class RegressionTask(Task):
    monitor = "val/mse"
    monitor_mode = "min"

    def __init__(self, net, optim: dict, sched: dict | None = None, init: str = "default", loss: str = "mse",
                 compile: bool = False, channels_last: bool = False, ema_decay: float | None = None):
        if loss not in LOSSES:
            raise ConfigError(f"task.loss={loss!r}: choose mse (mean squared error) or mae (mean absolute error)")
        super().__init__(net, optim, sched, init, compile, channels_last, ema_decay)
        self.loss_fn = LOSSES[loss]

    def step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch
        out = self.run_net(x)
        if out.shape != y.shape:
            raise ConfigError(f"the network gives outputs of shape {tuple(out.shape[1:])} for targets of shape "
                              f"{tuple(y.shape[1:])}; set the model's number of outputs to match the data")
        y = y.to(out.dtype)
        n = y.shape[0]
        self.log(f"{stage}/mse", F.mse_loss(out, y), on_step=False, on_epoch=True, prog_bar=True, batch_size=n)
        self.log(f"{stage}/mae", F.l1_loss(out, y), on_step=False, on_epoch=True, batch_size=n)
        return self.loss_fn(out, y)

    def predict_step(self, batch, batch_idx):
        return self.run_net(batch[0])
