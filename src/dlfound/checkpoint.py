"""Rebuilding a run from one checkpoint file: its config travels inside it (see ConfigInCheckpoint)."""

from pathlib import Path

from dlfound.errors import ConfigError, DlfoundError


def load_checkpoint(path: str | Path) -> dict:
    """torch.load with weights_only=True: a checkpoint never executes code when it is read."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist; pass ckpt_path=RUN/checkpoints/last.ckpt or best-*.ckpt")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise DlfoundError(f"could not read checkpoint {path}: {type(err).__name__}: {str(err).splitlines()[0]}. "
                           "Is it a complete .ckpt file written by `dlfound train`?") from None
    if "dlfound_config" not in ckpt:
        raise ConfigError(f"{path} holds no dlfound run config; it was not written by `dlfound train`")
    return ckpt


def run_config(ckpt: dict, overrides: dict[str, str]) -> dict:
    """The run's resolved config with `a.b=value` overrides applied (values parsed as YAML)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(ckpt["dlfound_config"])
    try:
        cfg.merge_with(OmegaConf.from_dotlist([f"{k}={v}" for k, v in overrides.items()]))
    except Exception as err:
        raise ConfigError(f"bad override: {err}") from None
    return OmegaConf.to_container(cfg, resolve=True)


def load_task(ckpt: dict, cfg: dict):
    """(datamodule, task) built from the config, with the checkpoint's weights loaded."""
    from dlfound.train import build

    datamodule, task = build(cfg)
    task.load_state_dict(ckpt["state_dict"])
    return datamodule, task
