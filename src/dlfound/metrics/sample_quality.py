"""Sample-quality metrics that work offline: FID and KID on any features, MMD, and mode coverage on 2-D mixtures.

- FID (Heusel et al., 2017): the Frechet distance between Gaussians fitted to the features of real and generated
  samples, ||mu_r - mu_g||^2 + tr(C_r + C_g - 2 (C_r C_g)^(1/2)).
- KID (Binkowski et al., 2018): the unbiased squared MMD with the cubic polynomial kernel
  k(a, b) = (a.b / d + 1)^3, averaged over random subsets; unbiased, so it is ~0 (and can be slightly negative)
  for two samples of the same distribution, at any sample size.
- MMD with a sum of Gaussian kernels (Gretton et al., 2012) at several bandwidths, for 2-D point sets.
- Mode coverage on a mixture of Gaussians (Metz et al. 2017; Srivastava et al. 2017; the PacGAN protocol of
  Lin et al. 2018): a sample is of high quality if it lies within 3 standard deviations of a mode's centre, and a
  mode counts as covered if at least 20 of every 2,500 samples are high-quality samples of it; and the weight a
  model gives each mode (the fraction of samples nearest to it), against the mixture's weights.

The published FIDs use Inception-v3 features of ImageNet images. Those weights cannot be downloaded here, so the
features come from a pluggable extractor (`dlfound.runs.build.load_feature_extractor`):
  PATH.ckpt          a dlfound classifier checkpoint (e.g. `experiment=mnist_lenet5`): its `forward_features`,
                     the penultimate features (the input of its last linear layer);
  inception:PATH     torchvision's Inception-v3 with the weights in PATH (torchvision's state dict), 2,048 pooled
                     features of images resized to 299x299;
  pixels             the flattened images themselves.
Scores from a dlfound classifier are comparable only with scores from the same checkpoint, never with published
Inception FIDs.
"""

from pathlib import Path

import torch
from torch import nn

from dlfound.errors import ConfigError


# -- distances between feature sets ----------------------------------------------------------------------------
def _mean_cov(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    f = f.double()
    mu = f.mean(0)
    centred = f - mu
    return mu, centred.T @ centred / (len(f) - 1)


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two feature sets [N, F] (float64 inside). tr((C_r C_g)^(1/2)) is computed as
    tr((C_r^(1/2) C_g C_r^(1/2))^(1/2)), a symmetric positive semi-definite matrix, so no complex parts arise."""
    if len(real) < 2 or len(fake) < 2:
        raise ValueError("FID needs at least two samples on each side")
    mu_r, c_r = _mean_cov(real)
    mu_g, c_g = _mean_cov(fake)
    root = _sqrtm_psd(c_r)
    trace_sqrt = torch.linalg.eigvalsh(root @ c_g @ root).clamp_min(0).sqrt().sum()
    fid = (mu_r - mu_g).pow(2).sum() + torch.trace(c_r) + torch.trace(c_g) - 2 * trace_sqrt
    return float(fid.clamp_min(0))


def _mmd2_unbiased(k_xx: torch.Tensor, k_yy: torch.Tensor, k_xy: torch.Tensor) -> torch.Tensor:
    m, n = len(k_xx), len(k_yy)
    return (
        (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
        + (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
        - 2 * k_xy.mean()
    )


def kernel_inception_distance(
    real: torch.Tensor, fake: torch.Tensor, subsets: int = 10, subset_size: int = 1000, seed: int = 0
) -> float:
    """KID: the unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, averaged over `subsets` random subsets."""
    real, fake = real.double(), fake.double()
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        raise ValueError("KID needs at least two samples on each side")
    d = real.shape[1]
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        x = real[torch.randperm(len(real), generator=g)[:size]]
        y = fake[torch.randperm(len(fake), generator=g)[:size]]
        kernel = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
        values.append(_mmd2_unbiased(kernel(x, x), kernel(y, y), kernel(x, y)))
    return float(torch.stack(values).mean())


def mmd_rbf(
    real: torch.Tensor,
    fake: torch.Tensor,
    bandwidths: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5, 1.0),
    max_samples: int = 2000,
) -> float:
    """Unbiased MMD^2 with a sum of Gaussian kernels whose widths are `bandwidths` times the median distance
    between real samples: small widths see modes, large ones the overall spread."""
    real, fake = real[:max_samples].double().flatten(1), fake[:max_samples].double().flatten(1)
    d_xx, d_yy, d_xy = torch.cdist(real, real) ** 2, torch.cdist(fake, fake) ** 2, torch.cdist(real, fake) ** 2
    median = d_xx[d_xx > 0].median().sqrt() if (d_xx > 0).any() else torch.tensor(1.0, dtype=torch.float64)
    total = torch.zeros((), dtype=torch.float64)
    for b in bandwidths:
        s2 = 2 * (b * median) ** 2
        total = total + _mmd2_unbiased(torch.exp(-d_xx / s2), torch.exp(-d_yy / s2), torch.exp(-d_xy / s2))
    return float(total)


def mode_coverage(
    samples: torch.Tensor, centers: torch.Tensor, std: float, threshold: float = 3.0, min_count_per_2500: int = 20
) -> dict[str, float]:
    """{'modes_covered', 'hq_fraction'} of 2-D samples on a Gaussian mixture with the given centres and std."""
    samples, centers = samples.detach().double().cpu(), torch.as_tensor(centers, dtype=torch.float64)
    dist = torch.cdist(samples, centers)
    nearest, which = dist.min(1)
    good = nearest <= threshold * std
    counts = torch.bincount(which[good], minlength=len(centers))
    min_count = max(1, round(min_count_per_2500 * len(samples) / 2500))
    return {"modes_covered": float((counts >= min_count).sum()), "hq_fraction": float(good.double().mean())}


def mode_weights(samples: torch.Tensor, centers: torch.Tensor, weights: torch.Tensor) -> dict[str, float]:
    """How much weight a model gives each mode: the fraction of samples nearest to each centre, against the
    mixture's weights. {'weight_error': the largest difference, 'heaviest_mode_weight': the sampled fraction of
    the heaviest mode} (Song & Ermon 2019's test: 0.8 for their mixture, where plain Langevin dynamics errs)."""
    samples, centers = samples.detach().double().cpu(), torch.as_tensor(centers, dtype=torch.float64)
    weights = torch.as_tensor(weights, dtype=torch.float64).cpu()
    fractions = torch.bincount(torch.cdist(samples, centers).argmin(1), minlength=len(centers)).double() / len(samples)
    return {
        "weight_error": float((fractions - weights).abs().max()),
        "heaviest_mode_weight": float(fractions[weights.argmax()]),
    }


def score_features(f_real: torch.Tensor, f_fake: torch.Tensor, with_fid: bool = True) -> dict[str, float]:
    """{'kid', 'fid'} of generated images against real ones, on their features (FID only `with_fid`: it means
    little on raw pixels)."""
    scores = {"kid": kernel_inception_distance(f_real, f_fake, subset_size=1000)}
    if with_fid:
        scores["fid"] = frechet_distance(f_real, f_fake)
    return scores


def score_points(
    real: torch.Tensor,
    fake: torch.Tensor,
    centers: torch.Tensor | None = None,
    std: float | None = None,
    weights: torch.Tensor | None = None,
) -> dict[str, float]:
    """{'mmd'} of 2-D samples against real points, and on a Gaussian mixture (its centres and std given) the mode
    coverage, plus the weight error when the mixture's weights are given."""
    scores = {"mmd": mmd_rbf(real.cpu(), fake.cpu())}
    if centers is not None:
        scores.update(mode_coverage(fake, centers, std))
        if weights is not None:
            scores.update(mode_weights(fake, centers, weights))
    return scores


# -- feature extractors (dlfound.runs.build.load_feature_extractor picks one) --------------------------------
class ClassifierFeatures(nn.Module):
    """A classifier's penultimate features (its `forward_features`), for inputs in [0, 1] normalised as the
    classifier was trained."""

    def __init__(self, net: nn.Module, mean=None, std=None, input_shape: tuple[int, ...] | None = None):
        super().__init__()
        if not hasattr(net, "forward_features"):
            raise ConfigError(
                f"{type(net).__name__} has no forward_features; use a classifier of dlfound's zoo as "
                "the feature extractor"
            )
        self.net = net.eval()
        self.input_shape = input_shape
        self.register_buffer(
            "mean", torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) if mean is not None else None
        )
        self.register_buffer(
            "std", torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1) if std is not None else None
        )

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(self.prepare(x)).flatten(1).float()

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs in [0, 1], checked against the classifier's input shape and normalised as it was trained."""
        if self.input_shape is not None and tuple(x.shape[1:]) != tuple(self.input_shape):
            raise ConfigError(
                f"the feature extractor was trained on inputs of shape {tuple(self.input_shape)}, "
                f"but the samples have shape {tuple(x.shape[1:])}; use a classifier trained on the "
                "same dataset as the generative model"
            )
        return (x - self.mean) / self.std if self.mean is not None else x

    @torch.no_grad()
    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's own class scores [N, classes] for inputs in [0, 1] (e.g. to check what a conditional
        generator drew)."""
        return self.net(self.prepare(x))


class InceptionFeatures(nn.Module):
    """torchvision's Inception-v3 with weights from a local file: 2,048 pooled features of 299x299 RGB."""

    def __init__(self, weights: str):
        super().__init__()
        from torchvision.models import inception_v3

        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"inception:{weights}: no such file. Give the path of torchvision's Inception-v3 "
                "weights (inception_v3_google-*.pth) copied from a machine with network access"
            )
        net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        net.fc = nn.Identity()
        self.net = net.eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.net((x - self.mean) / self.std).float()


class PixelFeatures(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).float()


@torch.no_grad()
def features_of(extractor: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    tensors = [*extractor.parameters(), *extractor.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    return torch.cat([extractor(chunk.to(device)).cpu() for chunk in images.split(batch_size)])
