"""Several training batches handed over in one iteration of Lightning's loop, for `steps_per_iteration` > 1.

Lightning spends one to two milliseconds of Python on every iteration of its training loop (progress counters,
hook dispatch to every callback, the closure around the optimizer step). For a small model on in-memory data
that is more than the step itself. A data module that holds its data as tensors can hand the task a group of
the next K batches at once; the task then makes K optimizer steps in that one iteration (dlfound.tasks.
step_groups), so Lightning's cost is paid once per K steps.

The batches are the very ones, in the same order, that one-batch iterations would see: the group sampler
only bundles the index tensors of the plain batch sampler. Each batch is prepared (scaled, normalised,
augmented) only when the task comes to it, so random augmentations and dropout draw from the global generator in
the same order as before, and the weights come out the same.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import Sampler


@dataclass(frozen=True)
class IndexGroup:
    """The index tensors of consecutive batches of one epoch: `first` is the first one's position in the epoch,
    `last_of_epoch` whether the epoch's final batch is among them."""

    indices: list[torch.Tensor]
    first: int
    last_of_epoch: bool


class GroupedBatchSampler(Sampler):
    """The batches of `sampler` (index tensors), `size` at a time, the last group of an epoch shorter when they
    do not divide; at most `limit` batches an epoch (trainer.limit_train_batches counted in batches).

    `resume_at` (epoch, batches done) continues a run stopped in the middle of that epoch where it stopped: its
    first iteration of that epoch skips the batches already trained on. Lightning restarts such an epoch with a
    fresh iterator and counts its loop iterations from where they were, so without the skip a stopped and resumed
    epoch would train on its first groups twice."""

    def __init__(self, sampler: Sampler, size: int, limit: int | None = None, resume_at: tuple | None = None):
        self.sampler, self.size, self.limit, self.resume_at = sampler, size, limit, resume_at

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def batches(self) -> int:
        return len(self.sampler) if self.limit is None else min(len(self.sampler), self.limit)

    def __iter__(self) -> Iterator[IndexGroup]:
        total = self.batches()
        done = 0
        if self.resume_at is not None and self.resume_at[0] == self.sampler.epoch:
            done = self.resume_at[1]
        self.resume_at = None
        group: list[torch.Tensor] = []
        for position, indices in enumerate(self.sampler):
            if position == total:
                break
            if position < done:
                continue
            group.append(indices)
            if len(group) == self.size or position + 1 == total:
                yield IndexGroup(group, position + 1 - len(group), position + 1 == total)
                group = []

    def __len__(self) -> int:
        return -(-self.batches() // self.size)


def grouped_sampler(trainer) -> GroupedBatchSampler | None:
    """The sampler of a grouped run's training loader, or None when the run makes one step per iteration."""
    sampler = getattr(trainer.train_dataloader, "sampler", None) if trainer is not None else None
    return sampler if isinstance(sampler, GroupedBatchSampler) else None


def grouped_batches_per_epoch(trainer) -> int | None:
    """The training batches an epoch of a grouped run (its loop iterations are fewer), or None when the run makes
    one step per iteration: what the progress bar and the schedulers spread over the run count."""
    sampler = grouped_sampler(trainer)
    return sampler.batches() if sampler is not None else None


class BatchGroup:
    """Raw batches (tuples of tensors) of one loop iteration. `batches()` yields them one at a time, each passed
    through `prepare` (the data module's batch transform) just before it is used. Not a sequence on purpose:
    Lightning's helpers would walk into a sequence (to guess a batch size, to convert it) and prepare batches
    early."""

    def __init__(self, raw: list[tuple], first: int, last_of_epoch: bool, prepare: Callable | None = None):
        self.raw, self.first, self.last_of_epoch, self.prepare = raw, first, last_of_epoch, prepare

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def samples(self) -> int:
        """Samples in all the group's batches (rows of each batch's last tensor, its targets)."""
        return sum(len(batch[-1]) for batch in self.raw)

    def batches(self) -> Iterator[tuple]:
        for batch in self.raw:
            yield self.prepare(batch) if self.prepare is not None else batch

    def prepared_by(self, prepare: Callable) -> "BatchGroup":
        return BatchGroup(self.raw, self.first, self.last_of_epoch, prepare)

    def _map(self, move: Callable) -> "BatchGroup":
        return BatchGroup([tuple(move(t) for t in batch) for batch in self.raw], self.first, self.last_of_epoch)

    # Lightning moves anything with a `to` method to the device, and the DataLoader pins anything with `pin_memory`.
    def to(self, device, non_blocking: bool | None = None) -> "BatchGroup":
        if non_blocking is None:  # as Lightning moves a tensor: asynchronously to a GPU, from pinned memory
            non_blocking = torch.device(device).type == "cuda"
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> "BatchGroup":
        return self._map(lambda t: t.pin_memory())
