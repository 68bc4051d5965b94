"""Reading a checkpoint file and the run config that travels inside it (see ConfigInCheckpoint).

Checkpoints are read with torch.load(weights_only=True), so reading one never executes code from the file.
Checkpoints written before the package was regrouped name a few `_target_`s that have moved; they are
rewritten on load (LEGACY_TARGETS), so every old run folder still evaluates, samples, restores and resumes.
"""

from pathlib import Path

from dlfound.errors import ConfigError, DlfoundError

LEGACY_TARGETS = {
    "dlfound.optim.warmup_cosine": "dlfound.tasks.optim.warmup_cosine",
    "dlfound.callbacks.ProgressBar": "dlfound.runs.callbacks.ProgressBar",
    "dlfound.loggers.CSVLogger": "dlfound.runs.loggers.CSVLogger",
}


def upgrade_targets(node):
    """The config with every moved `_target_` replaced by its new path (a new plain structure)."""
    if isinstance(node, dict):
        return {k: LEGACY_TARGETS.get(v, v) if k == "_target_" else upgrade_targets(v) for k, v in node.items()}
    if isinstance(node, list):
        return [upgrade_targets(v) for v in node]
    return node


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
    ckpt["dlfound_config"] = upgrade_targets(ckpt["dlfound_config"])
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
