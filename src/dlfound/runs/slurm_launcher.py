"""`hydra/launcher=slurm`: Hydra's submitit SLURM launcher, waiting quietly and recording jobs that SLURM ended.

The plugin's launcher submits the sweep as one job array, then waits on each job through submitit, which asks
`sacct` every few seconds; on a cluster without accounting (common on small clusters) each question prints
"Bypassing sacct error ... status may be inaccurate", and a job cancelled before it wrote its result is waited on
forever. This launcher submits the same way, then prints each job's log path once (for `tail -f`) and one line per
change of a job's state, read from `squeue`; a job that left the queue without finishing (scancel, a node lost, a
time limit without requeue) gets a results.json saying so, unless its run recorded why itself (an interrupted run
records "interrupted"), so that `resume=auto` on the sweep finishes it and the sweep's outcome names it.
"""

import subprocess
import time
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as SubmititSlurmLauncher

from dlfound.runs.results import read_results, record_failure

POLL_SECONDS = 2.0
# The states squeue shows for a job still queued or running (a requeued job shows PENDING or REQUEUED).
IN_QUEUE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "RESIZING", "SUSPENDED")


def queue_states(job_ids: list[str]) -> dict[str, str] | None:
    """{job id: state} of the jobs squeue still lists (one line per job of an array), or None when squeue fails."""
    arrays = sorted({job.split("_")[0] for job in job_ids})
    try:
        listed = subprocess.run(
            ["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(arrays)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if listed.returncode != 0 and "Invalid job id" not in listed.stderr:
        return None
    return dict(line.split()[:2] for line in listed.stdout.splitlines() if len(line.split()) >= 2)


class QuietSlurmLauncher(SubmititSlurmLauncher):
    def launch(self, job_overrides, initial_job_idx):
        import submitit

        original = submitit.AutoExecutor.map_array

        def map_array(executor, function, *iterables):  # the plugin's own submission, then dlfound's waiting
            jobs = original(executor, function, *iterables)
            run_dirs = [self.run_dir(list(o), initial_job_idx + i) for i, o in enumerate(job_overrides)]
            self.wait(jobs, run_dirs, job_overrides, initial_job_idx)
            return [WaitedJob(j, d, list(o)) for j, d, o in zip(jobs, run_dirs, job_overrides, strict=True)]

        submitit.AutoExecutor.map_array = map_array
        try:
            return super().launch(job_overrides, initial_job_idx)
        finally:
            submitit.AutoExecutor.map_array = original

    def wait(self, jobs, run_dirs: list[Path], job_overrides, initial_job_idx: int) -> None:
        """Until every job has a result or has left the queue: one line per state change, the log path once."""
        from dlfound.runs.console import console

        for number, job in enumerate(jobs):
            console.print(
                f"job {initial_job_idx + number} is SLURM job {job.job_id} ({run_dirs[number]}); its log: "
                f"tail -f {job.paths.stdout}",
                soft_wrap=True,
                highlight=False,
            )
        shown = {}
        waiting = set(range(len(jobs)))
        while waiting:
            states = queue_states([jobs[n].job_id for n in waiting])
            for number in sorted(waiting):
                job = jobs[number]
                if job.paths.result_pickle.exists():
                    state = "finished"
                elif states is None:
                    continue  # squeue did not answer: ask again
                else:
                    state = states.get(job.job_id, "left the queue")
                if state != shown.get(number):
                    shown[number] = state
                    console.print(f"job {initial_job_idx + number} (SLURM {job.job_id}): {state}", highlight=False)
                if state == "finished":
                    waiting.discard(number)
                elif state == "left the queue":
                    waiting.discard(number)
                    record_unfinished(job, run_dirs[number], list(job_overrides[number]))
            if waiting:
                time.sleep(POLL_SECONDS)

    def run_dir(self, overrides: list[str], job_num: int) -> Path:
        """The job's folder, as Hydra will name it inside the job."""
        from omegaconf import open_dict

        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(sweep_config.hydra.job) as job:
            job.num = job_num
            job.id = f"job_id_for_{job_num}"
        return Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)


def record_unfinished(job, run_dir: Path, overrides: list[str], why: str = "") -> None:
    """A job that left the queue with no result: its results.json says so, unless its run wrote why."""
    recorded = read_results(run_dir)
    if recorded and recorded.get("status") in ("interrupted", "failed", "not_started"):
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    record_failure(
        run_dir,
        why
        or f"SLURM job {job.job_id} left the queue before the run finished (cancelled with scancel, its node "
        f"lost, or its time limit reached without a requeue); its log: {job.paths.stdout}. Re-run the sweep "
        f"with hydra.sweep.dir={run_dir.parent} resume=auto to finish it.",
        overrides,
        {},
    )


class WaitedJob:
    """A submitit job that has ended, as Hydra's launcher reads it: its result, or for a job that ended without
    one (its error, or no result at all) a completed return with no value. dlfound's jobs record their outcome in
    results.json, which the sweep's outcome reads (dlfound.runs.job.SweepOutcome); Hydra would stop the whole
    sweep at the first job whose result it cannot read."""

    def __init__(self, job, run_dir: Path, overrides: list[str]):
        self.job, self.run_dir, self.overrides = job, run_dir, overrides

    def results(self) -> list:
        # The job's result file may land a moment after the job leaves squeue (a shared file system).
        deadline = time.time() + 3
        while time.time() < deadline and not self.job.paths.result_pickle.exists():
            time.sleep(1)
        if self.job.paths.result_pickle.exists():
            try:  # Hydra reads task 0's result; a DDP job's other tasks (ranks) may have died without one
                return self.job.task(0).results() if self.job.num_tasks > 1 else self.job.results()
            except Exception as err:  # the job's own error, which dlfound's run_job records unless it came first
                record_unfinished(self.job, self.run_dir, self.overrides, f"SLURM job {self.job.job_id}: {err}")
        return [JobReturn(overrides=self.overrides, status=JobStatus.COMPLETED, _return_value=None)]


def register_with_hydra() -> None:
    """Hydra finds launchers by scanning the hydra_plugins namespace package, and the import hook of an editable
    install (`pip install -e .`) hides our plugin from that scan, though it imports: register it by hand, so that
    `hydra/launcher=slurm` works however dlfound was installed."""
    from hydra.core.plugins import Plugins

    from hydra_plugins.dlfound_slurm import SlurmLauncher

    Plugins.instance().register(SlurmLauncher)
