"""Connectionist temporal classification (Graves, Fernandez, Gomez & Schmidhuber 2006): learning to label a
sequence without knowing which input step belongs to which label (the correspondence problem).

The network gives a distribution over the labels and a blank (id 0) at each of its T output steps. An alignment
pi in {0..C-1}^T yields a labelling by B: merge repeated labels, then drop blanks ("aa-ab" -> "ab"). CTC maximises
p(y | x) = sum over pi with B(pi) = y of prod_t p(pi_t | x), computed by the forward-backward recursion of
`torch.nn.CTCLoss` (blank 0, `zero_infinity`: an impossible target contributes 0 instead of inf).

Decoding: greedy (best path: the most probable label at each step, then B) and prefix beam search (Hannun et al.
2014: the `beam_size` most probable labellings, each prefix's probability split into "ends in blank" and "ends in
its last label" so that repeated labels are counted right). Logged: {train,val,test}/loss, {val,test}/ler (label
error rate: edit distance over target length, greedy), /seq_acc (whole labelling right), test/ler_beam; and each
validation epoch the first strips with their decoded labels, as an image in TensorBoard.
"""

import math
from collections import defaultdict

import torch
import torch.nn.functional as F

from dlfound.errors import ConfigError
from dlfound.metrics.sequences import label_error_rate
from dlfound.tasks.base import Task

BLANK = 0


def collapse(path: list[int]) -> list[int]:
    """B: merge repeats, then drop blanks."""
    out, previous = [], None
    for label in path:
        if label != previous and label != BLANK:
            out.append(label)
        previous = label
    return out


def greedy_decode(log_probs: torch.Tensor) -> list[list[int]]:
    """Best-path labellings of log-probabilities [B, T, C]."""
    return [collapse(row) for row in log_probs.argmax(-1).tolist()]


def _logsumexp(*values: float) -> float:
    top = max(values)
    return top if top == -math.inf else top + math.log(sum(math.exp(v - top) for v in values))


def prefix_beam_decode(log_probs: torch.Tensor, beam_size: int = 8) -> list[list[int]]:
    """Prefix beam search over log-probabilities [B, T, C] (CPU, float64 bookkeeping in log space)."""
    results = []
    for seq in log_probs.double().cpu():
        beams = {(): (0.0, -math.inf)}  # prefix -> (log p ending in blank, log p ending in its last label)
        for step in seq.tolist():
            candidates = sorted(range(len(step)), key=step.__getitem__, reverse=True)[:beam_size]
            new = defaultdict(lambda: (-math.inf, -math.inf))
            for prefix, (p_blank, p_label) in beams.items():
                for c in candidates:
                    p = step[c]
                    if c == BLANK:
                        b, n = new[prefix]
                        new[prefix] = (_logsumexp(b, p_blank + p, p_label + p), n)
                        continue
                    extended = prefix + (c,)
                    b, n = new[extended]
                    if prefix and prefix[-1] == c:
                        # "a" then "a" again is the same label unless a blank came between.
                        new[extended] = (b, _logsumexp(n, p_blank + p))
                        b0, n0 = new[prefix]
                        new[prefix] = (b0, _logsumexp(n0, p_label + p))
                    else:
                        new[extended] = (b, _logsumexp(n, p_blank + p, p_label + p))
            beams = dict(sorted(new.items(), key=lambda kv: _logsumexp(*kv[1]), reverse=True)[:beam_size])
        results.append(list(max(beams.items(), key=lambda kv: _logsumexp(*kv[1]))[0]))
    return results


class CTCTask(Task):
    monitor = "val/ler"
    monitor_mode = "min"

    def __init__(
        self,
        net,
        optim: dict,
        sched: dict | None = None,
        init: str = "default",
        beam_size: int = 8,
        log_strips: int = 4,
        compile: bool = False,
        channels_last: bool = False,
        ema_decay: float | None = None,
    ):
        super().__init__(net, optim, sched, init, compile, channels_last, ema_decay)
        self.beam_size, self.log_strips = beam_size, log_strips
        self.ctc = torch.nn.CTCLoss(blank=BLANK, zero_infinity=True)

    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.run_net(x).float(), -1)

    def _loss(self, log_probs: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        steps = log_probs.shape[1]
        too_long = int((lengths > steps).sum())
        if too_long:
            raise ConfigError(
                f"{too_long} target(s) of this batch hold more labels (up to {int(lengths.max())}) "
                f"than the network has output steps ({steps}); CTC cannot align them. Make the "
                "input wider or the labellings shorter."
            )
        input_lengths = torch.full((len(targets),), steps, dtype=torch.long, device=targets.device)
        return self.ctc(log_probs.transpose(0, 1), targets, input_lengths, lengths)

    def step(self, batch, stage: str) -> torch.Tensor:
        x, targets, lengths = batch
        log_probs = self.log_probs(x)
        loss = self._loss(log_probs, targets, lengths)
        n = len(x)
        if stage == "train":
            self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
            return loss
        self.log(f"{stage}/loss", loss, on_epoch=True, batch_size=n)
        truth = [row[:length].tolist() for row, length in zip(targets, lengths)]
        greedy = greedy_decode(log_probs)
        weight = int(lengths.sum())  # LER is errors over labels: the epoch mean must weigh batches by labels
        self.log(f"{stage}/ler", label_error_rate(greedy, truth), on_epoch=True, prog_bar=True, batch_size=weight)
        self.log(f"{stage}/seq_acc", sum(g == t for g, t in zip(greedy, truth)) / n, on_epoch=True, batch_size=n)
        if stage == "test" and self.beam_size > 1:
            beams = prefix_beam_decode(log_probs, self.beam_size)
            self.log("test/ler_beam", label_error_rate(beams, truth), on_epoch=True, batch_size=weight)
        return loss

    def validation_step(self, batch, batch_idx):
        super().validation_step(batch, batch_idx)
        if batch_idx == 0 and self.log_strips and not self.trainer.sanity_checking:
            strips = batch[0][: self.log_strips]
            self.log_decoded_strips(strips, greedy_decode(self.log_probs(strips)))

    def log_decoded_strips(self, strips: torch.Tensor, labels: list[list[int]]) -> None:
        """The strips stacked, each with its decoded digits written beneath."""
        if self.trainer.sanity_checking or not self.trainer.is_global_zero or not len(strips):
            return
        import numpy as np
        from lightning.pytorch.loggers import TensorBoardLogger
        from PIL import Image, ImageDraw

        tiles = []
        for strip, label in zip(strips, labels):
            gray = strip[0].float().cpu()
            gray = ((gray - gray.min()) / (gray.max() - gray.min()).clamp_min(1e-6) * 255).byte().numpy()
            canvas = Image.new("L", (gray.shape[1], gray.shape[0] + 14), 0)
            canvas.paste(Image.fromarray(gray), (0, 0))
            ImageDraw.Draw(canvas).text((2, gray.shape[0] + 1), "".join(str(c - 1) for c in label) or "-", fill=255)
            tiles.append(np.asarray(canvas))
        picture = np.concatenate(tiles, 0)
        for logger in self.trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("strips/val_decoded", picture, self.current_epoch, dataformats="HW")
