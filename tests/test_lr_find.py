"""`dlfound train lr_find=true`: the learning-rate range test writes its curve and record, and the run trains with
the suggestion (in its checkpoints and results.json); too short or diverging tests say so."""

import json

import torch
from PIL import Image

from conftest import read_results

FIND = [
    "train",
    "lr_find=true",
    "optim=sgd",
    "sched=onecycle",
    "trainer.max_epochs=1",
    "print_config=false",
    "hydra.run.dir=run",
]


def test_range_test_writes_its_curve_and_the_run_trains_with_the_suggestion(workdir, dlfound_in_process):
    dlfound_in_process(FIND, workdir, check=True)
    run = workdir / "run"
    record = json.loads((run / "lr_find.json").read_text())
    suggestion = record["suggestion"]
    assert len(record["lr"]) == len(record["loss"]) == 100 and 1e-6 <= suggestion <= 1.0
    assert record["lr"] == sorted(record["lr"])  # the learning rate only grows
    with Image.open(run / "lr_find.png") as picture:
        assert picture.size == (600, 400)
    results = read_results(run)
    assert results["lr_find"]["suggestion"] == suggestion and results["global_step"] == 21  # the test's steps undone
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    config = ckpt["dlfound_config"]
    assert config["optim"]["lr"] == suggestion and config["sched"]["max_lr"] == suggestion  # one-cycle peaks there
    assert ckpt["optimizer_states"][0]["param_groups"][0]["max_lr"] == suggestion


def test_too_few_steps_is_one_paragraph(workdir, dlfound_in_process):
    proc = dlfound_in_process([*FIND, "lr_find_settings.steps=5"], workdir)
    assert proc.returncode != 0 and "at least 13 steps" in proc.stderr and "Traceback" not in proc.stderr


def test_a_diverging_test_says_why_it_suggests_nothing(workdir, dlfound_in_process):
    proc = dlfound_in_process(
        [*FIND, "lr_find_settings.steps=14", "lr_find_settings.min_lr=100", "lr_find_settings.max_lr=1e9"],
        workdir,
    )
    assert proc.returncode != 0 and "too few finite losses" in proc.stderr and "Traceback" not in proc.stderr
    assert (workdir / "run" / "lr_find.png").is_file()  # the curve it did draw is kept
