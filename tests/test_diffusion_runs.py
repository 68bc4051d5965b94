"""Diffusion and score models through the real commands: `dlfound train` writes the bound, sample quality and the
pictures (PNG and TensorBoard), and `dlfound sample` takes the samplers' options and refuses the ones that cannot
apply, in one paragraph and a non-zero exit."""

import math

import pytest
from PIL import Image

from conftest import read_results, run_dlfound, run_folders
from dlfound.models import ddpm_unet
from dlfound.plots import grid_size

QUIET = ["callbacks.progress_bar=null", "callbacks.model_summary=null", "print_config=false"]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
# A U-Net small enough for 8x8 digits and a few seconds of CPU.
TINY_UNET = [
    "model.base_channels=8",
    "model.num_res_blocks=1",
    "task.timesteps=50",
    "task.preview_steps=5",
    "task.sampler=ddim",
    "task.sample_steps=5",
    "task.test_samples=40",
]


@pytest.fixture(scope="module")
def conditional_ddpm(tmp_path_factory):
    """Three short epochs of a class-conditional DDPM on the digits."""
    cwd = tmp_path_factory.mktemp("ddpm")
    run_dlfound(
        ["train", "model=ddpm_unet", "data=digits", "model.conditional=true", *TINY_UNET, "debug=limit", *QUIET],
        cwd,
        env=ONE_THREAD,
    )
    [folder] = run_folders(cwd / "outputs")
    return folder


@pytest.fixture(scope="module")
def gmm2d_score(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("score")
    run_dlfound(
        [
            "train",
            "experiment=gmm2d_score",
            "debug=limit",
            "task.steps_per_level=5",
            "data.n_train=2000",
            "data.val_size=500",
            *QUIET,
        ],
        cwd,
        env=ONE_THREAD,
    )
    [folder] = run_folders(cwd / "outputs")
    return folder


def test_a_ddpm_run_records_bits_per_dim_and_sample_quality(conditional_ddpm):
    metrics = read_results(conditional_ddpm)["metrics"]
    # The bound of an untrained net is large; it is a finite number of bits per dimension on the 8-bit scale.
    assert 0 < metrics["test/bpd"] < 50 and math.isfinite(metrics["test/loss"])
    assert math.isfinite(metrics["test/kid"])
    # The network's parameters, counted once (not again for the EMA copy).
    net = ddpm_unet(1, 8, num_classes=10, conditional=True, base_channels=8, num_res_blocks=1)
    assert read_results(conditional_ddpm)["num_params"] == sum(p.numel() for p in net.parameters())


def test_a_ddpm_run_draws_samples_classes_and_a_path_from_noise(conditional_ddpm):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    path = Image.open(conditional_ddpm / "images" / "path_epoch002.png")
    path.verify()
    # 5 DDIM steps give 5 states (frames may repeat): one row of 8x8 images.
    assert Image.open(conditional_ddpm / "images" / "path_epoch002.png").size[1] == grid_size(1, 1, 8, 8)[1]
    assert (conditional_ddpm / "images" / "classes_epoch002.png").is_file()
    acc = EventAccumulator(str(conditional_ddpm / "tensorboard"), size_guidance={"images": 0})
    acc.Reload()
    assert {"images/samples", "images/classes", "images/path"} <= set(acc.Tags()["images"])
    assert len(acc.Images("images/path")) == 3  # one per epoch


def sample(ckpt, args: list[str], capsys) -> tuple[int, str]:
    """`dlfound sample` in this process (the command's own main): (exit code, printed text on one line)."""
    from dlfound.commands.sample import main

    code = 0
    try:
        main([f"ckpt_path={ckpt}", "device=cpu", *args])
    except SystemExit as exit_info:
        code = exit_info.code
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


def test_the_sample_command_draws_a_conditional_diffusion_model(conditional_ddpm, tmp_path):
    out = tmp_path / "out.png"
    proc = run_dlfound(
        [
            "sample",
            f"ckpt_path={conditional_ddpm / 'checkpoints' / 'last.ckpt'}",
            "sampler=ddpm",
            "n=12",
            "nrow=6",
            "class=3",
            "guidance=2",
            f"output={out}",
        ],
        tmp_path,
        env=ONE_THREAD,
    )
    assert "12 samples of 1x8x8 from DiffusionTask" in " ".join(proc.stdout.split())
    assert Image.open(out).size == grid_size(12, 6, 8, 8)


@pytest.mark.parametrize(
    "args,size",
    [
        (["sampler=ddim", "steps=4", "eta=0.5", "n=8", "nrow=4"], grid_size(8, 4, 8, 8)),
        (["path=true", "class=1", "steps=10"], None),
    ],
)
def test_sample_takes_the_samplers_options(conditional_ddpm, tmp_path, capsys, args, size):
    out = tmp_path / "out.png"
    code, text = sample(conditional_ddpm / "checkpoints" / "last.ckpt", [*args, f"output={out}"], capsys)
    assert code == 0, text
    width, height = Image.open(out).size
    if size:
        assert (width, height) == size
    else:  # the path of one sample: one row of frames
        assert height == grid_size(1, 1, 8, 8)[1] and width > 5 * height


@pytest.mark.parametrize(
    "args,message",
    [
        (["steps=51"], "samples in 1 to 50 steps"),
        (["steps=0"], "steps=0 must be at least 1"),
        (["class=10"], "class=10 is out of range"),
        (["sampler=langevin"], "ddpm, ddim"),
        (["eta=-1"], "eta=-1.0"),
        (["guidance=-1", "class=1"], "at least 0"),
        (["temperature=0.5"], "no sampling temperature"),
        (["interpolate=true"], "latent space"),
    ],
)
def test_sample_refuses_what_a_diffusion_model_cannot_do(conditional_ddpm, tmp_path, capsys, args, message):
    code, text = sample(conditional_ddpm / "checkpoints" / "last.ckpt", [*args, f"output={tmp_path / 'x.png'}"], capsys)
    assert code != 0 and "Traceback" not in text and message in text, text
    assert not (tmp_path / "x.png").exists()


def test_a_score_run_reports_the_mixture_weights_and_samples_both_ways(gmm2d_score, tmp_path, capsys):
    metrics = read_results(gmm2d_score)["metrics"]
    assert 0 <= metrics["test/heaviest_mode_weight"] <= 1 and metrics["test/modes_covered"] <= 2
    assert math.isfinite(metrics["test/mmd"])
    ckpt = gmm2d_score / "checkpoints" / "last.ckpt"
    for sampler in ("annealed", "langevin"):
        out = tmp_path / f"{sampler}.png"
        code, text = sample(ckpt, [f"sampler={sampler}", "steps=3", "n=100", f"output={out}"], capsys)
        assert code == 0 and "ScoreTask" in text and Image.open(out).size == (512, 512), text
    for args, message in (
        (["guidance=1"], "apply to diffusion models"),
        (["sampler=ddim"], "annealed, langevin"),
        (["path=true"], "points"),
    ):
        code, text = sample(ckpt, args, capsys)
        assert code != 0 and message in text, text


def test_diffusion_options_are_refused_for_other_families(tmp_path, capsys):
    from test_generative import _save_checkpoint

    ckpt = _save_checkpoint(tmp_path, ["model=vae", "data=digits", "model.hidden=[16]", "model.latent_dim=2"])
    code, text = sample(ckpt, ["sampler=ddim", "guidance=2"], capsys)
    assert code != 0 and "Traceback" not in text and "apply to diffusion and score models" in text, text


def test_guided_accuracy_script_scores_each_guidance_scale(conditional_ddpm, tmp_path):
    """scripts/guided_accuracy.py: one JSON line per guidance scale, shares in [0, 1], one per class."""
    import json
    import os
    import subprocess
    import sys

    from conftest import REPO
    from test_generative import _save_checkpoint

    classifier = _save_checkpoint(tmp_path, ["model=mlp", "data=digits"])
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "guided_accuracy.py"),
            f"ckpt_path={conditional_ddpm / 'checkpoints' / 'last.ckpt'}",
            f"classifier={classifier}",
            "n=20",
            "guidance=0,2",
            "steps=3",
            "device=cpu",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [line["sampling"]["guidance"] for line in lines] == [0.0, 2.0]
    for line in lines:
        assert 0 <= line["as_requested"] <= 1 and len(line["per_class"]) == 10
