"""Several optimizer steps in one iteration of Lightning's loop (`steps_per_iteration` > 1).

The data module hands over a group of K batches (dlfound.data.batch_groups) and the task, optimising manually,
makes for each batch in turn exactly the step Lightning's automatic optimisation would make: the loss, zeroed
gradients, backward, the gradient clipping the trainer config asks for, the optimizer step, the schedulers that
step per batch, the EMA update, and, after an epoch's last batch, the schedulers that step per epoch. The same
batches in the same order with the same random draws give the same weights (tested in float64).

What it leaves out, and why that is safe where dlfound turns it on (dlfound.runs.step_groups decides): Lightning's
per-batch hooks around backward and the optimizer step (on_before_backward, on_after_backward,
on_before_optimizer_step), which no callback of such a run implements, and the precision plugin's loss
scaling, which only 16-mixed has and which is never grouped. Lightning still counts every optimizer step
(global_step, max_steps), logs its loggers' x-axis in optimizer steps, and writes a step's metrics at the
steps `trainer.log_every_n_steps` names, as it would one batch per iteration.
"""

from dataclasses import dataclass

import torch

from dlfound.data.batch_groups import BatchGroup, grouped_batches_per_epoch


@dataclass(frozen=True)
class GroupSettings:
    """What the trainer would have done per batch and the task now does itself: gradient clipping."""

    clip_val: float | None = None
    clip_algorithm: str | None = None


def train_on_group(task, group: BatchGroup) -> torch.Tensor | None:
    """The optimizer steps of one group of batches; the detached losses of the steps made (for the non-finite
    check), or None when max_steps was already reached."""
    trainer = task.trainer
    optimizer = task.optimizers(use_pl_optimizer=False)
    loop = trainer.fit_loop.epoch_loop
    steps = loop.manual_optimization.optim_step_progress
    results, logs = trainer._results, trainer._logger_connector
    settings = task.group_settings
    clips = settings.clip_val is not None or getattr(task.net, "is_recurrent", False)
    first_logged, first_step = loop._batches_that_stepped, trainer.global_step
    every = trainer.log_every_n_steps
    steps_left = trainer.max_steps - first_step if trainer.max_steps >= 0 else len(group)
    losses = []
    for i, batch in enumerate(group.batches()):
        if i == steps_left:
            break
        task.batch_index_in_epoch = group.first + i
        # Lightning's loggers write at, and decide whether to write by, the count of batches that stepped.
        loop._batches_that_stepped = first_logged + i
        # What self.log reads a batch size from, when a step logs an epoch mean without giving one.
        results.batch, results.batch_size = batch, None
        loss = task.step(batch, "train")
        optimizer.zero_grad()
        loss.backward()
        if clips:
            task.configure_gradient_clipping(optimizer, settings.clip_val, settings.clip_algorithm)
        steps.increment_ready()
        optimizer.step()
        steps.increment_completed()
        step_schedulers(trainer, "step", group.first + i + 1)
        if task.ema is not None:
            task.ema.update_parameters(task.net)
        losses.append(loss.detach())
        # A step metric logged at a step other than the group's last is written now; Lightning writes the last's.
        if i + 1 < len(group) and every and (first_logged + i + 1) % every == 0:
            logs.update_train_step_metrics()
    if not losses:
        return None
    loop._batches_that_stepped = first_logged + len(losses) - 1  # Lightning adds the group's one
    if group.last_of_epoch and len(losses) == len(group):  # an epoch that max_steps cut short steps none
        step_schedulers(trainer, "epoch", trainer.current_epoch + 1)
    return torch.stack(losses)


def step_schedulers(trainer, interval: str, count: int) -> None:
    """Step the schedulers of `interval` whose frequency divides `count` (the batch's number in the epoch, or
    the epoch's number), as Lightning's automatic optimisation does after each batch and each epoch."""
    for config in trainer.lr_scheduler_configs:
        if config.interval == interval and count % config.frequency == 0:
            trainer.lightning_module.lr_scheduler_step(config.scheduler, None)


def total_optimizer_steps(trainer) -> int | float:
    """The run's optimizer steps, which schedulers spread themselves over: Lightning's estimate counts loop
    iterations, so a grouped run counts its batches instead."""
    estimate = trainer.estimated_stepping_batches  # sets the training data up, too
    batches = grouped_batches_per_epoch(trainer)
    if batches is None:
        return estimate
    epochs = trainer.max_epochs if trainer.max_epochs not in (None, -1) else float("inf")
    steps = batches * epochs
    return min(steps, trainer.max_steps) if trainer.max_steps != -1 else steps
