"""Optimizers and LR schedulers from plain config dicts, shared by every task.

An optimizer config is a Hydra `_target_` (any torch.optim class) plus dlfound's own keys:
  no_decay_norm_and_bias: put biases and normalisation weights in a group without weight decay
A scheduler config is a `_target_` plus Lightning's keys `interval` (step|epoch), `frequency` and `monitor`.
The value "auto" for `total_steps` (or `T_max` with interval=step) becomes the run's total optimizer steps.
"""

import importlib
import math

import torch
from torch import nn

from dlfound.errors import ConfigError

LIGHTNING_KEYS = ("interval", "frequency", "monitor", "strict", "name")


def call_target(cfg: dict, what: str, **kwargs):
    """`_target_(**kwargs, **rest of cfg)`: the config arrives as a plain dict (a task never calls Hydra), and a
    target that is missing or refuses its arguments is one clear ConfigError."""
    cfg = dict(cfg)
    target = str(cfg.pop("_target_", ""))
    module, _, name = target.rpartition(".")
    try:
        factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(
            f"the {what} {target!r} does not exist; give _target_ as module.Name, e.g. torch.optim.SGD"
        ) from None
    try:
        return factory(**kwargs, **cfg)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"could not build the {what} {target}: {err}") from None


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
    return call_target(cfg, "optimizer", params=groups)


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
    return {"scheduler": call_target(cfg, "LR scheduler", optimizer=optimizer), **lightning}


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


class InverseTime:
    """The factor k0 / (k0 + k) at step k: a step that decays like 1/k, which SGD needs on a strongly convex
    problem to converge rather than level off at a noise floor (Robbins & Monro 1951). A callable object, as
    WarmupCosine, so that the scheduler's state dict holds only numbers."""

    def __init__(self, k0: float):
        self.k0 = k0

    def __call__(self, step: int) -> float:
        return self.k0 / (self.k0 + step)


def inverse_time(optimizer, k0: float = 100.0):
    if k0 <= 0:
        raise ConfigError(f"sched.k0 must be positive (the step at which the rate has halved), got {k0}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, InverseTime(k0))
