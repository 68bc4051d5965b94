"""Image folders against the decode limit, measured in one run: images/s of
  (a) decoding alone: each file opened and decoded by PIL into a uint8 tensor, in the same worker processes;
  (b) a plain torchvision ImageFolder + DataLoader with the same transforms (to a uint8 tensor, resized to the
      run's image size when it differs), batch size, shuffling and workers;
  (c) dlfound's `data=imagefolder` training loader (files decoded per sample, in_memory=false);
  (d) dlfound with `data.decode_cache=true`: the first run decodes every file once (setup) and caches the uint8
      tensors; a second run reads the cache; every epoch is then served from memory.
on the CIFAR-10 JPEG folders (DLFOUND_DATA/cifar10-jpeg) and on larger photos (512x384 JPEGs made from CIFAR-10
in a temporary folder, resized to 224 as data=imagefolder does). Workers: dlfound's `num_workers=auto` (one per
available core, up to 8) for every pipeline unless --workers says otherwise. Goal: (c)/(b) >= 0.95.

    DLFOUND_DATA=../shared/data python scripts/benchmark_imagefolder.py
    DLFOUND_DATA=../shared/data python scripts/benchmark_imagefolder.py --images 5000 --photos 400 --workers 2
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_loop import composed  # noqa: E402

from dlfound.data.imagefolder import decode_workers, image_files  # noqa: E402
from dlfound.image_files import read_image  # noqa: E402
from dlfound.runs.build import instantiate_section  # noqa: E402


class DecodeOnly(Dataset):
    def __init__(self, files: list[Path]):
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i):
        return read_image(self.files[i], "rgb")


def images_per_s(loader, limit: int) -> float:
    """Images/s of iterating `loader` until `limit` images (worker start-up included, as a user's epoch has it)."""
    seen, start = 0, time.perf_counter()
    for batch in loader:
        seen += len(batch[0]) if isinstance(batch, (list, tuple)) else len(batch)
        if seen >= limit:
            break
    return seen / (time.perf_counter() - start)


def decode_alone(train: Path, workers: int, batch: int, limit: int) -> float:
    files = image_files(train)
    order = torch.randperm(len(files), generator=torch.Generator().manual_seed(0))[:limit].tolist()
    data = DecodeOnly([files[i] for i in order])
    return images_per_s(DataLoader(data, batch_size=batch, num_workers=workers), limit)


def torchvision_loader(train: Path, image_size: int, workers: int, batch: int, limit: int) -> float:
    from torchvision import datasets, transforms

    steps = [transforms.PILToTensor()]
    with Image.open(image_files(train)[0]) as first:
        if first.size != (image_size, image_size):
            steps.append(transforms.Resize((image_size, image_size), antialias=True))
    data = datasets.ImageFolder(str(train), transform=transforms.Compose(steps))
    loader = DataLoader(data, batch_size=batch, shuffle=True, num_workers=workers, persistent_workers=workers > 0)
    return images_per_s(loader, limit)


def dlfound_datamodule(overrides: list[str]):
    datamodule = instantiate_section(composed(["data=imagefolder", *overrides]), "data")
    datamodule.setup("fit")
    return datamodule


def dlfound_loader(overrides: list[str], limit: int) -> float:
    return images_per_s(dlfound_datamodule(["data.in_memory=false", *overrides]).train_dataloader(), limit)


def dlfound_cached(overrides: list[str]) -> tuple[float, float, float]:
    """Images/s of (the first run: setup that decodes and caches, then one epoch; a second run: setup from the
    cache, then one epoch; a later epoch alone)."""
    rates = []
    for _ in range(2):
        start = time.perf_counter()
        datamodule = dlfound_datamodule(["data.decode_cache=true", *overrides])
        loader = datamodule.train_dataloader()
        n = len(datamodule.splits["train"])
        for _ in loader:
            pass
        rates.append(n / (time.perf_counter() - start))
    start = time.perf_counter()
    for _ in loader:
        pass
    return rates[0], rates[1], n / (time.perf_counter() - start)


def make_photos(source: Path, target: Path, count: int) -> Path:
    """`count` 512x384 JPEGs (two classes) upscaled from CIFAR-10 images, in ImageFolder layout."""
    for cls in ("airplane", "automobile"):
        files = image_files(source / cls)[: count // 2]
        (target / cls).mkdir(parents=True)
        for i, path in enumerate(files):
            with Image.open(path) as image:
                photo = image.convert("RGB").resize((512, 384), Image.BICUBIC)
            noise = np.random.default_rng(i).integers(-8, 9, (384, 512, 3))
            photo = Image.fromarray(np.clip(np.asarray(photo) + noise, 0, 255).astype(np.uint8))
            photo.save(target / cls / f"{i}.jpg", quality=90)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10000, help="images per measurement of (a)-(c)")
    parser.add_argument("--photos", type=int, default=600, help="how many larger photos to make")
    parser.add_argument("--workers", type=int, default=decode_workers("auto"))
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the workers decode; one thread each, as DataLoader workers run
    data_dir = Path(os.environ.get("DLFOUND_DATA", "") or "/nonexistent")
    cifar = data_dir / "cifar10-jpeg"
    if not cifar.is_dir():
        sys.exit(f"no cifar10-jpeg under DLFOUND_DATA ({data_dir}); set DLFOUND_DATA to the folder that holds it")
    w, b = args.workers, args.batch_size
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {w} workers, batch {b}; images/s")
    with tempfile.TemporaryDirectory() as tmp:
        photos = make_photos(cifar / "train", Path(tmp) / "photos" / "train", args.photos).parent
        shutil.copytree(photos / "train", photos / "test")
        sets = {"cifar10-jpeg 32x32": (cifar, 32), "photos 512x384 -> 224": (photos, 224)}
        for name, (root, size) in sets.items():
            common = [f"data.root={root}", f"data.image_size={size}", f"data.batch_size={b}", "data.val_size=0.1"]
            limit = min(args.images, len(image_files(root / "train")))
            a = decode_alone(root / "train", w, b, limit)
            plain = torchvision_loader(root / "train", size, w, b, limit)
            ours = dlfound_loader([*common, f"data.num_workers={w}"], limit)
            print(
                f"{name}: (a) decode alone {a:,.0f}  (b) torchvision ImageFolder {plain:,.0f}  "
                f"(c) dlfound {ours:,.0f}  (c)/(b) {ours / plain:.3f}",
                flush=True,
            )
            cache_home = Path(tmp) / "cache"
            os.environ["XDG_CACHE_HOME"] = str(cache_home)  # a cold cache for this measurement
            first, second, epoch = dlfound_cached(common)  # num_workers=auto: decode in workers, serve in-process
            shutil.rmtree(cache_home, ignore_errors=True)
            print(
                f"{name}: (d) decode_cache: first run (decode + cache + 1 epoch) {first:,.0f}, "
                f"second run (cache + 1 epoch) {second:,.0f}, a later epoch {epoch:,.0f}; "
                f"later epoch / (b) {epoch / plain:.1f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
