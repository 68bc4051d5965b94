"""What happens inside a network while it trains: the `callbacks=diagnostics` callback.

Every `every_n_steps` optimizer steps it measures, per layer (a module with its own weight matrix or kernel, in
the order the network registers them, which is the order of its forward pass for the zoo's networks):
- the gradient norm |dL/dW| just before the optimizer steps, and the weight norm |W|;
- the update-to-weight ratio |W_after - W_before| / |W_before| of that step (Karpathy's rule of thumb: about 1e-3);
- the layer output's mean and standard deviation;
- at every activation module (ReLU, tanh, sigmoid, ...), the 15th, 50th and 85th percentiles of its first unit's
  input over the batch (Ioffe & Szegedy 2015, Fig. 1: the input distribution of one sigmoid over training), and
  after a ReLU the fraction of its units that are zero for the whole batch (dead on that batch).

Scalars go to TensorBoard under diagnostics/ (histograms of weights and gradients at the first measured step of
each epoch), every measurement to RUN/diagnostics/diagnostics.json, which `dlfound figure` reads, and at the end
a summary picture, RUN/diagnostics/summary.png: gradient norm and update ratio by layer index, first and last
epoch. Between measured steps it costs nothing: hooks are attached for the measured batch only.
"""

import json
from pathlib import Path

import lightning as L
import torch
from torch import nn

FOLDER = "diagnostics"
FILE = "diagnostics.json"
QUANTILES = (0.15, 0.5, 0.85)
# Buckets per TensorBoard histogram (its own default makes hundreds).
HISTOGRAM_BINS = 64
RELUS = (nn.ReLU, nn.ReLU6)
ACTIVATIONS = (*RELUS, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Softplus)


def watched_layers(net: nn.Module) -> list[tuple[str, nn.Module, list[nn.Parameter]]]:
    """(name, module, its weight matrices) for every module owning a trainable parameter of two or more
    dimensions: linear and convolution layers, embeddings, recurrent cells; not normalisation layers."""
    layers = []
    for name, module in net.named_modules():
        weights = [p for p in module.parameters(recurse=False) if p.requires_grad and p.dim() >= 2]
        if weights:
            layers.append((name or type(module).__name__, module, weights))
    return layers


def unit_values(out: torch.Tensor) -> torch.Tensor:
    """The first unit's values over the batch: channel 0 of an image batch [N, C, H, W], else feature 0 of the
    last dimension ([N, C] features, [N, T, C] sequences)."""
    return (out[:, 0] if out.dim() == 4 else out[..., 0]).flatten()


def dead_fraction(out: torch.Tensor) -> torch.Tensor:
    """The fraction of units (channels of an image batch, else features) whose output is zero on every input."""
    units = out.transpose(0, 1) if out.dim() == 4 else out.reshape(-1, out.shape[-1]).transpose(0, 1)
    return (units.reshape(units.shape[0], -1) <= 0).all(1).float().mean()


def tensor_of(value) -> torch.Tensor | None:
    """The batch of features a hook sees (the first of a tuple: a recurrent layer's output), as float32; None
    for what has no batch of features."""
    out = value[0] if isinstance(value, (tuple, list)) and value else value
    if not isinstance(out, torch.Tensor) or out.dim() < 2 or not out.is_floating_point():
        return None
    return out.detach().float()


def norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t.float()) for t in tensors]))


class Diagnostics(L.Callback):
    """Per-layer gradient, weight, update and activation statistics every `every_n_steps` optimizer steps;
    `histograms` adds TensorBoard histograms of weights and gradients once per epoch."""

    def __init__(self, every_n_steps: int = 50, histograms: bool = True):
        if every_n_steps < 1:
            from dlfound.errors import ConfigError

            raise ConfigError(f"diagnostics.every_n_steps must be at least 1, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self.histograms = histograms
        self.records: list[dict] = []
        self._layers: list = []
        self._hooks: list = []
        self._outputs: dict[str, dict[str, torch.Tensor]] = {}
        self._grads: torch.Tensor | None = None
        self._before: list[list[torch.Tensor]] | None = None
        self._histogram_epoch = -1

    # ------------------------------------------------------------ when

    def on_train_start(self, trainer, pl_module):
        self._layers = watched_layers(pl_module.net)
        # A resumed run keeps what was measured before its checkpoint, and measures the rest again.
        path = self.path(trainer)
        if path.is_file():
            kept = json.loads(path.read_text()).get("records", [])
            self.records = [r for r in kept if r["step"] < trainer.global_step]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step % self.every_n_steps == 0 and not self._hooks:
            self._attach(pl_module.net)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if not self._hooks:
            return
        with torch.no_grad():
            self._grads = torch.stack(
                [norm([w.grad for w in ws if w.grad is not None] or [torch.zeros(())]) for _, _, ws in self._layers]
            )
            self._before = [[w.detach().clone() for w in ws] for _, _, ws in self._layers]
            if self.histograms and trainer.current_epoch != self._histogram_epoch:
                self._histogram_epoch = trainer.current_epoch
                self._write_histograms(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if not self._hooks:
            return
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        if self._grads is None:  # no optimizer step on this batch (accumulating gradients)
            return
        record = self._measure(trainer)
        self.records.append(record)
        self._log(trainer, record)

    def on_train_epoch_end(self, trainer, pl_module):
        self.write(trainer)

    def on_train_end(self, trainer, pl_module):
        self.write(trainer)
        if trainer.is_global_zero and self.records:
            from dlfound.image_files import write_picture

            picture = summary_picture(self.records, [name for name, _, _ in self._layers])
            write_picture(picture, self.path(trainer).with_name("summary.png"))
            for logger in tensorboards(trainer):
                logger.experiment.add_image("diagnostics/summary", picture, trainer.global_step, dataformats="HWC")

    # ------------------------------------------------------------ what

    def _attach(self, net: nn.Module) -> None:
        self._outputs = {}
        for name, module, _ in self._layers:
            self._hooks.append(module.register_forward_hook(self._keep_output(name)))
        for name, module in net.named_modules():
            if isinstance(module, ACTIVATIONS):
                # The input before the module runs: an in-place ReLU overwrites it.
                self._hooks.append(module.register_forward_pre_hook(self._keep_activation_input(name)))
                if isinstance(module, RELUS):
                    self._hooks.append(module.register_forward_hook(self._keep_dead_units(name)))

    def _keep_output(self, name: str):
        def hook(module, inputs, output):
            out = tensor_of(output)
            if out is not None:
                self._outputs.setdefault("layers", {})[name] = torch.stack([out.mean(), out.std()])

        return hook

    def _keep_activation_input(self, name: str):
        def hook(module, inputs):
            x = tensor_of(inputs)
            if x is not None:
                unit = unit_values(x)
                self._outputs.setdefault("inputs", {})[name] = torch.quantile(
                    unit, torch.tensor(QUANTILES, device=unit.device)
                )

        return hook

    def _keep_dead_units(self, name: str):
        def hook(module, inputs, output):
            out = tensor_of(output)
            if out is not None:
                self._outputs.setdefault("dead", {})[name] = dead_fraction(out)

        return hook

    def _measure(self, trainer) -> dict:
        with torch.no_grad():
            weights = torch.stack([norm(ws) for _, _, ws in self._layers])
            updates = torch.stack(
                [
                    norm([w.detach() - b for w, b in zip(ws, before)])
                    for (_, _, ws), before in zip(self._layers, self._before)
                ]
            )
            before = torch.stack([norm(b) for b in self._before])
        names = [name for name, _, _ in self._layers]
        record = {
            "step": trainer.global_step - 1,
            "epoch": trainer.current_epoch,
            "layers": names,
            "grad_norm": self._grads.tolist(),
            "weight_norm": weights.tolist(),
            "update_ratio": (updates / before.clamp_min(1e-12)).tolist(),
        }
        # Each kind of hook measurement as one {module name: values} dict, moved to the host in one transfer.
        for key, found in (
            ("output_mean_std", self._outputs.get("layers")),
            ("activation_input_quantiles", self._outputs.get("inputs")),
            ("dead_relu", self._outputs.get("dead")),
        ):
            if found:
                record[key] = dict(zip(found, torch.stack(list(found.values())).tolist()))
        self._grads, self._before, self._outputs = None, None, {}
        return record

    def _log(self, trainer, record: dict) -> None:
        scalars = {}
        for i, name in enumerate(record["layers"]):
            for key in ("grad_norm", "weight_norm", "update_ratio"):
                scalars[f"diagnostics/{key}/{i:02d}.{name}"] = record[key][i]
        for name, (mean, std) in record.get("output_mean_std", {}).items():
            scalars[f"diagnostics/output_mean/{name}"] = mean
            scalars[f"diagnostics/output_std/{name}"] = std
        for name, value in record.get("dead_relu", {}).items():
            scalars[f"diagnostics/dead_relu/{name}"] = value
        write_summary(trainer, record["step"], scalars=scalars)

    def _write_histograms(self, trainer) -> None:
        histograms = {}
        for i, (name, _, ws) in enumerate(self._layers):
            histograms[f"diagnostics/weights/{i:02d}.{name}"] = torch.cat([w.detach().flatten() for w in ws])
            grads = [w.grad.flatten() for w in ws if w.grad is not None]
            if grads:
                histograms[f"diagnostics/grads/{i:02d}.{name}"] = torch.cat(grads)
        write_summary(trainer, trainer.global_step, histograms=histograms)

    # ------------------------------------------------------------ where

    @staticmethod
    def path(trainer) -> Path:
        return Path(trainer.default_root_dir) / FOLDER / FILE

    def write(self, trainer) -> None:
        if not trainer.is_global_zero:
            return
        from dlfound.files import write_text

        path = self.path(trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(
            path, json.dumps({"every_n_steps": self.every_n_steps, "quantiles": QUANTILES, "records": self.records})
        )


def tensorboards(trainer) -> list:
    from lightning.pytorch.loggers import TensorBoardLogger

    return (
        [logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]
        if trainer.is_global_zero
        else []
    )


def write_summary(trainer, step: int, scalars: dict | None = None, histograms: dict | None = None) -> None:
    """All values of one measurement as one TensorBoard event (rank zero, TensorBoard loggers only: the CSV
    logger's file would grow a column per layer and statistic)."""
    loggers = tensorboards(trainer)
    if not loggers:
        return
    from tensorboard.compat.proto.summary_pb2 import Summary

    values = [Summary.Value(tag=tag, simple_value=float(x)) for tag, x in (scalars or {}).items()]
    values += [Summary.Value(tag=tag, histo=histogram_proto(x)) for tag, x in (histograms or {}).items()]
    for logger in loggers:
        logger.experiment._get_file_writer().add_summary(Summary(value=values), step)


def histogram_proto(values: torch.Tensor):
    """TensorBoard's histogram of `values`, computed by torch: computing torch.utils.tensorboard's own (through
    numpy) slowed a small model's training by half on two cores, even without writing it
    (scripts/diagnostics_overhead.py)."""
    from tensorboard.compat.proto.summary_pb2 import HistogramProto

    x = values.detach().float().flatten().cpu()
    counts, edges = torch.histogram(x, bins=HISTOGRAM_BINS)
    return HistogramProto(
        min=float(x.min()),
        max=float(x.max()),
        num=x.numel(),
        sum=float(x.sum()),
        sum_squares=float(x.dot(x)),
        bucket_limit=edges[1:].tolist(),
        bucket=counts.tolist(),
    )


def read_diagnostics(run_dir: str | Path) -> list[dict]:
    """The measurements a run's diagnostics callback recorded (empty when it ran without one)."""
    path = Path(run_dir) / FOLDER / FILE
    return json.loads(path.read_text())["records"] if path.is_file() else []


def by_layer(records: list[dict], key: str, epoch: int) -> list[float]:
    """The mean of `key` over the records of one epoch, per layer."""
    rows = [r[key] for r in records if r["epoch"] == epoch]
    return [sum(values) / len(rows) for values in zip(*rows)]


def summary_picture(records: list[dict], layers: list[str]):
    """Gradient norm and update-to-weight ratio by layer index, at the first and the last epoch (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dlfound.plots import figure_pixels

    first, last = records[0]["epoch"], records[-1]["epoch"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key, title in zip(axes, ("grad_norm", "update_ratio"), ("gradient norm |dL/dW|", "update / weight")):
        for epoch, style in ((first, "o-"), (last, "s--")) if last != first else ((first, "o-"),):
            ax.plot(by_layer(records, key, epoch), style, label=f"epoch {epoch}")
        ax.set_yscale("log")
        if len(layers) <= 12:
            ax.set_xticks(range(len(layers)), layers, rotation=45, ha="right", fontsize="small")
        ax.set_xlabel("layer index (input to output)")
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    fig.tight_layout()
    return figure_pixels(fig)
