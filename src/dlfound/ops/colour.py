"""Pixel values: BT.601 colour conversion as MATLAB's rgb2ycbcr (the luma on which super-resolution and denoising
papers report PSNR/SSIM), and rounding to the 256 levels of an 8-bit image. Images are float [..., C, H, W] in
[0, 1].
"""

import torch


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """Luma Y of ITU-R BT.601 in the studio range, as MATLAB's rgb2ycbcr: Y = 16 + 65.481 R + 128.553 G +
    24.966 B for R, G, B in [0, 1], returned in [0, 1] (so Y lies in [16/255, 235/255]). One channel in, the
    same out: a gray image is its own luma, the usual convention for gray images in SR test sets."""
    if x.shape[-3] == 1:
        return x
    weights = torch.tensor([65.481, 128.553, 24.966], device=x.device, dtype=x.dtype) / 255.0
    return (x * weights.view(3, 1, 1)).sum(-3, keepdim=True) + 16.0 / 255.0


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """BT.601 studio-range YCbCr (MATLAB rgb2ycbcr) of RGB in [0, 1], returned in [0, 1]: [..., 3, H, W]."""
    m = (
        torch.tensor(
            [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
            device=x.device,
            dtype=x.dtype,
        )
        / 255.0
    )
    offset = torch.tensor([16.0, 128.0, 128.0], device=x.device, dtype=x.dtype) / 255.0
    return torch.einsum("ij,...jhw->...ihw", m, x) + offset.view(3, 1, 1)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """The inverse of rgb_to_ycbcr."""
    m = (
        torch.tensor(
            [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], dtype=torch.float64
        )
        / 255.0
    )
    inv = torch.linalg.inv(m).to(device=x.device, dtype=x.dtype)
    offset = torch.tensor([16.0, 128.0, 128.0], device=x.device, dtype=x.dtype) / 255.0
    return torch.einsum("ij,...jhw->...ihw", inv, x - offset.view(3, 1, 1))


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round to the 256 levels of an 8-bit image, clipping to [0, 1]."""
    return x.clamp(0, 1).mul(255).round().div(255)
