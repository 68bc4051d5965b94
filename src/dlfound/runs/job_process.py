"""Sweep jobs that run as a `dlfound train` process of their own, which the sweep's process waits for.

Two kinds of sweep job cannot run inside the sweep's process:
- DDP jobs. Lightning starts ranks 1..N-1 by re-running the command line of the process, which inside a multirun
  is the whole sweep, so every rank would start the sweep again. Launched as a single run of its own, the job's
  ranks re-run just that job, in its folder; and a rank that crashes takes down that job, not the sweep.
- GPU jobs that a parallel launcher runs side by side. Each gets its own GPUs through CUDA_VISIBLE_DEVICES,
  which only a process that has not started CUDA yet can take.
The job's process writes its run folder as any single run does; the sweep's process reads its results.json.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from dlfound.errors import DlfoundError

# Lightning re-launches DDP ranks as `dlfound <overrides>` (no command word): `dlfound train` sets this variable so
# that dlfound.cli tells them their command. A job started here is a fresh `dlfound train`, so it does not inherit it.
COMMAND_ENV = "DLFOUND_COMMAND"


def runs_as_own_process(trainer: dict, gpus_needed: int | None) -> bool:
    """Whether a sweep job must run as its own process (see above)."""
    strategy = str(trainer.get("strategy"))
    # ddp_spawn, ddp_fork and ddp_notebook start their ranks from inside the process: those jobs need nothing.
    relaunches = strategy.startswith("ddp") and not any(k in strategy for k in ("spawn", "fork", "notebook"))
    return bool(gpus_needed) or (relaunches and not ranks_started_by_cluster())


def ranks_started_by_cluster() -> bool:
    """Under srun (SLURM) or torchrun every rank is started for us and runs this very job: it re-launches nothing."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    return SLURMEnvironment.detect() or TorchElasticEnvironment.detect()


def gpus_per_job(trainer: dict) -> int | None:
    """How many GPUs a job of a parallel sweep must hold, or None when it uses no GPU or names its own."""
    if str(trainer.get("accelerator")) not in ("gpu", "cuda"):
        return None
    devices = trainer.get("devices")
    if isinstance(devices, int) and devices > 0:
        return devices
    if devices in (-1, "-1", "auto"):
        from dlfound.runs.gpus import visible_gpus

        return len(visible_gpus()) or None
    return None  # an explicit list of GPUs: the user placed the job


def run_job_process(run_dir: Path, overrides: list[str], gpus: list[str] | None, threads: int | None) -> dict:
    """Run one sweep job as `dlfound train OVERRIDES` in run_dir; return its results.json, or raise its error."""
    from hydra.utils import get_original_cwd

    command = [
        sys.executable,
        "-m",
        "dlfound",
        "train",
        *overrides,
        f'hydra.run.dir="{run_dir}"',
        "hydra.mode=RUN",
        "hydra.output_subdir=null",
    ]  # the sweep already wrote the job's .hydra/
    env = dict(os.environ)
    env.pop(COMMAND_ENV, None)
    if gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    code = subprocess.run(command, env=env, cwd=get_original_cwd()).returncode
    results_path = run_dir / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    if code == 0 and results.get("status") == "done":
        return results
    raise DlfoundError(
        results.get("error")
        or f"the job's process ({' '.join(command[2:])}) exited with code {code} and wrote no results"
    )
