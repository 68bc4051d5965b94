"""`dlfound figure NAME`: the sweeps run (and are reused), the PNG and its sidecar are written, the figure shows
what the lecture claims on short runs, every figure's runs compose, and bad input is one paragraph."""

import pytest
from PIL import Image

from conftest import run_dlfound
from dlfound.runs.build import compose
from dlfound.runs.diagnostics import by_layer, read_diagnostics
from dlfound.runs.figure_panels import series
from dlfound.runs.figures import figure_names, first_job, load_spec, slug, sweeps

FIGURES = [
    "batchnorm",
    "calibration",
    "convergence",
    "degradation",
    "dropout",
    "init",
    "lr_schedules",
    "ntk",
    "optimizers",
    "perceptron",
    "sequences",
    "uat",
    "vanishing",
]


def figure_root(workdir, name):
    (root,) = (workdir / "outputs" / "figure" / name).iterdir()  # one budget folder, suffixed by the overrides
    return root


@pytest.mark.slow
def test_every_figure_is_listed_and_its_runs_compose():
    assert set(FIGURES) <= set(figure_names())
    for name in figure_names():
        spec = {"name": name, **load_spec(name)}
        assert spec["title"] and spec["shows"] and spec["panels"]
        for budget in spec.get("budgets", {"cpu": []}):
            for label, overrides in sweeps(spec, budget, []).items():
                cfg = compose(first_job(overrides))
                assert cfg.model and cfg.data, (name, budget, label)


@pytest.fixture(scope="module")
def vanishing(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("vanishing")
    first = run_dlfound(["figure", "vanishing", "data=digits"], workdir)
    again = run_dlfound(["figure", "vanishing", "data=digits"], workdir)
    return workdir, first, again


@pytest.mark.slow
def test_vanishing_gradients_on_a_short_run(vanishing):
    workdir, first, _ = vanishing
    root = figure_root(workdir, "vanishing")
    ratios = {
        line.name: (lambda g: g[0] / g[-1])(by_layer(read_diagnostics(line / "0"), "grad_norm", 0))
        for line in root.iterdir()
        if line.is_dir()
    }
    assert ratios["sigmoid_MLP"] < 1e-4, ratios  # orders of magnitude between the first and the last layer
    assert 0.1 < ratios["ReLU_BN_MLP"] < 10, ratios
    assert 0.05 < ratios["ResNet_20"] < 20, ratios
    with Image.open(root / "vanishing.png") as picture:
        assert picture.size[0] > 600 and picture.mode in ("RGB", "RGBA")
    sidecar = (root / "vanishing.md").read_text()
    assert sidecar.count("dlfound train -m") == 3 and "model=deep_mlp" in sidecar and "data=digits" in sidecar
    assert "sigmoid MLP" in sidecar and "Hochreiter" in sidecar


def test_asking_again_reuses_the_finished_runs(vanishing):
    _, _, again = vanishing
    assert again.stdout.count("already done") == 3


@pytest.mark.slow
def test_learning_rate_panels_show_each_schedule(workdir):
    run_dlfound(
        ["figure", "lr_schedules", "data=digits", "trainer.max_epochs=3", "trainer.log_every_n_steps=1"], workdir
    )
    root = figure_root(workdir, "lr_schedules")
    lr = {line: series(root / slug(line) / "0", "lr-*", "step") for line in ("constant", "step", "one-cycle", "cyclic")}
    assert {round(v, 6) for _, v in lr["constant"]} == {0.1}
    assert lr["step"][-1][1] == pytest.approx(0.03)  # 0.1 x 0.3 after two epochs
    peak = max(v for _, v in lr["one-cycle"])
    assert peak == pytest.approx(0.1, rel=0.05) and lr["one-cycle"][-1][1] < 0.01 and lr["one-cycle"][0][1] < 0.01
    assert max(v for _, v in lr["cyclic"]) > 0.05 > min(v for _, v in lr["cyclic"])
    assert series(root / "cosine" / "0", "val/acc", error=True)  # the third panel's points
    with Image.open(root / "lr_schedules.png") as picture:
        assert picture.size[0] > 1000  # three panels side by side


def test_unknown_figure_lists_the_figures(workdir, dlfound_in_process):
    proc = dlfound_in_process(["figure", "vanishin"], workdir)
    assert proc.returncode != 0 and "unknown figure 'vanishin'" in proc.stderr
    assert all(name in proc.stderr for name in FIGURES) and "Traceback" not in proc.stderr


def test_listing_without_a_name(workdir, dlfound_in_process):
    proc = dlfound_in_process(["figure"], workdir)
    assert all(name in proc.stdout for name in FIGURES)


def test_missing_data_names_the_set_and_the_folder_and_trains_nothing(workdir, dlfound_in_process):
    proc = dlfound_in_process(["figure", "vanishing", "data.download=false"], workdir)
    assert proc.returncode != 0 and "figure vanishing cannot run" in proc.stderr
    assert "MNIST" in proc.stderr and str(workdir / "data") in proc.stderr.replace("\n", "")
    assert "Traceback" not in proc.stderr and not (workdir / "outputs" / "figure").exists()


def test_overrides_that_do_not_compose_are_one_paragraph(workdir, dlfound_in_process):
    proc = dlfound_in_process(["figure", "vanishing", "model.widht=3"], workdir)
    assert proc.returncode != 0 and "does not compose" in proc.stderr and "widht" in proc.stderr
    assert "Traceback" not in proc.stderr and not (workdir / "outputs" / "figure").exists()


def test_options_and_overrides_mix_in_any_order():
    from dlfound.commands.figure import parse_args

    args = parse_args(["degradation", "data=cifar10_jpeg", "--budget", "paper", "trainer=gpu", "--redraw"])
    assert (args.name, args.budget, args.redraw) == ("degradation", "paper", True)
    assert args.overrides == ["data=cifar10_jpeg", "trainer=gpu"]


def test_unknown_budget_and_redraw_without_runs_are_one_paragraph(workdir, dlfound_in_process):
    proc = dlfound_in_process(["figure", "vanishing", "--budget", "huge"], workdir)
    assert proc.returncode != 0 and "has no budget 'huge'; it has cpu" in proc.stderr
    proc = dlfound_in_process(["figure", "init", "--redraw"], workdir)
    assert proc.returncode != 0 and "no finished run" in proc.stderr and "without --redraw" in proc.stderr


def test_a_figure_is_not_a_train_option(workdir, dlfound_in_process):
    proc = dlfound_in_process(["train", "figure=vanishing"], workdir)
    assert proc.returncode != 0 and "dlfound figure vanishing" in proc.stderr and "Traceback" not in proc.stderr
    proc = dlfound_in_process(["list", "figure"], workdir)
    assert proc.returncode != 0 and "dlfound figure" in proc.stderr


def test_lines_whose_runs_fail_are_named_and_nothing_is_drawn_from_them(workdir, dlfound_in_process):
    proc = dlfound_in_process(["figure", "vanishing", "data=digits", "data.val_size=100000"], workdir)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    text = " ".join(proc.stderr.split())
    for line in ("sigmoid MLP", "ReLU + BN MLP", "ResNet-20"):
        assert f"figure line {line}: 1 job(s) of the sweep failed" in text
    assert "leaves no training samples" in text and "no finished run" in text
    assert not list((workdir / "outputs" / "figure").rglob("*.png"))
