"""Image restoration: a network maps a degraded image to the clean one, trained with a pixel loss.

Training batches are (degraded, clean) patches; the loss is the mean squared error (DnCNN, SRCNN, VDSR) or
the mean absolute error (`loss: l1`, common in later SR work). Evaluation batches are whole images, one at a
time, with their set and name: PSNR and SSIM (dlfound.metrics.restoration) of the restored image, clipped to
[0, 1] and rounded to 8 bits as the published evaluations do, and the PSNR of the degraded input itself, the
baseline the network must beat. Metrics are averaged over images:

  val/loss, val/psnr, val/ssim, val/psnr_input
  test/psnr, test/ssim, test/psnr_input                  the first test set
  test/<set>/psnr, test/<set>/ssim, test/<set>/psnr_input  every test set, by folder name

Per-image test metrics go to RUN/test_images.csv. TensorBoard gets degraded | restored | clean side by side
for the first few images of each set.
"""

import csv
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dlfound.errors import ConfigError
from dlfound.metrics.restoration import psnr, ssim
from dlfound.tasks.base import Task

LOSSES = {"l2": F.mse_loss, "l1": F.l1_loss}


class RestorationTask(Task):
    monitor = "val/psnr"
    monitor_mode = "max"

    def __init__(
        self,
        net: nn.Module,
        optim: dict,
        sched: dict | None = None,
        init: str = "default",
        loss: str = "l2",
        quantize: bool = True,
        shave: int | str = "auto",
        y_channel: bool | str = "auto",
        log_images: bool = True,
        compile: bool = False,
        channels_last: bool = False,
        ema_decay: float | None = None,
    ):
        if loss not in LOSSES:
            raise ConfigError(f"task.loss={loss!r}: choose l2 (mean squared error) or l1")
        super().__init__(net, optim, sched, init, compile, channels_last, ema_decay)
        self.loss_fn = LOSSES[loss]
        self.quantize, self.shave, self.y_channel, self.log_images = quantize, shave, y_channel, log_images
        self._rows: list[dict] = []

    def step(self, batch, stage: str) -> torch.Tensor:
        if stage == "train":
            degraded, clean = batch[0], batch[1]
            loss = self.loss_fn(self(degraded), clean)
            self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=clean.shape[0])
            return loss
        return self.evaluate(batch, stage)

    def restore(self, degraded: torch.Tensor) -> torch.Tensor:
        """The network's output as an image: clipped to [0, 1] (and rounded to 8 bits with quantize)."""
        out = self(degraded).clamp(0, 1)
        return out.mul(255).round().div(255) if self.quantize else out

    def evaluate(self, batch, stage: str) -> torch.Tensor:
        """Metrics of one image (evaluation batches hold one), logged per set at test; its loss returned."""
        degraded, clean, info = batch
        raw = self(degraded).float()
        restored = raw.clamp(0, 1)
        if self.quantize:
            restored = restored.mul(255).round().div(255)
        shave = info["shave"] if self.shave == "auto" else int(self.shave)
        y_channel = info["y_channel"] if self.y_channel == "auto" else bool(self.y_channel)
        metrics = {
            "loss": self.loss_fn(raw, clean),
            "psnr": psnr(restored, clean, shave, y_channel).mean(),
            "ssim": ssim(restored, clean, shave, y_channel).mean(),
            "psnr_input": psnr(degraded, clean, shave, y_channel).mean(),
        }
        for key, value in metrics.items():
            if info.get("primary", True):
                self.log(
                    f"{stage}/{key}",
                    value,
                    on_epoch=True,
                    batch_size=1,
                    add_dataloader_idx=False,
                    prog_bar=key == "psnr",
                )
            if stage == "test":
                self.log(f"test/{info['set']}/{key}", value, on_epoch=True, batch_size=1, add_dataloader_idx=False)
        if stage == "test":
            self._rows.append(
                {
                    "set": info["set"],
                    "image": info["name"],
                    "height": clean.shape[-2],
                    "width": clean.shape[-1],
                    **{k: round(float(v), 4) for k, v in metrics.items() if k != "loss"},
                }
            )
        if self.log_images and info.get("log_image"):
            self._log_image(f"{stage}/{info['set']}/{info['name']}", degraded, restored, clean)
        return metrics["loss"]

    def _log_image(self, tag: str, degraded, restored, clean) -> None:
        from lightning.pytorch.loggers import TensorBoardLogger

        for logger in self.loggers:
            if isinstance(logger, TensorBoardLogger):
                # degraded | restored | clean, separated by a white line of 2 pixels.
                gap = torch.ones_like(clean[0, :, :, :2])
                row = torch.cat([degraded[0].clamp(0, 1), gap, restored[0], gap, clean[0]], -1)
                logger.experiment.add_image(tag, row.float().cpu(), self.global_step)

    def on_test_epoch_start(self):
        self._rows = []

    def on_test_epoch_end(self):
        """Per-image metrics into RUN/test_images.csv (when the run has loggers, i.e. a run folder)."""
        folder = getattr(self.loggers[0], "save_dir", None) if self.loggers else None
        if not self._rows or not folder or self.trainer.fast_dev_run or not self.trainer.is_global_zero:
            return
        with open(Path(folder) / "test_images.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self._rows[0]))
            writer.writeheader()
            writer.writerows(self._rows)

    def predict_step(self, batch, batch_idx):
        return self.restore(batch[0])
