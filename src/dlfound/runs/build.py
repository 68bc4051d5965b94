"""From a resolved config (plain dicts) to the objects of a run: data module, network, task and trainer.

This is the one place that instantiates configs with Hydra, for training and for rebuilding a run from its
checkpoint alike. It is also where data and task meet: a task never reaches into a data module, so what a task
needs from the data (the mode centres of a Gaussian mixture) or from another run (the classifier whose features
score samples) is handed to the task's constructor here.
"""

from pathlib import Path

from dlfound.errors import ConfigError, DlfoundError

# Facts a data module learns from its data (a text's vocabulary) or its definition (a mixture's mode centres),
# which model and task configs ask for by leaving the key null. The plain ones are written into the run's config,
# so that its checkpoints rebuild the network without the data.
MODEL_FACTS = ("vocab_size", "num_classes")
TASK_FACTS = ("vocabulary", "tokenizer", "mode_centers", "mode_std", "mode_weights", "optimum", "hessian_eigenvalues")
# An image folder counts and names its classes when its config leaves them null; recorded, they travel in the
# checkpoints (`dlfound predict` prints the names) and the run rebuilds without the folder.
DATA_FACTS = ("num_classes", "class_names")
RECORDED_FACTS = ("vocab_size", "num_classes", "vocabulary", "tokenizer", "class_names")
# The sections whose values are checked against their constructors' types before anything is built.
TYPED_SECTIONS = ("data", "model", "task", "optim", "sched")


def instantiate_section(cfg: dict, section: str, **kwargs):
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from dlfound.runs.settings import check_section, explain_type_error

    settings = check_section(section, cfg[section], tuple(kwargs))
    try:
        return instantiate(settings, **kwargs, _convert_="all")
    except InstantiationException as err:
        cause = err.__cause__ or err
        if isinstance(cause, DlfoundError):
            raise cause from None
        raise explain_type_error(section, cfg[section], cause) or ConfigError(
            f"could not build {section} ({cfg[section].get('_target_')}): {cause}"
        ) from None


def fill_facts(section: dict, datamodule, keys: tuple[str, ...]) -> dict:
    """The facts among `keys` that the config section leaves null and the data module knows; the plain ones are
    also written into the section (and so into the run's config and checkpoints)."""
    if datamodule is None:
        return {}
    facts = {
        key: getattr(datamodule, key)
        for key in keys
        if key in section and section[key] is None and getattr(datamodule, key, None) is not None
    }
    section.update({key: value for key, value in facts.items() if key in RECORDED_FACTS})
    return facts


def task_inputs(task_cfg: dict, datamodule) -> dict:
    """Constructor arguments of the task that come from outside its config: facts of the data, and the
    feature network named by `fid_features` (loaded here, so the task never reads a checkpoint itself)."""
    inputs = fill_facts(task_cfg, datamodule, TASK_FACTS)
    if "fid_features" in task_cfg:
        spec = task_cfg["fid_features"]
        inputs["features"] = load_feature_extractor(spec) if spec and spec != "pixels" else None
    return inputs


def check_inputs(cfg: dict) -> None:
    """Generative tasks model grey values in [0, 1] and say so with `task.normalize_inputs: false`, which the
    data configs follow; an explicit `data.normalize=true` beside them cannot work."""
    wanted = cfg["task"].get("normalize_inputs")
    if wanted is not None and "normalize" in cfg["data"] and cfg["data"]["normalize"] != wanted:
        raise ConfigError(
            f"data.normalize={cfg['data']['normalize']} but {cfg['task'].get('_target_')} needs "
            f"normalize={wanted} (generative models describe grey values in [0, 1]). Drop the "
            "data.normalize override."
        )


def check_model_takes_data(cfg: dict, net) -> None:
    """A convolutional classifier given flat vectors (data=moons, spirals: `image_size` null) would fail at its first
    step with a shape error deep in torch; say so before training starts."""
    from torch import nn

    from dlfound.models.registry import list_models, model_family

    name = str(cfg["model"].get("_target_", "")).rpartition(".")[2]
    if "image_size" not in cfg["model"] or cfg["model"]["image_size"] is not None or name not in list_models():
        return
    if model_family(name) in ("classifier", "bayesian") and any(isinstance(m, nn.Conv2d) for m in net.modules()):
        raise ConfigError(
            f"model={name} is a convolutional network for images, but this data set gives flat vectors of "
            f"{cfg['data'].get('in_channels')} features (its image_size is null). Pick an image data set "
            "(data=digits, mnist, fashionmnist, cifar10, imagefolder) or a model for vectors (model=mlp); "
            "`dlfound list` shows both."
        )


def build(cfg: dict, with_data: bool = True):
    """(data module, task) from a resolved config: the one place both training and evaluation build them.
    Without data (None is returned for it), the facts of the data must be in the config already, as they are in
    a checkpoint's."""
    from dlfound.runs.settings import explain_type_error
    from dlfound.runs.value_types import check_value_types

    check_inputs(cfg)
    for section in TYPED_SECTIONS:  # the optimizer is built only when training starts: its values are checked now
        if isinstance(cfg.get(section), dict):
            check_value_types(section, cfg[section], filled_in=("auto",) if section == "sched" else ())
    datamodule = instantiate_section(cfg, "data") if with_data else None
    fill_facts(cfg["data"], datamodule, DATA_FACTS)
    fill_facts(cfg["model"], datamodule, MODEL_FACTS)
    fill_facts(cfg["task"], datamodule, MODEL_FACTS)  # a classification task counts the classes too
    net = instantiate_section(cfg, "model")
    check_model_takes_data(cfg, net)
    inputs = task_inputs(cfg["task"], datamodule)
    task_cfg = {k: v for k, v in cfg["task"].items() if k not in ("fid_features", "normalize_inputs", *inputs)}
    # Optimizer and scheduler configs reach the task as plain dicts, built later in configure_optimizers.
    try:
        task = instantiate_section({"task": task_cfg}, "task", _partial_=True)(
            net=net, optim=cfg["optim"], sched=cfg.get("sched"), **inputs
        )
    except (TypeError, ValueError) as err:
        raise explain_type_error("task", task_cfg, err) or ConfigError(
            f"could not build task ({cfg['task'].get('_target_')}): {err}"
        ) from None
    return datamodule, task


def load_task(ckpt: dict, cfg: dict, with_data: bool = True):
    """(datamodule, task) built from the config, with the checkpoint's weights loaded."""
    datamodule, task = build(cfg, with_data)
    task.load_state_dict(ckpt["state_dict"])
    return datamodule, task


def load_trained(ckpt_path: str | Path, task_class: str, advice: str):
    """(datamodule, task, run config) of a checkpoint whose task is `task_class` (e.g. "ClassificationTask"); a
    checkpoint of another task is one ConfigError paragraph ending in `advice` (what to train instead)."""
    from dlfound.runs.checkpoint import load_checkpoint, run_config

    ckpt = load_checkpoint(ckpt_path)
    cfg = run_config(ckpt, {})
    target = str(cfg.get("task", {}).get("_target_", ""))
    if not target.endswith(task_class):
        raise ConfigError(f"{ckpt_path} was not trained by the {task_class} (task={target or None}); {advice}")
    return (*load_task(ckpt, cfg), cfg)


def load_generative(ckpt_path: str, device: str = "cpu"):
    """(task, datamodule) rebuilt from a dlfound checkpoint, in eval mode on `device`."""
    from dlfound.runs.checkpoint import load_checkpoint, run_config
    from dlfound.tasks.generative import GenerativeTask

    ckpt = load_checkpoint(ckpt_path)
    # Sampling measures nothing, so the feature network that scored samples during training is not needed.
    overrides = {"task.fid_features": "null"} if "fid_features" in ckpt["dlfound_config"].get("task", {}) else {}
    datamodule, task = load_task(ckpt, run_config(ckpt, overrides))
    if not isinstance(task, GenerativeTask):
        raise ConfigError(
            f"{ckpt_path} holds a {type(task).__name__}, which cannot sample; give a checkpoint "
            "of a generative model (VAE, flow, GAN, diffusion or score model)"
        )
    return task.to(device).eval(), datamodule


def load_network(path: str | Path):
    """(network, its run's config) of a dlfound checkpoint, the network in eval mode with its trained weights: the
    average (EMA) where the task keeps one, since validation and test measured those."""
    from dlfound.runs.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    cfg = ckpt["dlfound_config"]
    net = instantiate_section(cfg, "model")
    state = ckpt["state_dict"]
    prefix = "ema.module." if any(k.startswith("ema.module.") for k in state) else "net."
    net.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    return net.eval(), cfg


def load_feature_extractor(spec: str | None):
    """The network whose features score samples (FID, KID): `PATH.ckpt` (a dlfound classifier: its
    `forward_features`), `inception:PATH` (torchvision's Inception-v3 weights in PATH), or `pixels` (also None)."""
    from dlfound.metrics.sample_quality import ClassifierFeatures, InceptionFeatures, PixelFeatures

    if spec is None or spec == "pixels":
        return PixelFeatures()
    if spec.startswith("inception:"):
        return InceptionFeatures(spec.split(":", 1)[1])
    if not Path(spec).expanduser().is_file():
        raise ConfigError(
            f"feature extractor {spec}: no such checkpoint. Train a classifier first, e.g. "
            "`dlfound train experiment=mnist_lenet5`, and give its checkpoints/best-*.ckpt"
        )
    net, cfg = load_network(Path(spec).expanduser())
    data = cfg["data"]
    normalize = data.get("normalize", True) and data.get("mean") is not None
    shape = (data["in_channels"], data["image_size"], data["image_size"]) if data.get("image_size") else None
    return ClassifierFeatures(net, data["mean"] if normalize else None, data["std"] if normalize else None, shape)


def check_accelerator(trainer_cfg: dict) -> None:
    """A GPU asked for where torch sees none: what to use instead, and how to see why (not Lightning's bare
    "No supported gpu backend found!")."""
    import torch

    if str(trainer_cfg.get("accelerator")) in ("gpu", "cuda") and not torch.cuda.is_available():
        why = (
            "this torch has no CUDA support (a CPU-only build)"
            if torch.version.cuda is None
            else "torch sees no CUDA GPU (none present, the driver not loaded, or CUDA_VISIBLE_DEVICES hiding it)"
        )
        raise ConfigError(
            f"trainer.accelerator={trainer_cfg.get('accelerator')} needs a CUDA GPU, but {why}. Train "
            'on the CPU with trainer=cpu, or check the GPU with `nvidia-smi` and `python -c "import '
            'torch; print(torch.cuda.is_available(), torch.version.cuda)"`.'
        )


def build_trainer(cfg: dict, run_dir, extra_callbacks: list, monitor: str, mode: str):
    """Lightning's Trainer with the config's loggers (writing into run_dir) and callbacks; callbacks that watch
    a metric take the task's own unless their config names one."""
    from hydra.utils import instantiate
    from lightning.pytorch.callbacks import LearningRateMonitor

    from dlfound.runs.checkpoint_io import AtomicCheckpointIO
    from dlfound.runs.no_profiler import NoProfiler
    from dlfound.runs.settings import check_section
    from dlfound.runs.value_types import check_value_types

    loggers = [instantiate(spec, save_dir=str(run_dir)) for spec in (cfg.get("logger") or {}).values() if spec]
    callbacks = list(extra_callbacks)
    for spec in (cfg.get("callbacks") or {}).values():
        if not spec:
            continue
        fill = {"monitor": monitor, "mode": mode} if "monitor" in spec and spec["monitor"] is None else {}
        if "dirpath" in spec and spec["dirpath"] is None:
            fill["dirpath"] = str(run_dir / "checkpoints")
        callback = instantiate(spec, **fill)
        if loggers or not isinstance(callback, LearningRateMonitor):  # it has nowhere to write without a logger
            callbacks.append(callback)
    check_section("trainer", cfg["trainer"])
    check_value_types("trainer", cfg["trainer"])
    check_accelerator(cfg["trainer"])
    # Checkpoints are written all or nothing, stamped with dlfound's checkpoint format (runs.checkpoint_io).
    plugins = [*(cfg["trainer"].get("plugins") or []), AtomicCheckpointIO()]
    trainer_cfg = {k: v for k, v in cfg["trainer"].items() if k != "plugins"}
    # No profiler asked for: dlfound's, which costs nothing per step (dlfound.runs.no_profiler).
    profiler = trainer_cfg.pop("profiler", None) or NoProfiler()
    try:
        return instantiate(
            trainer_cfg,
            callbacks=callbacks,
            logger=loggers or False,
            default_root_dir=str(run_dir),
            plugins=plugins,
            profiler=profiler,
        )
    except Exception as err:
        cause = err.__cause__ or err
        raise ConfigError(f"could not build the trainer ({cause}). Check trainer.* in the config") from None


def compose(overrides: list[str], config_name: str = "train"):
    """The composed config for `overrides`, as `dlfound train` would see it (without running anything). Outside a
    run there is no run folder: `paths.output_dir` is the working directory."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from dlfound.runs.paths import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = hydra_compose(config_name, overrides=overrides)
    if "paths" in cfg:
        cfg.paths.output_dir = "."
    return cfg
