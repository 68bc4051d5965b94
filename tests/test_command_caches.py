"""What makes `dlfound list model` and `dlfound train --help` answer at once: their results cached in the user's
cache directory, keyed by the contents of what they are computed from. The counts must stay those of the real
networks, and a change to the configs or the code must count afresh."""

import json
import sys

import pytest

from conftest import run_dlfound


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize(("model", "data"), [("lenet5", "mnist"), ("resnet20", "cifar10"), ("mlp", "mnist")])
def test_counts_are_those_of_the_real_network(model, data):
    """The meta-device count equals the parameters of the network `dlfound train` builds, on real memory."""
    from omegaconf import OmegaConf

    from dlfound.commands.list import COUNTED_ON
    from dlfound.runs.build import compose, instantiate_section
    from dlfound.runs.parameter_counts import InputShape, count_parameters

    cfg = OmegaConf.to_container(compose([f"model={model}", f"data={data}"]), resolve=True)
    real = sum(p.numel() for p in instantiate_section(cfg, "model").parameters())
    shape = COUNTED_ON["1x28x28" if data == "mnist" else "3x32x32"]
    assert count_parameters(model, InputShape(*shape)) == real


@pytest.mark.slow
def test_every_model_config_merges_as_hydra_composes_it():
    """parameter_counts.model_config (the model's YAML over its bases) is the `model` node Hydra composes."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from dlfound.models import list_models
    from dlfound.runs.parameter_counts import model_config
    from dlfound.runs.paths import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        for name in list_models():
            composed = OmegaConf.to_container(compose("train", overrides=[f"model={name}"]).model, resolve=False)
            assert model_config(name) == composed, name


def test_counts_are_cached_until_the_key_changes(cache_home, monkeypatch):
    from dlfound.commands import list as listing
    from dlfound.runs import parameter_counts

    counted = []

    def count():
        counted.append(1)
        return [["mlp", "classifier", "0.235M", "0.821M"]]

    monkeypatch.setattr(listing, "counted_models", count)
    first = listing.cached_models()
    assert listing.cached_models() == first and len(counted) == 1  # the second listing reads the cache
    [cache] = (cache_home / "dlfound" / "model-parameters").iterdir()
    assert json.loads(cache.read_text()) == first
    (cache_home / "dlfound" / "model-parameters" / "other.json").write_text("{damaged")
    monkeypatch.setattr(parameter_counts, "counts_key", lambda *facts: "other")  # a config or a model changed
    listing.cached_models()
    assert len(counted) == 2


def test_the_key_follows_the_contents(tmp_path):
    from dlfound.files import contents_key

    (tmp_path / "a.yaml").write_text("x: 1\n")
    before = contents_key([(tmp_path, "*.yaml")], "0.1.0")
    assert contents_key([(tmp_path, "*.yaml")], "0.1.0") == before
    (tmp_path / "a.yaml").write_text("x: 2\n")
    assert contents_key([(tmp_path, "*.yaml")], "0.1.0") != before
    assert contents_key([(tmp_path, "*.yaml")], "0.2.0") != contents_key([(tmp_path, "*.yaml")], "0.1.0")


def test_a_cache_that_cannot_be_written_costs_only_time(tmp_path, monkeypatch):
    from dlfound.commands import list as listing

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")  # the cache dir would have to be created inside a file
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    monkeypatch.setattr(listing, "counted_models", lambda: [["mlp", "classifier", "1", "2"]])
    assert listing.cached_models() == [["mlp", "classifier", "1", "2"]]


@pytest.mark.slow
def test_cached_train_help_is_hydras(tmp_path):
    """`dlfound train --help` from the cache is Hydra's own help, word for word, and a later call reads it."""
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    first = run_dlfound(["train", "--help"], tmp_path, env=env).stdout
    assert list((tmp_path / "cache" / "dlfound" / "help").iterdir())
    assert run_dlfound(["train", "--help"], tmp_path, env=env).stdout == first
    assert "== Configuration groups ==" in first and "model: " in first
    with_override = run_dlfound(["train", "model=lenet5", "--help"], tmp_path, env=env).stdout
    assert "lenet" in with_override  # help with overrides is composed, not cached


def test_list_data_imports_no_torch():
    """`dlfound list data` (files on this machine, shapes) reads configs only."""
    import subprocess

    code = (
        "import sys; from dlfound.cli import main; main(['list', 'data', 'optim']); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
