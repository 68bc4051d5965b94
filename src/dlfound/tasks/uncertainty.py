"""What the classifiers' test adds for uncertainty: predictions averaged over stochastic passes, and the calibration
and out-of-distribution measurements of dlfound.metrics.calibration with their pictures.

MC dropout (Gal & Ghahramani, "Dropout as a Bayesian Approximation", 2016): dropout kept on at test time samples
networks from an approximate posterior, and the predictive distribution is the mean of their softmax outputs,
p(y | x) ~ 1/T sum_t softmax(f_{w_t}(x)), T = `mc_samples`. Only dropout layers are switched to training mode;
batch norm keeps its running statistics. A Bayes by Backprop network samples its weights on every pass, so the
same average over passes is its predictive distribution.
"""

from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from dlfound.errors import ConfigError
from dlfound.metrics import calibration


def dropout_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]


def check_mc_samples(net: nn.Module, mc_samples: int, stochastic: bool) -> None:
    """mc_samples > 1 averages passes that differ only when the network is stochastic at test time."""
    if not isinstance(mc_samples, int) or mc_samples < 1:
        raise ConfigError(f"task.mc_samples must be a positive integer (1: one pass), got {mc_samples!r}")
    if mc_samples > 1 and not stochastic and not any(getattr(m, "p", 0) > 0 for m in dropout_layers(net)):
        raise ConfigError(
            f"task.mc_samples={mc_samples} asks for MC dropout, but {type(net).__name__} has no dropout layer "
            "(or only ones with p=0), so every pass would give the same prediction. Give the network dropout "
            "(e.g. model.dropout=0.5 for lenet5 or mlp), or leave task.mc_samples=1."
        )


@contextmanager
def dropout_on(net: nn.Module):
    """Dropout layers in training mode (sampling masks), everything else as it was."""
    layers = [m for m in dropout_layers(net) if not m.training]
    for m in layers:
        m.train()
    try:
        yield
    finally:
        for m in layers:
            m.eval()


def mean_softmax(forward, x: torch.Tensor, samples: int) -> torch.Tensor:
    """1/T sum_t softmax(forward(x)) over T stochastic passes."""
    probs = forward(x).softmax(-1)
    for _ in range(samples - 1):
        probs = probs + forward(x).softmax(-1)
    return probs / samples


class UncertaintyReport:
    """Collects the test set's predicted probabilities (and those of the out-of-distribution set, the second test
    loader when the data module has one) and, at the end of the test, logs {stage}/nll, /ece, /brier and
    /ood_auroc and draws the reliability diagram and entropy histogram to TensorBoard and RUN/images/."""

    def __init__(self):
        self.probs, self.labels, self.ood = [], [], []

    def add(self, probs: torch.Tensor, y: torch.Tensor, ood: bool) -> None:
        if ood:
            self.ood.append(probs.detach().float().cpu())
        else:
            self.probs.append(probs.detach().float().cpu())
            self.labels.append(y.detach().cpu())

    def finish(self, task, stage: str = "test") -> dict:
        if not self.probs:
            return {}
        probs, y = torch.cat(self.probs), torch.cat(self.labels)
        ood = torch.cat(self.ood) if self.ood else None
        self.__init__()
        metrics = calibration.calibration_metrics(probs, y, ood)
        # Per rank under DDP (each rank's share), averaged over ranks by Task.log.
        for name in ("nll", "ece", "brier", "ood_auroc"):
            if name in metrics:
                task.log(f"{stage}/{name}", metrics[name], on_step=False, on_epoch=True)
        # Pictures belong to a run folder: a trainer without loggers (`dlfound eval`) has none to write into.
        if task._trainer is not None and task.trainer.is_global_zero and task.trainer.loggers:
            write_pictures(task, stage, probs, y, ood)
        return metrics


def write_pictures(task, stage: str, probs, y, ood) -> None:
    from lightning.pytorch.loggers import TensorBoardLogger

    from dlfound.image_files import write_picture

    name = type(task.net).__name__
    pictures = {
        "reliability": calibration.reliability_diagram(probs, y, title=name),
        "entropy": calibration.entropy_histogram(probs, ood, title=f"{name}: predictive entropy"),
    }
    for kind, picture in pictures.items():
        for logger in task.trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(f"{stage}/{kind}", picture, task.global_step, dataformats="HWC")
        write_picture(picture, Path(task.trainer.default_root_dir) / "images" / f"{stage}_{kind}.png")
