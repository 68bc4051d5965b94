"""Gaussian blur as a circular convolution computed with the FFT: y = k (*) x. Being circular, the blur is
diagonal in the Fourier domain (multiplication by the kernel's transfer function, `kernel_to_otf`), which is what
lets plug-and-play solvers (dlfound.ops.plug_and_play) invert it exactly.
"""

import torch


def gaussian_kernel(size: int, sigma: float, dtype=torch.float32) -> torch.Tensor:
    """A normalised 2-D Gaussian [size, size] with standard deviation `sigma` pixels."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    k = g[:, None] * g[None, :]
    return (k / k.sum()).to(dtype)


def kernel_to_otf(kernel: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """The FFT of the kernel wrapped onto an image of `shape`, centred at pixel (0, 0): circular convolution
    with the kernel is multiplication by this transfer function (a kernel larger than the image wraps)."""
    kh, kw = kernel.shape[-2:]
    rows = (torch.arange(kh, device=kernel.device) - kh // 2) % shape[0]
    cols = (torch.arange(kw, device=kernel.device) - kw // 2) % shape[1]
    flat = (rows[:, None] * shape[1] + cols[None, :]).flatten()
    padded = torch.zeros(*kernel.shape[:-2], shape[0] * shape[1], dtype=kernel.dtype, device=kernel.device)
    padded.index_add_(-1, flat, kernel.flatten(-2))
    return torch.fft.fft2(padded.view(*kernel.shape[:-2], *shape))


def blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Circular convolution of each channel with the kernel [kh, kw] (via the FFT)."""
    otf = kernel_to_otf(kernel.to(device=x.device, dtype=x.dtype), tuple(x.shape[-2:]))
    return torch.fft.ifft2(torch.fft.fft2(x) * otf).real.to(x.dtype)
