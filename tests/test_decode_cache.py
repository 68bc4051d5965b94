"""data.decode_cache=true: an image folder decoded once into uint8 tensors in the user's cache, read by later runs
instead of decoding; never stale (a changed file decodes again), and the same tensors as decoding."""

import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from dlfound.data import decode_cache
from dlfound.data.imagefolder import ImageFolderDataModule, decode_workers


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "dlfound" / "decoded-images"


def folder(root, n=4):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (10, 14, 3), dtype=np.uint8)).save(root / split / cls / f"{i}.jpg")
    return root


def module(root, **kwargs):
    args = dict(root=str(root), in_channels=3, image_size=12, val_size=2, batch_size=4, num_workers=0)
    dm = ImageFolderDataModule(**{**args, **kwargs})
    dm.setup()
    return dm


def splits(dm):
    return {name: (split.x.clone(), split.y.clone()) for name, split in dm.splits.items()}


def equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k][0], b[k][0]) and torch.equal(a[k][1], b[k][1]) for k in a)


def test_cached_tensors_are_the_decoded_ones_and_are_reused(tmp_path, cache_home, monkeypatch):
    root = folder(tmp_path / "pets")
    plain = splits(module(root, in_memory=True))
    first = splits(module(root, decode_cache=True))
    assert equal(first, plain)
    assert len(list(cache_home.glob("*.pt"))) == 2  # the training and the test folder

    def no_decoding(*args):
        raise AssertionError("a file was decoded although the cache holds it")

    monkeypatch.setattr("dlfound.data.imagefolder.load_image", no_decoding)
    assert equal(splits(module(root, decode_cache=True)), plain)


def test_a_changed_file_is_decoded_again(tmp_path, cache_home):
    root = folder(tmp_path / "pets")
    before = splits(module(root, decode_cache=True))
    changed = root / "train" / "cat" / "0.jpg"
    Image.fromarray(np.full((10, 14, 3), 200, np.uint8)).save(changed)
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a new time even on a coarse clock
    after = splits(module(root, decode_cache=True))
    assert equal(after, splits(module(root, in_memory=True)))
    assert not equal(after, before)
    assert len(list(cache_home.glob("*.pt"))) == 3  # the new training key beside the old ones


def test_an_unwritable_cache_warns_and_the_run_goes_on(tmp_path, monkeypatch):
    root = folder(tmp_path / "pets")
    blocked = tmp_path / "blocked"
    blocked.write_text("")  # the cache folder would have to be made inside a file
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    with pytest.warns(decode_cache.DecodeCacheNotWritten):
        dm = module(root, decode_cache=True)
    assert equal(splits(dm), splits(module(root, in_memory=True)))


def test_a_damaged_cache_file_is_decoded_again(tmp_path, cache_home):
    root = folder(tmp_path / "pets")
    plain = splits(module(root, decode_cache=True))
    for path in cache_home.glob("*.pt"):
        path.write_bytes(path.read_bytes()[:100])
    with warnings.catch_warnings():
        warnings.simplefilter("error", decode_cache.DecodeCacheNotWritten)
        assert equal(splits(module(root, decode_cache=True)), plain)


def test_the_cache_composes_with_on_device(tmp_path, cache_home):
    root = folder(tmp_path / "pets")
    dm = module(root, decode_cache=True, on_device=True, num_workers="auto")
    assert dm.num_workers == 0 and dm.in_memory  # served from the training process


def test_auto_workers_follow_the_machine():
    assert 1 <= decode_workers("auto") <= 8
    assert decode_workers(3) == 3
