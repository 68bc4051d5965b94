"""`dlfound train`: compose, build, fit, test the best checkpoint, and write the run folder.

A run folder holds `.hydra/` (the composed config and overrides), `checkpoints/` (best and last),
`tensorboard/` (scalars, hparams with the final metrics), `csv/metrics.csv` and `results.json`.
"""

import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from dlfound.errors import ConfigError, DlfoundError

RESULTS_FILE = "results.json"


def to_plain(cfg) -> dict:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def build(cfg: dict):
    """Data module and task from a resolved config: the one place both training and evaluation build them."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    def make(section: str, **kwargs):
        try:
            return instantiate(cfg[section], **kwargs, _convert_="all")
        except InstantiationException as err:
            cause = err.__cause__ or err
            if isinstance(cause, DlfoundError):
                raise cause from None
            raise ConfigError(f"could not build {section} ({cfg[section].get('_target_')}): {cause}") from None

    datamodule = make("data")
    net = make("model")
    # Optimizer and scheduler configs reach the task as plain dicts, built later in configure_optimizers.
    try:
        task = make("task", _partial_=True)(net=net, optim=cfg["optim"], sched=cfg.get("sched"))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"could not build task ({cfg['task'].get('_target_')}): {err}") from None
    return datamodule, task


def build_trainer(cfg: dict, run_dir: Path, extra_callbacks: list, monitor: str, mode: str):
    from hydra.utils import instantiate
    from lightning.pytorch.callbacks import LearningRateMonitor

    loggers = [instantiate(spec, save_dir=str(run_dir)) for spec in (cfg.get("logger") or {}).values() if spec]
    callbacks = list(extra_callbacks)
    for spec in (cfg.get("callbacks") or {}).values():
        if not spec:
            continue
        # Callbacks that watch a metric take the task's own unless their config names one.
        fill = {"monitor": monitor, "mode": mode} if "monitor" in spec and spec["monitor"] is None else {}
        if "dirpath" in spec and spec["dirpath"] is None:
            fill["dirpath"] = str(run_dir / "checkpoints")
        callback = instantiate(spec, **fill)
        if loggers or not isinstance(callback, LearningRateMonitor):  # it has nowhere to write without a logger
            callbacks.append(callback)
    try:
        return instantiate(cfg["trainer"], callbacks=callbacks, logger=loggers or False, default_root_dir=str(run_dir))
    except Exception as err:
        cause = err.__cause__ or err
        raise ConfigError(f"could not build the trainer ({cause}). Check trainer.* in the config") from None


def slurm_requeued() -> bool:
    return int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0


def resume_mode(cfg) -> str | None:
    """`resume` as given; a job that SLURM requeued (after preemption or a time limit) resumes as with `auto`, so
    it continues from its folder's last.ckpt, or is skipped if it had finished, instead of starting over."""
    resume = cfg.get("resume")
    return "auto" if resume is None and slurm_requeued() else resume


def find_resume_checkpoint(cfg: dict, run_dir: Path) -> str | None:
    """`ckpt_path=PATH` resumes from PATH. `resume=last` continues from this run folder's newest last*.ckpt
    (even a finished run, to train it longer); `resume=auto` does so when there is one, and starts fresh
    otherwise (finished runs are skipped before this, see hydra_task)."""
    if cfg.get("ckpt_path"):
        path = Path(cfg["ckpt_path"])
        if not path.is_file():
            raise ConfigError(f"ckpt_path={path} does not exist; give the path of a .ckpt file to resume from")
        return str(path)
    resume = resume_mode(cfg)
    if resume not in (None, "auto", "last"):
        raise ConfigError(f"resume={resume!r}: use resume=auto, resume=last, or `dlfound train resume=RUN_FOLDER`")
    if resume:
        found = sorted((run_dir / "checkpoints").glob("last*.ckpt"), key=os.path.getmtime)
        if found:
            return str(found[-1])
        if resume == "last":
            raise ConfigError(f"resume=last: {run_dir / 'checkpoints'} holds no last.ckpt to continue from")
    return None


def versions() -> dict:
    import importlib.metadata as md

    found = {"python": platform.python_version()}
    for package in ("dlfound", "torch", "torchvision", "lightning", "hydra-core", "omegaconf"):
        try:
            found[package] = md.version(package)
        except md.PackageNotFoundError:
            found[package] = None
    return found


def count_parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


def write_json(path: Path, data: dict) -> None:
    """Atomic: a reader never sees half a file, and a crash never truncates the previous one."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def scalar(value):
    return value.item() if hasattr(value, "item") else value


def train(cfg: DictConfig, run_dir: Path, overrides: list[str], choices: dict) -> dict:
    """Fit, test the best checkpoint and write results.json; returns the results."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    from dlfound.callbacks import (ConfigInCheckpoint, RNGStateInCheckpoint, SaveOnSigterm, StopOnNonFiniteLoss,
                                   Throughput)
    from dlfound.console import config_tree, console, results_table

    started = time.time()
    plain = to_plain(cfg)
    is_zero = L.fabric.utilities.rank_zero.rank_zero_only.rank == 0
    if is_zero and plain.get("print_config", True):
        console.print(config_tree(plain, f"dlfound train  [dim]{run_dir}[/]"))
    L.seed_everything(plain["seed"], workers=True, verbose=False)
    if plain.get("matmul_precision"):
        torch.set_float32_matmul_precision(plain["matmul_precision"])

    datamodule, task = build(plain)
    monitor = plain.get("monitor") or task.monitor
    mode = plain.get("monitor_mode") or task.monitor_mode
    throughput = Throughput()
    guards = [ConfigInCheckpoint(plain), StopOnNonFiniteLoss(), SaveOnSigterm(str(run_dir / "checkpoints")),
              RNGStateInCheckpoint()]
    trainer = build_trainer(plain, run_dir, [throughput, *guards], monitor, mode)
    resume_from = find_resume_checkpoint(plain, run_dir)
    if resume_from and is_zero:
        console.print(f"[bold]resuming[/] from {resume_from}")

    trainer.fit(task, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    fit_seconds = time.time() - started
    if trainer.interrupted:
        raise DlfoundError(f"training was interrupted; resume it with: dlfound train resume={run_dir}")

    checkpoint = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)), None)
    best_path = checkpoint.best_model_path if checkpoint and checkpoint.best_model_path else None
    test_metrics = {}
    if plain.get("test", True):
        tested = trainer.test(task, datamodule=datamodule, ckpt_path=best_path, weights_only=True, verbose=False)
        test_metrics = {k: float(v) for loader in tested for k, v in loader.items()}

    best_score = scalar(checkpoint.best_model_score) if checkpoint else None
    metrics = {**test_metrics, f"{monitor}_best": best_score}
    results = {
        "status": "done",
        "metrics": metrics,
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
        "choices": choices,
        "overrides": overrides,
        "seed": plain["seed"],
        "run_dir": str(run_dir),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
    }
    if trainer.is_global_zero:
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                hparams = {"choices": choices, **{k: plain[k] for k in ("model", "data", "optim", "sched", "task")
                                                  if isinstance(plain.get(k), dict)}, "seed": plain["seed"]}
                logger.log_hyperparams(hparams, {k: v for k, v in metrics.items() if v is not None})
                logger.finalize("success")
        write_json(run_dir / RESULTS_FILE, results)
        console.print(results_table({**metrics, "epochs": results["epochs"],
                                     "train samples/s": results["train_samples_per_s"],
                                     "parameters": results["num_params"],
                                     "wall time (s)": results["wall_time_s"]}, str(run_dir)))
    return results


# Run folders of the jobs of this process that failed; the CLI's exit code reports them after a sweep.
FAILED_RUNS: list[Path] = []


def objective(results: dict, key: str | None) -> float | None:
    """The number a sweeper optimises: any key of results.json's metrics or top level (default: best monitor)."""
    key = key or f"{results['monitor']['metric']}_best"
    value = results.get("metrics", {}).get(key, results.get(key))
    return float(value) if isinstance(value, (int, float)) else None


def record_failure(run_dir: Path, error: str, overrides: list[str], choices: dict) -> None:
    last = sorted((run_dir / "checkpoints").glob("last*.ckpt"), key=os.path.getmtime)
    write_json(run_dir / RESULTS_FILE, {
        "status": "failed",
        "error": error,
        "last_checkpoint": str(last[-1]) if last else None,
        "choices": choices,
        "overrides": overrides,
        "run_dir": str(run_dir),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
    })


def threads_per_job(hydra_cfg) -> int | None:
    """Jobs that a parallel launcher runs side by side split the CPU threads, instead of each taking all."""
    launcher = hydra_cfg.get("launcher") or {}
    parallel = int(launcher.get("n_jobs") or 1) if "joblib" in str(launcher.get("_target_", "")) else 1
    return max(1, (os.cpu_count() or 1) // parallel) if parallel > 1 else None


def hydra_task(cfg: DictConfig) -> float | None:
    """The function Hydra calls once per job; returns the objective for sweepers.

    In a sweep, a job that fails is recorded in its results.json with status "failed" and the sweep goes on;
    in a single run the error ends the command.
    """
    from contextlib import nullcontext

    import lightning as L
    import torch
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from dlfound.console import console, err_console, fail
    from dlfound.gpus import hold_gpus, register_resolver
    from dlfound.job_process import gpus_per_job, run_job_process, runs_as_own_process

    register_resolver()  # a joblib worker is a fresh process, and reads the launcher's config through it
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    overrides, choices = list(hydra_cfg.overrides.task), dict(hydra_cfg.runtime.choices)
    threads = threads_per_job(hydra_cfg) if multirun else None
    results_path = run_dir / RESULTS_FILE
    if resume_mode(cfg) == "auto" and results_path.is_file():
        recorded = json.loads(results_path.read_text())
        if recorded.get("status") == "done":
            console.print(f"[bold]already done[/], skipping: {run_dir}")
            return objective(recorded, cfg.get("objective"))
    try:
        side_by_side = threads is not None  # a parallel launcher runs other jobs next to this one
        gpus_needed = gpus_per_job(cfg.trainer) if side_by_side else None
        if multirun and runs_as_own_process(cfg.trainer, gpus_needed):
            with hold_gpus(gpus_needed) if gpus_needed else nullcontext() as gpus:
                results = run_job_process(run_dir, overrides, gpus, threads)
        else:
            if side_by_side:
                torch.set_num_threads(threads)
            results = train(cfg, run_dir, overrides, choices)
    except Exception as err:
        if isinstance(err, MisconfigurationException):
            err = ConfigError(f"Lightning refused the trainer settings: {err}")
        message = str(err) if isinstance(err, DlfoundError) else f"{type(err).__name__}: {err}"
        rank_zero = L.fabric.utilities.rank_zero.rank_zero_only.rank == 0
        if rank_zero:
            record_failure(run_dir, message, overrides, choices)
        if not multirun:
            if isinstance(err, DlfoundError) and rank_zero:
                fail(message)
            if isinstance(err, DlfoundError):
                sys.exit(1)  # the other DDP ranks: rank 0 has told the user
            raise
        FAILED_RUNS.append(run_dir)
        err_console.print(f"[bold red]job failed[/] ({run_dir}): {message}")
        return None
    return objective(results, cfg.get("objective"))
