"""The corruptions a restoration data module applies to clean images (and `dlfound restore` to its input), on
float batches [B, C, H, W] in [0, 1]. The image maths underneath (resize, blur, colour) is dlfound.ops; what
lives here is the data pipeline's vocabulary: the four kinds a config names, their parameters on the 0..255
scale, and seeded draws.

- Additive white Gaussian noise, y = x + sigma * n, n ~ N(0, 1), not clipped (the DnCNN convention: Zhang,
  Zuo, Chen, Meng & Zhang 2017), sigma given on the 0..255 scale; a range (lo, hi) draws one sigma per image
  (blind denoising).
- Bicubic down-sampling by the scale factor, then bicubic up-sampling back to the original size: the input
  convention of SRCNN (Dong et al. 2014) and VDSR (Kim et al. 2016), with MATLAB's bicubic
  (dlfound.ops.resize.imresize).
- Gaussian blur, y = k * x (+ noise), as a circular convolution: the forward model that plug-and-play
  solvers invert exactly with the FFT (dlfound.ops.blur, dlfound.ops.plug_and_play).
- Random-mask inpainting, y = m . x (+ noise), each pixel kept with probability 1 - mask_ratio.

Every random draw takes an optional `torch.Generator`, so that validation and test images are degraded the
same way in every run (dlfound.data.restoration seeds one generator per image).
"""

import torch

from dlfound.ops.blur import blur, gaussian_kernel
from dlfound.ops.colour import quantize
from dlfound.ops.resize import imresize

KINDS = ("noise", "bicubic", "blur", "inpaint")


def bicubic_degrade(x: torch.Tensor, scale: int, round_lr: bool = True) -> torch.Tensor:
    """Down by 1/scale and back up to x's size, both with MATLAB bicubic; the low-resolution image is rounded
    to 8 bits first when `round_lr` (it is a stored image in every SR benchmark)."""
    low = imresize(x, 1.0 / scale)
    if round_lr:
        low = quantize(low)
    return imresize(low, size=tuple(x.shape[-2:]))


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
    u = (
        torch.rand((b, 1, h, w), generator=generator)
        if generator is not None
        else torch.rand((b, 1, h, w), device=device)
    )
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

    def __init__(
        self,
        kind: str = "noise",
        sigma=25.0,
        scale: int = 2,
        round_lr: bool = True,
        blur_size: int = 25,
        blur_sigma: float = 1.6,
        mask_ratio: float = 0.5,
    ):
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

    def __call__(
        self,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
        scale: int | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
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
