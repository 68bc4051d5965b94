"""Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019), applied to a whole batch on its device.

Both pair each sample with another from a shuffled copy of the batch and mix the targets in proportion lam:
mixup blends whole images, x = lam * x_i + (1 - lam) * x_j; CutMix pastes a box from x_j covering a fraction
1 - lam of the image. The loss is lam * CE(y_i) + (1 - lam) * CE(y_j).
"""

import math

import torch


def mix_batch(x: torch.Tensor, y: torch.Tensor, mixup_alpha: float, cutmix_alpha: float, switch_prob: float = 0.5):
    """Returns (mixed x, y_a, y_b, lam). With both alphas set, each batch picks CutMix with switch_prob."""
    use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or torch.rand(()).item() < switch_prob)
    alpha = cutmix_alpha if use_cutmix else mixup_alpha
    lam = torch.distributions.Beta(alpha, alpha).sample().item()
    perm = torch.randperm(x.shape[0], device=x.device)
    if not use_cutmix or x.dim() != 4:
        return lam * x + (1 - lam) * x[perm], y, y[perm], lam
    h, w = x.shape[-2:]
    cut_h, cut_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
    cy, cx = torch.randint(h, ()).item(), torch.randint(w, ()).item()
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
    x = x.clone()
    x[..., top:bottom, left:right] = x[perm][..., top:bottom, left:right]
    lam = 1 - (bottom - top) * (right - left) / (h * w)  # the box actually pasted, after clipping
    return x, y, y[perm], lam
