"""What a new user hit (issue 29, items 2, 5, 6 and 8): empty class folders, offline errors that point at what is
present, type errors and GPU requests that say what to use, outputs never overwritten silently, a report that fits
the terminal, whole list descriptions, quiet runs, and presets that run without their optional parts."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SHARED_DATA, read_results, run_dlfound, run_folders
from dlfound.cli import main


def write_class_tree(root, classes, n=6):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(n if name != "fish" else 0):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


IMAGE_FOLDER_RUN = [
    "model=mlp",
    "data=imagefolder",
    "data.image_size=16",
    "data.num_workers=0",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "print_config=false",
]


@pytest.mark.slow
def test_an_empty_class_folder_is_an_error_naming_it_or_skipped_with_a_warning(tmp_path, capsys):
    pets = write_class_tree(tmp_path / "pets", ("bird", "cat", "dog", "fish"))
    refused = run_dlfound(["train", *IMAGE_FOLDER_RUN, f"data.root={pets}"], tmp_path, check=False)
    assert refused.returncode != 0
    message = " ".join(refused.stderr.replace("│", " ").split())
    assert "1 of the 4 class folders" in message and "no images" in message and ": fish." in message
    assert "data.skip_empty_classes=true" in message and "Traceback" not in refused.stderr

    skipped = run_dlfound(
        ["train", *IMAGE_FOLDER_RUN, f"data.root={pets}", "data.skip_empty_classes=true"],
        tmp_path,
        env={"PYTHONWARNINGS": "default"},
    )
    assert "fish. They are left out (data.skip_empty_classes=true)" in skipped.stderr
    statuses = sorted(read_results(f)["status"] for f in run_folders(tmp_path / "outputs"))
    assert statuses == ["done", "not_started"]  # the refused run never started, and says so

    # `dlfound report` hides the run that never started, and says how to show it.
    main(["report", str(tmp_path / "outputs")])
    shown = capsys.readouterr()
    assert "1 run under" in shown.out and "not_started" not in shown.out
    assert (
        "1 run that never started (an error before training, e.g. a missing data set) is not shown; --all "
        "shows it" in " ".join(shown.err.split())
    )
    main(["report", str(tmp_path / "outputs"), "--all"])
    assert "2 runs under" in capsys.readouterr().out
    assert f"3 classes in {pets}: bird 6, cat 6, dog 6" in skipped.stdout + skipped.stderr


def one_line(text: str) -> str:
    """An error panel's paragraph as one line: the border and the wrapping taken out."""
    return " ".join(text.replace("│", " ").replace("╭", " ").replace("╰", " ").split())


def test_a_missing_data_set_names_the_ones_present_in_data(tmp_path, dlfound_in_process):
    (tmp_path / "data" / "cifar10-jpeg").mkdir(parents=True)  # the JPEG copy is there, torchvision's files are not
    proc = dlfound_in_process(
        ["train", "model=resnet18", "data=cifar10", "data.download=false", "print_config=false"], tmp_path
    )
    message = one_line(proc.stderr)
    assert proc.returncode != 0 and "CIFAR10 is missing" in message
    assert f"Present in {tmp_path / 'data'} instead: data=cifar10_jpeg (same shape and classes)" in message


@pytest.mark.parametrize(
    "override, expected",
    [
        ("data.batch_size=abc", "data.batch_size takes an integer (int), not the text 'abc'"),
        (
            "optim.lr=fast",
            "optim.lr=fast: optim.lr takes a number (float), not the text 'fast'; give e.g. optim.lr=0.01.",
        ),
        ("trainer.max_epochs=abc", "trainer.max_epochs takes an integer (int), not the text 'abc'"),
        ("model.dropout=half", "model.dropout takes a number (float), not the text 'half'"),
    ],
)
def test_a_value_of_the_wrong_type_names_the_key_and_the_type(tmp_path, dlfound_in_process, override, expected):
    proc = dlfound_in_process(["train", override, "print_config=false"], tmp_path)
    assert proc.returncode != 0 and expected in one_line(proc.stderr) and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "model, expected",
    [
        ("resnet18", "model=resnet18 is a convolutional network for images, but this data set gives flat vectors"),
        ("lenet5", "LeNet-5 needs images, but this data set gives flat vectors; use model=mlp"),
    ],
)
def test_an_image_model_on_flat_vectors_says_which_to_pick(tmp_path, dlfound_in_process, model, expected):
    proc = dlfound_in_process(["train", f"model={model}", "data=moons", "print_config=false"], tmp_path)
    assert proc.returncode != 0 and expected in one_line(proc.stderr) and "Traceback" not in proc.stderr
    assert not list((tmp_path / "outputs").glob("**/*.ckpt"))


@pytest.mark.slow
def test_a_gpu_trainer_without_a_gpu_says_what_to_use(tmp_path):
    proc = run_dlfound(
        ["train", "trainer=gpu", "print_config=false"], tmp_path, check=False, env={"CUDA_VISIBLE_DEVICES": ""}
    )
    message = one_line(proc.stderr)
    assert proc.returncode != 0 and "needs a CUDA GPU" in message and "trainer=cpu" in message
    assert "nvidia-smi" in message


@pytest.mark.shared_data
def test_a_preset_runs_without_its_missing_out_of_distribution_set(tmp_path):
    mnist = Path(os.environ.get("DLFOUND_DATA") or SHARED_DATA) / "MNIST"
    if not mnist.is_dir():
        pytest.skip("MNIST is not in the shared data")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "MNIST").symlink_to(mnist)  # MNIST without Fashion-MNIST beside it
    proc = run_dlfound(
        [
            "train",
            "experiment=mnist_mc_dropout",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
            "task.mc_samples=2",
            "print_config=false",
        ],
        tmp_path,
        env={"PYTHONWARNINGS": "default"},
    )
    skipped = [line for line in proc.stderr.splitlines() if "out-of-distribution score skipped" in line]
    assert skipped == [
        f"warning: out-of-distribution score skipped: FashionMNIST is not in "
        f"{tmp_path / 'data' / 'FashionMNIST' / 'raw'} (offline). Copy its files there to add "
        "test/ood_auroc, or set data.ood=null to test without it."
    ]
    [folder] = run_folders(tmp_path / "outputs")
    results = read_results(folder)
    assert results["status"] == "done" and "test/acc" in results["metrics"]
    assert "test/ood_auroc" not in results["metrics"]
    assert "log_every_n_steps" not in proc.stderr and "srun" not in proc.stderr  # noise filtered


def test_sample_never_overwrites_a_file_it_did_not_write(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = Path(__file__).parent / "fixtures" / "legacy_runs" / "gan" / "checkpoints" / "last.ckpt"
    (tmp_path / "samples.png").write_bytes(b"the user's own picture")
    main(["sample", f"ckpt_path={ckpt}", "n=4", "device=cpu"])
    out = " ".join(capsys.readouterr().out.split())
    assert "samples.png exists and is kept; writing samples-1.png instead" in out and "wrote samples-1.png" in out
    assert (tmp_path / "samples.png").read_bytes() == b"the user's own picture"
    main(["sample", f"ckpt_path={ckpt}", "n=4", "device=cpu"])
    assert "writing samples-2.png instead" in capsys.readouterr().out and (tmp_path / "samples-2.png").is_file()


def test_restore_never_overwrites_a_file_it_did_not_write(tmp_path, dlfound_in_process):
    legacy = Path(__file__).parent / "fixtures" / "legacy_runs"
    for name in ("restored.png", "noisy.png"):
        (tmp_path / name).write_bytes(b"the user's own picture")
    args = [
        "restore",
        f"ckpt_path={legacy / 'dncnn' / 'checkpoints' / 'last.ckpt'}",
        f"input={legacy / 'restoration_data' / 'Set12' / '000.png'}",
        "sigma=25",
        "output=restored.png",
        "degraded_output=noisy.png",
        "device=cpu",
    ]
    proc = dlfound_in_process(args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    assert "restored.png exists and is kept; writing restored-1.png instead" in out
    assert "noisy.png exists and is kept; writing noisy-1.png instead" in out and "-> restored-1.png" in out
    assert (
        (tmp_path / "restored.png").read_bytes() == (tmp_path / "noisy.png").read_bytes() == b"the user's own picture"
    )
    assert (tmp_path / "restored-1.png").stat().st_size > 100 and (tmp_path / "noisy-1.png").stat().st_size > 100


@pytest.mark.slow
def test_a_run_prints_its_model_summary_without_the_flops_lightning_cannot_count(tmp_path, dlfound_in_process):
    args = ["train", "model=mlp", "data=moons", "trainer=cpu", "trainer.max_epochs=1", "print_config=false"]
    proc = dlfound_in_process(args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout + proc.stderr
    assert "Total params" in printed and "net.classifier" in printed  # the summary table and its totals stay
    assert "FLOPs" not in printed


def test_report_fits_the_terminal_and_says_which_columns_it_left_out(tmp_path):
    from test_report import fake_run

    for i in range(28):
        overrides = [
            f"model={('mlp', 'lenet5', 'resnet18')[i % 3]}",
            f"optim={('adam', 'sgd')[i % 2]}",
            f"optim.lr={10 ** -(1 + i % 4)}",
            f"optim.weight_decay={(0, 0.0005, 0.01)[i % 3]}",
            f"data.batch_size={(32, 64, 128, 256)[i % 4]}",
            f"trainer.max_epochs={1 + i % 5}",
            f"model.dropout={(0.0, 0.1, 0.3, 0.5)[i % 4]}",
            f"seed={i}",
        ]
        fake_run(tmp_path / "runs" / f"run-{i:02d}", overrides, i, 0.5 + i / 100)
    proc = run_dlfound(["report", "runs"], tmp_path, env={"COLUMNS": "100"})
    lines = proc.stdout.splitlines()
    best = lines.index("best by test/acc (0.7700):") + 1  # the best command stays whole, to paste
    assert max(len(line) for i, line in enumerate(lines) if i != best) <= 100, proc.stdout
    note = " ".join(proc.stdout.split()).split("left out to fit 100 columns: ")[1].split(" best by")[0]
    assert note.startswith("params, wall time (s),") and "--csv FILE writes them all" in note
    assert "a terminal 195 wide shows them, --columns M1,M2 picks the metrics" in note
    header = next(line for line in lines if "status" in line)
    assert "test/acc" in header and "model" in header  # the metric and the first settings stay
    (tmp_path / "runs.csv").write_text("the user's own table")
    wide = run_dlfound(["report", "runs", "--csv", "runs.csv"], tmp_path, env={"COLUMNS": "400"})
    assert "left out" not in wide.stdout and "params" in wide.stdout
    assert "runs.csv exists and is kept; writing runs-1.csv instead" in wide.stdout
    assert (tmp_path / "runs.csv").read_text() == "the user's own table" and (tmp_path / "runs-1.csv").is_file()
