"""Strips of k handwritten MNIST digits side by side, to be read by a CNN + RNN trained with CTC (Graves et al.
2006; the CRNN of Shi, Bai & Yao 2017 reads text lines this way): the network sees the whole strip and must say
which digits it shows, in order, without being told where each one is.

Each strip is k digits placed left to right on a blank canvas of height 28 and fixed width W (`strip_width`;
default k*28 + (k+1)*max_gap, so any strip fits and batches stack): before each digit a gap of 0..max_gap
blank columns, each digit shifted vertically by -max_offset..max_offset pixels (rows pushed past the edge are
cropped; MNIST digits have about 4 blank rows above and below), blank columns after the last digit up to W.

Strips are composed on the fly, a batch at a time, from digits held in memory: training strips are drawn afresh
each epoch from a generator seeded by (seed, epoch), so a resumed run sees the same ones; validation and test
strips are the same every epoch. Training and validation strips use MNIST's training digits, split by
split_seed into disjoint pools (val_size digits for validation); test strips use only MNIST's test digits.

Batches: `(x, targets, target_lengths)`: x float [B, 1, 28, W], grey values in [0, 1] standardised with MNIST's
mean and std when `normalize` (the usual data key: off when the task models raw grey values); targets long
[B, k], digit d written as d + 1 because CTC's blank is class 0 (11 classes); target_lengths long [B] (all k).
"""

from collections.abc import Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dlfound.data.loading import BatchedDataModule
from dlfound.data.memory import scale_and_standardise
from dlfound.data.splits import FixedBatches, check_augment, check_fact, check_int, derived_seed, rank_and_world
from dlfound.data.vision import _read, _to_tensors
from dlfound.errors import ConfigError

HEIGHT = 28


def default_width(k: int, max_gap: int) -> int:
    return k * HEIGHT + (k + 1) * max_gap


class StripCanvas(Dataset):
    """Digits held as uint8 [M, 28, 28] with labels [M]; `[recipe]` composes a batch of strips, where a recipe
    is (digit indices [B, k], gaps [B, k], vertical offsets [B, k])."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, width: int, max_offset: int):
        self.images, self.labels, self.width, self.max_offset = images, labels, width, max_offset

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, recipe):
        digits, gaps, offsets = recipe
        B, k = digits.shape
        pad = self.max_offset
        # A canvas with room above and below, so that shifted digits land inside; cropped to 28 rows after.
        canvas = torch.zeros(B, HEIGHT + 2 * pad, self.width, dtype=torch.uint8)
        left = gaps.cumsum(1) + HEIGHT * torch.arange(k)  # the first column of digit j
        pixels = torch.arange(HEIGHT)
        rows = (pad + offsets)[:, :, None, None] + pixels[:, None]  # [B, k, 28, 1]
        cols = left[:, :, None, None] + pixels  # [B, k, 1, 28]
        canvas[torch.arange(B)[:, None, None, None], rows, cols] = self.images[digits]  # gaps >= 0: no overlap
        x = canvas[:, None, pad : pad + HEIGHT]
        targets = self.labels[digits] + 1  # CTC's blank is 0
        return x, targets, torch.full((B,), k, dtype=torch.long)


class StripRecipes(Sampler):
    """Batches of strip recipes. `fresh`: new strips each epoch from (seed, epoch, rank), each rank its share;
    otherwise the same strips every epoch from `seed`, DDP ranks taking interleaved rows without padding."""

    def __init__(
        self, n_strips: int, pool: int, k: int, max_gap: int, max_offset: int, batch_size: int, seed: int, fresh: bool
    ):
        self.n_strips, self.pool, self.k, self.max_gap, self.max_offset = n_strips, pool, k, max_gap, max_offset
        self.batch_size, self.seed, self.fresh = batch_size, seed, fresh
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _count(self) -> int:
        rank, world = rank_and_world()
        if self.fresh:
            return -(-self.n_strips // world)
        return len(range(rank, self.n_strips, world))

    def recipes(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rank, world = rank_and_world()
        n = -(-self.n_strips // world) if self.fresh else self.n_strips
        generator = torch.Generator().manual_seed(
            derived_seed(self.seed, self.epoch, rank) if self.fresh else derived_seed(self.seed)
        )
        shape = (n, self.k)
        digits = torch.randint(self.pool, shape, generator=generator)
        gaps = torch.randint(self.max_gap + 1, shape, generator=generator)
        offsets = torch.randint(-self.max_offset, self.max_offset + 1, shape, generator=generator)
        if not self.fresh and world > 1:
            digits, gaps, offsets = digits[rank::world], gaps[rank::world], offsets[rank::world]
        return digits, gaps, offsets

    def __iter__(self):
        yield from zip(*(part.split(self.batch_size) for part in self.recipes()))

    def __len__(self) -> int:
        return -(-self._count() // self.batch_size)


class MNISTStripsDataModule(BatchedDataModule):
    """Strips of k MNIST digits for CTC; see the module docstring for the layout and the batches."""

    def __init__(
        self,
        data_dir: str,
        k: int = 5,
        max_gap: int = 4,
        max_offset: int = 3,
        strip_width: int | None = None,
        n_train: int = 20_000,
        n_val: int = 2_000,
        n_test: int = 2_000,
        val_size: int = 5_000,
        seed: int = 0,
        split_seed: int = 0,
        name: str = "MNIST",
        download: bool = True,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        normalize: bool = True,
        mean: Sequence[float] | None = (0.1307,),
        std: Sequence[float] | None = (0.3081,),
        num_workers: int = 0,
        pin_memory: bool | str = "auto",
        overfit_batches: int = 0,
        augment: str = "none",
        num_classes: int | None = 11,
        in_channels: int | None = 1,
        image_size: int | None = HEIGHT,
        vocab_size: int | None = None,
        readout: str | None = None,
    ):
        if name not in ("MNIST", "FashionMNIST"):
            raise ConfigError(f"data.name={name!r}: strips are made of MNIST or FashionMNIST images")
        self.set_layout(k, max_gap, max_offset, strip_width)
        self.sizes = {
            "train": check_int("n_train", n_train),
            "val": check_int("n_val", n_val),
            "test": check_int("n_test", n_test),
        }
        self.val_size = check_int("val_size", val_size)
        self.seed = check_int("seed", seed, minimum=0)
        self.split_seed = check_int("split_seed", split_seed, minimum=0)
        super().__init__(batch_size, eval_batch_size, num_workers, pin_memory, overfit_batches)
        check_augment(augment)
        for key, given, actual in [
            ("num_classes", num_classes, 11),
            ("in_channels", in_channels, 1),
            ("image_size", image_size, HEIGHT),
            ("vocab_size", vocab_size, None),
        ]:
            check_fact(key, given, actual, "a strip of MNIST digits")
        if normalize and (mean is None or std is None):
            raise ConfigError("data.normalize=true needs data.mean and data.std")
        self.name, self.data_dir, self.download = name, data_dir, download
        self.normalize, self.mean, self.std = bool(normalize), mean, std
        self.num_classes, self.in_channels, self.image_size = 11, 1, HEIGHT
        self.vocab_size, self.readout = None, readout
        self.splits: dict[str, StripCanvas] = {}

    def set_layout(self, k: int, max_gap: int, max_offset: int, strip_width: int | None) -> None:
        """k digits, gaps of up to max_gap pixels, vertical jitter of up to max_offset, on strips that hold them."""
        self.k = check_int("k", k)
        self.max_gap = check_int("max_gap", max_gap, minimum=0)
        self.max_offset = check_int("max_offset", max_offset, minimum=0, maximum=HEIGHT - 1)
        least = self.k * HEIGHT + self.k * self.max_gap
        if strip_width is None:
            strip_width = default_width(self.k, self.max_gap)
        self.strip_width = check_int("strip_width", strip_width, minimum=1)
        if self.strip_width < least:
            raise ConfigError(
                f"data.strip_width={self.strip_width} cannot hold data.k={self.k} digits of width 28 "
                f"with gaps of up to data.max_gap={self.max_gap}: it must be at least {least}; the usual "
                f"width is k*28 + (k+1)*max_gap = {default_width(self.k, self.max_gap)}"
            )

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (1, HEIGHT, self.strip_width)

    # -- the digits --------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        for train in (True, False):
            _read(self.name, self.data_dir, train, self.download)

    def load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """MNIST's training or test digits, uint8 [N, 28, 28] and labels [N]."""
        images, labels = _to_tensors(_read(self.name, self.data_dir, train, self.download))
        return images[:, 0], labels

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        images, labels = self.load(train=True)
        if tuple(images.shape[1:]) != (HEIGHT, HEIGHT):
            raise ConfigError(
                f"{self.name} in {self.data_dir} has images of shape {tuple(images.shape[1:])}, not "
                "28x28; give the MNIST files in torchvision's layout"
            )
        if not self.val_size < len(labels):
            raise ConfigError(f"data.val_size={self.val_size} leaves no training digits out of {len(labels)}")
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.split_seed))
        val, train = order[: self.val_size], order[self.val_size :]
        test_images, test_labels = self.load(train=False)
        for split, (x, y) in {
            "train": (images[train], labels[train]),
            "val": (images[val], labels[val]),
            "test": (test_images, test_labels),
        }.items():
            self.splits[split] = StripCanvas(x, y, self.strip_width, self.max_offset)

    # -- loaders -----------------------------------------------------------------------------------------
    def sampler(self, split: str) -> StripRecipes:
        offset = {"train": 0, "val": 1, "test": 2}[split]
        return StripRecipes(
            self.sizes[split],
            len(self.splits[split]),
            self.k,
            self.max_gap,
            self.max_offset,
            self.batch_size if split == "train" else self.eval_batch_size,
            self.seed + offset,
            fresh=split == "train",
        )

    def _loader(self, split: str, sampler: Sampler) -> DataLoader:
        return self.batched_loader(self.splits[split], sampler, self.seed)

    def _overfit(self) -> FixedBatches:
        return FixedBatches(list(self.sampler("train"))[: self.overfit_batches])

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self._overfit() if self.overfit_batches else self.sampler("train"))

    def val_dataloader(self) -> DataLoader:
        if self.overfit_batches:
            return self._loader("train", self._overfit())
        return self._loader("val", self.sampler("val"))

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.sampler("test"))

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, targets, lengths = batch
        return self.prepare(x), targets, lengths

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 strips [B, 1, 28, W] -> float in [0, 1], standardised when `normalize`."""
        return scale_and_standardise(x, self.mean if self.normalize else None, self.std)
