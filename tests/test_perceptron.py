"""Rosenblatt's perceptron (task=perceptron): it converges on separable data within Novikoff's bound, whatever the
set and seed; it never converges on XOR and says so; an MLP solves XOR; and the rule refuses networks it cannot
train."""

import math

import numpy as np
import pytest
import torch
from lightning import Trainer, seed_everything
from PIL import Image

from conftest import read_results
from dlfound.errors import ConfigError
from dlfound.runs.build import build, compose
from dlfound.tasks.perceptron import margin, novikoff_bound

pytestmark = pytest.mark.usefixtures("one_thread")


def fit(overrides: list[str], epochs: int):
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(compose(overrides), resolve=True)
    seed_everything(cfg["seed"], verbose=False)
    datamodule, task = build(cfg)
    trainer = Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(task, datamodule=datamodule)
    return task, trainer


def test_novikoff_bound_of_two_points_by_hand():
    # x~ = (+-1, 0, 1): R = sqrt(2), the best separator u = (1, 0, 0) has margin 1, so each unit's bound is 2.
    x, y = torch.tensor([[1.0, 0.0], [-1.0, 0.0]]), torch.tensor([1, 0])
    assert novikoff_bound(x, y, 2) == pytest.approx(4.0, rel=1e-3)
    corners = np.array([[1, 1, 1], [-1, -1, 1], [1, -1, 1], [-1, 1, 1]], dtype=float)
    assert math.isnan(margin(corners, np.array([1.0, 1, -1, -1])))  # XOR: no separator


@pytest.mark.parametrize("seed,gap", [(0, 0.05), (1, 0.02), (2, 0.1), (3, 0.03), (4, 0.01)])
def test_updates_never_exceed_novikoffs_bound(seed, gap):
    task, trainer = fit(
        ["experiment=perceptron_blobs", f"seed={seed}", f"data.seed={seed}", f"data.noise={gap}", "data.n_train=400"],
        epochs=200,
    )
    assert bool(task.converged), f"no mistake-free epoch in {trainer.current_epoch} epochs"
    assert 0 < int(task.updates) <= float(task.bound)


def test_xor_never_converges_and_an_mlp_solves_it(workdir, dlfound_in_process):
    proc = dlfound_in_process(
        ["train", "experiment=perceptron_xor", "trainer.max_epochs=4", "print_config=false", "hydra.run.dir=xor"],
        workdir,
        check=True,
    )
    assert "did not converge in 4 epochs" in proc.stdout and "not linearly separable" in proc.stdout
    results = read_results(workdir / "xor")
    metrics = results["metrics"]
    assert results["status"] == "done" and results["epochs"] == 4
    assert metrics["test/converged"] == 0 and math.isnan(metrics["test/novikoff_bound"])
    assert metrics["test/updates"] > 0 and metrics["test/acc"] <= 0.8
    pictures = sorted((workdir / "xor" / "images").glob("decision_regions_epoch*.png"))
    assert len(pictures) == 4
    with Image.open(pictures[-1]) as picture:
        assert picture.size == (256, 256)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    images = 0
    for events in (workdir / "xor").rglob("events.out.tfevents.*"):
        tb = EventAccumulator(str(events))
        tb.Reload()
        images += len(tb.Images("images/decision_regions")) if "images/decision_regions" in tb.Tags()["images"] else 0
    assert images == 4

    dlfound_in_process(["train", "experiment=mlp_xor", "print_config=false", "hydra.run.dir=mlp"], workdir, check=True)
    assert read_results(workdir / "mlp")["metrics"]["test/acc"] == 1.0


def test_one_vs_rest_on_flattened_images():
    task, _ = fit(["model=perceptron", "task=perceptron", "data=digits"], epochs=3)
    assert task.net.classifier.weight.shape == (10, 64) and int(task.updates) > 0
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    [metrics] = trainer.test(task, datamodule=task.trainer.datamodule, verbose=False)
    assert metrics["test/acc"] > 0.85


def test_refuses_a_network_with_hidden_layers():
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(compose(["task=perceptron", "model=mlp", "data=xor"]), resolve=True)
    with pytest.raises(ConfigError, match="task=perceptron trains one linear layer.*mlp_xor"):
        build(cfg)
