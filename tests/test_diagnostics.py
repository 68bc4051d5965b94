"""The diagnostics callback (callbacks=diagnostics): gradients vanish through a deep sigmoid MLP and not through
ReLU + batch norm, the measurements reach TensorBoard's reader, diagnostics.json and a PNG, and a resumed run
keeps what was measured before; the plain ResNets' and the too-small init's effect on gradients."""

import json

import pytest
import torch
from PIL import Image

from conftest import read_results, run_dlfound
from dlfound.models.init import SMALL_STD, initialize
from dlfound.models.mlp import mlp
from dlfound.runs.diagnostics import Diagnostics, by_layer, dead_fraction, read_diagnostics, watched_layers

DEEP = [
    "train",
    "model=deep_mlp",
    "callbacks=diagnostics",
    "callbacks.diagnostics.every_n_steps=4",
    "trainer.max_epochs=1",
    "print_config=false",
]


def first_to_last(run) -> float:
    grads = by_layer(read_diagnostics(run), "grad_norm", 0)
    return grads[0] / grads[-1]


@pytest.fixture(scope="module")
def deep_runs(tmp_path_factory):
    """A deep sigmoid MLP and the same depth with ReLU + batch norm, one epoch on digits each."""
    root = tmp_path_factory.mktemp("deep")
    run_dlfound([*DEEP, f"hydra.run.dir={root / 'sigmoid'}"], root)
    run_dlfound([*DEEP, "model.activation=relu", "model.batch_norm=true", f"hydra.run.dir={root / 'relu_bn'}"], root)
    return root


@pytest.mark.slow
def test_gradients_vanish_through_sigmoids_and_not_through_relu_with_batch_norm(deep_runs):
    sigmoid, relu_bn = first_to_last(deep_runs / "sigmoid"), first_to_last(deep_runs / "relu_bn")
    assert sigmoid < 1e-4, f"first/last layer gradient norm {sigmoid:.2e}: sigmoids should shrink it ~4x per layer"
    assert 0.1 < relu_bn < 10, f"first/last layer gradient norm {relu_bn:.2e} with ReLU + BN should be near 1"


def test_measurements_reach_tensorboard_json_and_a_picture(deep_runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = deep_runs / "relu_bn"
    records = read_diagnostics(run)
    steps = read_results(run)["global_step"]
    assert [r["step"] for r in records] == list(range(0, steps, 4))
    record = records[-1]
    assert len(record["layers"]) == 11 and record["layers"][-1] == "classifier"  # ten hidden layers and the head
    assert all(0 < r < 1 for r in record["update_ratio"]) and all(w > 0 for w in record["weight_norm"])
    assert all(0 <= v <= 1 for v in record["dead_relu"].values())
    low, mid, high = next(iter(record["activation_input_quantiles"].values()))
    assert low <= mid <= high

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    assert "diagnostics/grad_norm/00.features.1" in tags["scalars"]
    assert len(events.Scalars("diagnostics/grad_norm/10.classifier")) == len(records)
    assert any(t.startswith("diagnostics/dead_relu/") for t in tags["scalars"])
    assert "diagnostics/weights/00.features.1" in tags["histograms"]
    assert "diagnostics/summary" in tags["images"]
    with Image.open(run / "diagnostics" / "summary.png") as picture:
        assert picture.size[0] > 400


@pytest.mark.slow
def test_a_resumed_run_keeps_the_measurements_before_its_checkpoint(deep_runs, dlfound_in_process):
    run = deep_runs / "sigmoid"
    before = read_diagnostics(run)
    dlfound_in_process([*DEEP, "trainer.max_epochs=2", f"hydra.run.dir={run}", "resume=last"], deep_runs, check=True)
    after = read_diagnostics(run)
    steps = [r["step"] for r in after]
    assert after[: len(before)] == before and steps == sorted(set(steps)) and after[-1]["epoch"] == 1


def test_dead_units_are_those_zero_on_the_whole_batch():
    out = torch.relu(torch.tensor([[1.0, 0.0, -1.0, 0.0], [2.0, 0.0, 3.0, 0.0]]))
    assert float(dead_fraction(out)) == 0.5  # units 1 and 3
    images = torch.zeros(2, 4, 3, 3)
    images[1, 0, 2, 2] = 1.0
    assert float(dead_fraction(images)) == 0.75  # channels 1-3


def test_an_in_place_relu_is_measured_on_its_input():
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(inplace=True), torch.nn.Linear(8, 2))
    diagnostics = Diagnostics()
    diagnostics._layers = watched_layers(net)
    diagnostics._attach(net)
    torch.manual_seed(0)
    net(torch.randn(256, 4))
    low, median, high = diagnostics._outputs["inputs"]["1"].tolist()
    assert low < 0 < high  # the pre-activations, not what the ReLU left of them


def test_watched_layers_are_the_weight_matrices_in_forward_order():
    net = mlp(1, 10, 8, hidden=[16, 16], batch_norm=True)
    names = [name for name, _, _ in watched_layers(net)]
    assert names == ["features.1", "features.4", "classifier"]  # the BN layers' 1-D scales are not layers


def test_too_small_init_shrinks_activations_through_depth():
    torch.manual_seed(0)
    net = mlp(1, 10, 8, hidden=[128] * 10, activation="tanh")
    initialize(net, "small_normal")
    first = net.features[1].weight.detach()
    assert abs(float(first.std()) - SMALL_STD) < 2e-3 and float(first.mean().abs()) < 2e-3
    x = torch.randn(256, 1, 8, 8)
    with torch.no_grad():
        h = net.features(x)
    assert float(h.std()) < 1e-6  # 0.01 * sqrt(128) = 0.11 per layer: ten layers leave nothing of the input
    initialize(net, "xavier")
    with torch.no_grad():
        assert float(net.features(x).std()) > 0.05


def test_bad_interval_is_one_paragraph(workdir, dlfound_in_process):
    proc = dlfound_in_process([*DEEP, "callbacks.diagnostics.every_n_steps=0"], workdir)
    assert proc.returncode != 0 and "every_n_steps must be at least 1" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_histograms_can_be_turned_off(workdir, dlfound_in_process):
    dlfound_in_process([*DEEP, "callbacks.diagnostics.histograms=false", "hydra.run.dir=run"], workdir, check=True)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(workdir / "run" / "tensorboard"), size_guidance={"histograms": 0})
    events.Reload()
    assert (
        events.Tags()["histograms"] == []
        and json.loads((workdir / "run" / "diagnostics" / "diagnostics.json").read_text())["records"]
    )
