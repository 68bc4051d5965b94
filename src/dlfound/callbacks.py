"""dlfound's own Lightning callbacks: training throughput, and the run's config inside every checkpoint."""

import time

import lightning as L


class Throughput(L.Callback):
    """Training samples per second over the training batches only (validation and testing excluded)."""

    def __init__(self):
        self.samples = 0
        self.seconds = 0.0
        self._start: float | None = None

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def _stop(self):
        if self._start is not None:
            self.seconds += time.perf_counter() - self._start
            self._start = None

    def on_validation_start(self, trainer, pl_module):
        self._stop()

    def on_train_epoch_end(self, trainer, pl_module):
        self._stop()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.samples += len(batch[-1]) * trainer.world_size

    @property
    def samples_per_s(self) -> float | None:
        return self.samples / self.seconds if self.seconds else None


class ConfigInCheckpoint(L.Callback):
    """Stores the resolved run config (plain dicts and lists) in each checkpoint, so that `dlfound eval` and
    `dlfound sample` rebuild the data, network and task from the checkpoint file alone."""

    def __init__(self, config: dict):
        self.config = config

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        checkpoint["dlfound_config"] = self.config
