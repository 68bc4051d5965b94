"""PSNR and SSIM, per image, with the conventions of the published restoration tables.

PSNR = 10 log10(MAX^2 / MSE) with MAX = 1 for images in [0, 1].
SSIM (Wang, Bovik, Sheikh & Simoncelli 2004, "Image quality assessment: from error visibility to structural
similarity"): local means, variances and covariance under an 11x11 Gaussian window of sigma 1.5,

    SSIM(x, y) = mean over windows of (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)),

C1 = (0.01 L)^2, C2 = (0.03 L)^2, only over windows that fit inside the image (MATLAB's ssim_index 'valid'),
averaged over channels.

Super-resolution tables (SRCNN, VDSR and after) measure on the luma Y of BT.601 (MATLAB rgb2ycbcr) with
`scale` pixels shaved off every border; denoising tables on the gray image itself, no shave.
"""

import torch
import torch.nn.functional as F

from dlfound.ops.colour import rgb_to_y


def _prepare(x: torch.Tensor, y: torch.Tensor, shave: int, y_channel: bool):
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.dim() == 3:
        x, y = x[None], y[None]
    x, y = x.double(), y.double()
    if y_channel:
        x, y = rgb_to_y(x), rgb_to_y(y)
    if shave:
        x, y = x[..., shave:-shave, shave:-shave], y[..., shave:-shave, shave:-shave]
    return x, y


def psnr(
    x: torch.Tensor, y: torch.Tensor, shave: int = 0, y_channel: bool = False, data_range: float = 1.0
) -> torch.Tensor:
    """PSNR in dB of each image of a batch [B, C, H, W] (or one [C, H, W]); returns [B]."""
    x, y = _prepare(x, y, shave, y_channel)
    mse = (x - y).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(data_range**2 / mse)).float()


def gaussian_window_1d(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The normalised 1-D Gaussian whose outer product with itself is SSIM's window."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    shave: int = 0,
    y_channel: bool = False,
    data_range: float = 1.0,
    window_size: int = 11,
    window_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """SSIM of each image of a batch [B, C, H, W] (or one [C, H, W]); returns [B]. Images smaller than the
    window are compared with a window of their own size."""
    x, y = _prepare(x, y, shave, y_channel)
    size = min(window_size, *x.shape[-2:])
    # The Gaussian window is separable: 'valid' filtering along rows, then columns, all five maps (and all
    # channels) stacked as one batch of single-channel images.
    g = gaussian_window_1d(size, window_sigma).to(x.device)
    stacked = torch.stack([x, y, x * x, y * y, x * y])  # [5, B, C, H, W]
    flat = stacked.flatten(0, 2)[:, None]
    flat = F.conv2d(F.conv2d(flat, g.view(1, 1, size, 1)), g.view(1, 1, 1, size))
    mu_x, mu_y, xx, yy, xy = flat.view(*stacked.shape[:3], *flat.shape[-2:])
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(1).float()
