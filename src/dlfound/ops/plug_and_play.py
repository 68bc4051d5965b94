"""Plug-and-play restoration: a trained denoiser serves as the image prior inside an iterative solver.

Venkatakrishnan, Bouman & Wohlberg, "Plug-and-Play Priors for Model Based Reconstruction", 2013 (ADMM), and
Zhang, Zuo, Gu & Zhang, "Learning Deep CNN Denoiser Prior for Image Restoration", CVPR 2017 (IRCNN; half-
quadratic splitting, refined in DPIR, Zhang et al., TPAMI 2021). To recover x from y = A x + n (n of std
sigma_n) with a prior Phi, split x and an auxiliary z and alternate

    x_k = argmin_x ||y - A x||^2 + mu_k ||x - z_{k-1}||^2        (data step: closed form below)
    z_k = argmin_z  Phi(z) + ||z - x_k||^2 / (2 s_k^2)            (prior step: a Gaussian denoiser at level s_k)

with mu_k = lambda sigma_n^2 / s_k^2 and the denoising level s_k decreasing geometrically from sigma_start to
max(sigma_n, sigma_end) over the iterations: strong denoising first, data fidelity last. The data steps are
exact for the two forward models here:

    deblurring, A x = k (*) x (circular):  x = F^-1[(conj(F k) F y + mu F z) / (|F k|^2 + mu)]
    inpainting, A x = m . x (mask m):      x = (m y + mu z) / (m + mu)

ADMM (method="admm") adds the scaled dual u: x_k = data(z - u, mu_k), z_k = D(x_k + u, s_k), u += x_k - z_k.

A denoiser is any callable `denoise(x, sigma)` on [B, C, H, W] in [0, 1], sigma on the same 0..1 scale.
`network_denoiser` wraps a trained network: a blind one (trained on a range of levels) is called as it is; one
trained at a single level s0 denoises level s by scaling, D_s(x) = (s / s0) D_s0((s0 / s) x), which turns noise
of std s into noise of std s0 (the scaling trick; exact for a positively homogeneous network, close for DnCNN).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from dlfound.ops.blur import blur, gaussian_kernel, kernel_to_otf

Denoiser = Callable[[torch.Tensor, float], torch.Tensor]
METHODS = ("hqs", "admm")


@dataclass
class PnPConfig:
    """Iteration count and penalty schedule. Levels are on the 0..255 scale, as everywhere in dlfound."""

    iters: int = 24
    method: str = "hqs"
    sigma_start: float = 49.0  # the first denoising level s_1 (DPIR uses 49)
    sigma_end: float = 1.0  # the last level is max(sigma_n, sigma_end)
    lam: float = 0.23  # lambda: the prior's weight against the data (DPIR's value for deblurring)
    noise_floor: float = 1.0  # sigma_n used in mu_k when the data are noise-free (keeps the data step stable)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown plug-and-play method {self.method!r}; choose hqs or admm")
        if self.iters < 1 or self.sigma_start <= 0 or self.sigma_end <= 0 or self.lam <= 0:
            raise ValueError("plug-and-play needs iters >= 1 and positive sigma_start, sigma_end and lambda")


def schedule(cfg: PnPConfig, noise_sigma: float) -> list[tuple[float, float]]:
    """(s_k, mu_k) for every iteration, s_k on the 0..1 scale."""
    sigma_n = max(noise_sigma, cfg.noise_floor) / 255.0
    start, end = cfg.sigma_start / 255.0, max(noise_sigma, cfg.sigma_end) / 255.0
    if cfg.iters == 1:
        levels = [end]
    else:
        levels = [start * (end / start) ** (k / (cfg.iters - 1)) for k in range(cfg.iters)]
    return [(s, cfg.lam * sigma_n**2 / s**2) for s in levels]


class DeblurData:
    """The data step of circular deblurring with kernel k, solved in the Fourier domain."""

    def __init__(self, y: torch.Tensor, kernel: torch.Tensor):
        self.otf = kernel_to_otf(kernel.to(device=y.device, dtype=y.dtype), tuple(y.shape[-2:]))
        self.y = y
        self.ky = torch.conj(self.otf) * torch.fft.fft2(y)
        self.k2 = self.otf.abs() ** 2
        self.kernel = kernel

    def init(self) -> torch.Tensor:
        return self.y.clone()

    def __call__(self, z: torch.Tensor, mu: float) -> torch.Tensor:
        return torch.fft.ifft2((self.ky + mu * torch.fft.fft2(z)) / (self.k2 + mu)).real.to(z.dtype)

    def forward_model(self, x: torch.Tensor) -> torch.Tensor:
        return blur(x, self.kernel)


class InpaintData:
    """The data step of inpainting with mask m (1 = pixel observed)."""

    def __init__(self, y: torch.Tensor, mask: torch.Tensor):
        self.y, self.mask = y, mask.to(device=y.device, dtype=y.dtype).expand_as(y)

    def init(self) -> torch.Tensor:
        """Missing pixels filled by normalised Gaussian averaging of the observed ones around them."""
        k = gaussian_kernel(15, 3.0)
        num, den = blur(self.y * self.mask, k), blur(self.mask, k)
        fill = num / den.clamp_min(1e-3)
        return torch.where(self.mask > 0, self.y, fill)

    def __call__(self, z: torch.Tensor, mu: float) -> torch.Tensor:
        return (self.mask * self.y + mu * z) / (self.mask + mu)

    def forward_model(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask * x


@torch.no_grad()
def solve(
    data,
    denoise: Denoiser,
    cfg: PnPConfig,
    noise_sigma: float = 0.0,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Run the solver for `data` (DeblurData or InpaintData); returns the restored image clipped to [0, 1]."""
    steps = schedule(cfg, noise_sigma)
    x = data.init()
    if cfg.method == "hqs":
        z = x
        for k, (s, mu) in enumerate(steps):
            x = data(z, mu)
            z = denoise(x, s)
            if callback:
                callback(k, z)
        return z.clamp(0, 1)
    z, u = x, torch.zeros_like(x)
    for k, (s, mu) in enumerate(steps):
        x = data(z - u, mu)
        z = denoise(x + u, s)
        u = u + x - z
        if callback:
            callback(k, z)
    return z.clamp(0, 1)


def network_denoiser(
    net: Callable[[torch.Tensor], torch.Tensor], trained_sigma: float | None, max_factor: float = 8.0
) -> Denoiser:
    """A trained denoising network (any module or function from images to images of the same shape) as
    `denoise(x, sigma)`. trained_sigma (0..255) of a fixed-level network turns on the scaling trick; None
    means a blind network, called as it is. The factor s0 / s is capped at max_factor: below s0 / max_factor
    the network denoises a little too strongly."""

    def denoise(x: torch.Tensor, sigma: float) -> torch.Tensor:
        if trained_sigma is None:
            return net(x)
        factor = min((trained_sigma / 255.0) / max(sigma, 1e-6), max_factor)
        # Stretch the contrast around the image's mean level m, so that the scaled image stays near [0, 1]:
        # D_s(x) = m + (D_s0(m + f (x - m)) - m) / f.
        mean = x.mean(dim=(-2, -1), keepdim=True)
        return mean + (net(mean + factor * (x - mean)) - mean) / factor

    return denoise


def oracle_denoiser(clean: torch.Tensor, keep: float = 0.5) -> Denoiser:
    """A denoiser that knows the answer and removes (1 - keep) of the error: for testing solvers."""
    return lambda x, sigma: clean + keep * (x - clean)


def gaussian_deblur_default(iters: int | None = None) -> PnPConfig:
    return PnPConfig(iters=iters or 24, sigma_start=49.0, lam=0.23)


def inpaint_default(iters: int | None = None) -> PnPConfig:
    return PnPConfig(iters=iters or 40, sigma_start=50.0, sigma_end=5.0, lam=0.23)
