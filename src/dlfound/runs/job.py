"""The function Hydra calls once per job of `dlfound train`, single run or sweep, and what a sweep reports at
its end.

A job: skip it if `resume=auto` finds it done; run it here, or as a process of its own when it must (DDP, a GPU
of its own: dlfound.runs.job_process); and record a failure in its results.json. In a sweep a failed job does
not stop the others; at the end `SweepOutcome` reads every job's results.json and makes the command exit
non-zero when any failed.
"""

import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import NoReturn

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from dlfound.errors import ConfigError, DatasetUnavailableError, DlfoundError
from dlfound.runs.results import FAILED_STATUSES, RESULTS_FILE, objective, read_results, record_failure


def threads_per_job(hydra_cfg) -> int | None:
    """Jobs that a parallel launcher runs side by side split the CPU threads, instead of each taking all."""
    launcher = hydra_cfg.get("launcher") or {}
    parallel = int(launcher.get("n_jobs") or 1) if "joblib" in str(launcher.get("_target_", "")) else 1
    return max(1, (os.cpu_count() or 1) // parallel) if parallel > 1 else None


def run_job(cfg: DictConfig) -> float | None:
    """Run one job and return the objective for sweepers. A single run's error ends the command; a sweep
    job's error is recorded in its results.json with status "failed", and the sweep goes on."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from dlfound.runs.console import console
    from dlfound.runs.gpus import register_resolver
    from dlfound.runs.naming import register_run_name
    from dlfound.runs.resume import resume_mode
    from dlfound.runs.stopping import RunInterrupted

    register_run_name()
    register_resolver()  # a joblib worker is a fresh process, and reads the launcher's config through it
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    overrides, choices = list(hydra_cfg.overrides.task), dict(hydra_cfg.runtime.choices)
    recorded = read_results(run_dir)
    if resume_mode(cfg) == "auto" and recorded and recorded.get("status") == "done":
        console.print(f"[bold]already done[/], skipping: {run_dir}")
        return objective(recorded, cfg.get("objective"))
    try:
        results = train_here_or_in_own_process(cfg, hydra_cfg, run_dir, overrides, choices, multirun)
    except RunInterrupted as stop:
        end_interrupted(stop, run_dir, overrides, choices)
    except Exception as err:
        end_failed(err, cfg, run_dir, overrides, choices, multirun)
        return None
    return objective(results, cfg.get("objective"))


def train_here_or_in_own_process(cfg, hydra_cfg, run_dir: Path, overrides: list, choices: dict, multirun: bool):
    """A sweep job that needs its own process (DDP, GPUs of its own) runs in one; any other job trains here, with
    its share of the CPU threads when a parallel launcher runs other jobs beside it."""
    import torch

    from dlfound.runs.gpus import hold_gpus
    from dlfound.runs.job_process import gpus_per_job, run_job_process, runs_as_own_process
    from dlfound.runs.training import train

    threads = threads_per_job(hydra_cfg) if multirun else None
    side_by_side = threads is not None
    gpus_needed = gpus_per_job(cfg.trainer) if side_by_side else None
    if multirun and runs_as_own_process(cfg.trainer, gpus_needed):
        try:
            with hold_gpus(gpus_needed) if gpus_needed else nullcontext() as gpus:
                return run_job_process(run_dir, overrides, gpus, threads)
        except Exception as err:  # the job's own process recorded whether its training began
            err.training_began = (read_results(run_dir) or {}).get("status") != "not_started"
            raise
    if side_by_side:
        torch.set_num_threads(threads)
    return train(OmegaConf.to_container(cfg, resolve=True), run_dir, overrides, choices)


def end_interrupted(stop, run_dir: Path, overrides: list, choices: dict) -> NoReturn:
    """A run stopped by Ctrl-C or SIGTERM: recorded as interrupted with the command that continues it when it
    saved a checkpoint; otherwise its folder is released, so that the same command starts it anew. A SLURM job
    warned of its time limit requeues itself, and continues from its last.ckpt when SLURM starts it again."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    from dlfound.runs.console import fail
    from dlfound.runs.resume import release_run_dir
    from dlfound.runs.slurm import requeue_this_job

    if rank_zero_only.rank == 0:
        if stop.time_limit:
            message = f"{stop} {requeue_this_job()}."
            record_failure(run_dir, message, overrides, choices, status="interrupted")
            fail(message, stop.exit_code, title="dlfound: time limit near")
        if stop.saved:
            record_failure(run_dir, str(stop), overrides, choices, status="interrupted")
            fail(str(stop), stop.exit_code, f"dlfound train resume={run_dir}", title="dlfound: interrupted")
        release_run_dir(run_dir)
        fail(str(stop), stop.exit_code, title="dlfound: interrupted")
    sys.exit(stop.exit_code)


def end_failed(err: Exception, cfg, run_dir: Path, overrides: list, choices: dict, multirun: bool) -> None:
    """A failed run's error as the user's one paragraph, recorded in its results.json (rank zero); a single run
    then ends the command, a sweep job returns so that the sweep goes on."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.fabric.utilities.rank_zero import rank_zero_only
    from rich.markup import escape

    from dlfound.runs.console import err_console, fail
    from dlfound.runs.disk import disk_failure
    from dlfound.runs.ranks import RankDied

    began = getattr(err, "training_began", False)
    if isinstance(err, MisconfigurationException):
        err = ConfigError(f"Lightning refused the trainer settings: {err}")
    err = disk_failure(err, run_dir, multirun) or err
    if isinstance(err, DatasetUnavailableError):
        err = DatasetUnavailableError(str(err) + present_instead(cfg, choices))
    message = str(err) if isinstance(err, DlfoundError) else f"{type(err).__name__}: {err}"
    # A rank that lost its peers records and says so itself: rank zero may be the one that died.
    rank_zero = rank_zero_only.rank == 0 or isinstance(err, RankDied)
    if rank_zero:
        try:
            record_failure(run_dir, message, overrides, choices, began=began)
        except (DlfoundError, OSError) as unrecorded:  # the disk that failed the run may refuse this too
            message += f" (This failure could not be recorded in {run_dir / RESULTS_FILE}: {unrecorded})"
    if not multirun:
        if isinstance(err, DlfoundError) and rank_zero:
            fail(message)
        if isinstance(err, DlfoundError):
            sys.exit(1)  # the other DDP ranks: rank 0 has told the user
        raise err
    err_console.print(f"[bold red]job failed[/] ({escape(str(run_dir))}): {escape(message)}")  # "[...]" is text


def present_instead(cfg: DictConfig, choices: dict) -> str:
    """When the run's own data set is missing, the sentence naming the sets whose files are in DATA instead."""
    from dlfound.runs.datasets import files_present, suggestion

    try:
        missing = files_present(cfg.data)[0] is False
        return suggestion(choices.get("data"), cfg.paths.data_dir) if missing else ""
    except Exception:  # the suggestion is a courtesy: it must never replace the error it adds to
        return ""


def failed_jobs(sweep_dir: Path, statuses: tuple = FAILED_STATUSES) -> list[Path]:
    """The job folders under a sweep folder whose results.json says the job failed (or never started), or has
    one of `statuses`."""
    failed = []
    for path in sorted(Path(sweep_dir).rglob(RESULTS_FILE)):
        results = read_results(path.parent)
        if (results is None and statuses == FAILED_STATUSES) or (results or {}).get("status") in statuses:
            failed.append(path.parent)
    return failed


def sweep_outcome(sweep_dir: Path) -> str | None:
    """One paragraph on a sweep's failed and interrupted jobs, read from their results.json; None when every job
    finished."""
    failed = failed_jobs(sweep_dir)
    interrupted = failed_jobs(sweep_dir, ("interrupted",))
    message = []
    if failed:
        message.append(
            f"{len(failed)} job(s) of the sweep failed; each failure is recorded in its results.json: "
            + ", ".join(str(p) for p in failed)
        )
    if interrupted:  # a SLURM job cancelled or killed in a sweep whose launcher outlived it
        message.append(
            f"{len(interrupted)} job(s) of the sweep were interrupted before they finished: "
            + ", ".join(str(p) for p in interrupted)
            + f". Re-run the sweep with hydra.sweep.dir={sweep_dir} resume=auto to finish them."
        )
    return " ".join(message) or None


class SweepOutcome(Callback):
    """After a sweep, one paragraph and a non-zero exit when any job failed, read from the jobs' results.json.

    In-process (dlfound.runs.in_process), where Hydra would turn an error raised here into a warning, the
    paragraph is left in `last` for the caller to raise."""

    last: str | None = None

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from dlfound.runs.console import fail, failures_are_raised

        message = sweep_outcome(Path(config.hydra.sweep.dir))
        if failures_are_raised():
            SweepOutcome.last = message
        elif message:
            fail(message)
