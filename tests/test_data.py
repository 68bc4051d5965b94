"""Data modules: torchvision's real readers, the in-memory batch path, splits, augmentation, offline errors."""

import struct

import numpy as np
import pytest
import torch
from PIL import Image

from dlfound.data.batch_augment import random_crop, random_flip
from dlfound.data.digits import DigitsDataModule
from dlfound.data.imagefolder import ImageFolderDataModule
from dlfound.data.memory import IndexBatchSampler
from dlfound.data.toy2d import Toy2DDataModule
from dlfound.data.vision import TorchvisionDataModule
from dlfound.errors import DatasetUnavailableError


def write_idx(folder, prefix, images, labels):
    """MNIST's IDX format: big-endian magic, dimensions, then raw uint8 (LeCun's file layout)."""
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, h, w) + images.tobytes())
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


@pytest.fixture
def tiny_mnist(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "MNIST" / "raw", "train", train, (np.arange(30) % 10).astype(np.uint8))
    write_idx(tmp_path / "MNIST" / "raw", "t10k", test, (np.arange(10) % 10).astype(np.uint8))
    return tmp_path, train, test


def mnist_module(root, **kwargs):
    args = dict(
        name="MNIST",
        data_dir=str(root),
        download=False,
        in_channels=1,
        image_size=28,
        num_classes=10,
        val_size=5,
        batch_size=8,
        mean=[0.5],
        std=[0.25],
    )
    return TorchvisionDataModule(**{**args, **kwargs})


def test_mnist_reads_real_idx_files_through_torchvision(tiny_mnist):
    root, train, test = tiny_mnist
    dm = mnist_module(root)
    dm.prepare_data()
    dm.setup()
    assert len(dm.splits["train"]) == 25 and len(dm.splits["val"]) == 5 and len(dm.splits["test"]) == 10
    x, y = next(iter(dm.test_dataloader()))
    assert x.dtype == torch.uint8 and x.shape == (8, 1, 28, 28)
    assert torch.equal(x[:, 0], torch.from_numpy(test[:8])) and y.tolist() == list(range(8))
    ready = dm.prepare(x, training=False)
    assert torch.allclose(ready, (x.float() / 255 - 0.5) / 0.25)


def test_missing_dataset_names_folder_and_files(tmp_path):
    with pytest.raises(DatasetUnavailableError) as err:
        mnist_module(tmp_path).prepare_data()
    text = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in text and "t10k-images-idx3-ubyte" in text and "DLFOUND_DATA" in text


def test_corrupt_dataset_is_the_same_clear_error(tiny_mnist):
    root, *_ = tiny_mnist
    (root / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"not an idx file")
    with pytest.raises(DatasetUnavailableError, match="missing or unreadable"):
        mnist_module(root).setup()


def test_splits_are_seeded():
    a, b, c = (DigitsDataModule(in_channels=1, image_size=8, num_classes=10, split_seed=s) for s in (0, 0, 1))
    for dm in (a, b, c):
        dm.setup()
    assert torch.equal(a.splits["val"].y, b.splits["val"].y)
    assert not torch.equal(a.splits["val"].x, c.splits["val"].x)
    assert len(a.splits["test"]) == 359 and len(a.splits["train"]) + len(a.splits["val"]) == 1438


def test_batch_sampler_reshuffles_per_epoch_and_covers_everything():
    sampler = IndexBatchSampler(10, 4, shuffle=True, seed=3)
    first = torch.cat(list(sampler))
    again = torch.cat(list(sampler))
    sampler.set_epoch(1)
    second = torch.cat(list(sampler))
    assert torch.equal(first, again) and not torch.equal(first, second)
    assert sorted(first.tolist()) == list(range(10)) and len(sampler) == 3
    assert [len(b) for b in IndexBatchSampler(10, 4, shuffle=False, drop_last=True)] == [4, 4]


def test_batch_sampler_shards_by_rank(monkeypatch):
    import dlfound.data.memory as memory

    shards = []
    for rank in (0, 1):
        monkeypatch.setattr(memory, "rank_and_world", lambda rank=rank: (rank, 2))
        sampler = IndexBatchSampler(9, 2, shuffle=True, seed=0)
        shards.append(torch.cat(list(sampler)))
        assert len(sampler) == 3
    assert len(shards[0]) == len(shards[1]) == 5
    assert set(shards[0].tolist()) | set(shards[1].tolist()) == set(range(9))


def test_evaluation_shards_cover_every_sample_exactly_once(monkeypatch):
    import dlfound.data.memory as memory

    shards = []
    for rank in (0, 1, 2):
        monkeypatch.setattr(memory, "rank_and_world", lambda rank=rank: (rank, 3))
        sampler = IndexBatchSampler(10, 3, shuffle=False, pad=False)
        batches = list(sampler)
        assert len(sampler) == len(batches)
        shards.append(torch.cat(batches))
    assert [len(s) for s in shards] == [4, 3, 3]
    assert sorted(torch.cat(shards).tolist()) == list(range(10))  # no sample counted twice


def test_batch_augmentations_keep_shape_and_content():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    flipped = random_flip(x)
    for i in range(2):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(-1))
    cropped = random_crop(x, padding=1)
    assert cropped.shape == x.shape
    # Every crop is a shifted window of the zero-padded image: its non-zero values come from the original.
    assert set(cropped[cropped != 0].tolist()) <= set(x.flatten().tolist())
    assert torch.equal(random_crop(x, padding=0), x)


def test_imagefolder_in_memory_and_per_sample_paths_agree(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    args = dict(
        root=str(tmp_path),
        in_channels=3,
        image_size=12,
        num_classes=2,
        val_size=0,
        batch_size=16,
        num_workers=0,
        mean=[0.5] * 3,
        std=[0.5] * 3,
    )
    fast, slow = ImageFolderDataModule(in_memory=True, **args), ImageFolderDataModule(in_memory=False, **args)
    fast.setup()
    slow.setup()
    xf, yf = next(iter(fast.test_dataloader()))
    xs, ys = next(iter(slow.test_dataloader()))
    assert torch.equal(xf, xs) and torch.equal(yf, ys) and xf.shape == (6, 3, 12, 12)


def test_imagefolder_missing_is_a_clear_error(tmp_path):
    dm = ImageFolderDataModule(root=str(tmp_path / "nope"), in_channels=3, image_size=32, num_classes=2)
    with pytest.raises(DatasetUnavailableError, match="one sub-folder per class"):
        dm.setup()


@pytest.mark.parametrize("kind,classes", [("moons", 2), ("circles", 2), ("spirals", 3), ("blobs", 4)])
def test_toy_sets(kind, classes):
    dm = Toy2DDataModule(kind=kind, in_channels=2, num_classes=classes, n_train=100, n_test=50, normalize=False)
    dm.setup()
    x, y = dm.splits["test"].x, dm.splits["test"].y
    assert x.shape == (50, 2) and x.dtype == torch.float32 and set(y.tolist()) == set(range(classes))


def test_random_erasing_replaces_one_rectangle_per_chosen_image():
    from dlfound.data.batch_augment import random_erasing

    x = torch.zeros(64, 3, 16, 16)
    out = random_erasing(x, p=1.0)
    changed = out != 0
    assert changed.any(dim=(1, 2, 3)).float().mean() > 0.9
    for i in range(8):  # the erased pixels of one image form a rectangle, the same on every channel
        mask = changed[i, 0]
        if mask.any():
            rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
            assert mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()
    assert torch.equal(random_erasing(x, p=0.0), x)


def test_device_resident_data_trains_exactly_as_host_data(workdir, dlfound_in_process):
    """data.on_device=true moves the tensors to the training device once; on the CPU that device is the host, and
    the run must match the default path number for number (the GPU test below checks the move itself)."""
    from conftest import read_results

    args = ["train", "trainer.max_epochs=2", "print_config=false", "logger=none", "data.augment=flip"]
    dlfound_in_process([*args, "hydra.run.dir=host"], workdir, check=True)
    dlfound_in_process([*args, "data.on_device=true", "hydra.run.dir=device"], workdir, check=True)
    host, device = read_results(workdir / "host"), read_results(workdir / "device")
    assert host["metrics"] == device["metrics"] and host["global_step"] == device["global_step"]
    proc = dlfound_in_process([*args, "data.on_device=true", "data.num_workers=2"], workdir)
    assert proc.returncode != 0 and "set data.num_workers=0" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.gpu
def test_device_resident_data_lives_on_the_gpu_and_needs_no_copies():
    if not torch.cuda.is_available():
        pytest.skip("needs a GPU")
    import lightning as L

    from dlfound.models import mlp
    from dlfound.tasks.classification import ClassificationTask

    dm = DigitsDataModule(in_channels=1, image_size=8, num_classes=10, on_device=True)
    task = ClassificationTask(mlp(1, 10, 8), 10, {"_target_": "torch.optim.Adam", "lr": 1e-3})
    trainer = L.Trainer(
        accelerator="gpu", devices=1, max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(task, datamodule=dm)
    assert dm.splits["train"].x.is_cuda and dm.splits["val"].x.is_cuda and not dm.pin_memory
    x, y = next(iter(dm.train_dataloader()))
    assert x.is_cuda and y.is_cuda
