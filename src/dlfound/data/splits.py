"""Plumbing shared by the sequence data modules: value checks that end in one ConfigError, seeds derived from
(seed, epoch, rank), and `SplitsDataModule`, three batch-indexable splits fed whole batches by
`IndexBatchSampler` (the fast path of `memory.py`, without its image-specific options).

A batch-indexable dataset answers `dataset[index_tensor]` with a whole batch, built from compact stored
tensors (the two marker positions of an adding sequence, the ten symbols of a copy sequence), so that even a
large generated set costs little memory.
"""

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dlfound.data.loading import BatchedDataModule, check_int
from dlfound.data.memory import IndexBatchSampler, rank_and_world
from dlfound.errors import ConfigError


def check_choice(key: str, value, choices) -> object:
    if value not in choices:
        raise ConfigError(f"data.{key}={value!r} is not one of {', '.join(map(repr, choices))}")
    return value


def check_fact(key: str, given, actual, what: str, hint: str = "") -> None:
    """Config keys that models read (vocab_size, num_classes, in_features, ...) must agree with the data: a
    config may leave them null or give the true value, never another one."""
    if given is not None and given != actual:
        wanted = "null" if actual is None else actual
        raise ConfigError(
            f"data.{key}={given!r} but {what} has {key}={wanted}: the models read it from the data "
            f"config, so set data.{key}={wanted}{hint}"
        )


def check_augment(augment: str) -> None:
    if augment != "none":
        raise ConfigError(f"data.augment={augment!r}: sequence data has no augmentation presets; use data.augment=none")


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from (seed, epoch, rank, ...): independent streams for every combination."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class FixedBatches(Sampler):
    """The same few batches every epoch (overfit_batches)."""

    def __init__(self, batches: list):
        self.batches = batches

    def __iter__(self):
        yield from self.batches

    def __len__(self) -> int:
        return len(self.batches)


class BatchSubset(Dataset):
    """Fixed rows of a batch-indexable dataset (the few batches of `overfit_batches`)."""

    def __init__(self, data: Dataset, rows: torch.Tensor):
        self.data, self.rows = data, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):
        return self.data[self.rows[index]]


class SplitsDataModule(BatchedDataModule):
    """Train, validation and test splits, each a batch-indexable dataset made by `make_split(name)`.

    Training batches are reshuffled each epoch from (seed, epoch), so a resumed run sees the same order; under
    DDP each rank takes its own interleaved share, as in `InMemoryDataModule`.
    """

    def __init__(
        self,
        batch_size: int,
        eval_batch_size: int | None,
        seed: int,
        num_workers: int,
        pin_memory: bool | str,
        overfit_batches: int,
        augment: str,
    ):
        super().__init__(batch_size, eval_batch_size, num_workers, pin_memory, overfit_batches)
        self.seed = check_int("seed", seed, minimum=0)
        check_augment(augment)
        self.splits: dict[str, Dataset] = {}

    def make_split(self, split: str) -> Dataset:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        self.splits = {split: self.make_split(split) for split in ("train", "val", "test")}
        if self.overfit_batches:
            # Train and validate on the same few fixed batches: a model that cannot drive this loss to zero
            # has a bug.
            rows = torch.arange(min(len(self.splits["train"]), self.overfit_batches * self.batch_size))
            self.splits["train"] = self.splits["val"] = BatchSubset(self.splits["train"], rows)

    def _loader(self, split: str) -> DataLoader:
        data = self.splits[split]
        train = split == "train"
        sampler = IndexBatchSampler(
            len(data), self.batch_size if train else self.eval_batch_size, shuffle=train, seed=self.seed, pad=train
        )
        return self.batched_loader(data, sampler, self.seed)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()


__all__ = [
    "BatchSubset",
    "FixedBatches",
    "SplitsDataModule",
    "check_augment",
    "check_choice",
    "check_fact",
    "check_int",
    "derived_seed",
    "rank_and_world",
]
