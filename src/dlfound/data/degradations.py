"""Image degradations for restoration, as plain torch functions on float batches [B, C, H, W] in [0, 1].

- Additive white Gaussian noise, y = x + sigma * n, n ~ N(0, 1), not clipped (the DnCNN convention: Zhang,
  Zuo, Chen, Meng & Zhang 2017), sigma given on the 0..255 scale; a range (lo, hi) draws one sigma per image
  (blind denoising).
- Bicubic down-sampling by the scale factor, then bicubic up-sampling back to the original size: the input
  convention of SRCNN (Dong et al. 2014) and VDSR (Kim et al. 2016). `imresize` reproduces MATLAB's
  `imresize(..., 'bicubic')` (Keys' cubic kernel with a = -0.5, widened by 1/scale to anti-alias when
  shrinking, symmetric border handling), the resize behind every published SR table.
- Gaussian blur, y = k * x (+ noise), as a circular convolution: the forward model that plug-and-play
  solvers invert exactly with the FFT (dlfound.inverse.pnp).
- Random-mask inpainting, y = m . x (+ noise), each pixel kept with probability 1 - mask_ratio.

Every random draw takes an optional `torch.Generator`, so that validation and test images are degraded the
same way in every run (dlfound.data.restoration seeds one generator per image).
"""

import math

import torch

KINDS = ("noise", "bicubic", "blur", "inpaint")


# -- colour ------------------------------------------------------------------------------------------------
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
    m = torch.tensor([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
                     device=x.device, dtype=x.dtype) / 255.0
    offset = torch.tensor([16.0, 128.0, 128.0], device=x.device, dtype=x.dtype) / 255.0
    return torch.einsum("ij,...jhw->...ihw", m, x) + offset.view(3, 1, 1)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """The inverse of rgb_to_ycbcr."""
    m = torch.tensor([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
                     dtype=torch.float64) / 255.0
    inv = torch.linalg.inv(m).to(device=x.device, dtype=x.dtype)
    offset = torch.tensor([16.0, 128.0, 128.0], device=x.device, dtype=x.dtype) / 255.0
    return torch.einsum("ij,...jhw->...ihw", inv, x - offset.view(3, 1, 1))


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round to the 256 levels of an 8-bit image, clipping to [0, 1]."""
    return x.clamp(0, 1).mul(255).round().div(255)


# -- MATLAB-compatible bicubic resize ------------------------------------------------------------------------
def _cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic')."""
    ax = x.abs()
    ax2, ax3 = ax**2, ax**3
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))).to(x.dtype)


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


def imresize(x: torch.Tensor, scale: float | None = None, size: tuple[int, int] | None = None,
             antialias: bool = True) -> torch.Tensor:
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


def bicubic_degrade(x: torch.Tensor, scale: int, round_lr: bool = True) -> torch.Tensor:
    """Down by 1/scale and back up to x's size, both with MATLAB bicubic; the low-resolution image is rounded
    to 8 bits first when `round_lr` (it is a stored image in every SR benchmark)."""
    low = imresize(x, 1.0 / scale)
    if round_lr:
        low = quantize(low)
    return imresize(low, size=tuple(x.shape[-2:]))


# -- blur ----------------------------------------------------------------------------------------------------
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


# -- noise and masks -----------------------------------------------------------------------------------------
def _draw_sigma(sigma, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """Per-image sigma on the 0..1 scale from a number or a (lo, hi) range given on the 0..255 scale."""
    if isinstance(sigma, (list, tuple)):
        lo, hi = float(sigma[0]), float(sigma[1])
        return (lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)).float() / 255.0
    return torch.full((n,), float(sigma) / 255.0)


def gaussian_noise(x: torch.Tensor, sigma, generator: torch.Generator | None = None) -> torch.Tensor:
    """y = x + sigma * n (not clipped). The noise is drawn on the CPU when a generator is given, so that a
    seeded image gets the same noise on every device."""
    s = _draw_sigma(sigma, x.shape[0], generator).to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)
    if generator is not None:
        n = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    else:
        n = torch.randn_like(x)
    return x + s * n


def random_mask(shape, mask_ratio: float, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """A 0/1 mask [B, 1, H, W] that drops each pixel (all channels together) with probability mask_ratio."""
    b, _, h, w = shape
    u = torch.rand((b, 1, h, w), generator=generator) if generator is not None else torch.rand((b, 1, h, w), device=device)
    return (u >= mask_ratio).float().to(device)


# -- one configurable degradation ----------------------------------------------------------------------------
class Degradation:
    """The corruption a restoration data module applies: `kind` with its parameters.

    kind: noise   | sigma (0..255 scale, or [lo, hi] for blind)
          bicubic | scale (2, 3, 4); round_lr
          blur    | blur_size, blur_sigma (pixels); optional sigma of additive noise after blurring
          inpaint | mask_ratio (fraction of pixels lost); optional sigma of additive noise
    `__call__(x, generator)` returns the degraded batch (same size as x) and, for inpaint, keeps the mask of
    the last call in `self.last_mask` for solvers that need it.
    """

    def __init__(self, kind: str = "noise", sigma=25.0, scale: int = 2, round_lr: bool = True,
                 blur_size: int = 25, blur_sigma: float = 1.6, mask_ratio: float = 0.5):
        if kind not in KINDS:
            raise ValueError(f"unknown degradation {kind!r}; choose one of {', '.join(KINDS)}")
        self.kind, self.sigma, self.scale, self.round_lr = kind, sigma, scale, round_lr
        self.blur_size, self.blur_sigma, self.mask_ratio = blur_size, blur_sigma, mask_ratio
        self.last_mask: torch.Tensor | None = None

    @property
    def has_noise(self) -> bool:
        return isinstance(self.sigma, (list, tuple)) or bool(self.sigma)

    def kernel(self) -> torch.Tensor:
        return gaussian_kernel(self.blur_size, self.blur_sigma)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None, scale: int | None = None,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.kind == "bicubic":
            return bicubic_degrade(x, scale or self.scale, self.round_lr)
        if self.kind == "blur":
            y = blur(x, self.kernel())
        elif self.kind == "inpaint":
            self.last_mask = random_mask(x.shape, self.mask_ratio, generator, x.device) if mask is None else mask
            y = x * self.last_mask
        else:
            y = x
        if self.has_noise:
            y = gaussian_noise(y, self.sigma, generator)
        return y

    def describe(self) -> str:
        if self.kind == "noise":
            return f"Gaussian noise sigma={self.sigma}"
        if self.kind == "bicubic":
            return f"bicubic x{self.scale}"
        extra = f" + noise sigma={self.sigma}" if self.has_noise else ""
        if self.kind == "blur":
            return f"Gaussian blur {self.blur_size}x{self.blur_size} sigma={self.blur_sigma}{extra}"
        return f"random mask {self.mask_ratio:.0%} lost{extra}"
