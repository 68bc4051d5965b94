"""Sweeps on a real SLURM cluster (`hydra/launcher=slurm`): requeues, a time limit, scancel, and DDP under srun.

CI starts a one-node cluster on its machine with .ci/slurm_up.sh (from .ci/run). Run locally, these tests start
it themselves where `sbatch` is installed and the daemons are down, if they run as root (the script needs root);
otherwise they skip, saying how to start it. Every job trains the tiny default run (the digits MLP, 21 batches an
epoch) without loggers, so that the set costs a few minutes on 2 cores, most of it SLURM's own timers.
"""

import json
import os
import pickle
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, read_results

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

BATCHES_PER_EPOCH = 21
QUIET = ["print_config=false", "callbacks=none", "logger=none"]
FAULTS = REPO / "tests" / "faults"


def squeue(job: str, fields: str = "%T") -> str:
    """squeue's line for one job (a job of an array: ARRAY_TASK), '' once it has left the queue."""
    found = subprocess.run(["squeue", "-h", "-r", "-o", f"%i {fields}", "-j", job.split("_")[0]], capture_output=True)
    lines = [line.split(" ", 1) for line in found.stdout.decode().splitlines()]
    return next((rest for job_id, rest in lines if job_id == job), "")


def cluster_problem() -> str | None:
    """Why the tests cannot submit here, or None when a cluster answers (started here when root can start it)."""
    if not shutil.which("sbatch"):
        return "sbatch is not installed: install slurm-wlm and munge, then run .ci/slurm_up.sh as root"

    def answers() -> bool:
        found = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
        return found.returncode == 0 and any(s.startswith(("idle", "mix", "alloc")) for s in found.stdout.split())

    if answers():
        return None
    if os.geteuid() != 0:
        return "sbatch is installed but no SLURM cluster answers (sinfo); start one with `sudo .ci/slurm_up.sh`"
    started = subprocess.run([REPO / ".ci" / "slurm_up.sh"], capture_output=True, text=True, timeout=600)
    if started.returncode != 0 or not answers():  # a set-up that root cannot start is a failure, never a skip
        pytest.fail(f".ci/slurm_up.sh could not start a one-node cluster: {(started.stderr or started.stdout)[-500:]}")
    return None


@pytest.fixture(scope="module")
def cluster():
    problem = cluster_problem()
    if problem:
        pytest.skip(problem)


class Sweep:
    """`dlfound train -m hydra/launcher=slurm ...` running in the background, its output in a file."""

    def __init__(self, workdir: Path, args: list[str], fault: dict | None = None):
        self.dir = workdir / "sweep"
        self.out = workdir / f"sweep-{time.time_ns()}.log"
        env = {
            **os.environ,
            "DLFOUND_DATA": str(workdir / "data"),
            "DLFOUND_OUTPUTS": str(workdir / "outputs"),
            "COLUMNS": "200",
            "PYTHONWARNINGS": "ignore",
        }
        env.pop("DLFOUND_COMMAND", None)
        if fault:  # the jobs inherit the environment (sbatch --export=ALL)
            env["DLFOUND_FAULT"] = json.dumps(fault)
            env["PYTHONPATH"] = os.pathsep.join([str(FAULTS), env.get("PYTHONPATH", "")])
        command = [sys.executable, "-m", "dlfound", "train", "-m", "hydra/launcher=slurm", *QUIET]
        command += [f"hydra.sweep.dir={self.dir}", "hydra.launcher.timeout_min=10", *args]
        with open(self.out, "w") as out:
            self.proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.out.read_text()

    def job(self, number: int = 0) -> str:
        """The SLURM id of the sweep's job `number`, once submitted."""
        mark = f"job {number} is SLURM job "
        wait_for(lambda: mark in self.text() or self.proc.poll() is not None, 120, self.text)
        assert mark in self.text(), self.text()[-3000:]
        return self.text().split(mark, 1)[1].split()[0]

    def finish(self, timeout: float = 400) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"the sweep did not end within {timeout} s:\n{self.text()[-3000:]}") from None


def wait_for(condition, timeout: float, describe=lambda: "") -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError(f"waited {timeout} s in vain\n{str(describe())[-3000:]}")
        time.sleep(0.2)


def finish_starting_requeued_jobs_at_once(sweep: Sweep, job: str, timeout: float) -> int:
    """The sweep's exit code. A job that requeued itself waits for its begin time (SLURM holds it back for about two
    minutes); here it is started again at once, as a cluster would start it once that time had passed."""

    def ended() -> bool:
        if squeue(job, "%T %r") == "PENDING BeginTime":
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], capture_output=True)
        return sweep.proc.poll() is not None

    wait_for(ended, timeout, sweep.text)
    return sweep.finish(10)


def mtime(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


def assert_one_last_and_all_load(run_dir: Path) -> list[str]:
    from dlfound.runs.checkpoint import load_checkpoint

    names = sorted(p.name for p in (run_dir / "checkpoints").glob("*.ckpt"))
    assert [n for n in names if n.startswith("last")] == ["last.ckpt"], names
    for name in names:
        load_checkpoint(run_dir / "checkpoints" / name)
    return names


def assert_finished(run_dir: Path, epochs: int, batches_per_epoch: int = BATCHES_PER_EPOCH) -> dict:
    results = read_results(run_dir)
    assert results["status"] == "done", results
    assert results["epochs"] == epochs and results["global_step"] == epochs * batches_per_epoch, results
    assert_one_last_and_all_load(run_dir)
    return results


def restarts(job: str) -> int:
    shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    return int(shown.split("Restarts=", 1)[1].split()[0])


def test_requeued_twice_at_random_moments_finishes_as_the_uninterrupted_run(cluster, workdir):
    """`scontrol requeue` twice, each at a random moment after the run has saved a new last.ckpt: the job ends
    with the uninterrupted run's epoch and step counts (12 epochs, 252 steps), one last.ckpt, every checkpoint
    loadable."""
    epochs, rng = 12, random.Random()
    sweep = Sweep(workdir, [f"trainer.max_epochs={epochs}", "optim.lr=0.1"])
    job, last = sweep.job(), sweep.dir / "0" / "checkpoints" / "last.ckpt"
    for _ in range(2):
        saved_before = mtime(last)
        wait_for(lambda before=saved_before: mtime(last) > before and squeue(job) == "RUNNING", 180, sweep.text)
        time.sleep(rng.uniform(0, 1.0))
        subprocess.run(["scontrol", "requeue", job], check=True)
        wait_for(lambda: squeue(job) != "RUNNING", 30, sweep.text)
    assert sweep.finish() == 0, sweep.text()[-3000:]
    results = assert_finished(sweep.dir / "0", epochs)
    assert restarts(job) == 2 and results["resumed_from"].endswith("last.ckpt")
    # Lines only for changes of state (sampled every 2 s, so a short one may be missed), the log path once, and
    # none of submitit's sacct warnings.
    text = sweep.text()
    assert text.count("tail -f ") == 1 and "sacct" not in text, text
    assert text.count(f"(SLURM {job}): RUNNING") >= 2 and text.count(f"(SLURM {job}): finished") == 1, text
    assert f"(SLURM {job}): RUNNING\njob 0 (SLURM {job}): RUNNING" not in text, text


def test_a_job_warned_of_its_time_limit_saves_requeues_itself_and_finishes(cluster, workdir):
    """A 1-minute job warned 55 s before its limit (SLURM looks at time limits every 30 s, so the warning comes 5
    to 35 s after the start, and the limit 55 s after the warning): it stops at the next batch, saves last.ckpt,
    requeues itself, and the requeued job continues to the end. The run must outlast the warning: one step per
    iteration on batches of 8 (162 an epoch), a few epochs per job here."""
    epochs = 30
    args = ["hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=55", f"trainer.max_epochs={epochs}"]
    sweep = Sweep(workdir, [*args, "data.batch_size=8", "steps_per_iteration=1"])
    job = sweep.job()
    # On a loaded machine a start takes a good part of the time before the warning: many requeues, a few epochs each.
    assert finish_starting_requeued_jobs_at_once(sweep, job, timeout=900) == 0, sweep.text()[-3000:]
    results = assert_finished(sweep.dir / "0", epochs, batches_per_epoch=162)
    assert restarts(job) >= 1 and results["resumed_from"].endswith("last.ckpt")
    log = "".join(p.read_text() for p in (sweep.dir / ".submitit").rglob("*_log.*"))
    assert "time limit (SIGUSR2)" in log and f"SLURM job {job} is requeued" in log, log[-3000:]


def test_a_cancelled_job_is_recorded_and_resume_auto_finishes_it(cluster, workdir):
    epochs = 6
    args = [f"trainer.max_epochs={epochs}", "optim.lr=0.1"]
    sweep = Sweep(workdir, args)
    job, run_dir = sweep.job(), sweep.dir / "0"
    wait_for(lambda: (run_dir / "checkpoints" / "last.ckpt").exists(), 180, sweep.text)
    subprocess.run(["scancel", job], check=True)
    assert sweep.finish(120) != 0
    results = read_results(run_dir)
    assert results["status"] == "interrupted" and "SIGTERM" in results["error"], results
    assert "interrupted before they finished" in sweep.text() and "resume=auto" in sweep.text()
    again = Sweep(workdir, [*args, "resume=auto"])
    assert again.finish() == 0, again.text()[-3000:]
    assert_finished(run_dir, epochs)["resumed_from"].endswith("last.ckpt")


def rank_objectives(sweep_dir: Path, job: str) -> list:
    """What each task (DDP rank) of a SLURM job returned to Hydra: its run's objective (val/acc_best)."""
    found = []
    for path in sorted((sweep_dir / ".submitit" / job).glob(f"{job}_*_result.pkl")):
        outcome, returned = pickle.loads(path.read_bytes())
        assert outcome == "success", returned
        found.append(returned.return_value)
    return found


def test_ddp_under_srun_trains_one_run_and_a_failing_rank_fails_only_its_job(cluster, workdir):
    """Two jobs of two DDP tasks each (gloo on the CPU), started by srun; in job 1 rank 1 is killed mid-epoch."""
    args = ["hydra.launcher.tasks_per_node=2", "trainer=ddp_cpu", "trainer.max_epochs=2", "optim.lr=0.1,0.05"]
    sweep = Sweep(workdir, args, fault={"array_task": 1, "rank": 1, "kill_at": ["train", 5]})
    first, second = sweep.job(0), sweep.job(1)
    assert sweep.finish() != 0
    results = assert_finished(sweep.dir / "0", 2, batches_per_epoch=11)  # each rank takes half of the 21 batches
    assert results["world_size"] == 2
    objectives = rank_objectives(sweep.dir, first)
    assert len(objectives) == 2 and objectives[0] is not None and objectives[0] == objectives[1], objectives
    failed = read_results(sweep.dir / "1")
    assert failed["status"] in ("failed", "interrupted"), failed
    assert "1 job(s) of the sweep" in sweep.text(), sweep.text()[-3000:]
    wait_for(lambda: squeue(second) == "", 120)  # srun ends the job's surviving rank


@pytest.fixture(autouse=True)
def no_job_left(workdir):
    """A failed test must not leave its jobs holding the cluster's CPUs for the next one."""
    yield
    for log in workdir.glob("sweep-*.log"):
        for line in log.read_text().splitlines():
            if " is SLURM job " in line:
                subprocess.run(["scancel", line.split(" is SLURM job ", 1)[1].split()[0]], capture_output=True)
