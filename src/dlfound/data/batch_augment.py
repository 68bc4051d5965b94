"""Augmentations applied to a whole batch on its device, so that they cost the loader nothing.

Each op draws one random choice per sample with torch's global generator, which Lightning seeds.
"""

import math

import torch
import torch.nn.functional as F

PRESETS = ("none", "flip", "crop", "crop_flip")


def random_flip(x: torch.Tensor) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def random_crop(x: torch.Tensor, padding: int) -> torch.Tensor:
    """Zero-pad by `padding` and cut a random window of the original size per sample (the CIFAR recipe)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,), device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channels = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channels, rows, cols]


def augment(x: torch.Tensor, preset: str, padding: int = 4) -> torch.Tensor:
    if preset not in PRESETS:
        raise ValueError(f"unknown augment preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if "crop" in preset and padding > 0:
        x = random_crop(x, padding)
    if "flip" in preset:
        x = random_flip(x)
    return x


def random_erasing(
    x: torch.Tensor, p: float, area: tuple[float, float] = (0.02, 0.33), ratio: tuple[float, float] = (0.3, 3.3)
) -> torch.Tensor:
    """Random Erasing (Zhong et al. 2020): with probability p, replace one rectangle per image, of a random
    area fraction and aspect ratio, with standard-normal noise (the inputs are already normalised)."""
    n, _, h, w = x.shape
    dev = x.device
    frac = torch.empty(n, device=dev).uniform_(*area)
    aspect = torch.exp(torch.empty(n, device=dev).uniform_(math.log(ratio[0]), math.log(ratio[1])))
    eh = (frac * h * w * aspect).sqrt().clamp(max=h).long()
    ew = (frac * h * w / aspect).sqrt().clamp(max=w).long()
    top = (torch.rand(n, device=dev) * (h - eh + 1)).long()
    left = (torch.rand(n, device=dev) * (w - ew + 1)).long()
    rows = torch.arange(h, device=dev)[None, :, None]
    cols = torch.arange(w, device=dev)[None, None, :]
    inside = (
        (rows >= top[:, None, None])
        & (rows < (top + eh)[:, None, None])
        & (cols >= left[:, None, None])
        & (cols < (left + ew)[:, None, None])
    )
    inside &= (torch.rand(n, device=dev) < p)[:, None, None]
    return torch.where(inside[:, None], torch.randn_like(x), x)
