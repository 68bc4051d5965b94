"""The Python API (dlfound.api, reached as `dlfound.NAME`): cheap to import, the CLI's semantics, errors raised as
one DlfoundError instead of exits, calls that leave no Hydra, logging or environment state behind, and Lightning's
own `load_from_checkpoint` door."""

import logging
import os
import subprocess
import sys

import pytest

import dlfound
from dlfound.errors import DlfoundError


def test_import_is_cheap_and_every_name_resolves():
    code = (
        "import sys, dlfound; assert 'torch' not in sys.modules and 'lightning' not in sys.modules; "
        "print(sorted(dlfound.__all__))"
    )
    assert "train" in subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    for name in dlfound.__all__:
        assert getattr(dlfound, name) is not None
    assert dlfound.DlfoundError is DlfoundError
    with pytest.raises(AttributeError):
        _ = dlfound.no_such_name


def test_create_model_and_list_models_as_in_timm():
    found = dlfound.list_models("resnet1*")
    assert "resnet18" in found and all(name.startswith("resnet1") for name in found)
    assert "vae" in dlfound.list_models(family="vae")
    net = dlfound.create_model("mlp", in_channels=1, num_classes=10, image_size=8)
    assert type(net).__name__ == "MLP"
    with pytest.raises(DlfoundError, match="resnet18"):
        dlfound.create_model("resnet81")


def test_mistakes_raise_the_clis_paragraph(tmp_path):
    with pytest.raises(DlfoundError, match="no such run folder"):
        dlfound.load(tmp_path / "missing")
    with pytest.raises(DlfoundError, match="not a run folder"):
        dlfound.load(tmp_path)
    with pytest.raises(DlfoundError, match="The figures are"):
        dlfound.figure("nosuch")
    with pytest.raises(DlfoundError, match="No results.json"):
        dlfound.report(tmp_path)


@pytest.mark.slow
def test_two_trainings_in_one_process_leak_nothing(workdir):
    import lightning  # noqa: F401  (what importing it sets in the environment is no run's doing)
    from hydra.core.global_hydra import GlobalHydra

    handlers, environment = list(logging.getLogger().handlers), dict(os.environ)
    first = dlfound.train("trainer.max_epochs=1", print_config=False)
    second = dlfound.train("model.hidden=[16]", trainer__max_epochs=1, print_config=False)
    assert first.path != second.path and first.results["status"] == second.results["status"] == "done"
    assert first.config["model"].get("hidden") != [16] and second.config["model"]["hidden"] == [16]
    assert not GlobalHydra.instance().is_initialized()
    assert logging.getLogger().handlers == handlers
    assert dict(os.environ) == environment

    with pytest.raises(DlfoundError, match="no model config named"):  # raised, not sys.exit
        dlfound.train("model=nosuch")
    assert not GlobalHydra.instance().is_initialized()

    # The run: metrics, curves, network, prediction, and the wrong family refused in one paragraph.
    import torch

    assert 0 < first.metrics["test/acc"] <= 1 and 0 in first.curves()["val/acc"]
    net = first.network()
    assert isinstance(net, torch.nn.Module) and not net.training
    probabilities = first.predict(torch.zeros(3, 1, 8, 8, dtype=torch.uint8))
    assert probabilities.shape == (3, 10) and torch.allclose(probabilities.sum(1), torch.ones(3))
    with pytest.raises(DlfoundError, match="cannot sample"):
        first.sample(4)
    with pytest.raises(DlfoundError, match="language model"):
        first.generate("a")
    loaded = dlfound.load(first.checkpoint)
    assert loaded.path == first.path and loaded.metrics == first.metrics
    rows = dlfound.report([first, second])
    assert len(rows) == 2 and {"model.hidden", "test/acc", "n", "status"} <= set(rows[0])

    # Lightning's own door rebuilds the network from the checkpoint's config; another task's class says where to go.
    from dlfound.tasks.classification import ClassificationTask
    from dlfound.tasks.vae import VAETask

    task = ClassificationTask.load_from_checkpoint(first.checkpoint)
    assert all(
        torch.equal(a, b) for a, b in zip(task.net.state_dict().values(), net.state_dict().values(), strict=True)
    )
    with pytest.raises(DlfoundError, match="dlfound.load"):
        VAETask.load_from_checkpoint(first.checkpoint)


def test_a_sweep_with_a_failing_job_trains_the_others_and_raises_naming_it(workdir, monkeypatch):
    monkeypatch.setenv("DLFOUND_OUTPUTS", str(workdir / "outputs"))
    monkeypatch.setenv("DLFOUND_DATA", str(workdir / "data"))
    import torch

    threads = torch.get_num_threads()
    with pytest.raises(DlfoundError, match=r"1 job\(s\) of the sweep failed") as raised:
        dlfound.sweep(
            "data.val_size=100000,0.2", "trainer.deterministic=true", trainer__max_epochs=1, print_config=False
        )
    sweep_dir = workdir / "outputs" / "train" / "multiruns"
    statuses = {p.parent.name: dlfound.load(p.parent).results["status"] for p in sweep_dir.rglob("results.json")}
    assert statuses == {"0": "failed", "1": "done"}, statuses
    assert str(next(sweep_dir.glob("*/0"))) in str(raised.value)
    # What the runs switched on in this process is put back (dlfound.runs.in_process).
    assert not torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == threads
