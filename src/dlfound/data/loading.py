"""What every batched data module shares: its loader settings (the data configs' batch_size, eval_batch_size,
num_workers, pin_memory and overfit_batches keys) and the one loader its splits are served by: whole batches
indexed at once by a batch sampler (`dlfound.data.memory.IndexBatchSampler` and its kin), so the DataLoader
itself does no batching."""

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dlfound.errors import ConfigError


def check_int(key: str, value, minimum: int = 1, maximum: int | None = None) -> int:
    """`value` if it is an integer in [minimum, maximum], else a ConfigError naming `data.KEY`."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"data.{key} must be an integer {bounds}, got {value!r}")
    return int(value)


def check_batch_size(key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"data.{key} must be a positive integer, got {value!r}")
    return int(value)


class BatchedDataModule(L.LightningDataModule):
    """The loader settings of a data module, checked once, and `batched_loader`, the DataLoader of its splits.

    `eval_batch_size` None: the training batch size. `pin_memory` "auto": pinned when CUDA is available, never
    for data already on the device (`on_device`). `overfit_batches` > 0: the subclass trains and validates on that
    many fixed batches."""

    def __init__(
        self,
        batch_size: int,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool | str = "auto",
        overfit_batches: int = 0,
        on_device: bool = False,
    ):
        super().__init__()
        self.batch_size = check_batch_size("batch_size", batch_size)
        self.eval_batch_size = check_batch_size("eval_batch_size", eval_batch_size or batch_size)
        self.num_workers = check_int("num_workers", num_workers, minimum=0)
        self.overfit_batches = check_int("overfit_batches", overfit_batches, minimum=0)
        if on_device and num_workers:
            raise ConfigError(
                f"data.on_device=true keeps the data on the training device and indexes it in the "
                f"training process; set data.num_workers=0 (got {num_workers})."
            )
        self.on_device = on_device
        self.pin_memory = not on_device and (torch.cuda.is_available() if pin_memory == "auto" else bool(pin_memory))

    def batched_loader(self, data: Dataset, sampler: Sampler, seed: int) -> DataLoader:
        """`data[indices]` for each batch of indices the sampler yields. The loader has its own generator, so
        that creating an iterator never draws from the global RNG (exact resume)."""
        return DataLoader(
            data,
            sampler=sampler,
            batch_size=None,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(seed),
        )
