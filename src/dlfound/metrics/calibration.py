"""How well a classifier's probabilities match its accuracy, and whether its uncertainty flags unfamiliar inputs.

From predicted class probabilities p [N, C] and labels y [N]:
- NLL: -mean log p_y, the test-set negative log-likelihood per sample (nats).
- ECE, expected calibration error (Naeini, Cooper & Hauskrecht 2015; Guo, Pleiss, Sun & Weinberger 2017): the
  samples are binned by confidence max_c p_c into 15 equal-width bins, and ECE = sum_b |B_b| / N |acc(B_b) -
  conf(B_b)|, computed by torchmetrics' CalibrationError (norm "l1").
- Brier score (Brier 1950): mean over samples of sum_c (p_c - [c = y])^2, between 0 and 2.
- Predictive entropy H[p] = -sum_c p_c log p_c, the uncertainty of the averaged prediction (for a Bayesian
  network or an ensemble, of the mean of the members' softmax).
- Out-of-distribution detection (Hendrycks & Gimpel 2017): the entropy scores in-distribution test samples against
  samples of another set; AUROC is the chance that a random out-of-distribution sample has the higher entropy.

Pictures, as uint8 [H, W, 3] arrays for TensorBoard and PNG files (matplotlib, Agg): the reliability diagram
(accuracy against confidence per bin, with the diagonal of perfect calibration) and histograms of the entropy on
the test and the out-of-distribution sets.
"""

import numpy as np
import torch

ECE_BINS = 15


def nll(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -probs.gather(1, y[:, None]).clamp_min(1e-12).log().mean()


def ece(probs: torch.Tensor, y: torch.Tensor, bins: int = ECE_BINS) -> torch.Tensor:
    from torchmetrics.functional.classification import multiclass_calibration_error

    return multiclass_calibration_error(probs.float(), y, num_classes=probs.shape[1], n_bins=bins, norm="l1")


def brier(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    onehot = torch.nn.functional.one_hot(y, probs.shape[1]).to(probs.dtype)
    return ((probs - onehot) ** 2).sum(1).mean()


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """H[p] per sample, in nats (0 log 0 = 0)."""
    return -(probs * probs.clamp_min(1e-12).log()).sum(1)


def ood_auroc(in_scores: torch.Tensor, out_scores: torch.Tensor) -> torch.Tensor:
    """AUROC of telling out-of-distribution samples (positives) from in-distribution ones by a score that should
    be higher out of distribution (the predictive entropy)."""
    from torchmetrics.functional.classification import binary_auroc

    scores = torch.cat([in_scores, out_scores]).float()
    labels = torch.cat([torch.zeros(len(in_scores)), torch.ones(len(out_scores))]).long().to(scores.device)
    return binary_auroc(scores, labels)


def calibration_metrics(probs: torch.Tensor, y: torch.Tensor, ood_probs: torch.Tensor | None = None) -> dict:
    """error, nll, ece, brier (and ood_auroc when an out-of-distribution set's probabilities are given), floats."""
    metrics = {
        "error": float((probs.argmax(1) != y).float().mean()),
        "nll": float(nll(probs, y)),
        "ece": float(ece(probs, y)),
        "brier": float(brier(probs, y)),
    }
    if ood_probs is not None:
        metrics["ood_auroc"] = float(ood_auroc(entropy(probs), entropy(ood_probs)))
    return metrics


def reliability_bins(probs: torch.Tensor, y: torch.Tensor, bins: int = ECE_BINS):
    """(bin edges, accuracy per bin, mean confidence per bin, count per bin), NaN where a bin is empty."""
    confidence, predicted = probs.max(1)
    hits = (predicted == y).double()
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = torch.bucketize(confidence.double(), torch.from_numpy(edges[1:-1]), right=True).numpy()
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore"):
        acc = np.bincount(index, weights=hits.numpy(), minlength=bins) / counts
        conf = np.bincount(index, weights=confidence.double().numpy(), minlength=bins) / counts
    return edges, acc, conf, counts


def reliability_diagram(probs: torch.Tensor, y: torch.Tensor, title: str = "", bins: int = ECE_BINS) -> np.ndarray:
    """Accuracy per confidence bin as bars, beside the diagonal of a perfectly calibrated model (Guo et al. 2017,
    fig. 1); the gap to the diagonal is what ECE averages."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from dlfound.plots import figure_pixels

    probs, y = probs.detach().cpu().float(), y.detach().cpu()
    edges, acc, conf, counts = reliability_bins(probs, y, bins)
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    width = edges[1] - edges[0]
    filled = counts > 0
    ax.bar(
        edges[:-1][filled], acc[filled], width=width, align="edge", color="#1f77b4", edgecolor="black", label="accuracy"
    )
    ax.bar(
        edges[:-1][filled],
        (conf - acc)[filled],
        bottom=acc[filled],
        width=width,
        align="edge",
        color="#d62728",
        alpha=0.35,
        edgecolor="#d62728",
        label="gap to confidence",
    )
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="confidence",
        ylabel="accuracy",
        title=f"{title} ECE {float(ece(probs, y, bins)):.4f}".strip(),
    )
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return figure_pixels(fig)


def entropy_histogram(
    probs: torch.Tensor,
    ood_probs: torch.Tensor | None = None,
    title: str = "",
    labels: tuple[str, str] = ("test", "out of distribution"),
) -> np.ndarray:
    """Histograms of the predictive entropy on the test set and, when given, the out-of-distribution set."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from dlfound.plots import figure_pixels

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    top = np.log(probs.shape[1])
    bins = np.linspace(0, top, 41)
    ax.hist(entropy(probs.detach().cpu().float()).numpy(), bins=bins, alpha=0.6, density=True, label=labels[0])
    if ood_probs is not None:
        ax.hist(entropy(ood_probs.detach().cpu().float()).numpy(), bins=bins, alpha=0.6, density=True, label=labels[1])
    ax.set(xlabel="predictive entropy (nats)", ylabel="density", title=title)
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return figure_pixels(fig)
