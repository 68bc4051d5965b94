"""The fast path for datasets that fit in memory: whole tensors, batches by index, transforms on the batch.

A plain PyTorch loop over in-memory tensors with a random permutation each epoch is the fastest way to feed
small datasets; the usual per-sample pipeline (PIL image, ToTensor and Normalize in `__getitem__`) is about
ten times slower on MNIST. Here a DataLoader fetches a whole batch with one index operation
(`batch_size=None` with a sampler of index tensors), and normalisation and augmentation run on the batch
after it reaches the device. With `on_device=true` the tensors themselves move to the training device once (GPU-
resident data): each batch is then one gather on the device, with no host-to-device copy and no workers.
"""

from collections.abc import Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dlfound.data.batch_augment import PRESETS, augment, random_erasing
from dlfound.data.batch_groups import BatchGroup, GroupedBatchSampler, IndexGroup, grouped_sampler
from dlfound.data.loading import BatchedDataModule
from dlfound.errors import ConfigError


def rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def scale_and_standardise(x: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None) -> torch.Tensor:
    """uint8 samples to floats in [0, 1], then (x - mean) / std per channel when a mean is given."""
    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
    if mean is not None:
        shape = (1, -1) + (1, 1) * (x.dim() == 4)
        x = (x - torch.as_tensor(mean, device=x.device, dtype=x.dtype).view(shape)) / torch.as_tensor(
            std, device=x.device, dtype=x.dtype
        ).view(shape)
    return x


class TensorBatches(Dataset):
    """Tensors indexed a whole batch at a time: `dataset[index_tensor] -> (x[index], y[index])`."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index):
        if isinstance(index, IndexGroup):  # several batches for one loop iteration (steps_per_iteration)
            return BatchGroup([self[i] for i in index.indices], index.first, index.last_of_epoch)
        if index.device != self.y.device:  # batches of device-resident data: the indices follow the tensors
            index = index.to(self.y.device, non_blocking=True)
        return self.x[index], self.y[index]

    def to(self, device: torch.device) -> "TensorBatches":
        return self if self.y.device == device else TensorBatches(self.x.to(device), self.y.to(device))


class IndexBatchSampler(Sampler):
    """Index tensors of whole batches, reshuffled each epoch from (seed, epoch), so that a resumed run sees
    the same order as an uninterrupted one. Under DDP each rank takes its own interleaved share."""

    def __init__(
        self, size: int, batch_size: int, shuffle: bool, drop_last: bool = False, seed: int = 0, pad: bool = True
    ):
        self.size, self.batch_size, self.shuffle, self.drop_last, self.seed = size, batch_size, shuffle, drop_last, seed
        self.pad = pad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> torch.Tensor:
        if self.shuffle:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(self.size)
        rank, world = rank_and_world()
        if world > 1 and self.pad:
            # Training pads by wrapping around so that every rank runs the same number of steps (each step
            # all-reduces the gradients), as DistributedSampler does.
            total = -(-self.size // world) * world
            order = torch.cat([order, order[: total - self.size]])
        # Evaluation does not pad, so that no sample counts twice in the metrics; shares differ by at most one.
        return order[rank::world] if world > 1 else order

    def __iter__(self):
        order = self._indices()
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        yield from order[:stop].split(self.batch_size)

    def __len__(self) -> int:
        rank, world = rank_and_world()
        per_rank = -(-self.size // world) if self.pad else len(range(rank, self.size, world))
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)


class InMemoryDataModule(BatchedDataModule):
    """Base for datasets held as tensors. Subclasses implement `load(train)` returning (x, y).

    Images are kept as uint8 [N, C, H, W] (a quarter of float32's memory) and scaled to [0, 1] on the batch;
    float features (the 2-D toy sets) are used as they are.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int | None,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        val_size: float | int = 0.1,
        split_seed: int = 0,
        augment: str = "none",
        crop_padding: int = 4,
        normalize: bool = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        num_workers: int = 0,
        pin_memory: bool | str = "auto",
        drop_last: bool = False,
        overfit_batches: int = 0,
        random_erasing: float = 0.0,
        on_device: bool = False,
    ):
        if augment not in PRESETS:
            raise ConfigError(f"data.augment={augment!r} is not a preset; choose one of {', '.join(PRESETS)}")
        super().__init__(batch_size, eval_batch_size, num_workers, pin_memory, overfit_batches, on_device)
        self.in_channels, self.num_classes, self.image_size = in_channels, num_classes, image_size
        self.val_size, self.split_seed = val_size, split_seed
        self.augment, self.crop_padding = augment, crop_padding
        self.normalize, self.mean, self.std = normalize, mean, std
        self.drop_last, self.random_erasing = drop_last, random_erasing
        self.splits: dict[str, TensorBatches] = {}
        self.group_size, self.group_limit = 1, None
        self.resume_at: tuple[int, int] | None = None  # (epoch, batches done) of a checkpoint taken mid-epoch
        self._standardisation_cache: tuple = (None, None)

    # -- what subclasses provide -------------------------------------------------------------------------
    def load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.in_channels, self.image_size, self.image_size) if self.image_size else (self.in_channels,)

    def group_training_batches(self, size: int, limit: int | float | None = None) -> None:
        """Hand the training batches over `size` at a time (dlfound.data.batch_groups), at most `limit` batches an
        epoch: an integer, or a fraction of the epoch's batches as Lightning counts trainer.limit_train_batches."""
        self.group_size, self.group_limit = size, limit

    def state_dict(self) -> dict:
        """Where in its epoch a grouped run stands (its groups are full until the epoch's last), so that a checkpoint
        taken mid-epoch resumes at the next batch (dlfound.data.batch_groups.GroupedBatchSampler)."""
        sampler = grouped_sampler(self.trainer)
        if sampler is None:
            return {}
        # The epoch the counted batches belong to is the sampler's: Lightning counts an epoch done (current_epoch
        # one higher) before its epoch-end hooks may stop the run, while the batch count is still that epoch's.
        done = self.trainer.fit_loop.epoch_loop.batch_progress.current.completed * sampler.size
        return {"epoch": sampler.epoch, "batches_done": min(done, sampler.batches())}

    def load_state_dict(self, state: dict) -> None:
        if "batches_done" in state:
            self.resume_at = (state["epoch"], state["batches_done"])

    # -- Lightning hooks ---------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        x, y = self.load(train=True)
        self._check_shape(x, y)
        n_val = self.val_size if isinstance(self.val_size, int) else round(self.val_size * len(y))
        if not 0 <= n_val < len(y):
            raise ConfigError(f"data.val_size={self.val_size} leaves no training samples out of {len(y)}")
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.split_seed))
        val, train = order[:n_val], order[n_val:]
        self.splits["train"] = TensorBatches(x[train], y[train])
        self.splits["val"] = TensorBatches(x[val], y[val]) if n_val else TensorBatches(x[train], y[train])
        tx, ty = self.load(train=False)
        self._check_shape(tx, ty)
        self.splits["test"] = TensorBatches(tx, ty)
        if self.overfit_batches:
            self._keep_few_batches()

    def _keep_few_batches(self) -> None:
        """Train and validate on the same few fixed batches, un-augmented: a model that cannot drive this loss
        to zero has a bug."""
        few = self.splits["train"][torch.arange(min(len(self.splits["train"]), self.overfit_batches * self.batch_size))]
        self.splits["train"] = self.splits["val"] = TensorBatches(*few)
        self.augment = "none"

    def _check_shape(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != self.sample_shape:
            raise ConfigError(
                f"{type(self).__name__} loaded samples of shape {tuple(x.shape[1:])} but the data config says "
                f"{self.sample_shape} (in_channels, image_size); fix the data config"
            )
        if len(y) and int(y.max()) >= self.num_classes:
            raise ConfigError(f"labels go up to {int(y.max())} but data.num_classes={self.num_classes}")

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if self.on_device and self.trainer is not None:
            self.splits[split] = self.splits[split].to(self.trainer.strategy.root_device)
        data = self.splits[split]
        batch_size = self.batch_size if split == "train" else self.eval_batch_size
        sampler = IndexBatchSampler(
            len(data), batch_size, shuffle, self.drop_last and shuffle, self.split_seed, pad=split == "train"
        )
        if split == "train" and self.group_size > 1:
            limit = self.group_limit
            if isinstance(limit, float):  # a fraction of the batches, rounded down as Lightning does
                limit = int(len(sampler) * limit)
            sampler = GroupedBatchSampler(sampler, self.group_size, limit, self.resume_at)
            self.resume_at = None
        return self.batched_loader(data, sampler, self.split_seed)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        training = self.trainer is not None and self.trainer.training
        if isinstance(batch, BatchGroup):  # each batch prepared when the task comes to it
            return batch.prepared_by(lambda raw: (self.prepare(raw[0], training), raw[1]))
        x, y = batch
        return self.prepare(x, training), y

    def _standardisation(self, x: torch.Tensor) -> tuple:
        """The data config's mean and std as tensors on x's device, made once rather than at every batch."""
        if self.mean is None:
            return None, None
        key = (x.device, x.dim())
        if self._standardisation_cache[0] != key:
            shape = (1, -1) + (1, 1) * (x.dim() == 4)
            mean, std = (
                torch.as_tensor(v, device=x.device, dtype=torch.float32).view(shape) for v in (self.mean, self.std)
            )
            self._standardisation_cache = (key, (mean, std))
        return self._standardisation_cache[1]

    def prepare(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        """Raw stored samples -> model input: scale, normalise, and augment when training."""
        x = scale_and_standardise(x, *self._standardisation(x) if self.normalize else (None, None))
        if training and x.dim() == 4:
            if self.augment != "none":
                x = augment(x, self.augment, self.crop_padding)
            if self.random_erasing > 0:
                x = random_erasing(x, self.random_erasing)
        if self.trainer is not None:  # in the precision's float type (64-true: float64), as Lightning would convert it
            x = self.trainer.precision_plugin.convert_input(x)
        return x
