"""A run inside a SLURM job: which job it is, the early warning of its time limit, and requeueing it.

SLURM sends a job the signal of `--signal=SIG@SECONDS` that many seconds before its time limit: SIGUSR2 from
Hydra's submitit launcher (`hydra.launcher.signal_delay_s`), SIGUSR1 in Lightning's own recipe. dlfound.runs.stopping
treats either as a request to stop at the next batch; training then saves checkpoints/last.ckpt and the run asks
SLURM to requeue its job, which continues from that checkpoint (dlfound.runs.resume: SLURM_RESTART_COUNT > 0).
"""

import os
import signal
import subprocess

TIME_LIMIT_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)


def in_slurm_job() -> bool:
    return bool(os.environ.get("SLURM_JOB_ID"))


def slurm_job_id() -> str | None:
    """This job's id as scontrol names it: ARRAYID_TASK for a job of an array (a submitit sweep), else the id."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")


def requeue_this_job() -> str:
    """Ask SLURM to requeue this job (rank zero only); what happened, as the end of a sentence."""
    job = slurm_job_id()
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"requeueing SLURM job {job} failed ({err}); submit it again with resume=auto"
    if done.returncode != 0:
        why = " ".join((done.stderr or done.stdout).split())
        return f"requeueing SLURM job {job} failed ({why}); submit it again with resume=auto"
    return f"SLURM job {job} is requeued and continues from there when it starts again"
