"""Several optimizer steps per loop iteration (`steps_per_iteration`): the weights of one step per iteration, in
float64 over hundreds of steps with a scheduler, clipping, dropout, an EMA and a resume in the middle; Lightning's
step count, log steps and checkpoints as before; and a clear refusal where grouping would not be exact."""

import csv

import pytest
import torch

from conftest import read_results, run_folders

# 1,293 training digits in batches of 16: 81 batches an epoch, the last of 13, so groups of 16 end mid-epoch
# and an epoch ends in a group of one.
EXACT = [
    "train",
    "print_config=false",
    "trainer.precision=64-true",
    "data.batch_size=16",
    "model.dropout=0.2",
    "task.ema_decay=0.95",
    "trainer.gradient_clip_val=0.5",
    "trainer.log_every_n_steps=7",
    "test=false",
]
# (scheduler, whether the grouped run is stopped after 2 epochs and resumed): a scheduler spread over the run's
# total steps cannot be resumed with more epochs than it was built for, so that one runs through.
SCHEDULERS = {
    "per step": (["sched=inverse_time", "sched.k0=40"], True),
    "per epoch": (["sched=step", "sched.step_size=1", "sched.gamma=0.7"], True),
    "over the whole run": (["sched=onecycle"], False),
}


def weights(folder) -> dict[str, torch.Tensor]:
    return torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def logged_losses(folder) -> dict[int, float]:
    with open(folder / "csv" / "metrics.csv") as f:
        return {int(row["step"]): float(row["train/loss_step"]) for row in csv.DictReader(f) if row["train/loss_step"]}


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_grouped_steps_with_a_resume_give_the_weights_of_one_step_per_iteration(scheduler, workdir, dlfound_in_process):
    plain_dir, grouped_dir = workdir / "plain", workdir / "grouped"
    plain_dir.mkdir(), grouped_dir.mkdir()
    overrides, resume = SCHEDULERS[scheduler]
    run = [*EXACT, *overrides]
    assert dlfound_in_process([*run, "steps_per_iteration=1", "trainer.max_epochs=4"], plain_dir).returncode == 0
    first = f"trainer.max_epochs={2 if resume else 4}"
    assert dlfound_in_process([*run, "steps_per_iteration=16", first], grouped_dir).returncode == 0
    [grouped] = run_folders(grouped_dir / "outputs")
    if resume:
        resumed = dlfound_in_process(["train", f"resume={grouped}", "trainer.max_epochs=4"], grouped_dir)
        assert resumed.returncode == 0, resumed.stderr
    [plain] = run_folders(plain_dir / "outputs")

    a, b = read_results(plain), read_results(grouped)
    assert a["global_step"] == b["global_step"] == 4 * 81
    wa, wb = weights(plain), weights(grouped)
    assert wa.keys() == wb.keys() and any(k.startswith("ema.") for k in wa)
    assert all(v.dtype == torch.float64 for v in wa.values() if v.is_floating_point())
    worst = max((wa[k] - wb[k]).abs().max().item() for k in wa if wa[k].is_floating_point())
    assert worst <= 1e-12, f"largest weight difference {worst:.3g}"
    # The same losses logged at the same optimizer steps (every 7th: inside groups as well as at their ends).
    la, lb = logged_losses(plain), logged_losses(grouped)
    assert sorted(la) == sorted(lb) == list(range(6, 4 * 81, 7))
    assert all(abs(la[s] - lb[s]) <= 1e-12 for s in la)


def test_auto_groups_a_classifier_on_in_memory_data_and_counts_every_step(workdir, dlfound_in_process):
    proc = dlfound_in_process(
        ["train", "print_config=false", "trainer.max_epochs=2", "data.batch_size=64", "test=false"], workdir
    )
    assert proc.returncode == 0, proc.stderr
    [folder] = run_folders(workdir / "outputs")
    results = read_results(folder)
    assert results["global_step"] == 2 * 21  # 1,293 samples in batches of 64, every one a step
    assert results["train_samples_per_s"] > 0
    ckpt = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 42 and ckpt["epoch"] == 1


def test_limit_train_batches_counts_batches_not_groups(workdir, dlfound_in_process):
    args = ["train", "print_config=false", "trainer.max_epochs=2", "test=false", "steps_per_iteration=8"]
    proc = dlfound_in_process([*args, "trainer.limit_train_batches=11", "data.batch_size=16"], workdir)
    assert proc.returncode == 0, proc.stderr
    [folder] = run_folders(workdir / "outputs")
    assert read_results(folder)["global_step"] == 2 * 11


def test_max_steps_stops_inside_a_group(workdir, dlfound_in_process):
    args = ["train", "print_config=false", "trainer.max_steps=37", "test=false", "steps_per_iteration=16"]
    assert dlfound_in_process([*args, "data.batch_size=16"], workdir).returncode == 0
    [folder] = run_folders(workdir / "outputs")
    assert read_results(folder)["global_step"] == 37


@pytest.mark.parametrize(
    "overrides, reason",
    [
        (["trainer.accumulate_grad_batches=2"], "accumulate_grad_batches"),
        (["lr_find=true"], "lr_find=true"),
        (["sched=plateau"], "ReduceLROnPlateau"),
        (["task=bbb", "model=bbb_mlp"], "BayesByBackpropTask"),
    ],
)
def test_a_run_that_cannot_be_grouped_refuses_a_number_in_one_paragraph(overrides, reason, workdir, dlfound_in_process):
    proc = dlfound_in_process(["train", "print_config=false", "steps_per_iteration=4", *overrides], workdir)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "steps_per_iteration=4 cannot be honoured" in proc.stderr and reason in proc.stderr


@pytest.mark.parametrize("value", ["0", "many", "2.5"])
def test_a_bad_steps_per_iteration_is_one_paragraph(value, workdir, dlfound_in_process):
    proc = dlfound_in_process(["train", "print_config=false", f"steps_per_iteration={value}"], workdir)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "steps_per_iteration must be auto or a positive integer" in proc.stderr


def test_a_run_stopped_mid_epoch_resumes_its_groups_at_the_next_batch():
    from dlfound.data.batch_groups import GroupedBatchSampler
    from dlfound.data.memory import IndexBatchSampler

    batches = IndexBatchSampler(100, 8, shuffle=True, seed=3)  # 13 batches an epoch, the last of 4 samples
    batches.set_epoch(2)
    whole = list(GroupedBatchSampler(batches, 4))
    assert [g.first for g in whole] == [0, 4, 8, 12] and [g.last_of_epoch for g in whole] == [False] * 3 + [True]
    resumed = GroupedBatchSampler(batches, 4, resume_at=(2, 8))  # stopped after two groups of epoch 2
    rest = list(resumed)
    assert [g.first for g in rest] == [8, 12]
    pairs = zip(rest, whole[2:], strict=True)
    assert all(torch.equal(a, b) for g, h in pairs for a, b in zip(g.indices, h.indices, strict=True))
    assert [g.first for g in resumed] == [0, 4, 8, 12]  # once only: the epoch after starts at its beginning
    other = GroupedBatchSampler(batches, 4, resume_at=(1, 8))  # a checkpoint of another epoch skips nothing
    assert [g.first for g in other] == [0, 4, 8, 12]


def test_a_run_stopped_at_an_epoch_end_resumes_with_the_next_epoch_whole(workdir, dlfound_in_process, monkeypatch):
    """SIGTERM during the epoch-end hooks: Lightning counts the epoch as done before it stops, so the checkpoint
    names the next epoch while the batch count is still the finished one's; the resumed run must not skip it."""
    import os
    import signal

    from lightning.pytorch.loops.fit_loop import _FitLoop

    real_end = _FitLoop.on_advance_end

    def end_with_a_sigterm(loop):
        if loop.trainer.current_epoch == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        real_end(loop)

    monkeypatch.setattr(_FitLoop, "on_advance_end", end_with_a_sigterm)
    args = ["train", "print_config=false", "callbacks=none", "logger=none", "test=false", "trainer.max_epochs=4"]
    stopped = dlfound_in_process([*args, "data.batch_size=64"], workdir)
    assert stopped.returncode != 0 and "SIGTERM" in stopped.stderr
    [folder] = run_folders(workdir / "outputs")
    assert read_results(folder)["status"] == "interrupted"
    monkeypatch.setattr(_FitLoop, "on_advance_end", real_end)
    resumed = dlfound_in_process(["train", f"resume={folder}"], workdir)
    assert resumed.returncode == 0, resumed.stderr
    results = read_results(folder)
    assert results["epochs"] == 4 and results["global_step"] == 4 * 21, results
