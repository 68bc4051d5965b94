"""Strict configs: a key that a data, model, task or trainer section's target does not take is refused with the
closest valid names; every shipped config passes the same check."""

import pytest

from dlfound.errors import ConfigError
from dlfound.runs.build import build, build_trainer
from dlfound.runs.settings import check_section
from test_configs import GROUPS, compose_train, options

pytestmark = pytest.mark.usefixtures("one_thread")


def digits_config(*overrides):
    return compose_train(["data=digits", "model=mlp", "trainer=cpu", *overrides])


@pytest.mark.parametrize(
    "override,message",
    [
        ("+data.batchsize=32", "data has no setting 'batchsize'; did you mean batch_size"),
        ("+model.hiden=[8]", "model has no setting 'hiden'; did you mean hidden"),
        ("+task.label_smothing=0.1", "task has no setting 'label_smothing'; did you mean label_smoothing"),
    ],
)
def test_a_typo_in_a_section_names_the_closest_setting(override, message):
    with pytest.raises(ConfigError) as err:
        build(digits_config(override))
    assert message in str(err.value)


def test_a_typo_in_the_trainer_names_the_closest_setting(tmp_path):
    cfg = digits_config("+trainer.max_epoch=3")
    with pytest.raises(ConfigError, match="trainer has no setting 'max_epoch'; did you mean max_epochs"):
        build_trainer(cfg, tmp_path, [], "val/loss", "min")


def test_a_named_model_constructor_refuses_a_typo_too():
    # resnet18(**kwargs) forwards to ResNet: the typo is caught where Python refuses the keyword.
    cfg = compose_train(["data=digits", "model=resnet18", "+model.zero_init_residul=true"])
    with pytest.raises(ConfigError, match="no setting 'zero_init_residul'; did you mean zero_init_residual"):
        build(cfg)


def test_facts_models_read_from_the_data_config_are_not_typos():
    # Restoration data takes no image_size, num_classes or stem, but model configs interpolate them.
    cfg = compose_train(["model=dncnn"])
    settings = check_section("data", cfg["data"])
    assert (
        "stem" not in settings and "num_classes" not in settings and settings["patch_size"] == cfg["data"]["patch_size"]
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "group,option",
    [(g, o) for g in GROUPS if g in ("data", "model", "task", "trainer", "experiment") for o in options(g)],
)
def test_every_shipped_config_passes_the_strict_check(group, option):
    cfg = compose_train([f"{group}={option}"])
    for section in ("data", "model", "task", "trainer"):
        check_section(section, cfg[section])


# ---- settings on the command line, checked before Hydra applies them (issue 29) ---------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "override,message",
    [
        ("data.batchsize=32", "data has no setting 'batchsize'; did you mean batch_size?"),
        ("+data.batchsize=32", "data has no setting 'batchsize'; did you mean batch_size?"),
        ("optim.lrr=0.1", "optim has no setting 'lrr'; did you mean lr?"),
        ("+optim.lrr=0.1", "optim has no setting 'lrr'; did you mean lr?"),
        ("trainer.max_epoch=1", "trainer has no setting 'max_epoch'; did you mean max_epochs?"),
        ("model.hiden=[8]", "model has no setting 'hiden'; did you mean hidden?"),
        ("task.label_smothing=0.1", "task has no setting 'label_smothing'; did you mean label_smoothing?"),
        ("sed=1", "the config has no top-level setting 'sed'; did you mean seed?"),
        ("+sed=1", "the config has no top-level setting 'sed'; did you mean seed?"),
        (
            "callbacks.model_checkpont.save_last=false",
            "callbacks has no setting 'model_checkpont'; did you mean model_checkpoint?",
        ),
    ],
)
def test_a_mistyped_setting_on_the_command_line_names_the_closest(override, message, tmp_path, monkeypatch, capsys):
    from dlfound.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLFOUND_OUTPUTS", str(tmp_path / "outputs"))
    with pytest.raises(SystemExit) as exit:
        main(["train", override])
    assert exit.value.code != 0
    err = capsys.readouterr().err
    said = " ".join(err.replace("│", " ").split())
    assert message in said and "Traceback" not in err and "+data" not in said and "struct" not in said, said
    assert not (tmp_path / "outputs" / "train" / "runs").exists()  # refused before any run folder


@pytest.mark.slow
def test_settings_the_class_takes_but_the_config_does_not_list_pass_without_plus_in_a_sweep(
    tmp_path, dlfound_in_process
):
    from conftest import read_results, run_folders

    # Trainer(max_steps), SGD(nesterov) and a data module's split_seed; the sweep over a listed key still sweeps.
    dlfound_in_process(
        [
            "train",
            "-m",
            "data.batch_size=32,64",
            "trainer.max_steps=3",
            "optim=sgd",
            "optim.nesterov=true",
            "+data.split_seed=3",
            "print_config=false",
            "logger=none",
            "callbacks=none",
        ],
        tmp_path,
        check=True,
    )
    runs = run_folders(tmp_path / "outputs")
    assert len(runs) == 2
    for run in runs:
        results = read_results(run)
        assert results["status"] == "done" and results["global_step"] == 3
        assert "+trainer.max_steps=3" in results["overrides"] and "optim.nesterov=True" in results["overrides"]
        assert "data.split_seed=3" in results["overrides"]  # the needless + dropped
