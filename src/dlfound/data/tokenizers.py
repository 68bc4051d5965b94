"""Tokenisers of a text corpus: characters, or byte-level byte-pair encoding (BPE) learnt from the training split.

- `CharTokenizer`: one id per distinct character of the training split (char-rnn, nanoGPT's shakespeare_char).
- `BpeTokenizer`: GPT-2's byte-level BPE (Sennrich, Haddow & Birch 2016; Radford et al. 2019) built by Hugging
  Face `tokenizers`, offline: the text is read as UTF-8 bytes, each byte one of 256 base symbols, and the most
  frequent adjacent pair of symbols is merged into a new one until the vocabulary has `vocab_size` symbols. Any
  text encodes (no unknown characters), and a token may hold several characters or part of one.

Both say how many characters each id's text holds (`chars_per_token`), so a loss in nats per token converts to
bits per character exactly: bpc = (sum of the nats over the targets) / (sum of their characters) / ln 2. A BPE
token's characters are counted as its bytes that begin a UTF-8 character (all but the continuation bytes
10xxxxxx): every character of a text is counted once, in the token that holds its first byte.

`spec()` is a plain string that rebuilds the tokeniser (`tokenizer_from_spec`): it travels in the run's config
and so in its checkpoints, and `dlfound generate` needs nothing else.
"""

import json
from functools import cache

import torch

from dlfound.errors import ConfigError


class CharTokenizer:
    """Characters as ids: `vocabulary[i]` is the character of id i."""

    def __init__(self, vocabulary: str):
        self.vocabulary = vocabulary
        self.index = {ch: i for i, ch in enumerate(vocabulary)}
        self.vocab_size = len(vocabulary)

    def encode(self, text: str) -> torch.Tensor:
        missing = sorted({ch for ch in text if ch not in self.index})
        if missing:
            raise ConfigError(
                f"the text holds characters the model never saw in training: "
                f"{', '.join(repr(ch) for ch in missing[:20])}. Use only characters of its vocabulary: "
                f"{self.vocabulary!r}"
            )
        return torch.tensor([self.index[ch] for ch in text], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.vocabulary[int(i)] for i in ids)

    def chars_per_token(self) -> torch.Tensor:
        return torch.ones(self.vocab_size, dtype=torch.long)


@cache
def byte_of_symbol() -> dict[str, int]:
    """GPT-2's byte-level alphabet: the printable symbol that stands for each of the 256 bytes, inverted."""
    from tokenizers.pre_tokenizers import ByteLevel

    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols, extra = {}, 0
    for byte in range(256):  # the table of GPT-2's bytes_to_unicode, which tokenizers' ByteLevel uses
        if byte in printable:
            symbols[chr(byte)] = byte
        else:
            symbols[chr(256 + extra)] = byte
            extra += 1
    assert set(symbols) == set(ByteLevel.alphabet())
    return symbols


class BpeTokenizer:
    """Byte-level BPE; `tokenizer` is a `tokenizers.Tokenizer`. Build one with `train` or from its JSON."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.vocab_size = tokenizer.get_vocab_size()

    @classmethod
    def train(cls, text: str, vocab_size: int) -> "BpeTokenizer":
        """Learn the merges from `text` (the training split only) until there are `vocab_size` symbols."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        if vocab_size < 257:
            raise ConfigError(
                f"data.bpe_vocab_size={vocab_size} is too small: byte-level BPE starts from the 256 bytes and each "
                "merge adds one symbol, so give at least 257 (512 or 1024 for tinyshakespeare)"
            )
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
        )
        lines = text.splitlines(keepends=True)
        tokenizer.train_from_iterator((lines[i : i + 1000] for i in range(0, len(lines), 1000)), trainer)
        return cls(tokenizer)

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor(self.tokenizer.encode(text).ids, dtype=torch.long)

    def decode(self, ids) -> str:
        return self.tokenizer.decode([int(i) for i in ids])

    def chars_per_token(self) -> torch.Tensor:
        byte_of = byte_of_symbol()
        counts = torch.zeros(self.vocab_size, dtype=torch.long)
        for symbol, i in self.tokenizer.get_vocab().items():
            counts[i] = sum((byte_of[s] & 0xC0) != 0x80 for s in symbol)  # the bytes that begin a character
        return counts


def tokenizer_from_spec(spec: str):
    """The tokeniser a `spec()` string describes."""
    kind = json.loads(spec)
    if kind.get("kind") == "char":
        return CharTokenizer(kind["vocabulary"])
    if kind.get("kind") == "bpe":
        from tokenizers import Tokenizer

        return BpeTokenizer(Tokenizer.from_str(kind["tokenizer"]))
    raise ConfigError(f"unknown tokenizer spec {str(kind.get('kind'))!r}: this checkpoint needs a newer dlfound")


def spec_of(tokenizer) -> str:
    if isinstance(tokenizer, CharTokenizer):
        return json.dumps({"kind": "char", "vocabulary": tokenizer.vocabulary})
    return json.dumps({"kind": "bpe", "tokenizer": tokenizer.tokenizer.to_str()})
