"""Parameter counts of the registered models at given input shapes: what `dlfound list model` and the docs' zoo table
show. A model is built on the meta device (no memory, no initialisation) from its config merged over its own bases
(configs/model/NAME.yaml over _zoo and _shape), with the data keys it interpolates filled in: the part of Hydra's
composition a model needs, about a hundred times faster than composing a run's whole config.
"""

from pathlib import Path
from typing import NamedTuple

from dlfound.runs.paths import config_dir

MODELS_SOURCE = Path(__file__).resolve().parents[1] / "models"


class InputShape(NamedTuple):
    """The data keys a model config interpolates (${data.in_channels} and the like)."""

    in_channels: int
    image_size: int
    num_classes: int
    stem: str = "small"


def model_config(name: str) -> dict:
    """configs/model/NAME.yaml merged over its same-group bases in its defaults list, interpolations kept (entries
    that choose another group's option, `override /task@_global_.task: vae`, do not touch the model)."""
    import yaml
    from omegaconf import OmegaConf

    raw = yaml.safe_load((config_dir() / "model" / f"{name}.yaml").read_text())
    defaults = raw.pop("defaults", ["_self_"])
    parts = [raw if entry == "_self_" else model_config(entry) for entry in defaults if isinstance(entry, str)]
    return OmegaConf.to_container(OmegaConf.merge(*parts), resolve=False)


def build_model(name: str, shape: InputShape, **overrides):
    """The network `dlfound train model=NAME` builds for data of this shape, with `overrides` of its settings."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"data": shape._asdict(), "model": {**model_config(name), **overrides}})
    return instantiate(cfg.model, _convert_="all")


def count_parameters(name: str, shape: InputShape) -> int | None:
    """The model's parameter count for this input shape; None where it takes no such input (a sequence model, an
    ImageNet stem on a model without stems, an image too small for its architecture)."""
    import torch

    if shape.stem != "small" and "stem" not in model_config(name):
        return None
    try:
        with torch.device("meta"):
            return sum(p.numel() for p in build_model(name, shape).parameters())
    except Exception:  # a shape the architecture refuses: the tables show "-"
        return None


def counts_key(*facts: str) -> str:
    """What every count depends on: dlfound's version, the model configs and the models' source, by content."""
    import dlfound
    from dlfound.files import contents_key

    return contents_key([(config_dir() / "model", "*.yaml"), (MODELS_SOURCE, "*.py")], dlfound.__version__, *facts)
