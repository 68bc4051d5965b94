"""Language modelling: predict each next token (a character or a BPE token), in nats per token and bits per character.

The loss is the mean cross-entropy of the next token, -1/T sum_t log p(x_{t+1} | x_{<=t}), in nats per token. Bits
per character are the summed nats over the summed characters of the target tokens, / ln 2 (a character model's
tokens are one character each, so its bpc is loss / ln 2): a character model and a BPE model compare on it.

A Transformer (`model=gpt`) sees each window on its own, its context cropped to `block_size`. A recurrent network
is trained by truncated backpropagation through time (Williams & Peng 1990; Sutskever 2013): the data
(`data.ordered=true`) serve consecutive windows of `data.block_size` characters, row b of a batch continuing row b
of the batch before; with `carry_state` the final hidden state of one window is the initial state of the next,
detached, so the network sees an unbounded past while gradients flow through `block_size` steps (the truncation
length); without it every window starts from zero. Validation and test carry the state the same way, from zero at
the start of each epoch.

Logged: {train,val,test}/loss (nats per token) and /bpc (bits per character, exact over the epoch). At the end of
each validation epoch a sample of generated text goes to TensorBoard's text tab and to RUN/samples/epochNNN.txt.
`sample_tokens` is the sampler `dlfound generate` streams from: temperature, top-k truncation of the distribution,
and a GPT's key/value cache.
"""

from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from dlfound.data.tokenizers import CharTokenizer, tokenizer_from_spec
from dlfound.errors import ConfigError
from dlfound.metrics.sequences import bits_per_char
from dlfound.tasks.base import Task


def encode(text: str, vocabulary: Sequence[str]) -> torch.Tensor:
    """Character ids of `text`; characters outside the vocabulary are a ConfigError that names them."""
    return CharTokenizer("".join(vocabulary)).encode(text)


@torch.no_grad()
def sample_tokens(
    net,
    prompt: torch.Tensor,
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    cache: bool = True,
) -> Iterator[int]:
    """Yield `length` sampled ids continuing `prompt` (ids [P], P >= 1), one at a time.

    A recurrent network carries its hidden state. A GPT with `cache` keeps its keys and values (`KVCache`), so each
    new token costs one position's forward pass; without it, every step re-reads the last block_size tokens."""
    if temperature <= 0:
        raise ConfigError(f"temperature must be positive, got {temperature}")
    device = next(net.parameters()).device
    ids = prompt.to(device)[None]
    recurrent = getattr(net, "is_recurrent", False)
    cached = cache and not recurrent and hasattr(net, "new_cache")
    state = None
    if recurrent:
        logits, state = net.forward_with_state(ids, None)
    elif cached:
        state = net.new_cache()
        logits = net.forward_cached(ids[:, -net.block_size :], state)
    for _ in range(length):
        if not recurrent and not cached:
            logits = net(ids[:, -net.block_size :])
        logits = logits[:, -1].float() / temperature
        if top_k:
            kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        token = torch.multinomial(logits.softmax(-1), 1, generator=generator)
        yield int(token)
        if recurrent:
            logits, state = net.forward_with_state(token, state)
        elif cached:
            logits = net.forward_cached(token, state)
        else:
            ids = torch.cat([ids, token], 1)


def detach(state):
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


class LanguageModelTask(Task):
    monitor = "val/loss"
    monitor_mode = "min"

    def __init__(
        self,
        net,
        optim: dict,
        sched: dict | None = None,
        init: str = "default",
        vocabulary: Sequence[str] | None = None,
        tokenizer: str | None = None,
        carry_state: bool = True,
        sample_length: int = 300,
        sample_prompt: str = "\n",
        sample_temperature: float = 0.8,
        sample_top_k: int | None = None,
        compile: bool = False,
        channels_last: bool = False,
        ema_decay: float | None = None,
    ):
        if getattr(net, "bidirectional", False):
            raise ConfigError(
                "a language model predicts each character from the ones before it, but a "
                "bidirectional network also reads the ones after it (the answer); use "
                "model.bidirectional=false"
            )
        super().__init__(net, optim, sched, init, compile, channels_last, ema_decay)
        self.vocabulary = list(vocabulary) if vocabulary is not None else None
        # The text's tokeniser: BPE's spec (recorded in the run's config), else the characters of `vocabulary`.
        self.tokenizer = tokenizer_from_spec(tokenizer) if tokenizer else None
        if self.tokenizer is None and self.vocabulary:
            self.tokenizer = CharTokenizer("".join(self.vocabulary))
        self.chars_per_token = self.tokenizer.chars_per_token() if self.tokenizer else None
        self.carry_state = carry_state
        self.sample_length, self.sample_prompt = sample_length, sample_prompt
        self.sample_temperature, self.sample_top_k = sample_temperature, sample_top_k
        self._state: dict[str, object] = {}

    @property
    def recurrent(self) -> bool:
        return bool(getattr(self.net, "is_recurrent", False))

    def logits(self, x: torch.Tensor, stage: str) -> torch.Tensor:
        if not self.recurrent:
            return self.run_net(x)
        state = self._state.get(stage) if self.carry_state else None
        if state is not None and (state[0] if isinstance(state, tuple) else state).shape[-2] != x.shape[0]:
            state = None  # a batch of another size (the last, short one) starts afresh
        logits, state = self.model.forward_with_state(x, state)
        self._state[stage] = detach(state)
        return logits

    def step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch
        logits = self.logits(x, stage)
        nats = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="sum")
        loss = nats / y.numel()
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, batch_size=y.numel())
        # Weighted by the characters of the targets, the epoch's mean is sum(nats) / sum(chars) over all batches.
        chars = self.target_chars(y)
        self.log(f"{stage}/bpc", bits_per_char(nats / chars), on_step=False, on_epoch=True, batch_size=chars)
        return loss

    def target_chars(self, y: torch.Tensor) -> int:
        """The characters the target tokens spell (one per token for a character model)."""
        if self.chars_per_token is None:
            return y.numel()
        return int(self.chars_per_token.to(y.device)[y].sum())

    def on_train_epoch_start(self):
        self._state.pop("train", None)

    def on_validation_epoch_start(self):
        self._state.pop("val", None)

    def on_test_epoch_start(self):
        self._state.pop("test", None)

    # -- text --------------------------------------------------------------------------------------------------
    def generate(
        self,
        prompt: str,
        length: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        cache: bool = True,
    ) -> Iterator[str]:
        """The text continuing `prompt`, `length` tokens, as it grows (a piece per token; a BPE token that ends
        inside a character shows with the next)."""
        if self.tokenizer is None:
            raise ConfigError("this checkpoint holds no vocabulary, so its ids cannot be turned into text")
        ids = self.tokenizer.encode(prompt)
        if len(ids) == 0:
            raise ConfigError('the prompt is empty; give at least one character, e.g. prompt="\\n"')
        tokens, shown, text = [], 0, ""
        for token in sample_tokens(self.model, ids, length, temperature, top_k, generator, cache):
            tokens.append(token)
            text = self.tokenizer.decode(tokens)
            if not text.endswith("\ufffd"):  # an incomplete UTF-8 character waits for its next bytes
                yield text[shown:]
                shown = len(text)
        if shown < len(text):
            yield text[shown:]

    def on_validation_epoch_end(self):
        wanted = self.tokenizer is not None and self.sample_length
        if self.trainer.sanity_checking or not self.trainer.is_global_zero or not wanted:
            return
        generator = torch.Generator(device=self.device).manual_seed(1234)
        text = self.sample_prompt + "".join(
            self.generate(self.sample_prompt, self.sample_length, self.sample_temperature, self.sample_top_k, generator)
        )
        from lightning.pytorch.loggers import TensorBoardLogger

        for logger in self.trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                # Markdown would swallow the line breaks of verse; a code block keeps them.
                logger.experiment.add_text("samples/text", "```\n" + text + "\n```", self.current_epoch)
        folder = Path(self.trainer.default_root_dir) / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"epoch{self.current_epoch:03d}.txt").write_text(text, encoding="utf-8")
