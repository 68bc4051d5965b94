"""The learning-rate range test (Smith 2017, "Cyclical learning rates for training neural networks", sec. 3.3),
run by `dlfound train lr_find=true` before training.

Lightning's learning-rate finder trains for `lr_find_settings.steps` steps while the learning rate grows
exponentially from `min_lr` to `max_lr`, then restores the initial weights. The loss against the learning rate
goes to RUN/lr_find.png and RUN/lr_find.json; the suggestion is the learning rate where the (smoothed) loss
falls fastest, and the run then trains with it: it replaces optim.lr, and the scheduler's peak (max_lr) where
that followed optim.lr. A resumed run reads its suggestion back instead of testing again.
"""

import json
import math
from pathlib import Path

from dlfound.errors import ConfigError

PLOT, RECORD = "lr_find.png", "lr_find.json"
# Lightning's suggestion skips the first 10 points and the last one, and needs two more to take a slope.
SKIPPED = 10
MIN_STEPS = SKIPPED + 3


def learning_rate_for(trainer, task, datamodule, plain: dict, run_dir: Path, resume_from) -> float | None:
    """With lr_find=true, the learning rate the run trains with: the range test's suggestion, or, for a resumed
    run, the one it found before. None without lr_find."""
    from dlfound.runs.console import console

    if not plain.get("lr_find"):
        return None
    found = recorded_suggestion(run_dir) if resume_from else None
    if found is not None:
        use_learning_rate(plain, task, found)
        return found
    found = range_test(trainer, task, datamodule, plain, run_dir)
    if trainer.is_global_zero:
        console.print(
            f"[bold]learning-rate range test[/]: training with optim.lr={found:.3g} (curve in {run_dir / PLOT})"
        )
    return found


def range_test(trainer, task, datamodule, plain: dict, run_dir: Path) -> float:
    """Run the range test, write its plot and record, and train with the suggestion; returns it."""
    from lightning.pytorch.tuner import Tuner

    settings = plain.get("lr_find_settings") or {}
    steps, low, high = (
        int(settings.get("steps", 100)),
        float(settings.get("min_lr", 1e-6)),
        float(settings.get("max_lr", 1.0)),
    )
    if steps < MIN_STEPS or not 0 < low < high:
        raise ConfigError(
            f"lr_find_settings: steps={steps}, min_lr={low}, max_lr={high} cannot suggest a learning "
            f"rate: the range test needs at least {MIN_STEPS} steps (100 is usual) and "
            "0 < min_lr < max_lr."
        )
    # The test's steps may span several epochs of a small data set; the run's max_epochs must not cut it short.
    max_epochs, trainer.fit_loop.max_epochs = trainer.fit_loop.max_epochs, steps
    try:
        finder = Tuner(trainer).lr_find(
            task, datamodule=datamodule, min_lr=low, max_lr=high, num_training=steps, update_attr=False
        )
    finally:
        trainer.fit_loop.max_epochs = max_epochs
    lrs, losses = finder.results["lr"], finder.results["loss"]
    suggestion = finder.suggestion()
    if trainer.is_global_zero:
        (run_dir / RECORD).write_text(
            json.dumps(
                {"lr": lrs, "loss": losses, "suggestion": suggestion, "min_lr": low, "max_lr": high, "steps": steps}
            )
        )
        plot(lrs, losses, suggestion, run_dir / PLOT)
    if suggestion is None:
        raise ConfigError(
            f"the learning-rate range test ran {len(losses)} steps, too few finite losses to suggest a learning rate "
            f"(the loss diverged early, or the data has fewer than {MIN_STEPS} batches per run). Its curve is in "
            f"{run_dir / PLOT}; raise lr_find_settings.steps or lower lr_find_settings.max_lr."
        )
    use_learning_rate(plain, task, suggestion)
    return suggestion


def recorded_suggestion(run_dir: Path) -> float | None:
    path = run_dir / RECORD
    return json.loads(path.read_text()).get("suggestion") if path.is_file() else None


def use_learning_rate(plain: dict, task, lr: float) -> None:
    """optim.lr = lr in the run's config (and so its checkpoints) and the task's; a scheduler peak that followed
    optim.lr (${optim.lr}, resolved before training) follows it again."""
    old = plain["optim"]["lr"]
    for config in (plain, {"optim": task.hparams.optim, "sched": task.hparams.sched}):
        config["optim"]["lr"] = lr
        sched = config.get("sched") or {}
        if sched.get("max_lr") is not None and math.isclose(float(sched["max_lr"]), float(old)):
            sched["max_lr"] = lr


def plot(lrs: list[float], losses: list[float], suggestion: float | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Lightning's smoothing corrects its bias one step late, which halves the first points; its suggestion skips
    # them, and so does the picture.
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(lrs[SKIPPED:], losses[SKIPPED:], color="tab:blue")
    if suggestion is not None:
        at = min(range(len(lrs)), key=lambda i: abs(lrs[i] - suggestion))
        ax.plot([suggestion], [losses[at]], "o", color="tab:red", label=f"suggestion {suggestion:.3g}")
        ax.legend()
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_title("learning-rate range test (Smith 2017)")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
