"""Regression with a mean-squared or mean-absolute error: the adding problem, and any network with real outputs.

Logs {train,val,test}/mse and /mae as epoch means over samples (the loss is `loss`: mse or mae), and monitors
val/mse. Outputs and targets have the same shape ([B] for one output, [B, D] for several). Validation and test also
measure the error in the norms of approximation theory: `sup_error` = max |f(x) - y| over the set and `l2_error` =
the root of the mean squared error, on an evenly spaced grid (data=function) the L2 norm of the error over the
domain. For one output of one or two inputs, a picture of the fit over the target after each validation
(TensorBoard and RUN/images/fit_epochEEE.png): curves in 1-D; target, fit and |error| as images on a 2-D grid.
"""

import torch
import torch.nn.functional as F

from dlfound.errors import ConfigError
from dlfound.plots import curve_plot, surface_plots
from dlfound.tasks.base import Task

LOSSES = {"mse": F.mse_loss, "mae": F.l1_loss}


class RegressionTask(Task):
    monitor = "val/mse"
    monitor_mode = "min"

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
    ):
        if loss not in LOSSES:
            raise ConfigError(f"task.loss={loss!r}: choose mse (mean squared error) or mae (mean absolute error)")
        super().__init__(net, optim, sched, init, compile, channels_last, ema_decay)
        self.loss_fn = LOSSES[loss]
        self._seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch
        out = self.run_net(x)
        if out.shape != y.shape:
            raise ConfigError(
                f"the network gives outputs of shape {tuple(out.shape[1:])} for targets of shape "
                f"{tuple(y.shape[1:])}; set the model's number of outputs to match the data"
            )
        y = y.to(out.dtype)
        n = y.shape[0]
        self.log(f"{stage}/mse", F.mse_loss(out, y), on_step=False, on_epoch=True, prog_bar=True, batch_size=n)
        self.log(f"{stage}/mae", F.l1_loss(out, y), on_step=False, on_epoch=True, batch_size=n)
        if stage != "train":
            self._seen.append((x.detach(), y.detach(), out.detach()))
        return self.loss_fn(out, y)

    def on_validation_epoch_end(self):
        self._log_set_errors("val")

    def on_test_epoch_end(self):
        self._log_set_errors("test")

    def _log_set_errors(self, stage: str) -> None:
        if not self._seen:
            return
        x, y, out = (torch.cat(parts) for parts in zip(*self._seen))
        self._seen = []
        error = (out - y).float()
        self.log(f"{stage}/sup_error", error.abs().max(), reduce_fx="max")
        self.log(f"{stage}/l2_error", error.pow(2).mean().sqrt())
        if stage == "val" and not self.trainer.sanity_checking and self.trainer.loggers:
            self.draw_fit(x, y, out)

    def draw_fit(self, x: torch.Tensor, y: torch.Tensor, out: torch.Tensor) -> None:
        x, y, out = x.cpu().flatten(1), y.cpu().reshape(len(y), -1), out.cpu().reshape(len(out), -1)
        if y.shape[1] != 1:
            return
        if x.shape[1] == 1:
            self.picture("fit", curve_plot(x, [y, out]))
        side = round(len(x) ** 0.5)
        if x.shape[1] == 2 and side * side == len(x):
            self.picture("fit", surface_plots([y, out, (out - y).abs()], side))

    def predict_step(self, batch, batch_idx):
        return self.run_net(batch[0])
