"""`dlfound predict` and image folders end to end: a run on a bare folder of class folders (no train/, no
num_classes) records its class names in a weights_only checkpoint, and predict classifies an image (top-k with
names) and a folder (a CSV) exactly as the run's data module prepares its test images."""

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_dlfound
from dlfound.commands.predict import predict

CLASSES = ["cat", "dog", "eel"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-epoch MLP trained on ROOT/<class>/*.png, with only data.root given about the data."""
    tmp = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(0)
    for k, name in enumerate(CLASSES):
        (tmp / "pets" / name).mkdir(parents=True)
        for i in range(6):
            image = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
            image[..., k] = 255  # one bright channel per class: learnable in one epoch
            Image.fromarray(image).save(tmp / "pets" / name / f"{i}.png")
    run_dlfound(
        [
            "train",
            "data=imagefolder",
            f"data.root={tmp / 'pets'}",
            "data.image_size=16",
            "data.num_workers=0",
            "model=mlp",
            "trainer=cpu",
            "trainer.max_epochs=1",
            "logger=csv",
        ],
        cwd=tmp,
        env={"XDG_CACHE_HOME": str(tmp / "cache")},
    )
    ckpt = next((tmp / "outputs").rglob("last.ckpt"))
    return tmp, ckpt


def test_class_names_ride_in_a_weights_only_checkpoint(trained):
    _, ckpt = trained
    config = torch.load(ckpt, map_location="cpu", weights_only=True)["dlfound_config"]
    assert config["data"]["class_names"] == CLASSES and config["data"]["num_classes"] == 3
    assert config["model"]["num_classes"] == 3 and config["task"]["num_classes"] == 3


def test_predict_prints_the_top_classes_of_an_image(trained, dlfound_in_process):
    tmp, ckpt = trained
    out = dlfound_in_process(
        ["predict", f"ckpt_path={ckpt}", f"input={tmp / 'pets' / 'dog' / '0.png'}", "top_k=2"], cwd=tmp, check=True
    )
    assert "rank" in out.stdout and sum(name in out.stdout for name in CLASSES) == 2


def test_predict_on_a_folder_writes_a_csv_prepared_like_the_test_images(trained, dlfound_in_process):
    from dlfound.runs.build import load_task
    from dlfound.runs.checkpoint import load_checkpoint, run_config

    tmp, ckpt = trained
    (tmp / "pets" / "eel" / "broken.png").write_bytes(b"not a png")
    try:
        rows, problems = predict(
            {"ckpt_path": str(ckpt), "input": str(tmp / "pets"), "top_k": 3, "output": None, "device": "cpu"}
        )
    finally:
        (tmp / "pets" / "eel" / "broken.png").unlink()
    assert len(rows) == 18 and len(problems) == 1 and "broken.png" in problems[0]
    # The same probabilities as the run's own test pipeline (data module's test split, prepare, the task).
    loaded = load_checkpoint(ckpt)
    datamodule, task = load_task(loaded, run_config(loaded, {"data.root": str(tmp / "pets")}))
    datamodule.setup()
    test = datamodule.splits["test"]
    x, _ = next(iter(datamodule.test_dataloader()))
    with torch.no_grad():
        expected = torch.softmax(task.eval()(datamodule.prepare(x, training=False)), dim=-1)
    by_path = {row["path"]: dict(row["top"]) for row in rows}
    for i, index in enumerate(test.indices):
        path = str(test.dataset.samples[index][0])
        assert [by_path[path][name] for name in CLASSES] == pytest.approx(expected[i].tolist(), abs=1e-5)
    out = dlfound_in_process(
        ["predict", f"ckpt_path={ckpt}", f"input={tmp / 'pets'}", "output=preds.csv"], cwd=tmp, check=True
    )
    assert "wrote 18 predictions" in out.stdout
    table = list(csv.DictReader(open(tmp / "preds.csv")))
    assert len(table) == 18 and table[0]["class_1"] in CLASSES and 0 <= float(table[0]["prob_1"]) <= 1


def test_predict_errors_are_one_paragraph(trained, capsys):
    from dlfound.commands.predict import main

    tmp, ckpt = trained
    image = tmp / "pets" / "cat" / "0.png"
    for args, message in (
        ([f"ckpt_path={ckpt}", f"input={tmp / 'nowhere.png'}"], "no such file or folder"),
        (["input=x.png"], "needs ckpt_path="),
        ([f"ckpt_path={image}", f"input={image}"], "is not a PyTorch checkpoint"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(args)
        shown = capsys.readouterr()
        assert exit_.value.code != 0 and message in " ".join((shown.out + shown.err).replace("│", " ").split())
