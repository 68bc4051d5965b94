"""MATLAB-compatible bicubic resizing, the resize behind every published super-resolution table.

`imresize` reproduces MATLAB's `imresize(..., 'bicubic')`: Keys' cubic kernel with a = -0.5, widened by 1/scale to
anti-alias when shrinking, symmetric border handling. `modcrop` trims an image to a multiple of the scale, as SR
test sets do before down-sampling.
"""

import math

import torch


def _cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic')."""
    ax = x.abs()
    ax2, ax3 = ax**2, ax**3
    return (
        (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    ).to(x.dtype)


def _contributions(in_len: int, out_len: int, scale: float, antialias: bool = True):
    """(weights [out, P], indices [out, P]) of the 1-D resize: output pixel i is sum_p w[i, p] x[idx[i, p]]."""
    kernel_width = 4.0
    shrink = scale < 1 and antialias
    if shrink:
        kernel_width /= scale
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    # Output pixel centres mapped back into input coordinates (1-based, pixel-centre convention).
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + torch.arange(taps, dtype=torch.float64)[None]
    distance = u[:, None] - indices
    weights = scale * _cubic(scale * distance) if shrink else _cubic(distance)
    weights = weights / weights.sum(1, keepdim=True)
    # Symmetric (mirror) padding at both borders, as MATLAB.
    mirror = torch.cat([torch.arange(in_len), torch.arange(in_len - 1, -1, -1)])
    indices = mirror[(indices.long() - 1) % (2 * in_len)]
    keep = weights.abs().sum(0) > 0
    return weights[:, keep], indices[:, keep]


def resize_matrix(in_len: int, out_len: int, scale: float, antialias: bool = True) -> torch.Tensor:
    """The 1-D resize as a dense [out_len, in_len] matrix (float64): resizing is then one matrix product."""
    weights, indices = _contributions(in_len, out_len, scale, antialias)
    rows = torch.arange(out_len)[:, None].expand_as(indices)
    matrix = torch.zeros(out_len, in_len, dtype=torch.float64)
    return matrix.index_put_((rows.reshape(-1), indices.reshape(-1)), weights.reshape(-1), accumulate=True)


def imresize(
    x: torch.Tensor, scale: float | None = None, size: tuple[int, int] | None = None, antialias: bool = True
) -> torch.Tensor:
    """MATLAB's imresize(x, scale, 'bicubic') (or to an output `size` (H, W)) for float [..., H, W].

    The output side is ceil(side * scale); rows are resized first, then columns, as MATLAB does when both
    factors are equal. The result is not clipped or rounded: quantize() does what MATLAB's uint8 output does.
    """
    h, w = x.shape[-2:]
    if size is None:
        if scale is None:
            raise ValueError("imresize needs a scale or a size")
        size = (math.ceil(h * scale), math.ceil(w * scale))
        scales = (scale, scale)
    else:
        scales = (size[0] / h, size[1] / w)
    dtype = x.dtype
    work = torch.float64 if x.device.type == "cpu" else torch.float32
    rows = resize_matrix(h, size[0], scales[0], antialias).to(device=x.device, dtype=work)
    cols = resize_matrix(w, size[1], scales[1], antialias).to(device=x.device, dtype=work)
    return (rows @ x.to(work) @ cols.T).to(dtype)


def modcrop(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the bottom/right edges so that both sides are multiples of the scale (SR test convention)."""
    h, w = x.shape[-2:]
    return x[..., : h - h % scale, : w - w % scale]
