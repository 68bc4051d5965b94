"""Every config file composes, and shapes flow from the data config into the model config."""

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from dlfound.runs.paths import config_dir

GROUPS = ["data", "model", "task", "optim", "sched", "trainer", "logger", "callbacks", "experiment", "debug"]


def options(group):
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml") if not p.name.startswith("_"))


def compose_train(overrides):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    cfg.hydra.runtime.output_dir = "/tmp/dlfound-compose"
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_config_composes_and_resolves(group, option):
    cfg = compose_train([f"{group}={option}"])
    assert cfg["data"]["_target_"] and cfg["model"]["_target_"]


def test_the_groups_the_issue_names_exist():
    for group in GROUPS + ["paths", "hydra"]:
        assert (config_dir() / group).is_dir(), group


@pytest.mark.parametrize("data", ["digits", "mnist", "cifar10", "moons"])
def test_model_shapes_come_from_the_data_config(data):
    cfg = compose_train([f"data={data}", "model=mlp"])
    assert cfg["model"]["in_channels"] == cfg["data"]["in_channels"]
    assert cfg["model"]["num_classes"] == cfg["data"]["num_classes"]
    assert cfg["model"]["image_size"] == cfg["data"]["image_size"]


def test_data_root_follows_the_environment(monkeypatch):
    monkeypatch.setenv("DLFOUND_DATA", "/some/where")
    assert compose_train([])["paths"]["data_dir"] == "/some/where"
    monkeypatch.delenv("DLFOUND_DATA")
    assert compose_train([])["paths"]["data_dir"].endswith(".cache/dlfound/data")


@pytest.mark.parametrize(
    "model,task",
    [
        ("vae", "vae.VAETask"),
        ("cvae", "vae.VAETask"),
        ("dcgan", "gan.GANTask"),
        ("realnvp", "flow.FlowTask"),
        ("resnet18", "classification.ClassificationTask"),
    ],
)
def test_a_generative_model_selects_its_own_task(model, task):
    cfg = compose_train([f"model={model}", "data=mnist"])
    assert cfg["task"]["_target_"] == f"dlfound.tasks.{task}"
    assert compose_train([f"model={model}", "data=mnist", "task=classification"])["task"]["_target_"].endswith(
        "ClassificationTask"
    )


@pytest.mark.parametrize(
    "model,degradation", [("dncnn", "noise"), ("unet", "noise"), ("srcnn", "bicubic"), ("vdsr", "bicubic")]
)
def test_a_restoration_model_selects_its_task_and_data(model, degradation):
    cfg = compose_train([f"model={model}"])
    assert cfg["task"]["_target_"] == "dlfound.tasks.restoration.RestorationTask"
    assert cfg["data"]["degradation"] == degradation
    assert compose_train([f"model={model}", "data=deblur"])["data"]["degradation"] == "blur"  # data= still wins
