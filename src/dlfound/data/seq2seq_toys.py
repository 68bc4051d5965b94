"""Toy sequence-to-sequence problems: integer addition written as strings ("123+456" -> "579"), and sorting a
string of digits ("50213" -> "01235"). Small enough to train in minutes on a CPU, hard enough to need an
encoder-decoder with attention (Bahdanau et al. 2015); `reverse_input` is the trick of Sutskever et al. 2014,
who fed the source sentence backwards.

Vocabulary (fixed, so a config can state vocab_size): id 0 "<pad>", 1 "<s>", 2 "</s>", then the characters
"0123456789+" (addition, 14 tokens) or "0123456789" (sorting, 13 tokens).

Batches `(src, tgt)`, LongTensors: src [B, S] the problem's characters (reversed when reverse_input), no BOS or
EOS; tgt [B, U] = BOS, the answer's characters, EOS. Both are padded with PAD (0) to the longest in the batch,
or to `max_src_len` / `max_tgt_len` with `pad_to_max=true` (fixed shapes).

The problems of the three splits are drawn without replacement from all possible ones, so no validation or
test problem (the pair (a, b), or the digit string) ever appears in training.
"""

import numpy as np
import torch
from torch.utils.data import Dataset

from dlfound.data.splits import SplitsDataModule, check_choice, check_fact, check_int
from dlfound.errors import ConfigError

SPECIALS = ["<pad>", "<s>", "</s>"]
PAD, BOS, EOS = 0, 1, 2
CHARACTERS = {"addition": "0123456789+", "sorting": "0123456789"}


def vocabulary(kind: str) -> list[str]:
    return SPECIALS + list(CHARACTERS[kind])


class PairBatches(Dataset):
    """Padded (src, tgt) tensors indexed a whole batch at a time, trimmed to the batch's longest unless fixed."""

    def __init__(self, src: torch.Tensor, tgt: torch.Tensor, trim: bool):
        self.src, self.tgt, self.trim = src, tgt, trim

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, index):
        src, tgt = self.src[index], self.tgt[index]
        if self.trim:
            src = src[:, : int((src != PAD).sum(1).max())]
            tgt = tgt[:, : int((tgt != PAD).sum(1).max())]
        return src, tgt


class Seq2SeqToyDataModule(SplitsDataModule):
    """Addition (`digits`-digit operands, 3: 10^6 pairs) or sorting (`length` digits); see the module docstring
    for the vocabulary and the batches."""

    def __init__(
        self,
        kind: str = "addition",
        digits: int = 3,
        length: int = 8,
        reverse_input: bool = False,
        pad_to_max: bool = False,
        n_train: int = 50_000,
        n_val: int = 5_000,
        n_test: int = 5_000,
        seed: int = 0,
        batch_size: int = 128,
        eval_batch_size: int | None = 512,
        num_workers: int = 0,
        pin_memory: bool | str = "auto",
        overfit_batches: int = 0,
        augment: str = "none",
        vocab_size: int | None = None,
        pad_id: int | None = PAD,
        bos_id: int | None = BOS,
        eos_id: int | None = EOS,
        num_classes: int | None = None,
        in_channels: int | None = 1,
        image_size: int | None = None,
        readout: str | None = None,
    ):
        super().__init__(batch_size, eval_batch_size, seed, num_workers, pin_memory, overfit_batches, augment)
        self.kind = check_choice("kind", kind, tuple(CHARACTERS))
        # Operands up to 9 digits keep the count of pairs, 10^(2 digits), within int64.
        self.digits = check_int("digits", digits, maximum=9)
        self.length = check_int("length", length, maximum=18)
        self.reverse_input, self.pad_to_max = bool(reverse_input), bool(pad_to_max)
        self.sizes = {
            "train": check_int("n_train", n_train),
            "val": check_int("n_val", n_val),
            "test": check_int("n_test", n_test),
        }
        self.vocabulary = vocabulary(self.kind)
        self.vocab_size = len(self.vocabulary)
        self.pad_id, self.bos_id, self.eos_id = PAD, BOS, EOS
        self._ids = {c: i for i, c in enumerate(self.vocabulary) if i >= len(SPECIALS)}
        for key, given, actual in [
            ("vocab_size", vocab_size, self.vocab_size),
            ("pad_id", pad_id, PAD),
            ("bos_id", bos_id, BOS),
            ("eos_id", eos_id, EOS),
            ("num_classes", num_classes, None),
            ("in_channels", in_channels, 1),
            ("image_size", image_size, None),
        ]:
            check_fact(key, given, actual, f"the {self.kind} problem")
        self.num_classes, self.in_channels, self.image_size, self.readout = None, 1, None, readout
        if self.kind == "addition":
            self.max_src_len, self.max_tgt_len = 2 * self.digits + 1, self.digits + 1 + 2
            self.problems = 10 ** (2 * self.digits)
        else:
            self.max_src_len, self.max_tgt_len = self.length, self.length + 2
            self.problems = 10**self.length
        total = sum(self.sizes.values())
        if total > self.problems:
            raise ConfigError(
                f"data.n_train + n_val + n_test = {total} distinct {self.kind} problems asked for, but "
                f"there are only {self.problems}; lower the sizes or raise "
                f"data.{'digits' if self.kind == 'addition' else 'length'}"
            )
        self.problem_ids: dict[str, np.ndarray] = {}

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.max_src_len,)

    # -- the vocabulary ----------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        unknown = sorted(set(text) - set(self._ids))
        if unknown:
            raise ConfigError(
                f"characters {', '.join(map(repr, unknown))} are not in the {self.kind} vocabulary "
                f"{''.join(CHARACTERS[self.kind])!r}"
            )
        return [self._ids[c] for c in text]

    def decode(self, ids) -> str:
        """The characters of a sequence of ids, stopping at the first EOS and skipping PAD and BOS."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        out = []
        for i in ids:
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.vocabulary[i])
        return "".join(out)

    # -- the problems ------------------------------------------------------------------------------------
    def text_pair(self, problem: int) -> tuple[str, str]:
        """(question, answer) of problem number `problem`: for addition a * 10^digits + b, for sorting the digit
        string itself (with its leading zeros)."""
        if self.kind == "addition":
            a, b = divmod(int(problem), 10**self.digits)
            return f"{a}+{b}", str(a + b)
        digits = str(int(problem)).zfill(self.length)
        return digits, "".join(sorted(digits))

    def _draw(self) -> None:
        # One draw without replacement for all three splits keeps them disjoint.
        rng = np.random.default_rng(self.seed)
        chosen = rng.choice(self.problems, size=sum(self.sizes.values()), replace=False, shuffle=True)
        n_val, n_test = self.sizes["val"], self.sizes["test"]
        self.problem_ids = {
            "val": chosen[:n_val],
            "test": chosen[n_val : n_val + n_test],
            "train": chosen[n_val + n_test :],
        }

    def _ids_of(self, texts: list[str], width: int) -> torch.Tensor:
        """Token ids of equal-width rows, where chr(1) stands for BOS and chr(2) for EOS; the padding is PAD."""
        codes = np.array(texts, dtype=f"<U{width}").view(np.uint32).reshape(len(texts), width)
        table = np.zeros(128, dtype=np.int64)  # code point -> id; code 0 (numpy's string padding) -> PAD
        table[[BOS, EOS]] = [BOS, EOS]
        for char, i in self._ids.items():
            table[ord(char)] = i
        return torch.from_numpy(table[codes])

    def make_split(self, split: str) -> PairBatches:
        if not self.problem_ids:
            self._draw()
        pairs = [self.text_pair(problem) for problem in self.problem_ids[split]]
        src = self._ids_of([q[::-1] if self.reverse_input else q for q, _ in pairs], self.max_src_len)
        tgt = self._ids_of([f"\x01{a}\x02" for _, a in pairs], self.max_tgt_len)
        return PairBatches(src, tgt, trim=not self.pad_to_max)
