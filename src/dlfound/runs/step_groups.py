"""Whether a run makes several optimizer steps per iteration of Lightning's loop (`steps_per_iteration`), and
the settings that follow from it.

Grouping (dlfound.data.batch_groups, dlfound.tasks.step_groups) gives the weights of one step per iteration only
where nothing else needs Lightning's per-batch machinery. `auto`, the default, groups exactly there and makes
one step per iteration anywhere else; a number asks for that many steps, and a run that cannot be grouped then
says why in one paragraph.
"""

import lightning as L

from dlfound.errors import ConfigError

# Steps per iteration under `auto`: Lightning's 1-2 ms per iteration spread over 16 steps costs about 0.1 ms a step.
AUTO_STEPS = 16
SINGLE_PRECISIONS = ("32-true", "32", 32, "64-true", "64", 64)
# Callbacks whose work happens at epoch ends or checkpoints, so they see a grouped run as they see any other.
EPOCH_CALLBACKS = (
    "lightning.pytorch.callbacks.ModelCheckpoint",
    "lightning.pytorch.callbacks.EarlyStopping",
    "lightning.pytorch.callbacks.LearningRateMonitor",
    "dlfound.runs.callbacks.ProgressBar",
    "dlfound.runs.callbacks.ModelSummary",
)


def why_not_grouped(plain: dict, datamodule, task) -> str | None:
    """What in the run needs one optimizer step per loop iteration, or None when steps can be grouped."""
    trainer = plain["trainer"]
    if not getattr(task, "steps_in_groups", False):
        return f"{type(task).__name__} makes its own per-batch decisions, so it steps once per iteration"
    if not hasattr(datamodule, "group_training_batches"):
        return f"{type(datamodule).__name__} does not hold its data in memory (only in-memory data is grouped)"
    if trainer.get("devices", 1) not in (1, "1") or trainer.get("num_nodes", 1) != 1:
        return "the run trains on several devices (grouping is for one process)"
    if trainer.get("precision", "32-true") not in SINGLE_PRECISIONS:
        return f"trainer.precision={trainer['precision']} (grouping needs 32-true or 64-true)"
    if trainer.get("accumulate_grad_batches", 1) != 1:
        return "trainer.accumulate_grad_batches is above 1"
    if trainer.get("val_check_interval") not in (None, 1.0):
        return "trainer.val_check_interval validates within epochs"
    if plain.get("lr_find"):
        return "lr_find=true runs Lightning's learning-rate finder, which needs one step per iteration"
    if (plain.get("sched") or {}).get("monitor"):
        return "the scheduler follows a validation metric (ReduceLROnPlateau)"
    for name, spec in (plain.get("callbacks") or {}).items():
        if not spec:
            continue
        if spec.get("_target_") not in EPOCH_CALLBACKS:
            return f"callbacks.{name} ({spec.get('_target_')}) may act on every batch"
        if spec.get("every_n_train_steps") or spec.get("train_time_interval"):
            return f"callbacks.{name} saves within epochs"
        if spec.get("logging_interval") == "step":
            return f"callbacks.{name} logs the learning rate at every step"
    return None


def steps_per_iteration(plain: dict, datamodule, task) -> int:
    """The run's optimizer steps per loop iteration: `auto` gives AUTO_STEPS where grouping is exact, else 1; a
    number is taken as it is, and a run that cannot be grouped refuses a number above 1."""
    asked = plain.get("steps_per_iteration", "auto")
    if asked != "auto" and (isinstance(asked, bool) or not isinstance(asked, int) or asked < 1):
        raise ConfigError(f"steps_per_iteration must be auto or a positive integer, got {asked!r}")
    reason = why_not_grouped(plain, datamodule, task)
    if asked == "auto":
        return 1 if reason else AUTO_STEPS
    if asked > 1 and reason:
        raise ConfigError(
            f"steps_per_iteration={asked} cannot be honoured: {reason}. Grouping steps gives the weights of one step "
            "per iteration only where nothing needs Lightning's per-batch hooks; run with steps_per_iteration=auto "
            "(it groups where it can) or 1."
        )
    return asked


def group_steps(plain: dict, datamodule, task) -> dict:
    """Set the data module and the task up for the run's steps per iteration; the trainer config to build the
    trainer from (the task clips gradients and the data module limits the batches itself when grouped)."""
    from dlfound.tasks.step_groups import GroupSettings

    size = steps_per_iteration(plain, datamodule, task)
    trainer = dict(plain["trainer"])
    if size == 1:
        return trainer
    datamodule.group_training_batches(size, trainer.pop("limit_train_batches", None))
    task.step_in_groups(GroupSettings(trainer.pop("gradient_clip_val", None), trainer.get("gradient_clip_algorithm")))
    return trainer


class StepCountInCheckpoint(L.Callback):
    """Lightning counts optimizer steps in one place under automatic optimisation and in another under manual (a
    grouped run); a checkpoint carries the count in both, so that a run resumed with the other setting continues
    from the same global step."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        loops = checkpoint.get("loops", {}).get("fit_loop", {})
        automatic = loops.get("epoch_loop.automatic_optimization.optim_progress", {}).get("optimizer", {}).get("step")
        manual = loops.get("epoch_loop.manual_optimization.optim_step_progress")
        for progress in (automatic, manual):
            if progress:
                progress["total"]["ready"] = progress["total"]["completed"] = trainer.global_step
