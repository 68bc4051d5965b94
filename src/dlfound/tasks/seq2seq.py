"""Sequence to sequence (Sutskever, Vinyals & Le 2014; Bahdanau, Cho & Bengio 2015): an encoder reads the source,
a decoder writes the target one token at a time.

Training uses teacher forcing: the decoder is fed the true previous token, y_in = [BOS, y_1 .. y_{U-1}], and
the loss is the cross-entropy of y_out = [y_1 .. y_U, EOS] over non-padding positions. Evaluation decodes
without the answer: greedily (the most probable next token), and at test time also by beam search (the `beam_size`
best prefixes by summed log-probability, finished at EOS, ranked by log-probability / length^`length_penalty`).
The network provides `forward(src, tgt_in)`, `encode`, `init_state`, `decode_step` and `reorder_state`
(dlfound.models.seq2seq).

Logged: {train,val,test}/loss, {val,test}/exact (greedy: the whole answer right), test/exact_beam, and each
validation epoch the attention map of the first example (target steps down, source positions across) as an
image in TensorBoard.
"""

import torch
import torch.nn.functional as F

from dlfound.tasks.base import Task


@torch.no_grad()
def greedy_decode(net, src: torch.Tensor, max_len: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(tokens [B, L] ending in EOS then PAD, attention [B, L, S] or None)."""
    memory = net.encode(src)
    state = net.init_state(memory)
    prev = torch.full((len(src),), net.bos_id, dtype=torch.long, device=src.device)
    done = torch.zeros(len(src), dtype=torch.bool, device=src.device)
    tokens, maps = [], []
    for _ in range(max_len):
        logits, state, attention = net.decode_step(prev, state, memory)
        prev = logits.argmax(-1).masked_fill(done, net.pad_id)
        tokens.append(prev)
        if attention is not None:
            maps.append(attention)
        done |= prev == net.eos_id
        if done.all():
            break
    return torch.stack(tokens, 1), torch.stack(maps, 1) if maps else None


@torch.no_grad()
def beam_decode(net, src: torch.Tensor, beam_size: int, max_len: int, length_penalty: float = 1.0) -> list[list[int]]:
    """The best hypothesis of each source sequence (token ids, without EOS). The beam is kept as `beam_size` rows
    of a batch; at the start only the first row is alive (the others score -inf)."""
    results = []
    for row in src:
        memory = net.encode(row[None].expand(beam_size, -1))
        state = net.init_state(memory)
        prev = torch.full((beam_size,), net.bos_id, dtype=torch.long, device=src.device)
        scores = torch.full((beam_size,), float("-inf"), device=src.device)
        scores[0] = 0.0
        history: list[list[int]] = [[] for _ in range(beam_size)]
        finished: list[tuple[list[int], float]] = []
        for _ in range(max_len):
            logits, state, _ = net.decode_step(prev, state, memory)
            total = scores[:, None] + F.log_softmax(logits.float(), -1)
            best = total.flatten().topk(beam_size)
            beams, tokens = best.indices // total.shape[1], best.indices % total.shape[1]
            scores = best.values.clone()
            history = [history[b] + [int(t)] for b, t in zip(beams.tolist(), tokens.tolist())]
            for i, tokens_so_far in enumerate(history):
                if tokens_so_far[-1] == net.eos_id and torch.isfinite(scores[i]):
                    finished.append((tokens_so_far[:-1], float(scores[i]) / len(tokens_so_far) ** length_penalty))
                    scores[i] = float("-inf")  # a finished hypothesis grows no further
            if len(finished) >= beam_size or not torch.isfinite(scores).any():
                break
            state, prev = net.reorder_state(state, beams), tokens
        finished += [(h, float(sc) / len(h) ** length_penalty) for h, sc in zip(history, scores) if torch.isfinite(sc)]
        results.append(max(finished, key=lambda f: f[1])[0] if finished else [])
    return results


def strip(tokens: list[int], eos_id: int, pad_id: int) -> list[int]:
    """Token ids up to the first EOS, without padding."""
    out = []
    for t in tokens:
        if t == eos_id:
            break
        if t != pad_id:
            out.append(t)
    return out


class Seq2SeqTask(Task):
    monitor = "val/exact"
    monitor_mode = "max"

    def __init__(
        self,
        net,
        optim: dict,
        sched: dict | None = None,
        init: str = "default",
        beam_size: int = 4,
        length_penalty: float = 1.0,
        max_decode_len: int | None = None,
        label_smoothing: float = 0.0,
        log_attention: bool = True,
        compile: bool = False,
        channels_last: bool = False,
        ema_decay: float | None = None,
    ):
        super().__init__(net, optim, sched, init, compile, channels_last, ema_decay)
        self.beam_size, self.length_penalty, self.max_decode_len = beam_size, length_penalty, max_decode_len
        self.label_smoothing, self.log_attention = label_smoothing, log_attention

    def _loss(self, src, tgt) -> torch.Tensor:
        logits = self.run_net(src, tgt[:, :-1])
        return F.cross_entropy(
            logits.flatten(0, 1).float(),
            tgt[:, 1:].flatten(),
            ignore_index=self.net.pad_id,
            label_smoothing=self.label_smoothing,
        )

    def answers(self, tgt: torch.Tensor) -> list[list[int]]:
        eos, pad = self.net.eos_id, self.net.pad_id
        return [strip(row[1:].tolist(), eos, pad) for row in tgt]

    def decode_len(self, tgt: torch.Tensor) -> int:
        return self.max_decode_len or tgt.shape[1] + 2

    def greedy(self, src: torch.Tensor, max_len: int) -> tuple[list[list[int]], torch.Tensor | None]:
        """(the greedy answers without BOS, EOS and padding, attention weights or None)."""
        tokens, attention = greedy_decode(self.model, src, max_len)
        return [strip(row.tolist(), self.net.eos_id, self.net.pad_id) for row in tokens], attention

    def step(self, batch, stage: str) -> torch.Tensor:
        src, tgt = batch
        n = len(src)
        loss = self._loss(src, tgt)
        if stage == "train":
            self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
            return loss
        self.log(f"{stage}/loss", loss, on_epoch=True, batch_size=n)
        max_len = self.decode_len(tgt)
        greedy, _ = self.greedy(src, max_len)
        truth = self.answers(tgt)
        exact = sum(g == t for g, t in zip(greedy, truth)) / n
        self.log(f"{stage}/exact", exact, on_epoch=True, prog_bar=True, batch_size=n)
        if stage == "test" and self.beam_size > 1:
            beams = beam_decode(self.model, src, self.beam_size, max_len, self.length_penalty)
            self.log("test/exact_beam", sum(b == t for b, t in zip(beams, truth)) / n, on_epoch=True, batch_size=n)
        return loss

    def validation_step(self, batch, batch_idx):
        super().validation_step(batch, batch_idx)
        if batch_idx == 0 and self.log_attention and not self.trainer.sanity_checking:
            src, tgt = batch
            greedy, attention = self.greedy(src[:1], self.decode_len(tgt))
            if attention is not None:
                self.log_attention_map(src[0], greedy[0], attention[0])

    def log_attention_map(self, src: torch.Tensor, output: list[int], attention: torch.Tensor) -> None:
        """Attention weights of the first validation example as a grey image: one row per output token (and
        EOS), one column per source token, 16 pixels a cell, white = all attention there."""
        if self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return
        from lightning.pytorch.loggers import TensorBoardLogger

        rows = attention[: len(output) + 1, : int((src != self.net.pad_id).sum())].float().cpu()
        picture = rows.repeat_interleave(16, 0).repeat_interleave(16, 1)[None]
        for logger in self.trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("attention/val_0", picture, self.current_epoch)
