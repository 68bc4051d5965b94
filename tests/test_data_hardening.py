"""Corrupt and half-described data (issue 15): image folders are checked before training, with cached verdicts;
bad files are named in one error or skipped with a warning; damaged MNIST/CIFAR files are named with the size they
should have; an image folder counts and names its classes and splits itself when it has no train/ and test/."""

import struct

import numpy as np
import pytest
import torch
from PIL import Image

from dlfound.data import image_check
from dlfound.data.image_check import BadImagesSkipped, find_bad_images
from dlfound.data.imagefolder import ImageFolderDataModule
from dlfound.data.restoration import RestorationDataModule
from dlfound.data.vision import TorchvisionDataModule
from dlfound.errors import ConfigError, DatasetUnavailableError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    """The check's cache goes under the test's own folder, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def write_images(folder, n, size=12, seed=0, mode="RGB", suffix=".png"):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    shape = (size, size, 3) if mode == "RGB" else (size, size)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"{i}{suffix}")


def class_tree(root, classes=("cat", "dog", "eel"), n=4):
    for c in classes:
        write_images(root / c, n, seed=len(c) + n)
    return root


def damage(folder):
    """Three kinds of bad file: not an image, a PNG cut short, a JPEG cut short."""
    (folder / "garbage.png").write_bytes(b"this is not an image")
    png = (folder / "0.png").read_bytes()
    (folder / "short.png").write_bytes(png[: len(png) // 2])
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(folder / "whole.jpg")
    jpg = (folder / "whole.jpg").read_bytes()
    (folder / "short.jpg").write_bytes(jpg[: len(jpg) - 40])
    return ["garbage.png", "short.png", "short.jpg"]


def folder_module(root, **kwargs):
    args = dict(
        root=str(root),
        in_channels=3,
        image_size=12,
        val_size=0,
        batch_size=64,
        num_workers=0,
        mean=[0.5] * 3,
        std=[0.5] * 3,
    )
    return ImageFolderDataModule(**{**args, **kwargs})


# -- corrupt images -----------------------------------------------------------------------------------------
def test_corrupt_images_are_listed_in_one_error_before_training(tmp_path):
    root = class_tree(tmp_path / "pets")
    bad = damage(root / "dog")
    with pytest.raises(DatasetUnavailableError) as err:
        folder_module(root).setup()
    text = str(err.value)
    assert "3 of the" in text and "skip_bad_files=true" in text
    assert all(str(root / "dog" / name) in text for name in bad) and "whole.jpg" not in text


def test_many_corrupt_images_show_the_first_few_and_a_count(tmp_path):
    root = class_tree(tmp_path / "pets")
    for i in range(8):
        (root / "cat" / f"bad{i}.png").write_bytes(b"")
    with pytest.raises(DatasetUnavailableError, match="8 of the 20 images .* and 3 more"):
        folder_module(root).setup()


def test_skip_bad_files_leaves_them_out_with_a_warning(tmp_path):
    root = class_tree(tmp_path / "pets", n=4)
    damage(root / "dog")
    dm = folder_module(root, skip_bad_files=True, test_size=0.25)
    with pytest.warns(BadImagesSkipped, match="3 of the 16 images"):
        dm.setup()
    assert len(dm.splits["train"]) + len(dm.splits["test"]) == 13  # 12 good ones and whole.jpg
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape[1:] == (3, 12, 12)


def test_the_check_is_cached_by_size_and_modification_time(tmp_path, monkeypatch, cache_home):
    root = class_tree(tmp_path / "pets")
    files = sorted(root.rglob("*.png"))
    opened = []
    real = image_check.problem_with
    monkeypatch.setattr(image_check, "problem_with", lambda p: opened.append(p) or real(p))
    assert find_bad_images(files, root) == {}
    assert len(opened) == 12 and list(cache_home.rglob("*.json"))
    opened.clear()
    assert find_bad_images(files, root) == {}
    assert opened == []  # the second run opens no file
    files[0].write_bytes(b"broken")  # a changed file is checked again
    assert list(find_bad_images(files, root)) == [files[0]] and opened == [files[0]]


def test_restoration_folders_are_checked_too(tmp_path):
    write_images(tmp_path / "train", 4, size=48, mode="L")
    write_images(tmp_path / "test", 2, size=48, mode="L")
    (tmp_path / "train" / "cut.png").write_bytes((tmp_path / "train" / "0.png").read_bytes()[:100])
    args = dict(
        root=str(tmp_path),
        train_dir="train",
        test_dirs=["test"],
        val_size=1,
        patch_size=16,
        stride=16,
        scales=[1.0],
        batch_size=4,
    )
    with pytest.raises(DatasetUnavailableError, match="cut.png"):
        RestorationDataModule(**args).setup("fit")
    dm = RestorationDataModule(**args, skip_bad_files=True)
    with pytest.warns(BadImagesSkipped):
        dm.setup("fit")
    assert len(dm.val_sets[0]) == 1 and len(dm.patches) == 3 * 9


# -- damaged MNIST and CIFAR files ------------------------------------------------------------------------------
def test_a_truncated_mnist_file_is_named_with_the_size_it_should_have(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 20), ("t10k", 10)):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + bytes(n * 784))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + bytes(n))
    images = raw / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:5000])
    dm = TorchvisionDataModule(
        name="MNIST", data_dir=str(tmp_path), download=False, in_channels=1, image_size=28, num_classes=10
    )
    with pytest.raises(DatasetUnavailableError) as err:
        dm.prepare_data()
    assert str(images) in str(err.value) and "5,000 bytes" in str(err.value) and "15,696 bytes" in str(err.value)


def test_a_wrong_sized_cifar_file_is_named_with_the_official_size(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]:
        (folder / name).write_bytes(b"\x80" * 158)  # batches.meta has the right size, the batches do not
    dm = TorchvisionDataModule(
        name="CIFAR10", data_dir=str(tmp_path), download=False, in_channels=3, image_size=32, num_classes=10
    )
    with pytest.raises(DatasetUnavailableError) as err:
        dm.prepare_data()
    assert str(folder / "data_batch_1") in str(err.value) and "31,035,704 bytes" in str(err.value)


# -- image folders that just work -------------------------------------------------------------------------------
def test_class_count_and_names_come_from_the_folder(tmp_path):
    root = class_tree(tmp_path / "pets")
    dm = folder_module(root, num_classes=None)
    assert dm.num_classes == 3 and dm.class_names == ["cat", "dog", "eel"]
    with pytest.raises(ConfigError, match="3 class folders but data.num_classes=5"):
        folder_module(root, num_classes=5).setup()


def test_a_folder_of_class_folders_is_split_by_seed(tmp_path):
    root = class_tree(tmp_path / "pets", n=8)  # no train/ or test/ inside

    def test_files(**kwargs):
        dm = folder_module(root, test_size=0.25, **kwargs)
        dm.setup()
        test = dm.splits["test"]
        return len(dm.splits["train"]), sorted(str(test.dataset.samples[i][0]) for i in test.indices)

    n_train, first = test_files()
    assert n_train == 18 and len(first) == 6
    assert test_files()[1] == first and test_files(split_seed=1)[1] != first


def test_a_missing_test_folder_splits_the_training_folder(tmp_path):
    class_tree(tmp_path / "pets" / "train", n=5)
    dm = folder_module(tmp_path / "pets", num_classes=None, test_size=0.2)
    dm.setup()
    assert dm.class_names == ["cat", "dog", "eel"] and len(dm.splits["test"]) == 3
    x, y = next(iter(dm.test_dataloader()))
    assert x.dtype == torch.uint8 and set(y.tolist()) <= {0, 1, 2}
