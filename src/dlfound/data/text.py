"""Any UTF-8 text file as a character-level corpus (char-rnn, Karpathy 2015; nanoGPT's shakespeare_char), or as
byte-pair-encoded tokens (`tokenizer=bpe`, learnt from the training split: dlfound.data.tokenizers).

The file is read when the module is built, so its vocabulary is known before the model is: the sorted set of
the characters of the training split. The split is nanoGPT's: the first `train_fraction` (90 %) of the
characters train, the rest validates and also tests, so no validation window ever overlaps a training one.

Every batch is `(x, y)`, LongTensors [B, T] with T = block_size tokens and y = x shifted by one token: y[b, t] is
the token after x[b, t]. Training reads the split in one of two ways:

- `ordered=False` (GPT): `steps_per_epoch` batches of B windows at uniformly random offsets (nanoGPT's
  `get_batch`), drawn from a generator seeded by (seed, epoch), so a resumed run draws the same windows.
- `ordered=True` (recurrent models that carry their hidden state, truncated BPTT): the split is cut into B
  parallel streams, the first B*L characters reshaped to [B, L] (the classic PTB batching of Zaremba et al.
  2014), and batch i holds columns [i*T, (i+1)*T) of every stream, so row b of batch i+1 continues row b of
  batch i. One epoch is one pass.

Validation and test read the held-out split in the same stream layout, in order, with eval_batch_size streams
(fewer when the split is short), so recurrent models can carry state there too.
"""

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dlfound.data.loading import BatchedDataModule
from dlfound.data.splits import FixedBatches, check_augment, check_fact, check_int, derived_seed, rank_and_world
from dlfound.data.tokenizers import BpeTokenizer, spec_of
from dlfound.errors import ConfigError, DatasetUnavailableError


def read_text(path: str | Path) -> str:
    """The file's characters; a missing, empty, binary or non-UTF-8 file is one clear error naming it."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DatasetUnavailableError(
            f"text corpus {file.resolve()} does not exist or is not a file. Point data.path at a UTF-8 text file "
            f"(dlfound train data=text data.path=FILE); for data=tinyshakespeare put tinyshakespeare.txt (char-rnn's "
            f"input.txt) in {file.resolve().parent}, or set the data root with paths.data_dir=PATH or DLFOUND_DATA."
        )
    raw = file.read_bytes()
    if not raw:
        raise DatasetUnavailableError(
            f"text corpus {file.resolve()} is empty; give a UTF-8 text file with some text in it (data.path=FILE)"
        )
    if b"\x00" in raw:
        first = raw.index(b"\x00")
        raise DatasetUnavailableError(
            f"text corpus {file.resolve()} contains NUL bytes (the first at byte {first}), so it is a "
            "binary file, not text (or UTF-16, which needs converting: iconv -f utf-16 -t utf-8). Give a UTF-8 "
            "text file (data.path=FILE)."
        )
    try:
        return raw.decode("utf-8-sig")  # a leading byte-order mark is not part of the text
    except UnicodeDecodeError as err:
        raise DatasetUnavailableError(
            f"text corpus {file.resolve()} is not valid UTF-8 (byte {err.start}: {err.reason}). Convert it, e.g. "
            "`iconv -f latin1 -t utf-8 FILE > FILE.utf8`, and give the converted file (data.path=FILE)."
        ) from None


def code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def shown(chars) -> str:
    chars = list(chars)
    more = f" and {len(chars) - 20} more" if len(chars) > 20 else ""
    return ", ".join(repr(c) for c in chars[:20]) + more


class Windows(Dataset):
    """Windows of a token stream indexed a whole batch at a time: `windows[starts] -> (x, y)`, where row b of x
    is ids[starts[b] : starts[b] + T] and y is the same window one token later."""

    def __init__(self, ids: torch.Tensor, block_size: int):
        self.ids, self.offsets = ids, torch.arange(block_size + 1)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, starts: torch.Tensor):
        window = self.ids[starts[:, None] + self.offsets]
        return window[:, :-1], window[:, 1:]


class RandomWindows(Sampler):
    """`steps` batches of `batch_size` uniformly random window starts (nanoGPT's get_batch), from a generator
    seeded by (seed, epoch, rank): a resumed run draws the same windows, and DDP ranks draw different ones."""

    def __init__(self, n_tokens: int, block_size: int, batch_size: int, steps: int, seed: int):
        self.n_tokens, self.block_size, self.batch_size, self.steps, self.seed = (
            n_tokens,
            block_size,
            batch_size,
            steps,
            seed,
        )
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(derived_seed(self.seed, self.epoch, rank_and_world()[0]))
        for _ in range(self.steps):
            # A window and its one-token-later target need block_size + 1 tokens.
            yield torch.randint(self.n_tokens - self.block_size, (self.batch_size,), generator=generator)

    def __len__(self) -> int:
        return self.steps


class StreamWindows(Sampler):
    """The stream layout: the first `streams * L` tokens as `streams` rows of L, read T columns at a time, in
    order; batch i holds columns [i*T, (i+1)*T) of every row (its targets one column later, inside the row).
    Under DDP each rank reads its own rows, so every rank still carries state from batch to batch."""

    def __init__(self, n_tokens: int, block_size: int, streams: int, max_batches: int | None = None):
        self.block_size, self.streams = block_size, streams
        self.row_length = n_tokens // streams
        self.batches = (self.row_length - 1) // block_size
        if max_batches is not None:
            self.batches = min(self.batches, max_batches)

    def set_epoch(self, epoch: int) -> None:  # the same pass every epoch
        pass

    def __iter__(self):
        rank, world = rank_and_world()
        rows = torch.arange(self.streams)[rank::world] * self.row_length
        for i in range(self.batches):
            yield rows + i * self.block_size

    def __len__(self) -> int:
        return self.batches


class CharTextDataModule(BatchedDataModule):
    """A UTF-8 text file as a corpus of characters or BPE tokens; batches `(x, y)` LongTensor [B, block_size],
    y = x shifted by one token (see the module docstring for the split and the two training orders).

    `tokenizer="char"`: `vocabulary` is the string whose i-th character has id i. `tokenizer="bpe"`: byte-level BPE
    with `bpe_vocab_size` symbols learnt from the training split (dlfound.data.tokenizers); `tokenizer` is then its
    spec, which the run records so that its checkpoints decode without the text. `encode` and `decode` convert
    both ways.
    """

    def __init__(
        self,
        path: str,
        block_size: int = 64,
        batch_size: int = 12,
        eval_batch_size: int | None = None,
        train_fraction: float = 0.9,
        ordered: bool = False,
        steps_per_epoch: int = 200,
        val_batches: int | None = None,
        seed: int = 0,
        num_workers: int = 0,
        pin_memory: bool | str = "auto",
        overfit_batches: int = 0,
        augment: str = "none",
        vocab_size: int | None = None,
        num_classes: int | None = None,
        in_channels: int = 1,
        image_size: int | None = None,
        readout: str | None = "all",
        tokenizer: str = "char",
        bpe_vocab_size: int = 512,
    ):
        if tokenizer not in ("char", "bpe"):
            raise ConfigError(
                f"data.tokenizer must be char (one id per character) or bpe (byte-level byte-pair encoding learnt "
                f"from the training split, data.bpe_vocab_size symbols), got {tokenizer!r}"
            )
        self.tokenizer_kind, self.bpe_vocab_size = tokenizer, check_int("bpe_vocab_size", bpe_vocab_size)
        self.block_size = check_int("block_size", block_size)
        super().__init__(batch_size, eval_batch_size, num_workers, pin_memory, overfit_batches)
        self.steps_per_epoch = check_int("steps_per_epoch", steps_per_epoch)
        self.val_batches = None if val_batches is None else check_int("val_batches", val_batches)
        self.seed = check_int("seed", seed, minimum=0)
        check_augment(augment)
        check_fact("in_channels", in_channels, 1, "a character stream")
        check_fact("image_size", image_size, None, "a character stream")
        if (
            isinstance(train_fraction, bool)
            or not isinstance(train_fraction, int | float)
            or not (0 < train_fraction < 1)
        ):
            raise ConfigError(
                f"data.train_fraction must be a number strictly between 0 and 1 (0.9: the first 90 % "
                f"of the characters train, the rest validates), got {train_fraction!r}"
            )
        self.path, self.train_fraction, self.ordered = str(path), float(train_fraction), bool(ordered)
        self.in_channels, self.image_size, self.readout = 1, None, readout
        where = Path(path).expanduser().resolve()
        self.read_corpus(read_text(path), where)
        check_fact("vocab_size", vocab_size, self.vocab_size, f"the training split of {where}")
        check_fact("num_classes", num_classes, self.vocab_size, f"the training split of {where}")
        self._check_lengths(where)

    def read_corpus(self, text: str, where: Path) -> None:
        """The vocabulary (the training split's characters, or BPE learnt from it) and both splits as ids."""
        codes = code_points(text)
        n_train = int(len(codes) * self.train_fraction)  # nanoGPT: data[:int(n * 0.9)]
        if n_train == 0 or n_train == len(codes):
            raise ConfigError(
                f"text corpus {where} has {len(codes)} characters, too few to split into training and "
                f"validation at train_fraction={self.train_fraction}; give a longer text"
            )
        self.tokenizer = None  # the char model's vocabulary is `vocabulary`, recorded as before
        if self.tokenizer_kind == "bpe":
            self.read_bpe(text, n_train)
            return
        vocab_codes = np.unique(codes[:n_train])
        ids = np.searchsorted(vocab_codes, codes).clip(max=len(vocab_codes) - 1)
        unseen = np.unique(codes[n_train:][vocab_codes[ids[n_train:]] != codes[n_train:]])
        if len(unseen):
            raise ConfigError(
                f"the validation split of {where} (its last {1 - self.train_fraction:.0%}) has characters that the "
                f"training split never shows, which a character-level model cannot predict: "
                f"{shown(map(chr, unseen))}. Remove them from the file, or move the split with data.train_fraction"
            )
        self.vocabulary = "".join(map(chr, vocab_codes))
        self.vocab_size = self.num_classes = len(self.vocabulary)
        self._vocab_codes = vocab_codes
        ids = torch.from_numpy(ids.astype(np.int64))
        self.train_ids, self.val_ids = ids[:n_train], ids[n_train:]

    def read_bpe(self, text: str, n_train: int) -> None:
        """BPE learnt from the training split only, each split encoded on its own (no token spans the cut)."""
        self._bpe = BpeTokenizer.train(text[:n_train], self.bpe_vocab_size)
        self.tokenizer, self.vocabulary = spec_of(self._bpe), None
        self.vocab_size = self.num_classes = self._bpe.vocab_size
        self.train_ids, self.val_ids = self._bpe.encode(text[:n_train]), self._bpe.encode(text[n_train:])

    def _check_lengths(self, where: Path) -> None:
        T = self.block_size
        n_train, n_val = len(self.train_ids), len(self.val_ids)
        if n_val < T + 1:
            raise ConfigError(
                f"data.block_size={T} is too long for {where}: its validation split (the last "
                f"{1 - self.train_fraction:.0%}, {n_val} characters) must hold at least one window of block_size + 1 "
                f"= {T + 1} characters. Use data.block_size<={n_val - 1}, or a longer text"
            )
        if self.ordered and n_train // self.batch_size < T + 1:
            raise ConfigError(
                f"data.block_size={T} with data.batch_size={self.batch_size} is too long for {where}: ordered "
                f"training cuts its {n_train} training characters into {self.batch_size} streams of "
                f"{n_train // self.batch_size}, and each must hold one window of block_size + 1 = {T + 1}. Use "
                f"data.block_size<={n_train // self.batch_size - 1} or a smaller data.batch_size"
            )
        if not self.ordered and n_train < T + 1:
            raise ConfigError(
                f"data.block_size={T} is too long for {where}: its training split has {n_train} characters, fewer "
                f"than one window of block_size + 1 = {T + 1}. Use data.block_size<={n_train - 1}"
            )

    # -- the vocabulary ----------------------------------------------------------------------------------
    def encode(self, text: str) -> torch.Tensor:
        """Token ids of `text`, LongTensor; for characters, those outside the vocabulary are a ConfigError."""
        if self.tokenizer is not None:
            return self._bpe.encode(text)
        codes = code_points(text)
        ids = np.searchsorted(self._vocab_codes, codes).clip(max=self.vocab_size - 1)
        unknown = codes[self._vocab_codes[ids] != codes]
        if len(unknown):
            raise ConfigError(
                f"the characters {shown(dict.fromkeys(map(chr, unknown)))} are not in the vocabulary of "
                f"{self.path} ({self.vocab_size} characters); use only characters of its training text"
            )
        return torch.from_numpy(ids.astype(np.int64))

    def decode(self, ids) -> str:
        """The text of a sequence of ids (a tensor, array or list)."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        if self.tokenizer is not None:
            return self._bpe.decode(np.ravel(ids))
        return "".join(self.vocabulary[int(i)] for i in np.ravel(ids))

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.block_size,)

    # -- loaders -----------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Nothing to do: the file was read when the module was built."""

    def _eval_streams(self) -> int:
        # Fewer streams than eval_batch_size when the split is short, so that each holds at least one window.
        return min(self.eval_batch_size, len(self.val_ids) // (self.block_size + 1))

    def _train_sampler(self) -> Sampler:
        if self.ordered:
            return StreamWindows(len(self.train_ids), self.block_size, self.batch_size)
        return RandomWindows(len(self.train_ids), self.block_size, self.batch_size, self.steps_per_epoch, self.seed)

    def _loader(self, ids: torch.Tensor, sampler: Sampler) -> DataLoader:
        return self.batched_loader(Windows(ids, self.block_size), sampler, self.seed)

    def _overfit_sampler(self) -> FixedBatches:
        return FixedBatches(list(self._train_sampler())[: self.overfit_batches])

    def train_dataloader(self) -> DataLoader:
        sampler = self._overfit_sampler() if self.overfit_batches else self._train_sampler()
        return self._loader(self.train_ids, sampler)

    def val_dataloader(self) -> DataLoader:
        if self.overfit_batches:
            return self._loader(self.train_ids, self._overfit_sampler())
        return self._loader(
            self.val_ids, StreamWindows(len(self.val_ids), self.block_size, self._eval_streams(), self.val_batches)
        )

    def test_dataloader(self) -> DataLoader:
        """The held-out split (the validation split, as in nanoGPT), all of it: val_batches caps only validation."""
        return self._loader(self.val_ids, StreamWindows(len(self.val_ids), self.block_size, self._eval_streams()))

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()
