"""Stopping a run as a user does (issue 29): Ctrl-C saves, records and names the command that continues; a second
Ctrl-C stops at once; SIGTERM is honoured within seconds in a sampling test phase; two runs started together into
one named folder: one trains, the other is refused; a GPU recipe on a CPU says at the start that testing will take
far longer than training. Each through the real `dlfound` process."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import SHARED_DATA, read_results, run_dlfound

QUIET = ["print_config=false", "callbacks.model_summary=null", "callbacks.progress_bar=null"]
RECORDED = {"status", "error", "last_checkpoint", "choices", "overrides", "run_dir", "finished_at", "versions"}


def start(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """`dlfound ARGS` started in the background, its output in cwd/stdout.txt and cwd/stderr.txt."""
    full_env = {
        **os.environ,
        "DLFOUND_DATA": str(cwd / "data"),
        "DLFOUND_OUTPUTS": str(cwd / "outputs"),
        "COLUMNS": "200",
        "PYTHONWARNINGS": "ignore",
        **(env or {}),
    }
    full_env.pop("DLFOUND_COMMAND", None)
    tag = len(list(cwd.glob("stdout*.txt")))
    return subprocess.Popen(
        [sys.executable, "-m", "dlfound", *args],
        cwd=cwd,
        env=full_env,
        stdout=open(cwd / f"stdout{tag}.txt", "w"),
        stderr=open(cwd / f"stderr{tag}.txt", "w"),
    )


def wait_for(condition, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"dlfound exited {process.returncode} before the moment the test waits for"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def output(cwd: Path, tag: int = 0) -> tuple[str, str]:
    return (cwd / f"stdout{tag}.txt").read_text(), (cwd / f"stderr{tag}.txt").read_text()


def paragraph(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


@pytest.mark.slow
def test_ctrl_c_saves_last_ckpt_records_the_run_as_interrupted_and_names_the_command_that_continues(workdir):
    run = workdir / "outputs" / "train" / "runs" / "stopped"
    process = start(["train", "name=stopped", "trainer.max_epochs=500", *QUIET], workdir)
    wait_for(lambda: (run / "checkpoints" / "last.ckpt").is_file(), process)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130
    stdout, stderr = output(workdir)
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr + stdout, stderr[-3000:]
    assert "interrupted by Ctrl-C during training" in paragraph(stderr)
    assert f"dlfound train resume={run}\n" in stderr  # the one command, on a line of its own, whole
    results = read_results(run)
    assert results["status"] == "interrupted" and RECORDED <= set(results)
    assert results["last_checkpoint"] == str(run / "checkpoints" / "last.ckpt")
    epoch = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]

    resumed = run_dlfound(["train", f"resume={run}", f"trainer.max_epochs={epoch + 2}", *QUIET], workdir)
    assert "resume=last" not in resumed.stdout + resumed.stderr
    results = read_results(run)
    assert results["status"] == "done" and results["epochs"] == epoch + 2
    assert results["resumed_from"] == str(run / "checkpoints" / "last.ckpt")


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once(workdir):
    """Training steps of seconds each: the first Ctrl-C waits for the step to end, the second does not."""
    run = workdir / "outputs" / "train" / "runs" / "twice"
    process = start(
        [
            "train",
            "name=twice",
            "trainer.max_epochs=500",
            "model.hidden=[4096,4096,4096]",
            "data.batch_size=512",
            *QUIET,
        ],
        workdir,
    )
    wait_for(lambda: (run / "checkpoints" / "last.ckpt").is_file(), process)
    process.send_signal(signal.SIGINT)
    wait_for(lambda: "Ctrl-C: stopping after this step" in output(workdir)[1], process)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130
    assert "second Ctrl-C: stopped at once" in output(workdir)[1]
    assert not (run / "results.json").exists()


@pytest.mark.slow
def test_resuming_a_run_that_saved_no_checkpoint_says_so_in_terms_of_its_folder(workdir, dlfound_in_process):
    # Not in terms of resume=last, an option the user never typed.
    run = workdir / "outputs" / "train" / "runs" / "early"
    (run / "checkpoints").mkdir(parents=True)
    (run / ".hydra").mkdir()
    (run / ".hydra" / "overrides.yaml").write_text("- name=early\n")
    proc = dlfound_in_process(["train", f"resume={run}"], workdir)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    message = paragraph(proc.stderr)
    assert "holds no checkpoint to continue from" in message and "resume=last" not in message


@pytest.mark.slow
def test_sigterm_during_a_sampling_test_phase_stops_within_seconds(workdir):
    """ring8_ddpm tests by drawing 2,500 points through 1,000 steps (a minute here); training is one batch."""
    run = workdir / "outputs" / "train" / "runs" / "sampling"
    process = start(
        [
            "train",
            "experiment=ring8_ddpm",
            "name=sampling",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=1",
            "trainer.limit_val_batches=0",
            "logger=none",
            *QUIET,
        ],
        workdir,
    )
    wait_for(
        lambda: "`Trainer.fit` stopped" in "".join(output(workdir)) and (run / "checkpoints" / "last.ckpt").is_file(),
        process,
    )
    trained = (run / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    time.sleep(1)  # into the test phase's sampling loop
    process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert time.monotonic() - sent < 10
    stderr = paragraph(output(workdir)[1])
    assert "interrupted by SIGTERM while testing (training had finished)" in stderr, stderr[-2000:]
    assert read_results(run)["status"] == "interrupted"
    assert (run / "checkpoints" / "last.ckpt").stat().st_mtime_ns == trained  # testing never overwrites it


@pytest.mark.slow
def test_two_runs_started_together_with_one_name_one_trains_and_the_other_is_refused(workdir):
    run = workdir / "outputs" / "train" / "runs" / "same"
    first = start(["train", "name=same", "trainer.max_epochs=2", *QUIET], workdir)
    second = start(["train", "name=same", "trainer.max_epochs=2", "optim.lr=0.01", *QUIET], workdir)
    codes = [first.wait(timeout=300), second.wait(timeout=300)]
    assert sorted(codes)[0] == 0 and sorted(codes)[1] != 0, codes
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    stderr = output(workdir, loser)[1]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert f"{run} is already taken by another run" in paragraph(stderr)
    results = read_results(run)
    assert results["status"] == "done"
    assert ("optim.lr=0.01" in results["overrides"]) == (winner == 1)  # the folder is the winner's alone
    assert json.dumps(results["overrides"]) in json.dumps(
        __import__("yaml").safe_load((run / ".hydra" / "overrides.yaml").read_text())
    )


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_gpu_recipe_on_a_cpu_says_at_the_start_that_testing_takes_far_longer(workdir):
    """The issue's command (batches made small): testing draws ancestral samples of 1,000 steps each."""
    if not (SHARED_DATA / "MNIST").exists():
        pytest.skip("no shared MNIST")
    process = start(
        [
            "train",
            "experiment=mnist_ddpm",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=3",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
            "data.batch_size=2",
            "data.eval_batch_size=16",
            "name=ddpm",
            "logger=none",
            *QUIET,
        ],
        workdir,
        env={"DLFOUND_DATA": str(SHARED_DATA)},
    )
    wait_for(lambda: "testing will take far longer than training" in output(workdir)[0], process, timeout=600)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=300) == 128 + signal.SIGTERM
    note = paragraph(output(workdir)[0])
    assert "It draws 16 samples (ddpm 1000: 1000 network evaluations each)" in note
    assert "task.test_samples=" in note and "test=false" in note
