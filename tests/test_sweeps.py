"""Sweeps and runs that survive: Optuna, failing jobs, NaN losses, kills, exact resume, parallel launchers."""

import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import read_results, run_dlfound, run_folders

QUICK = ["print_config=false", "callbacks=none", "logger=none"]


@pytest.mark.slow
def test_optuna_sweep_finishes_and_continues_from_sqlite(workdir, dlfound_in_process):
    import optuna

    args = ["train", "hparams_search=digits_mlp_optuna", "hydra.sweeper.n_trials=3", "trainer.max_epochs=1", *QUICK]
    dlfound_in_process(args, workdir, check=True)
    storage = f"sqlite:///{workdir / 'outputs' / 'optuna.db'}"
    assert len(optuna.load_study(study_name="digits_mlp", storage=storage).trials) == 3
    dlfound_in_process(args, workdir, check=True)
    study = optuna.load_study(study_name="digits_mlp", storage=storage)
    assert len(study.trials) == 6 and all(t.state.name == "COMPLETE" for t in study.trials)
    assert 0 < study.best_value <= 1


@pytest.mark.slow
def test_a_failing_job_is_recorded_and_the_sweep_goes_on(workdir, dlfound_in_process):
    proc = dlfound_in_process(
        ["train", "-m", "optim=sgd", "optim.lr=1e20,0.05", "trainer.max_epochs=2", *QUICK], workdir
    )
    assert proc.returncode != 0 and "1 job(s) of the sweep failed" in proc.stderr
    by_lr = {read_results(f)["overrides"][1]: read_results(f) for f in run_folders(workdir / "outputs")}
    failed, done = by_lr["optim.lr=1e+20"], by_lr["optim.lr=0.05"]
    assert failed["status"] == "failed" and "training loss became" in failed["error"]
    assert done["status"] == "done" and done["metrics"]["test/acc"] > 0.5


def test_a_nan_loss_stops_a_single_run_with_a_clear_message(workdir, dlfound_in_process):
    proc = dlfound_in_process(["train", "optim=sgd", "optim.lr=1e20", *QUICK], workdir)
    assert proc.returncode != 0 and "training loss became" in proc.stderr and "Traceback" not in proc.stderr
    [folder] = run_folders(workdir / "outputs")
    assert read_results(folder)["status"] == "failed"


@pytest.mark.slow
def test_resume_at_an_epoch_boundary_equals_the_uninterrupted_run(workdir, dlfound_in_process):
    common = ["train", "trainer.deterministic=true", "model.dropout=0.3", "print_config=false", "callbacks=none"]
    (workdir / "a").mkdir()
    dlfound_in_process([*common, "trainer.max_epochs=4"], workdir / "a", check=True)
    (workdir / "b").mkdir()
    dlfound_in_process([*common, "trainer.max_epochs=2"], workdir / "b", check=True)
    [interrupted] = run_folders(workdir / "b" / "outputs")
    dlfound_in_process(["train", f"resume={interrupted}", "trainer.max_epochs=4"], workdir / "b", check=True)
    [whole] = run_folders(workdir / "a" / "outputs")
    a, b = read_results(whole), read_results(interrupted)
    assert b["epochs"] == a["epochs"] == 4
    assert b["metrics"]["test/loss"] == a["metrics"]["test/loss"]
    wa = torch.load(whole / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    wb = torch.load(interrupted / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_from_an_intact_checkpoint(workdir, dlfound_in_process):
    import os

    from conftest import REPO  # noqa: F401  (the same environment as run_dlfound)

    env = {**os.environ, "DLFOUND_OUTPUTS": str(workdir / "outputs"), "DLFOUND_DATA": str(workdir / "data")}
    env.pop("DLFOUND_COMMAND", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlfound", "train", "trainer.max_epochs=100000", "data.batch_size=8", *QUICK],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 240
        last = None
        while time.time() < deadline:
            found = list((workdir / "outputs").rglob("last.ckpt"))
            if found and found[0].stat().st_mtime < time.time() - 0.5:
                last = found[0]
                break
            time.sleep(0.2)
        assert last is not None, "no checkpoint appeared"
        time.sleep(0.7)  # kill it in the middle of later epochs and checkpoint writes
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    ckpt = torch.load(last, weights_only=True)  # intact: a complete, readable checkpoint
    folder = last.parent.parent
    dlfound_in_process(["train", f"resume={folder}", f"trainer.max_epochs={ckpt['epoch'] + 3}"], workdir, check=True)
    results = read_results(folder)
    assert results["status"] == "done" and results["epochs"] == ckpt["epoch"] + 3


@pytest.mark.slow
def test_resume_auto_skips_finished_jobs_of_a_sweep(workdir, dlfound_in_process):
    sweep = workdir / "sweep"
    args = ["train", "-m", "optim.lr=0.01,0.003", "trainer.max_epochs=1", f"hydra.sweep.dir={sweep}", *QUICK]
    dlfound_in_process(args, workdir, check=True)
    (sweep / "1" / "results.json").unlink()  # as if job 1 had been interrupted
    done_before = (sweep / "0" / "results.json").read_bytes()
    proc = dlfound_in_process([*args, "resume=auto"], workdir, check=True)
    assert proc.stdout.count("already done") == 1
    assert (sweep / "0" / "results.json").read_bytes() == done_before
    assert read_results(sweep / "1")["status"] == "done"


@pytest.mark.slow
def test_parallel_launcher_runs_jobs_side_by_side(workdir, dlfound_in_process):
    dlfound_in_process(
        ["train", "-m", "hydra/launcher=parallel", "optim.lr=0.01,0.003", "trainer.max_epochs=1", *QUICK],
        workdir,
        check=True,
    )
    assert len(run_folders(workdir / "outputs")) == 2


@pytest.mark.slow
def test_submitit_local_launcher_runs_a_two_job_sweep(workdir, dlfound_in_process):
    dlfound_in_process(
        [
            "train",
            "-m",
            "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10",
            "optim.lr=0.01,0.003",
            "trainer.max_epochs=1",
            *QUICK,
        ],
        workdir,
        check=True,
    )
    folders = run_folders(workdir / "outputs")
    assert len(folders) == 2 and all(read_results(f)["status"] == "done" for f in folders)


@pytest.mark.slow
def test_multirun_with_ddp_gives_each_job_its_own_ranks_and_folder(workdir):
    proc = run_dlfound(
        ["train", "-m", "trainer=ddp_cpu", "optim=sgd", "optim.lr=1e20,0.05", "trainer.max_epochs=2", *QUICK],
        workdir,
        check=False,
    )
    assert proc.returncode != 0 and "1 job(s) of the sweep failed" in proc.stderr
    assert proc.stdout.count("Launching 2 jobs") == 1
    [sweep] = (workdir / "outputs").glob("train/multiruns/*")
    # No rank started the sweep again: one sweep folder, two job folders, nothing else anywhere.
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    assert len(run_folders(workdir / "outputs")) == 2
    failed, done = read_results(sweep / "0"), read_results(sweep / "1")
    assert failed["status"] == "failed" and "training loss became" in failed["error"]
    assert done["status"] == "done" and done["world_size"] == 2 and done["metrics"]["test/acc"] > 0.5
    assert (sweep / "1" / ".hydra" / "overrides.yaml").is_file()


@pytest.mark.slow
def test_a_requeued_slurm_job_continues_from_its_last_checkpoint(workdir, dlfound_in_process):
    folder = workdir / "job"
    args = ["train", f"hydra.run.dir={folder}", *QUICK]
    dlfound_in_process([*args, "trainer.max_epochs=2"], workdir, check=True)
    (folder / "results.json").unlink()  # preempted before it finished
    dlfound_in_process([*args, "trainer.max_epochs=3"], workdir, env={"SLURM_RESTART_COUNT": "1"}, check=True)
    results = read_results(folder)
    assert results["resumed_from"].endswith("last.ckpt") and results["epochs"] == 3
    proc = dlfound_in_process([*args, "trainer.max_epochs=3"], workdir, env={"SLURM_RESTART_COUNT": "2"}, check=True)
    assert "already done" in proc.stdout  # requeued after it had finished: nothing to redo


def test_which_sweep_jobs_run_as_their_own_process(monkeypatch):
    from dlfound.runs.job_process import runs_as_own_process

    for var in ("SLURM_NTASKS", "SLURM_JOB_NAME", "TORCHELASTIC_RUN_ID", "LOCAL_RANK", "GROUP_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert runs_as_own_process({"strategy": "ddp"}, None)  # Lightning would re-launch the sweep's command line
    assert not runs_as_own_process({"strategy": "ddp_spawn"}, None)
    assert not runs_as_own_process({"strategy": "auto"}, None)
    assert runs_as_own_process({"strategy": "auto"}, 1)  # a GPU of its own, through CUDA_VISIBLE_DEVICES
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_JOB_NAME", "sweep")
    assert not runs_as_own_process({"strategy": "ddp"}, None)  # srun started every rank of this job already
