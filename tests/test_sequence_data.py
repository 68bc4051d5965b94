"""Sequence data: character text, MNIST as rows or pixels, the adding and copy problems, seq2seq toys and MNIST
strips for CTC. Batch contracts (shapes, dtypes, what y means), splits that never leak, seeded order, clear
errors for bad input, and every config composing and building. Offline; MNIST is faked in torchvision's layout."""

import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import SHARED_DATA
from dlfound.data.memory_tasks import ADDING_BASELINE_MSE, AddingDataModule, CopyDataModule, copy_baseline
from dlfound.data.seq2seq_toys import Seq2SeqToyDataModule
from dlfound.data.sequences import MNISTSequenceDataModule
from dlfound.data.strips import MNISTStripsDataModule
from dlfound.data.text import CharTextDataModule
from dlfound.errors import ConfigError, DatasetUnavailableError

SHAKESPEARE = SHARED_DATA / "text" / "tinyshakespeare.txt"


# -- helpers -----------------------------------------------------------------------------------------------
def write_text(folder: Path, text: str, name: str = "corpus.txt") -> Path:
    path = folder / name
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def random_text(n: int, seed: int = 0, alphabet: str = "abcdefghij klmnop\n") -> str:
    rng = np.random.default_rng(seed)
    return "".join(np.array(list(alphabet))[rng.integers(0, len(alphabet), n)])


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """MNIST's IDX files (big-endian magic and sizes, then raw uint8), as torchvision's MNIST reads them."""
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, h, w) + images.tobytes())
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


@pytest.fixture
def fake_mnist(tmp_path) -> Path:
    """60 training and 20 test "digits": training image i is a full 28x28 block of grey value i + 1 (label
    i % 10), test image j one of value 200 + j (label j % 10), so a pixel says which image it came from."""
    train = np.broadcast_to(np.arange(1, 61, dtype=np.uint8)[:, None, None], (60, 28, 28)).copy()
    test = np.broadcast_to(np.arange(200, 220, dtype=np.uint8)[:, None, None], (20, 28, 28)).copy()
    write_idx(tmp_path / "MNIST" / "raw", "train", train, (np.arange(60) % 10).astype(np.uint8))
    write_idx(tmp_path / "MNIST" / "raw", "t10k", test, (np.arange(20) % 10).astype(np.uint8))
    return tmp_path


def batches(loader) -> list:
    return list(iter(loader))


# -- character text ----------------------------------------------------------------------------------------
def test_text_batches_are_windows_with_y_shifted_by_one(tmp_path):
    text = random_text(5000)
    dm = CharTextDataModule(write_text(tmp_path, text), block_size=16, batch_size=4, steps_per_epoch=5)
    train_text = text[:4500]
    assert dm.vocab_size == dm.num_classes == len(set(train_text)) and dm.vocabulary == "".join(sorted(set(train_text)))
    assert len(dm.train_dataloader()) == 5
    for x, y in dm.train_dataloader():
        assert x.shape == y.shape == (4, 16) and x.dtype == y.dtype == torch.long
        assert torch.equal(x[:, 1:], y[:, :-1])
        for row in range(4):
            assert dm.decode(torch.cat([x[row], y[row, -1:]])) in train_text
    x, y = next(iter(dm.val_dataloader()))
    assert x.shape == (4, 16) and torch.equal(x[:, 1:], y[:, :-1])


def test_text_vocabulary_round_trip(tmp_path):
    text = "hello, wörld! ÄÖÜ ß 日本\n" * 20
    dm = CharTextDataModule(write_text(tmp_path, text), block_size=4, batch_size=2)
    ids = dm.encode(text)
    assert ids.dtype == torch.long and dm.decode(ids) == text and dm.decode(ids.tolist()) == text
    assert [dm.vocabulary[i] for i in ids[:5]] == list("hello")
    assert list(dm.vocabulary) == sorted(set(text))
    with pytest.raises(ConfigError, match="'Z'"):
        dm.encode("Zoo")


def test_ordered_text_batches_continue_each_other_row_by_row(tmp_path):
    text = random_text(4000, seed=1)
    B, T = 3, 10
    dm = CharTextDataModule(write_text(tmp_path, text), block_size=T, batch_size=B, ordered=True)
    ids = dm.encode(text)[:3600]
    L = 3600 // B
    got = batches(dm.train_dataloader())
    assert len(got) == len(dm.train_dataloader()) == (L - 1) // T
    for (x0, y0), (x1, _) in zip(got, got[1:]):
        assert torch.equal(x1[:, 0], y0[:, -1])  # row b of batch i+1 starts where row b of batch i stopped
    rows = torch.cat([x for x, _ in got], 1)
    for b in range(B):
        assert torch.equal(rows[b], ids[b * L : b * L + rows.shape[1]])
    assert all(torch.equal(a[0], b[0]) for a, b in zip(got, batches(dm.train_dataloader())))  # one pass, in order


def test_text_validation_never_overlaps_training(tmp_path):
    """The second half repeats the first, so content cannot tell the splits apart: positions must. Validation
    reads only the last 10 %, in the stream layout; every training window ends before it."""
    half = random_text(1000, seed=2)
    text = half + half
    T = 8
    for ordered in (False, True):
        dm = CharTextDataModule(
            write_text(tmp_path, text),
            block_size=T,
            batch_size=4,
            eval_batch_size=3,
            ordered=ordered,
            steps_per_epoch=50,
        )
        assert len(dm.train_ids) == 1800 and len(dm.val_ids) == 200
        ids = dm.encode(text)
        loader = dm.train_dataloader()
        for epoch in range(3):
            loader.sampler.set_epoch(epoch)
            for starts in loader.sampler:
                assert int(starts.max()) + T + 1 <= 1800  # x and y of every training window lie in the first 90 %
                x, y = loader.dataset[starts]
                assert torch.equal(x, ids[starts[:, None] + torch.arange(T)])
        L = 200 // 3
        val = batches(dm.val_dataloader())
        assert len(val) == (L - 1) // T
        for i, (x, y) in enumerate(val):
            for b in range(3):
                start = 1800 + b * L + i * T
                assert torch.equal(x[b], ids[start : start + T]) and torch.equal(y[b], ids[start + 1 : start + T + 1])


def test_random_windows_follow_seed_and_epoch(tmp_path):
    path = write_text(tmp_path, random_text(3000))
    first, second = (
        CharTextDataModule(path, block_size=8, batch_size=4, steps_per_epoch=3).train_dataloader() for _ in range(2)
    )
    second.sampler.set_epoch(1)
    epoch1 = batches(second)
    second.sampler.set_epoch(0)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches(first), batches(second)))  # a resumed run
    assert not torch.equal(batches(first)[0][0], epoch1[0][0])  # a new epoch draws new windows


def test_lightning_sets_the_epoch_of_the_text_sampler(tmp_path):
    """Through a real Trainer: epochs 0 and 1 see the windows that (seed, epoch) say."""
    import lightning as L

    dm = CharTextDataModule(
        write_text(tmp_path, random_text(3000)), block_size=8, batch_size=4, steps_per_epoch=2, val_batches=1
    )
    seen = []

    class Probe(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(dm.vocab_size, dm.vocab_size)

        def training_step(self, batch, _):
            x, y = batch
            seen.append(x.clone())
            return torch.nn.functional.cross_entropy(self.embed(x).flatten(0, 1), y.flatten())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    L.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        num_sanity_val_steps=0,
    ).fit(Probe(), dm)
    sampler = dm.train_dataloader().sampler
    expected = []
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        expected += [dm.train_dataloader().dataset[s][0] for s in sampler]
    assert len(seen) == 4 and all(torch.equal(a, b) for a, b in zip(seen, expected))


def test_val_batches_caps_validation_only(tmp_path):
    dm = CharTextDataModule(write_text(tmp_path, random_text(20000)), block_size=8, batch_size=4, val_batches=3)
    assert len(dm.val_dataloader()) == 3 and len(dm.test_dataloader()) == (2000 // 4 - 1) // 8


def test_short_validation_split_reads_fewer_streams(tmp_path):
    dm = CharTextDataModule(write_text(tmp_path, random_text(1000)), block_size=30, batch_size=2, eval_batch_size=64)
    ((x, y),) = batches(dm.val_dataloader())  # 100 characters: 3 streams of 33
    assert x.shape == (3, 30)


@pytest.mark.parametrize(
    "content,error,words",
    [
        (b"", DatasetUnavailableError, "empty"),
        (b"text\x00\x01\x02binary" * 10, DatasetUnavailableError, "binary"),
        ("caf\u00e9 cr\u00e8me ".encode("latin-1") * 20, DatasetUnavailableError, "UTF-8"),
    ],
)
def test_bad_text_files_are_one_clear_error_naming_the_file(tmp_path, content, error, words):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(error, match=words) as err:
        CharTextDataModule(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_text_file_says_where(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="does not exist") as err:
        CharTextDataModule(tmp_path / "nowhere.txt")
    assert str(tmp_path / "nowhere.txt") in str(err.value) and "data.path" in str(err.value)


def test_too_long_block_size_names_the_file_and_the_limit(tmp_path):
    path = write_text(tmp_path, random_text(1000))  # validation: 100 characters
    with pytest.raises(ConfigError, match="block_size<=99") as err:
        CharTextDataModule(path, block_size=100)
    assert str(path) in str(err.value)
    CharTextDataModule(path, block_size=99)
    with pytest.raises(ConfigError, match="streams") as err:  # ordered: 900 characters in 12 streams of 75
        CharTextDataModule(path, block_size=80, batch_size=12, ordered=True)
    assert str(path) in str(err.value)


def test_validation_characters_unseen_in_training_are_named(tmp_path):
    path = write_text(tmp_path, "ab" * 450 + "ab" * 47 + "aXYZ!!")  # validation: the last 100 characters
    with pytest.raises(ConfigError, match="predict: '!', 'X', 'Y', 'Z'. ") as err:
        CharTextDataModule(path, block_size=4)
    assert str(path) in str(err.value)


def test_text_rejects_bad_values_and_unknown_keys(tmp_path):
    path = write_text(tmp_path, random_text(1000))
    with pytest.raises(ConfigError, match="block_size"):
        CharTextDataModule(path, block_size=0)
    with pytest.raises(ConfigError, match="train_fraction"):
        CharTextDataModule(path, train_fraction=1.0)
    with pytest.raises(ConfigError, match="vocab_size"):
        CharTextDataModule(path, block_size=4, vocab_size=3)
    with pytest.raises(TypeError):
        CharTextDataModule(path, block_size=4, bogus=1)


@pytest.mark.shared_data
def test_tinyshakespeare_is_nanogpts_split():
    if not SHAKESPEARE.is_file():
        pytest.skip(f"no shared tinyshakespeare at {SHAKESPEARE}")
    dm = CharTextDataModule(SHAKESPEARE)
    assert dm.vocab_size == 65 and len(dm.train_ids) == 1_003_854 and len(dm.val_ids) == 111_540
    assert dm.decode(dm.train_ids[:14]) == "First Citizen:"


# -- MNIST as sequences -------------------------------------------------------------------------------------
@pytest.mark.parametrize("sequence,shape", [("rows", (28, 28)), ("pixels", (784, 1))])
def test_mnist_sequences_shapes_and_values(fake_mnist, sequence, shape):
    dm = MNISTSequenceDataModule(
        str(fake_mnist), sequence=sequence, download=False, val_size=10, batch_size=8, mean=[0.5], std=[0.25]
    )
    assert (dm.seq_len, dm.in_features, dm.num_classes) == (*shape, 10)
    dm.setup()
    raw, y = next(iter(dm.test_dataloader()))
    x, y = dm.on_after_batch_transfer((raw, y), 0)
    assert x.shape == (8, *shape) and x.dtype == torch.float32 and y.dtype == torch.long and y.shape == (8,)
    assert torch.allclose(x, ((raw.float() / 255 - 0.5) / 0.25).reshape(8, *shape))


def test_permuted_mnist_is_one_fixed_permutation(fake_mnist):
    def build(seed):
        return MNISTSequenceDataModule(
            str(fake_mnist),
            sequence="pixels",
            permute=True,
            permute_seed=seed,
            download=False,
            val_size=10,
            batch_size=4,
            normalize=False,
        )

    a, b = build(3), build(3)
    assert torch.equal(a.permutation, b.permutation) and not torch.equal(a.permutation, build(4).permutation)
    assert sorted(a.permutation.tolist()) == list(range(784))
    raw = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    x = a.prepare(raw, training=True)
    assert torch.equal(x[:, :, 0], raw.flatten(1)[:, a.permutation].float() / 255)


def test_mnist_sequence_config_facts_must_agree(fake_mnist):
    with pytest.raises(ConfigError, match="data.seq_len=784 .*data=mnist_pixels"):
        MNISTSequenceDataModule(str(fake_mnist), sequence="pixels", in_features=28, seq_len=28)
    with pytest.raises(ConfigError, match="sequence"):
        MNISTSequenceDataModule(str(fake_mnist), sequence="columns")
    with pytest.raises(TypeError):
        MNISTSequenceDataModule(str(fake_mnist), bogus=1)


# -- adding and copy ----------------------------------------------------------------------------------------
def test_adding_problem(tmp_path):
    T = 50
    dm = AddingDataModule(seq_len=T, n_train=4000, n_val=10, n_test=10, batch_size=4000)
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4000, T, 2) and x.dtype == y.dtype == torch.float32 and y.shape == (4000,)
    values, markers = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values <= 1)).all() and set(markers.unique().tolist()) == {0.0, 1.0}
    assert (markers[:, : T // 2].sum(1) == 1).all() and (markers[:, T // 2 :].sum(1) == 1).all()
    assert torch.allclose(y, (values * markers).sum(1))
    assert ((y - 1) ** 2).mean().item() == pytest.approx(ADDING_BASELINE_MSE, abs=0.015) and dm.baseline_mse == 1 / 6
    again = AddingDataModule(seq_len=T, n_train=4000, n_val=10, n_test=10)
    again.setup()
    assert torch.equal(again.splits["train"][torch.arange(5)][0], dm.splits["train"][torch.arange(5)][0])
    assert not torch.equal(dm.splits["val"][torch.arange(5)][0], dm.splits["test"][torch.arange(5)][0])


def test_copy_problem():
    T = 30
    dm = CopyDataModule(seq_len=T, n_train=64, n_val=8, n_test=8, batch_size=16)
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == y.shape == (16, T + 20) and x.dtype == y.dtype == torch.long
    symbols = x[:, :10]
    assert ((symbols >= 1) & (symbols <= 8)).all()
    assert (x[:, 10 : T + 9] == 0).all() and (x[:, T + 9] == 9).all() and (x[:, T + 10 :] == 0).all()
    assert (y[:, : T + 10] == 0).all() and torch.equal(y[:, T + 10 :], symbols)
    assert x.max() < dm.vocab_size == 10 and y.max() < dm.num_classes == 9 and dm.input_len == T + 20
    assert copy_baseline(100) == pytest.approx(10 * math.log(8) / 120) == pytest.approx(0.1733, abs=1e-4)
    # The memoryless predictor: certain blanks for T + 10 steps, then uniform over the 8 symbols.
    logits = torch.full((16, T + 20, 9), -1e9)
    logits[:, : T + 10, 0] = 0
    logits[:, T + 10 :, 1:] = 0
    loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), y)
    assert loss.item() == pytest.approx(copy_baseline(T), rel=1e-5) and dm.baseline == copy_baseline(T)


def test_memory_tasks_validate_values():
    with pytest.raises(ConfigError, match="seq_len"):
        AddingDataModule(seq_len=1)
    with pytest.raises(ConfigError, match="num_classes"):
        CopyDataModule(num_classes=10)
    with pytest.raises(TypeError):
        AddingDataModule(bogus=1)


# -- seq2seq toys -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reverse", [False, True])
def test_addition_pairs_are_held_out_and_decode_to_the_sum(reverse):
    dm = Seq2SeqToyDataModule(
        kind="addition", digits=2, reverse_input=reverse, n_train=3000, n_val=500, n_test=500, batch_size=256
    )
    dm.setup()
    assert dm.vocab_size == 14 and dm.vocabulary[:3] == ["<pad>", "<s>", "</s>"]
    assert (dm.max_src_len, dm.max_tgt_len) == (5, 5)
    questions = {}
    for split in ("train", "val", "test"):
        questions[split] = set()
        loader = dm.train_dataloader() if split == "train" else getattr(dm, f"{split}_dataloader")()
        for src, tgt in loader:
            assert src.dtype == tgt.dtype == torch.long and src.shape[1] <= 5 and tgt.shape[1] <= 5
            assert (tgt[:, 0] == dm.bos_id).all() and ((tgt == dm.eos_id).sum(1) == 1).all()
            assert (src != dm.pad_id).sum(1).max() == src.shape[1]  # padded to the longest in the batch
            for s, t in zip(src, tgt):
                question = dm.decode(s)[::-1] if reverse else dm.decode(s)
                a, b = map(int, question.split("+"))
                assert dm.decode(t) == str(a + b)
                questions[split].add((a, b))
    assert sum(map(len, questions.values())) == 4000  # every problem once, across all three splits
    assert not questions["train"] & questions["val"] and not questions["train"] & questions["test"]


def test_sorting_and_fixed_padding():
    dm = Seq2SeqToyDataModule(
        kind="sorting", length=6, pad_to_max=True, n_train=200, n_val=50, n_test=50, batch_size=8, eval_batch_size=32
    )
    dm.setup()
    assert dm.vocab_size == 13 and "+" not in dm.vocabulary
    src, tgt = next(iter(dm.val_dataloader()))
    assert src.shape == (32, 6) and tgt.shape == (32, 8)
    for s, t in zip(src, tgt):
        assert dm.decode(t) == "".join(sorted(dm.decode(s))) and len(dm.decode(s)) == 6
    assert dm.decode([1, 5, 6, 2, 7, 0]) == "23"  # stops at EOS, skips BOS


def test_seq2seq_rejects_impossible_sizes():
    with pytest.raises(ConfigError, match="only 100"):
        Seq2SeqToyDataModule(digits=1, n_train=90, n_val=10, n_test=10)
    with pytest.raises(ConfigError, match="vocab_size"):
        Seq2SeqToyDataModule(kind="sorting", vocab_size=14)
    with pytest.raises(ConfigError, match="kind"):
        Seq2SeqToyDataModule(kind="reverse")


# -- MNIST strips for CTC -----------------------------------------------------------------------------------
def read_strip(strip: torch.Tensor) -> list[int]:
    """The grey values of the digits of one [1, 28, W] strip, left to right: each digit is a run of 28 columns
    of its value (two equal neighbours without a gap make a run of 56)."""
    columns = (strip[0] * 255).round().long().max(0).values.tolist()
    values, i = [], 0
    while i < len(columns):
        j = i
        while j < len(columns) and columns[j] == columns[i]:
            j += 1
        if columns[i]:
            assert (j - i) % 28 == 0
            values += [columns[i]] * ((j - i) // 28)
        i = j
    return values


def test_strips_labels_match_the_digits_and_test_strips_use_test_digits(fake_mnist):
    dm = MNISTStripsDataModule(
        str(fake_mnist),
        k=4,
        max_gap=3,
        max_offset=2,
        n_train=40,
        n_val=20,
        n_test=20,
        val_size=20,
        batch_size=8,
        download=False,
        normalize=False,
    )
    dm.setup()
    W = 4 * 28 + 5 * 3
    assert dm.strip_width == W and dm.num_classes == 11
    pools = {split: set((dm.splits[split].images[:, 14, 14]).tolist()) for split in ("train", "val")}
    assert not pools["train"] & pools["val"]
    for split in ("train", "val", "test"):
        for batch in getattr(dm, f"{split}_dataloader")():
            x, targets, lengths = dm.on_after_batch_transfer(batch, 0)
            assert x.shape == (len(x), 1, 28, W) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
            assert targets.shape == (len(x), 4) and targets.dtype == lengths.dtype == torch.long
            assert (lengths == 4).all() and targets.min() >= 1
            for strip, target in zip(x, targets):
                values = read_strip(strip)
                assert len(values) == 4
                if split == "test":
                    assert all(v >= 200 for v in values) and [(v - 200) % 10 + 1 for v in values] == target.tolist()
                else:
                    assert set(values) <= pools[split] and [(v - 1) % 10 + 1 for v in values] == target.tolist()


def test_training_strips_are_new_each_epoch_and_reproducible(fake_mnist):
    def first(epoch, split="train"):
        dm = MNISTStripsDataModule(
            str(fake_mnist), k=3, n_train=16, n_val=16, n_test=16, val_size=20, batch_size=16, download=False
        )
        dm.setup()
        loader = getattr(dm, f"{split}_dataloader")()
        loader.sampler.set_epoch(epoch)
        return next(iter(loader))[0]

    assert torch.equal(first(0), first(0)) and not torch.equal(first(0), first(1))
    assert torch.equal(first(0, "val"), first(1, "val"))


def test_strips_validate_width():
    with pytest.raises(ConfigError, match="at least 120"):
        MNISTStripsDataModule("unused", k=4, max_gap=2, strip_width=100)
    with pytest.raises(TypeError):
        MNISTStripsDataModule("unused", bogus=1)


def test_missing_mnist_is_the_usual_clear_error(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="t10k-images-idx3-ubyte"):
        MNISTStripsDataModule(str(tmp_path), download=False).prepare_data()


# -- configs ------------------------------------------------------------------------------------------------
SMALL = {
    "adding": ["data.n_train=64", "data.n_val=8", "data.n_test=8"],
    "copy": ["data.n_train=64", "data.n_val=8", "data.n_test=8"],
    "addition": ["data.n_train=64", "data.n_val=8", "data.n_test=8"],
    "sorting": ["data.n_train=64", "data.n_val=8", "data.n_test=8"],
    "mnist_rows": ["data.val_size=10", "data.download=false"],
    "mnist_pixels": ["data.val_size=10", "data.download=false", "data.permute=true"],
    "mnist_strips": ["data.val_size=10", "data.download=false", "data.n_train=8", "data.n_val=8", "data.n_test=8"],
}


@pytest.mark.parametrize(
    "name",
    ["text", "tinyshakespeare", "mnist_rows", "mnist_pixels", "adding", "copy", "addition", "sorting", "mnist_strips"],
)
def test_every_sequence_config_composes_and_builds(name, fake_mnist, monkeypatch):
    from dlfound.commands.list import description
    from dlfound.runs.build import compose, instantiate_section
    from dlfound.runs.paths import config_dir

    monkeypatch.setenv("DLFOUND_DATA", str(fake_mnist))
    write_text(fake_mnist / "text", random_text(3000), "tinyshakespeare.txt")
    overrides = [f"data={name}", "hydra.runtime.output_dir=.", *SMALL.get(name, [])]
    if name == "text":
        overrides.append(f"data.path={fake_mnist / 'text' / 'tinyshakespeare.txt'}")
    data = OmegaConf.to_container(compose(overrides).data, resolve=True)
    assert description(config_dir() / "data" / f"{name}.yaml")
    for key in ("in_channels", "image_size", "num_classes", "vocab_size", "readout", "batch_size", "eval_batch_size"):
        assert key in data, key
    assert data["num_workers"] == 0
    dm = instantiate_section({"data": data}, "data")
    for key in ("in_channels", "image_size", "num_classes", "vocab_size"):
        if data[key] is not None:
            assert getattr(dm, key) == data[key], key
    dm.setup("fit")
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert all(isinstance(part, torch.Tensor) for part in batch)
    with pytest.raises(ConfigError):
        instantiate_section({"data": {**data, "bogus": 1}}, "data")
