"""The `dlfound` command end to end, as a user runs it, on the bundled digits (offline)."""

import csv
import json
import subprocess
import sys

import pytest
import torch

from conftest import read_results, run_dlfound, run_folders


def test_help_answers_without_importing_torch():
    code = (
        "import sys; from dlfound.cli import main; main(['--help']); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "dlfound train" in out and "dlfound eval" not in out.splitlines()[0]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """The default run: `dlfound train` with no overrides (the MLP on the 8x8 digits)."""
    cwd = tmp_path_factory.mktemp("default")
    proc = run_dlfound(["train"], cwd)
    [folder] = run_folders(cwd / "outputs")
    return proc, folder


@pytest.mark.slow
def test_default_run_reaches_095_and_prints_results(digits_run):
    proc, folder = digits_run
    results = read_results(folder)
    assert results["status"] == "done"
    assert results["metrics"]["test/acc"] >= 0.95
    assert results["choices"]["model"] == "mlp" and results["choices"]["data"] == "digits"
    for key in ("val/acc_best", "test/loss", "test/acc_top5"):
        assert key in results["metrics"]
    assert results["epochs"] == 10 and results["num_params"] == 50_826
    assert results["train_samples_per_s"] > 0 and results["wall_time_s"] > 0
    assert results["versions"]["torch"] == torch.__version__.split("+")[0] or results["versions"]["torch"]
    assert "results" in proc.stdout and str(folder) in proc.stdout.replace("\n", "")


def test_run_folder_holds_config_checkpoints_and_logs(digits_run):
    _, folder = digits_run
    assert (folder / ".hydra" / "config.yaml").is_file() and (folder / ".hydra" / "overrides.yaml").is_file()
    assert (folder / "checkpoints" / "last.ckpt").is_file()
    best = read_results(folder)["monitor"]["best_checkpoint"]
    ckpt = torch.load(best, map_location="cpu", weights_only=True)  # no pickled objects in the checkpoint
    assert ckpt["dlfound_config"]["model"]["_target_"] == "dlfound.models.mlp.mlp"
    with open(folder / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"train/loss_step", "val/acc", "test/acc"} <= set(rows[0])
    assert max(int(r["epoch"]) for r in rows if r["val/acc"]) == 9


def test_tensorboard_reader_finds_scalars_and_hparams(digits_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, folder = digits_run
    acc = EventAccumulator(str(folder / "tensorboard"))
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    assert {"train/loss_step", "train/loss_epoch", "val/acc", "val/loss", "test/acc"} <= scalars
    assert len(acc.Scalars("val/acc")) == 10
    plugins = acc.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in plugins and "_hparams_/experiment" in plugins
    experiment = plugins["_hparams_/experiment"]
    assert b"test/acc" in experiment


@pytest.mark.slow
def test_eval_reproduces_the_recorded_test_metrics(digits_run, tmp_path, dlfound_in_process):
    _, folder = digits_run
    recorded = read_results(folder)
    out = tmp_path / "eval.json"
    dlfound_in_process(
        ["eval", f"ckpt_path={recorded['monitor']['best_checkpoint']}", f"output={out}"], tmp_path, check=True
    )
    metrics = json.loads(out.read_text())["metrics"]
    for key in ("test/acc", "test/loss", "test/acc_top5"):
        assert metrics[key] == pytest.approx(recorded["metrics"][key], abs=1e-6)


@pytest.mark.slow
def test_resume_continues_epochs_and_logs(workdir, dlfound_in_process):
    dlfound_in_process(["train", "trainer.max_epochs=2"], workdir, check=True)
    [folder] = run_folders(workdir / "outputs")
    first = read_results(folder)
    proc = dlfound_in_process(["train", f"resume={folder}", "trainer.max_epochs=4"], workdir, check=True)
    assert run_folders(workdir / "outputs") == [folder], "resume must continue in the same folder"
    second = read_results(folder)
    assert second["epochs"] == 4 and second["global_step"] == 2 * first["global_step"]
    assert second["resumed_from"].endswith("last.ckpt") and "resuming" in proc.stdout
    with open(folder / "csv" / "metrics.csv") as f:
        epochs = {int(r["epoch"]) for r in csv.DictReader(f) if r["val/acc"]}
    assert epochs == {0, 1, 2, 3}


@pytest.mark.slow
def test_refuses_to_overwrite_a_finished_run(workdir, dlfound_in_process):
    dlfound_in_process(["train", "trainer.max_epochs=1"], workdir, check=True)
    [folder] = run_folders(workdir / "outputs")
    before = (folder / "results.json").read_bytes()
    proc = dlfound_in_process(["train", f"hydra.run.dir={folder}"], workdir)
    assert proc.returncode != 0 and "already holds a finished run" in proc.stderr
    assert (folder / "results.json").read_bytes() == before


@pytest.mark.slow
def test_multirun_leaves_one_results_per_job(workdir, dlfound_in_process):
    dlfound_in_process(
        ["train", "-m", "optim.lr=0.01,0.003", "trainer.max_epochs=1", "print_config=false"], workdir, check=True
    )
    folders = run_folders(workdir / "outputs" / "train" / "multiruns")
    assert len(folders) == 2 and {f.name for f in folders} == {"0", "1"}
    assert {tuple(read_results(f)["overrides"]) for f in folders} == {
        ("optim.lr=0.01", "trainer.max_epochs=1", "print_config=False"),
        ("optim.lr=0.003", "trainer.max_epochs=1", "print_config=False"),
    }


@pytest.mark.slow
def test_every_optimizer_and_scheduler_trains(workdir, dlfound_in_process):
    dlfound_in_process(
        [
            "train",
            "-m",
            "optim=sgd,adam,adamw,rmsprop,adagrad,adadelta,rprop",
            "debug=limit",
            "print_config=false",
            "callbacks=none",
        ],
        workdir,
        check=True,
    )
    dlfound_in_process(
        [
            "train",
            "-m",
            "sched=none,step,multistep,exponential,cosine,warmup_cosine,onecycle,plateau,cyclic",
            "debug=limit",
            "print_config=false",
            "callbacks=none",
        ],
        workdir,
        check=True,
    )
    folders = run_folders(workdir / "outputs")
    assert len(folders) == 16
    for folder in folders:
        results = read_results(folder)
        assert results["status"] == "done" and results["epochs"] == 3
        # Every checkpoint, whatever its scheduler state, loads with weights_only=True.
        torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)


@pytest.mark.slow
def test_debug_presets(workdir, dlfound_in_process):
    dlfound_in_process(["train", "-m", "debug=fast,limit,profile", "print_config=false"], workdir, check=True)
    assert len(run_folders(workdir / "outputs")) == 3


@pytest.mark.slow
def test_overfit_preset_drives_the_loss_to_near_zero(workdir, dlfound_in_process):
    dlfound_in_process(["train", "debug=overfit", "print_config=false"], workdir, check=True)
    [folder] = run_folders(workdir / "outputs")
    with open(folder / "csv" / "metrics.csv") as f:
        losses = [float(r["train/loss_epoch"]) for r in csv.DictReader(f) if r.get("train/loss_epoch")]
    assert losses[-1] < 0.01 < losses[0]


@pytest.mark.slow
def test_ddp_cpu_two_processes_leave_one_run(workdir):
    run_dlfound(["train", "trainer=ddp_cpu", "trainer.max_epochs=2", "print_config=false"], workdir)
    folders = run_folders(workdir / "outputs")
    assert len(folders) == 1
    assert len(list((workdir / "outputs" / "train" / "runs").iterdir())) == 1
    results = read_results(folders[0])
    assert results["metrics"]["test/acc"] > 0.5 and results["world_size"] == 2
    # The 359 test images split 180/179 over the ranks: the run's figures are those of the whole set, exactly
    # what one process measures on the same checkpoint (no padded duplicate, no mean of the ranks' means).
    run_dlfound(["eval", f"ckpt_path={results['monitor']['best_checkpoint']}", "output=eval.json"], workdir)
    evaluated = json.loads((workdir / "eval.json").read_text())["metrics"]
    for key in ("test/acc", "test/loss", "test/acc_top5"):
        assert evaluated[key] == pytest.approx(results["metrics"][key], rel=1e-5)


@pytest.mark.slow
def test_bf16_mixed_precision_on_cpu(workdir, dlfound_in_process):
    dlfound_in_process(
        ["train", "trainer.precision=bf16-mixed", "trainer.max_epochs=3", "print_config=false"], workdir, check=True
    )
    [folder] = run_folders(workdir / "outputs")
    assert read_results(folder)["metrics"]["test/acc"] > 0.8


@pytest.mark.slow
def test_user_config_dir_composes_with_ours(workdir, dlfound_in_process):
    mine = workdir / "my_configs"
    (mine / "experiment").mkdir(parents=True)
    (mine / "model").mkdir()
    (mine / "model" / "tiny_mlp.yaml").write_text("defaults:\n  - mlp\n  - _self_\nhidden: [16]\n")
    (mine / "experiment" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /model: tiny_mlp\ntrainer:\n  max_epochs: 1\n"
    )
    dlfound_in_process(
        ["train", "--config-dir", str(mine), "experiment=mine", "print_config=false"], workdir, check=True
    )
    [folder] = run_folders(workdir / "outputs")
    assert read_results(folder)["num_params"] == 64 * 16 + 16 + 16 * 10 + 10


@pytest.mark.slow
@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "model=no_such_model"], "no_such_model"),
        (["train", "model=lenet5"], "LeNet-5 needs images of at least 12x12"),
        (["train", "data.batch_size=0"], "data.batch_size must be a positive integer"),
        (["train", "data=mnist", "data.download=false"], "MNIST is missing or unreadable"),
        (["eval", "ckpt_path=nowhere.ckpt"], "nowhere.ckpt does not exist"),
        (["list", "nonsense"], "unknown group nonsense"),
        (["frobnicate"], "unknown command"),
    ],
)
def test_user_errors_are_one_clear_message(workdir, dlfound_in_process, args, message):
    proc = dlfound_in_process(args + ["print_config=false"] * (args[0] == "train"), workdir)
    assert proc.returncode != 0
    assert message in proc.stderr.replace("│", "").replace("\n", " ").replace("  ", " ") or message in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_list_shows_models_and_datasets(workdir, dlfound_in_process):
    out = dlfound_in_process(["list", "model", "data", "optim", "sched", "experiment"], workdir, check=True).stdout
    for name in (
        "mlp",
        "lenet5",
        "softmax",
        "digits",
        "mnist",
        "cifar10",
        "imagefolder",
        "moons",
        "adamw",
        "onecycle",
        "mnist_lenet5",
        "resnet18",
        "resnet20",
        "vgg16_bn",
        "densenet_bc100",
        "googlenet",
        "resnext29_8x64d",
        "se_resnet18",
        "mobilenet_v2",
        "wrn28_10",
        "vit_tiny",
        "nin",
        "alexnet",
    ):
        assert name in out
    assert "0.062M" in out  # LeNet-5 on 1x28x28
    assert "0.270M" in out  # ResNet-20 on 3x32x32
    # The model table is the registry: every registered model, with its family.
    from dlfound.models import list_models

    rows = [line for line in out.splitlines() if line.startswith("│")]
    for name in list_models():
        assert any(f"│ {name} " in row for row in rows), name
    for family in ("classifier", "vae", "gan", "flow", "restoration"):
        assert family in out


def test_list_shows_launchers_and_searches(workdir, dlfound_in_process):
    out = dlfound_in_process(["list", "launcher", "hparams_search"], workdir, check=True).stdout
    for name in ("parallel", "gpus", "submitit_local", "submitit_slurm", "digits_mlp_optuna", "mnist_lenet5_optuna"):
        assert name in out


def test_help_is_the_command_table():
    """`dlfound --help` is made from cli.COMMANDS: every command with its arguments, each module there."""
    import importlib.util

    from dlfound.cli import COMMANDS, usage

    text = usage()
    for name, command in COMMANDS.items():
        assert f"  {name} {command.usage}" in text and command.summary[0] in text
        assert importlib.util.find_spec(f"dlfound.commands.{command.module}") is not None, name


@pytest.mark.parametrize(
    "name",
    [
        "list",
        "eval",
        "sample",
        "restore",
        "generate",
        "predict",
        "compare",
        "guided",
        "ensemble",
        "ntk-scaling",
        "report",
        "figure",
    ],
)
def test_commands_answer_help(name, capsys):
    from dlfound.cli import main

    try:
        main([name, "--help"])
    except SystemExit as exit_info:  # argparse's --help exits 0
        assert exit_info.code == 0
    assert f"dlfound {name}" in capsys.readouterr().out


def test_ensemble_refuses_a_folder_without_two_runs_in_one_paragraph(tmp_path, capsys):
    from dlfound.cli import main

    for folder, message in ((tmp_path, "holds 0 finished run(s)"), (tmp_path / "missing", "is not a folder")):
        with pytest.raises(SystemExit) as exit_info:
            main(["ensemble", str(folder)])
        err = " ".join(capsys.readouterr().err.replace("│", " ").split())
        assert exit_info.value.code != 0 and "Traceback" not in err and message in err and err.count("error") == 1
