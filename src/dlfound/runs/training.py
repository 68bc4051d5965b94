"""One training run, as a short story: show the config, build, fit, test the best checkpoint, record.

A run folder holds `.hydra/` (the composed config and overrides), `checkpoints/` (best and last),
`tensorboard/` (scalars, hparams with the final metrics), `csv/metrics.csv` and `results.json`
(see dlfound.runs.results).
"""

import gc
import os
import time
from pathlib import Path


def scalar(value):
    return value.item() if hasattr(value, "item") else value


def count_parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


def prepare_process(plain: dict, run_dir: Path) -> bool:
    """Quiet Lightning, show the config, seed every generator, set the matmul precision and clear what a killed
    process left half-written; whether this is rank zero."""
    import lightning as L
    import torch

    from dlfound.files import remove_partial_files
    from dlfound.runs.console import config_tree, console, quiet_lightning

    quiet_lightning()
    is_zero = L.fabric.utilities.rank_zero.rank_zero_only.rank == 0
    if is_zero and plain.get("print_config", True):
        console.print(config_tree(plain, f"dlfound train  [dim]{run_dir}[/]"))
    L.seed_everything(plain["seed"], workers=True, verbose=False)
    if plain.get("matmul_precision"):
        torch.set_float32_matmul_precision(plain["matmul_precision"])
    if is_zero:  # what a process killed between writing and renaming left behind
        remove_partial_files(run_dir / "checkpoints")
    return is_zero


def evaluate_best_checkpoint(trainer, task, datamodule, plain: dict) -> tuple:
    """(the checkpoint callback, its best checkpoint's path, the test metrics of that checkpoint or {})."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    checkpoint = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)), None)
    best_path = checkpoint.best_model_path if checkpoint and checkpoint.best_model_path else None
    test_metrics = {}
    if plain.get("test", True):
        tested = trainer.test(task, datamodule=datamodule, ckpt_path=best_path, weights_only=True, verbose=False)
        test_metrics = {k: float(v) for loader in tested for k, v in loader.items()}
    return checkpoint, best_path, test_metrics


def train(plain: dict, run_dir: Path, overrides: list[str], choices: dict) -> dict:
    """Fit, test the best checkpoint and write results.json; returns the results. `plain` is the resolved
    config as plain dicts."""
    from dlfound.runs.build import build, build_trainer
    from dlfound.runs.callbacks import Throughput
    from dlfound.runs.console import console
    from dlfound.runs.gpus import runtime_cuda_check_without_a_gpu
    from dlfound.runs.lr_find import learning_rate_for
    from dlfound.runs.ranks import rank_died, watch_ranks
    from dlfound.runs.resume import find_resume_checkpoint
    from dlfound.runs.step_groups import group_steps
    from dlfound.runs.stopping import StopOnSignals

    started = time.time()
    is_zero = prepare_process(plain, run_dir)
    with StopOnSignals(run_dir) as stops, runtime_cuda_check_without_a_gpu():
        # Build.
        datamodule, task = build(plain)
        monitor = plain.get("monitor") or task.monitor
        mode = plain.get("monitor_mode") or task.monitor_mode
        throughput = Throughput()
        callbacks = [throughput, *guards(plain, run_dir, task, stops)]
        grouped = {**plain, "trainer": group_steps(plain, datamodule, task)}  # the trainer of grouped steps, if so
        trainer = build_trainer(grouped, run_dir, callbacks, monitor, mode)
        watch_ranks(trainer, run_dir, overrides, choices)
        resume_from = find_resume_checkpoint(plain, run_dir)
        if resume_from and is_zero:
            console.print(f"[bold]resuming[/] from {resume_from}")
        learning_rate = learning_rate_for(trainer, task, datamodule, plain, run_dir, resume_from)

        # Fit, then test the best checkpoint.
        try:
            fit(trainer, task, datamodule, resume_from, stops)
            fit_seconds = time.time() - started
            checkpoint, best_path, test_metrics = evaluate_after_fit(trainer, task, datamodule, plain, stops)
        except Exception as err:
            died = rank_died(trainer, run_dir, err)  # a DDP rank's death, named, rather than the collective it failed
            if died:
                died.training_began = True
                raise died from err
            err.training_began = True  # recorded as "failed", not "not_started" (dlfound.runs.job)
            raise

    # Record.
    best_score = scalar(checkpoint.best_model_score) if checkpoint else None
    results = {
        "metrics": {**test_metrics, f"{monitor}_best": best_score},
        "monitor": {"metric": monitor, "mode": mode, "best": best_score, "best_checkpoint": best_path},
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "wall_time_s": round(time.time() - started, 3),
        "fit_time_s": round(fit_seconds, 3),
        "train_samples_per_s": throughput.samples_per_s,
        "num_params": count_parameters(task.net),
        "world_size": trainer.world_size,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "resumed_from": resume_from,
        **({"lr_find": {"suggestion": learning_rate, "plot": str(run_dir / "lr_find.png")}} if learning_rate else {}),
        "choices": choices,
        "overrides": overrides,
        "seed": plain["seed"],
    }
    if trainer.is_global_zero:
        results = record(trainer, plain, run_dir, results)
    return results


def guards(plain: dict, run_dir: Path, task, stops) -> list:
    """The callbacks that keep a run safe and resumable: its config and RNG state in every checkpoint, a stop on
    a non-finite loss, a checkpoint on SIGTERM, Ctrl-C honoured at batch starts, and for a sampling task's test
    phase an estimate of how long it will take."""
    from dlfound.runs.callbacks import (
        ConfigInCheckpoint,
        RNGStateInCheckpoint,
        SamplingTimeEstimate,
        SaveOnSigterm,
        StopOnNonFiniteLoss,
        StopOnRequest,
    )
    from dlfound.runs.step_groups import StepCountInCheckpoint
    from dlfound.tasks.generative import StepwiseSamplingTask

    found = [
        ConfigInCheckpoint(plain),
        StopOnNonFiniteLoss(),
        SaveOnSigterm(str(run_dir / "checkpoints")),
        StopOnRequest(stops),
        RNGStateInCheckpoint(),
        StepCountInCheckpoint(),
    ]
    if plain.get("test", True) and isinstance(task, StepwiseSamplingTask) and task.test_samples != 0:
        found.append(SamplingTimeEstimate())
    return found


def fit(trainer, task, datamodule, resume_from: str | None, stops) -> None:
    """trainer.fit; a stop by SIGTERM or Ctrl-C (during fit or before it) is raised as RunInterrupted."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    stops.phase = "during training"
    if stops.signum:  # a stop the code that built the run swallowed
        raise stops.interrupted()
    # What exists now (configs, Hydra, Lightning, the network: half a million objects) lives as long as the run. The
    # cyclic garbage collector would walk all of it again and again while training allocates, which cost a fifth
    # of a small model's step on the development machine; frozen, it is skipped. Unfrozen afterwards, so that a
    # notebook that trains again frees it as usual.
    gc.freeze()
    try:
        trainer.fit(task, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    except SIGTERMException:
        raise stops.interrupted(trainer) from None
    finally:
        gc.unfreeze()
    if trainer.interrupted or stops.signum:
        raise stops.interrupted(trainer)


def evaluate_after_fit(trainer, task, datamodule, plain: dict, stops):
    """evaluate_best_checkpoint, with a stop during testing raised as RunInterrupted."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    stops.phase = "while testing (training had finished)"
    try:
        found = evaluate_best_checkpoint(trainer, task, datamodule, plain)
    except SIGTERMException:
        raise stops.interrupted() from None
    if stops.signum:
        raise stops.interrupted()
    return found


def record(trainer, plain: dict, run_dir: Path, results: dict) -> dict:
    """Final metrics into TensorBoard's HParams, results.json, and the results table on the terminal."""
    from lightning.pytorch.loggers import TensorBoardLogger

    from dlfound.runs.console import console, results_table
    from dlfound.runs.results import record_done

    metrics = results["metrics"]
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(
                hparams(plain, results["choices"]), {k: v for k, v in metrics.items() if v is not None}
            )
            logger.finalize("success")
    results = record_done(run_dir, results)
    console.print(
        results_table(
            {
                **metrics,
                "epochs": results["epochs"],
                "train samples/s": results["train_samples_per_s"],
                "parameters": results["num_params"],
                "wall time (s)": results["wall_time_s"],
            },
            str(run_dir),
        )
    )
    return results


HPARAM_GROUPS = ("model", "data", "optim", "sched", "task")


def hparams(plain: dict, choices: dict) -> dict:
    """What TensorBoard's HParams tab compares runs by: the chosen model, data, optimizer, schedule and task with
    their settings, the experiment and the seed; not Hydra's own choices (hydra/launcher, ...)."""
    found = {"experiment": choices.get("experiment"), "seed": plain["seed"]}
    for group in HPARAM_GROUPS:
        found[group] = choices.get(group)
        settings = plain.get(group) if isinstance(plain.get(group), dict) else {}
        found.update(
            {
                f"{group}.{k}": v
                for k, v in settings.items()
                if k != "_target_" and isinstance(v, (int, float, str, bool)) and not isinstance(v, dict)
            }
        )
    return {k: v for k, v in found.items() if v is not None}
