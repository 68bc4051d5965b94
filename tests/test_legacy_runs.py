"""Run folders written before the package was regrouped still work: eval, sample, restore and resume.

tests/fixtures/legacy_runs/ holds three tiny runs trained by the code of commit 98d5b16 (before the regrouping):
an MLP on digits with the warmup_cosine scheduler (whose `_target_` has since moved), a GAN on ring8 and a
DnCNN on a few synthetic images. `eval_metrics.json` beside each is what that code's `dlfound eval` printed
for its last.ckpt.
"""

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from conftest import read_results, run_dlfound

LEGACY = Path(__file__).parent / "fixtures" / "legacy_runs"


@pytest.fixture
def old_runs(workdir) -> Path:
    shutil.copytree(LEGACY, workdir / "old", ignore=shutil.ignore_patterns("restoration_data"))
    shutil.copytree(LEGACY / "restoration_data", workdir / "data" / "restoration")
    return workdir / "old"


@pytest.mark.slow
@pytest.mark.parametrize("run,overrides", [("cls", []), ("dncnn", ["data.root=data/restoration"])])
def test_eval_reproduces_the_metrics_of_the_old_code(old_runs, workdir, run, overrides, dlfound_in_process):
    ckpt = old_runs / run / "checkpoints" / "last.ckpt"
    dlfound_in_process(["eval", f"ckpt_path={ckpt}", "output=eval.json", *overrides], workdir, check=True)
    metrics = json.loads((workdir / "eval.json").read_text())["metrics"]
    expected = json.loads((old_runs / run / "eval_metrics.json").read_text())
    # Every metric the old code measured, the same; newer code may measure more (calibration, for example).
    assert {k: metrics.get(k) for k in expected} == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow
def test_sample_and_restore_read_old_checkpoints(old_runs, workdir, dlfound_in_process):
    dlfound_in_process(
        ["sample", f"ckpt_path={old_runs / 'gan/checkpoints/last.ckpt'}", "n=16", "output=points.png"],
        workdir,
        check=True,
    )
    with Image.open(workdir / "points.png") as picture:
        assert picture.size == (512, 512)
    clean = workdir / "data" / "restoration" / "Set12" / "000.png"
    proc = dlfound_in_process(
        [
            "restore",
            f"ckpt_path={old_runs / 'dncnn/checkpoints/last.ckpt'}",
            f"input={clean}",
            "sigma=25",
            "output=restored.png",
        ],
        workdir,
        check=True,
    )
    assert "PSNR restored" in proc.stdout
    with Image.open(workdir / "restored.png") as restored, Image.open(clean) as original:
        assert restored.size == original.size


@pytest.mark.slow
def test_train_resumes_an_old_run_folder(old_runs, workdir, dlfound_in_process):
    folder = old_runs / "cls"
    proc = dlfound_in_process(["train", f"resume={folder}", "trainer.max_epochs=3"], workdir, check=True)
    assert "resuming" in proc.stdout
    results = read_results(folder)
    assert results["status"] == "done" and results["epochs"] == 3
    assert results["resumed_from"].endswith("last.ckpt")
    assert "sched=warmup_cosine" in results["overrides"]


# Three tiny runs trained by the code of commit 9d77612, before the library came out of the commands (ops/,
# runs/records.py, one task contract): a DDPM on ring8 (noise schedule and samplers), a WGAN-GP on ring8 (the GAN
# task and its config) and an NTK-width MLP with the NTK monitor callback (whose `_target_` moved).
TODAY = {"ddpm": LEGACY / "today_ddpm", "wgan_gp": LEGACY / "today_wgan_gp", "ntk": LEGACY / "today_ntk"}


@pytest.mark.slow
def test_eval_reads_todays_regression_and_gan_runs(workdir, dlfound_in_process):
    dlfound_in_process(
        ["eval", f"ckpt_path={TODAY['ntk'] / 'checkpoints' / 'last.ckpt'}", "output=ntk.json"], workdir, check=True
    )
    metrics = json.loads((workdir / "ntk.json").read_text())["metrics"]
    expected = json.loads((TODAY["ntk"] / "eval_metrics.json").read_text())
    assert {k: metrics.get(k) for k in expected} == pytest.approx(expected, rel=1e-5)
    dlfound_in_process(
        ["eval", f"ckpt_path={TODAY['wgan_gp'] / 'checkpoints' / 'last.ckpt'}", "output=gan.json"], workdir, check=True
    )
    metrics = json.loads((workdir / "gan.json").read_text())["metrics"]
    expected = json.loads((TODAY["wgan_gp"] / "eval_metrics.json").read_text())
    # The GAN's test metrics come from fresh samples: the same keys, values within sampling noise of the old code's.
    assert set(expected) <= set(metrics)
    assert metrics["test/mmd"] == pytest.approx(expected["test/mmd"], rel=0.1)


@pytest.mark.slow
def test_sample_reads_todays_ddpm_run(workdir):
    ckpt = TODAY["ddpm"] / "checkpoints" / "last.ckpt"
    run_dlfound(["sample", f"ckpt_path={ckpt}", "n=16", "sampler=ddim", "steps=10", "output=ddpm.png"], workdir)
    with Image.open(workdir / "ddpm.png") as picture:
        assert picture.size == (512, 512)


@pytest.mark.slow
def test_train_resumes_todays_run_with_the_ntk_monitor(workdir, dlfound_in_process):
    folder = workdir / "ntk"
    shutil.copytree(TODAY["ntk"], folder)
    proc = dlfound_in_process(["train", f"resume={folder}", "trainer.max_epochs=110"], workdir, check=True)
    assert "resuming" in proc.stdout
    results = read_results(folder)
    assert results["status"] == "done" and results["epochs"] == 110
    assert "experiment=ntk_width_sweep" in results["overrides"]  # whose callbacks are ntk


def test_every_moved_target_names_a_class_or_function_of_today():
    """Checkpoints of earlier rounds name `_target_`s that have since moved (e.g. the NTK monitor, once
    dlfound.ntk.monitor); each is rewritten on load to a path that imports."""
    from hydra.utils import get_object

    from dlfound.runs.checkpoint import LEGACY_TARGETS, upgrade_targets

    for old, new in LEGACY_TARGETS.items():
        assert callable(get_object(new)), new
        assert upgrade_targets({"callbacks": [{"_target_": old}]}) == {"callbacks": [{"_target_": new}]}
