"""Optimizers and LR schedulers from plain config dicts, shared by every task.

An optimizer config is a Hydra `_target_` (any torch.optim class) plus dlfound's own keys:
  no_decay_norm_and_bias: put biases and normalisation weights in a group without weight decay
A scheduler config is a `_target_` plus Lightning's keys `interval` (step|epoch), `frequency` and `monitor`.
The value "auto" for `total_steps` (or `T_max` with interval=step) becomes the run's total optimizer steps.
"""

import math

import torch
from hydra.utils import instantiate
from torch import nn

from dlfound.errors import ConfigError

LIGHTNING_KEYS = ("interval", "frequency", "monitor", "strict", "name")


def parameter_groups(model: nn.Module, weight_decay: float, no_decay_norm_and_bias: bool) -> list[dict]:
    """One group, or two when biases and norm weights (every parameter with fewer than 2 dims) skip decay."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not no_decay_norm_and_bias or not weight_decay:
        return [{"params": params}]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: dict) -> torch.optim.Optimizer:
    cfg = dict(cfg)
    no_decay = cfg.pop("no_decay_norm_and_bias", False)
    groups = parameter_groups(model, cfg.get("weight_decay", 0.0), no_decay)
    try:
        return instantiate(cfg, params=groups, _convert_="all")
    except Exception as err:
        raise ConfigError(f"could not build the optimizer {cfg.get('_target_')}: {err}") from None


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: dict | None, total_steps: int, epochs: int):
    """Lightning's lr_scheduler dict, or None for a constant learning rate."""
    if not cfg or not cfg.get("_target_"):
        return None
    cfg = dict(cfg)
    lightning = {k: cfg.pop(k) for k in LIGHTNING_KEYS if k in cfg}
    interval = lightning.get("interval", "epoch")
    for key in ("total_steps", "T_max"):
        if cfg.get(key) == "auto":
            cfg[key] = total_steps if interval == "step" else epochs
    try:
        scheduler = instantiate(cfg, optimizer=optimizer, _convert_="all")
    except Exception as err:
        raise ConfigError(f"could not build the LR scheduler {cfg.get('_target_')}: {err}") from None
    return {"scheduler": scheduler, **lightning}


class WarmupCosine:
    """Linear warm-up from 0 to the base LR over `warmup_steps`, then cosine decay to `min_factor` of it
    (Goyal et al. 2017 warm-up; Loshchilov & Hutter 2017 cosine). A callable object, not a closure, so that
    LambdaLR's state dict holds only numbers and the checkpoint loads with weights_only=True."""

    def __init__(self, warmup_steps: int, total_steps: int, min_factor: float = 0.0):
        self.warmup_steps, self.total_steps, self.min_factor = warmup_steps, total_steps, min_factor

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / max(1, self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))


def warmup_cosine(optimizer, total_steps: int, warmup_fraction: float = 0.05, min_factor: float = 0.0):
    warmup = max(1, round(warmup_fraction * total_steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(warmup, total_steps, min_factor))
