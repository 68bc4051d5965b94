"""dlfound's own Lightning callbacks: throughput, a lighter progress bar, and what keeps a run safe to resume."""

import time

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar


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


class StopOnNonFiniteLoss(L.Callback):
    """Stops the run at the first NaN or infinite training loss, rather than training on garbage."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        import torch

        from dlfound.errors import NonFiniteLossError

        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs  # None under manual optimisation
        if loss is not None and not torch.isfinite(loss).all():
            raise NonFiniteLossError(
                f"the training loss became {loss.item()} at epoch {trainer.current_epoch}, step {trainer.global_step}; "
                "training stopped. Lower the learning rate, or clip gradients with trainer.gradient_clip_val=1.0."
            )


class SaveOnSigterm(L.Callback):
    """On SIGTERM (preemption), Lightning stops at the next batch; this saves last.ckpt first, so that
    `dlfound train resume=RUN_FOLDER` continues from there."""

    def __init__(self, checkpoint_dir: str):
        self.checkpoint_dir = checkpoint_dir

    def on_exception(self, trainer, pl_module, exception):
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if isinstance(exception, SIGTERMException):
            trainer.save_checkpoint(f"{self.checkpoint_dir}/last.ckpt")


class RNGStateInCheckpoint(L.Callback):
    """Saves and restores the torch, numpy and Python RNG states, so that a run resumed at an epoch boundary
    draws the same dropout masks and augmentations as an uninterrupted one. Stored as tensors and ints only,
    so the checkpoint still loads with weights_only=True."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        import random

        import numpy as np
        import torch

        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        py_version, py_state, py_gauss = random.getstate()
        checkpoint["dlfound_rng"] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {
                "keys": torch.from_numpy(keys.astype(np.int64)),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "gauss": float(gauss),
            },
            "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint):
        import random

        import numpy as np
        import torch

        state = checkpoint.get("dlfound_rng")
        if not state:
            return
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        n = state["numpy"]
        np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
        p = state["python"]
        random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


class ProgressBar(RichProgressBar):
    """Lightning's rich progress bar, touched only every `refresh_rate` training batches. Each update reads
    the logged metrics as Python numbers (a device sync on a GPU) and re-renders the bar, which costs more
    than a small model's whole training step."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if jupyter_without_widgets():
            # Rich animates a bar in Jupyter through ipywidgets, and without them shows nothing at all; as plain
            # text in the cell's output the bar shows each epoch's end instead.
            self._console_kwargs = {**self._console_kwargs, "force_jupyter": False}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if (batch_idx + 1) % self.refresh_rate == 0 or batch_idx + 1 == self.total_train_batches:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


def jupyter_without_widgets() -> bool:
    """Whether this process is a Jupyter kernel that lacks ipywidgets."""
    import importlib.util

    from rich.console import Console

    return Console().is_jupyter and importlib.util.find_spec("ipywidgets") is None
