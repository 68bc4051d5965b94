"""The adding and copy problems: synthetic long-memory benchmarks for recurrent networks, as defined by Arjovsky,
Shah & Bengio 2016 ("Unitary Evolution Recurrent Neural Networks"; the adding problem goes back to Hochreiter &
Schmidhuber 1997). Generated from a seed; train, validation and test each from its own seed (seed, seed + 1,
seed + 2). `seq_len` is the papers' T.

Adding problem. x float [B, T, 2]: feature 0 is uniform on [0, 1]; feature 1 marks exactly two steps with 1, one
in the first half [0, T//2) and one in the second half [T//2, T). Target y float [B]: the sum of the two marked
values. Predicting the mean, 1, whatever the input scores MSE = Var(u1 + u2) = 2/12 = 1/6 ~ 0.167
(`ADDING_BASELINE_MSE`); a model has learnt something only below that.

Copy problem. x long [B, T + 20]: 10 symbols drawn uniformly from {1..8}, then T - 1 blanks (0), then the
delimiter 9, then 10 blanks; y long [B, T + 20]: T + 10 blanks, then the 10 symbols. Inputs have 10 tokens
(vocab_size), outputs 9 classes (blank and the 8 symbols). Outputting blanks and then random symbols, without
any memory, scores cross-entropy 10 ln 8 / (T + 20) per step (`copy_baseline(T)`: 0.173 at T = 100).
"""

import math

import torch
from torch.utils.data import Dataset

from dlfound.data.splits import SplitsDataModule, check_fact, check_int

ADDING_BASELINE_MSE = 1.0 / 6.0
COPY_SYMBOLS, COPY_LENGTH, COPY_BLANK, COPY_DELIMITER = 8, 10, 0, 9
SPLIT_OFFSET = {"train": 0, "val": 1, "test": 2}


def copy_baseline(seq_len: int) -> float:
    """Cross-entropy per step of the memoryless strategy on the copy problem with delay T = seq_len: blanks for
    T + 10 steps (no loss), then a uniform guess among the 8 symbols for 10 steps: 10 ln 8 / (T + 20)."""
    return COPY_LENGTH * math.log(COPY_SYMBOLS) / (seq_len + 2 * COPY_LENGTH)


class AddingBatches(Dataset):
    """Adding sequences stored compactly, the values [N, T] and the two marked steps [N, 2]; `[index]` builds
    the batch (x [B, T, 2], y [B])."""

    def __init__(self, values: torch.Tensor, marked: torch.Tensor):
        self.values, self.marked = values, marked

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index):
        values, marked = self.values[index], self.marked[index]
        markers = torch.zeros_like(values).scatter_(1, marked, 1.0)
        return torch.stack([values, markers], -1), values.gather(1, marked).sum(1)


def adding_problem(n: int, seq_len: int, seed: int) -> AddingBatches:
    generator = torch.Generator().manual_seed(seed)
    values = torch.rand(n, seq_len, generator=generator)
    half = seq_len // 2
    first = torch.randint(0, half, (n,), generator=generator)
    second = torch.randint(half, seq_len, (n,), generator=generator)
    return AddingBatches(values, torch.stack([first, second], 1))


class CopyBatches(Dataset):
    """Copy sequences stored as their 10 symbols [N, 10] (uint8); `[index]` builds the batch (x, y), both long
    [B, T + 20]."""

    def __init__(self, symbols: torch.Tensor, seq_len: int):
        self.symbols, self.seq_len = symbols, seq_len

    def __len__(self) -> int:
        return len(self.symbols)

    def __getitem__(self, index):
        symbols = self.symbols[index].long()
        T, n = self.seq_len, COPY_LENGTH
        x = torch.full((len(symbols), T + 2 * n), COPY_BLANK, dtype=torch.long)
        x[:, :n] = symbols
        x[:, n + T - 1] = COPY_DELIMITER  # after the symbols and T - 1 blanks
        y = torch.full_like(x, COPY_BLANK)
        y[:, T + n :] = symbols
        return x, y


def copy_problem(n: int, seq_len: int, seed: int) -> CopyBatches:
    generator = torch.Generator().manual_seed(seed)
    symbols = torch.randint(1, COPY_SYMBOLS + 1, (n, COPY_LENGTH), generator=generator, dtype=torch.uint8)
    return CopyBatches(symbols, seq_len)


class MemoryTaskDataModule(SplitsDataModule):
    """Shared by the two problems: sizes, seeds and the loaders."""

    min_seq_len = 1

    def __init__(
        self,
        seq_len: int,
        n_train: int,
        n_val: int,
        n_test: int,
        seed: int,
        batch_size: int,
        eval_batch_size: int | None,
        num_workers: int,
        pin_memory: bool | str,
        overfit_batches: int,
        augment: str,
    ):
        super().__init__(batch_size, eval_batch_size, seed, num_workers, pin_memory, overfit_batches, augment)
        self.seq_len = check_int("seq_len", seq_len, minimum=self.min_seq_len)
        self.sizes = {
            "train": check_int("n_train", n_train),
            "val": check_int("n_val", n_val),
            "test": check_int("n_test", n_test),
        }
        self.image_size = None

    @property
    def sample_shape(self) -> tuple[int, ...]:
        raise NotImplementedError


class AddingDataModule(MemoryTaskDataModule):
    """The adding problem (Arjovsky et al. 2016): batches (x float [B, T, 2], y float [B]); baseline MSE 1/6."""

    min_seq_len = 2  # one marker in each half
    baseline_mse = ADDING_BASELINE_MSE

    def __init__(
        self,
        seq_len: int = 100,
        n_train: int = 100_000,
        n_val: int = 10_000,
        n_test: int = 10_000,
        seed: int = 0,
        batch_size: int = 20,
        eval_batch_size: int | None = 1000,
        num_workers: int = 0,
        pin_memory: bool | str = "auto",
        overfit_batches: int = 0,
        augment: str = "none",
        in_features: int | None = 2,
        num_outputs: int | None = 1,
        in_channels: int | None = 2,
        image_size: int | None = None,
        num_classes: int | None = None,
        vocab_size: int | None = None,
        readout: str | None = "last",
    ):
        super().__init__(
            seq_len,
            n_train,
            n_val,
            n_test,
            seed,
            batch_size,
            eval_batch_size,
            num_workers,
            pin_memory,
            overfit_batches,
            augment,
        )
        for key, given, actual in [
            ("in_features", in_features, 2),
            ("num_outputs", num_outputs, 1),
            ("in_channels", in_channels, 2),
            ("image_size", image_size, None),
            ("num_classes", num_classes, None),
            ("vocab_size", vocab_size, None),
        ]:
            check_fact(key, given, actual, "the adding problem")
        self.in_features, self.num_outputs, self.in_channels = 2, 1, 2
        self.num_classes = self.vocab_size = None
        self.readout = readout

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.seq_len, self.in_features)

    def make_split(self, split: str) -> AddingBatches:
        return adding_problem(self.sizes[split], self.seq_len, self.seed + SPLIT_OFFSET[split])


class CopyDataModule(MemoryTaskDataModule):
    """The copy problem (Arjovsky et al. 2016): batches (x long [B, T + 20], y long [B, T + 20]); 10 input
    tokens, 9 output classes; memoryless baseline `copy_baseline(T)`."""

    def __init__(
        self,
        seq_len: int = 100,
        n_train: int = 100_000,
        n_val: int = 10_000,
        n_test: int = 10_000,
        seed: int = 0,
        batch_size: int = 20,
        eval_batch_size: int | None = 1000,
        num_workers: int = 0,
        pin_memory: bool | str = "auto",
        overfit_batches: int = 0,
        augment: str = "none",
        vocab_size: int | None = 10,
        num_classes: int | None = 9,
        in_features: int | None = None,
        in_channels: int | None = 1,
        image_size: int | None = None,
        readout: str | None = "all",
    ):
        super().__init__(
            seq_len,
            n_train,
            n_val,
            n_test,
            seed,
            batch_size,
            eval_batch_size,
            num_workers,
            pin_memory,
            overfit_batches,
            augment,
        )
        for key, given, actual in [
            ("vocab_size", vocab_size, COPY_DELIMITER + 1),
            ("num_classes", num_classes, COPY_SYMBOLS + 1),
            ("in_features", in_features, None),
            ("in_channels", in_channels, 1),
            ("image_size", image_size, None),
        ]:
            check_fact(key, given, actual, "the copy problem")
        self.vocab_size, self.num_classes = COPY_DELIMITER + 1, COPY_SYMBOLS + 1
        self.in_features, self.in_channels = None, 1
        self.input_len = self.seq_len + 2 * COPY_LENGTH  # the length of every x and y
        self.baseline = copy_baseline(self.seq_len)
        self.readout = readout

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.input_len,)

    def make_split(self, split: str) -> CopyBatches:
        return copy_problem(self.sizes[split], self.seq_len, self.seed + SPLIT_OFFSET[split])
