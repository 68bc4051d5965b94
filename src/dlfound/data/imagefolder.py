"""Any folder of class sub-folders (torchvision's ImageFolder layout): ROOT/train/<class>/ and ROOT/test/<class>/,
or one folder of class folders, which is split into training and test images by seed (`test_size`).

The class names are the sub-folders' names, sorted; `num_classes` and `class_names` left null are read from the
folder, and the run builder writes them into the run's config, so that checkpoints carry them (`dlfound
predict` prints them). A class folder without images is an error naming it (an empty class would still be a
class the network predicts), or left out with a warning under `skip_empty_classes: true`; the classes and their
image counts are shown when the run reads them. Every image is checked before training (see image_check.py); a bad
one is an error, or left out with a warning under `skip_bad_files: true`.

Images are read by dlfound.image_files.read_image and resized to `image_size` by `load_image`, the one test-time
transform that `dlfound predict` uses too. With `in_memory: true` they are decoded once into a uint8 tensor and
served by the fast in-memory path; otherwise each sample is decoded in `__getitem__` by DataLoader workers,
the path for sets too large for memory. `decode_cache: true` (implies in_memory) keeps the decoded tensors in the
user's cache, so that later runs skip decoding (dlfound.data.decode_cache); with `on_device: true` they then
move to the GPU once.

`num_workers: auto` decodes with one process per CPU core this process may use (up to MAX_AUTO_WORKERS); an
in-memory set is then served from the training process (no workers: each batch is one index operation).
"""

import os
import warnings
from pathlib import Path

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset, Subset
from torch.utils.data.distributed import DistributedSampler

from dlfound.data.decode_cache import decoded
from dlfound.data.image_check import good_images
from dlfound.data.memory import InMemoryDataModule, rank_and_world
from dlfound.errors import ConfigError, DatasetUnavailableError
from dlfound.image_files import IMAGE_SUFFIXES, read_image


def load_image(path: str | Path, in_channels: int, image_size: int | None) -> torch.Tensor:
    """uint8 [C, S, S]: the file read as gray (one channel) or RGB and resized (bilinear, antialiased)."""
    x = read_image(path, "gray" if in_channels == 1 else "rgb")
    if image_size and tuple(x.shape[-2:]) != (image_size, image_size):
        x = torch.nn.functional.interpolate(
            x[None].float(), size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False
        )[0]
        x = x.round().clamp(0, 255).to(torch.uint8)
    return x


def class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def has_images(folder: Path) -> bool:
    """Whether `folder` holds an image file, found without listing them all."""
    return any(p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() for p in folder.rglob("*"))


MAX_AUTO_WORKERS = 8  # decoding scales to about this many processes before the disk or the copies limit it


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity, which a batch scheduler sets), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def decode_workers(num_workers: int | str) -> int:
    """The processes that decode: the number given, or for "auto" the cores available (up to MAX_AUTO_WORKERS)."""
    if num_workers == "auto":
        return min(available_cores(), MAX_AUTO_WORKERS)
    if isinstance(num_workers, str):
        raise ConfigError(f"data.num_workers must be an integer >= 0 or auto, got {num_workers!r}")
    return num_workers


class EmptyClassesSkipped(UserWarning):
    """Class folders without images were left out (data.skip_empty_classes=true)."""


class ImageFiles(Dataset):
    """(image, label) pairs read from files on each access."""

    def __init__(self, samples: list[tuple[Path, int]], in_channels: int, image_size: int | None):
        self.samples, self.in_channels, self.image_size = samples, in_channels, image_size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i):
        path, label = self.samples[i]
        return load_image(path, self.in_channels, self.image_size), label


class ImageFolderDataModule(InMemoryDataModule):
    def __init__(
        self,
        root: str,
        train_dir: str | None = "train",
        test_dir: str | None = "test",
        test_size: float = 0.2,
        in_memory: bool = False,
        skip_bad_files: bool = False,
        skip_empty_classes: bool = False,
        num_classes: int | None = None,
        class_names: list[str] | None = None,
        num_workers: int | str = "auto",
        decode_cache: bool = False,
        on_device: bool = False,
        **kwargs,
    ):
        self.root, self.train_dir, self.test_dir = Path(root), train_dir, test_dir
        self.skip_empty_classes = skip_empty_classes
        self._classes: dict[Path, list[Path]] = {}  # each folder's class folders are listed (and warned of) once
        self._class_names = list(class_names) if class_names else None
        if num_classes is None:  # the models need it when they are built, before setup
            num_classes = len(self.class_names)
        in_memory = in_memory or decode_cache
        self.decode_workers = decode_workers(num_workers)
        # In memory, "auto" serves batches from the training process (on_device requires it); files are decoded
        # by the workers in load().
        serving = 0 if num_workers == "auto" and (in_memory or on_device) else self.decode_workers
        super().__init__(num_classes=num_classes, num_workers=serving, on_device=on_device, **kwargs)
        self.decode_cache = decode_cache
        if not 0 < test_size < 1:
            raise ConfigError(
                f"data.test_size={test_size}: give the fraction of images held out for testing, between 0 and 1"
            )
        self.test_size, self.in_memory, self.skip_bad_files = test_size, in_memory, skip_bad_files
        self._checked: dict[Path, list[tuple[Path, int]]] = {}  # each folder is listed and checked once

    # -- the folder's layout -----------------------------------------------------------------------------
    def _train_folder(self) -> Path:
        """ROOT/train_dir, or ROOT itself when it holds the class folders directly."""
        if self.train_dir and class_folders(self.root / self.train_dir):
            return self.root / self.train_dir
        if class_folders(self.root) and any(has_images(c) for c in class_folders(self.root)):
            return self.root
        raise DatasetUnavailableError(
            f"no image folder at {self.root.resolve()}: dlfound expected one sub-folder per class there, each "
            f"holding image files ({', '.join(IMAGE_SUFFIXES)}), either directly (split into training and test "
            f"images by seed, data.test_size of them for testing) or under train/ and test/ sub-folders "
            f"(data.train_dir, data.test_dir). Set data.root to the folder that holds them."
        )

    def _test_folder(self) -> Path | None:
        """ROOT/test_dir, or None to split the training folder."""
        train = self._train_folder()
        if train != self.root and self.test_dir and class_folders(self.root / self.test_dir):
            return self.root / self.test_dir
        return None

    @property
    def class_names(self) -> list[str]:
        if self._class_names is None:
            self._class_names = [c.name for c in self._class_folders(self._train_folder())]
        return self._class_names

    def _class_folders(self, folder: Path) -> list[Path]:
        """The class folders under `folder`; one without images is an error naming it, or left out with a warning
        (skip_empty_classes)."""
        if folder not in self._classes:
            found = class_folders(folder)
            empty = [c for c in found if not has_images(c)]
            if empty:
                what = (
                    f"{len(empty)} of the {len(found)} class folders under {folder.resolve()} hold no images "
                    f"({', '.join(IMAGE_SUFFIXES)}): {', '.join(c.name for c in empty)}."
                )
                if not self.skip_empty_classes:
                    raise DatasetUnavailableError(
                        f"{what} Each class folder is a class the network learns to predict; add images of it, "
                        "remove the folder, or leave such folders out with data.skip_empty_classes=true."
                    )
                warnings.warn(
                    f"{what} They are left out (data.skip_empty_classes=true).", EmptyClassesSkipped, stacklevel=2
                )
            self._classes[folder] = [c for c in found if c not in empty]
        return self._classes[folder]

    def _samples(self, folder: Path) -> list[tuple[Path, int]]:
        if folder not in self._checked:
            self._checked[folder] = self._list_samples(folder)
        return self._checked[folder]

    def _list_samples(self, folder: Path) -> list[tuple[Path, int]]:
        found = [c.name for c in self._class_folders(folder)]
        if folder == self._train_folder() and found != self.class_names:
            raise ConfigError(
                f"{folder} has the class folders {found} but the run expects {self.class_names} "
                f"(data.class_names); train on the folder the names came from, or set "
                f"data.class_names=null"
            )
        if len(found) != self.num_classes:
            raise ConfigError(
                f"{folder} has {len(found)} class folders but data.num_classes={self.num_classes}; "
                f"set data.num_classes={len(found)} (or null to take it from the folder)"
            )
        unknown = sorted(set(found) - set(self.class_names))
        if unknown:
            raise ConfigError(f"{folder} has class folders {unknown} that the training folder lacks")
        index = {name: i for i, name in enumerate(self.class_names)}
        labelled = {f: index[c] for c in found for f in image_files(folder / c)}
        if not labelled:
            raise DatasetUnavailableError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in the class folders of {folder}")
        samples = [(f, labelled[f]) for f in good_images(list(labelled), folder, self.skip_bad_files)]
        counts = [sum(label == i for _, label in samples) for i in range(len(self.class_names))]
        rank_zero_info(
            f"{len(found)} classes in {folder}: "
            + ", ".join(f"{name} {n}" for name, n in zip(self.class_names, counts, strict=True) if name in found)
        )
        return samples

    def _parts(self, train: bool) -> Dataset:
        test = self._test_folder()
        if test is not None:
            return ImageFiles(self._samples(self._train_folder() if train else test), self.in_channels, self.image_size)
        whole = ImageFiles(self._samples(self._train_folder()), self.in_channels, self.image_size)
        order = torch.randperm(len(whole), generator=torch.Generator().manual_seed(self.split_seed + 1))
        n_test = round(self.test_size * len(whole))
        return Subset(whole, (order[n_test:] if train else order[:n_test]).tolist())

    # -- loading -----------------------------------------------------------------------------------------
    def load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        part = self._parts(train)

        def decode() -> tuple[torch.Tensor, torch.Tensor]:
            loader = DataLoader(part, batch_size=256, num_workers=min(self.decode_workers, -(-len(part) // 256)))
            xs, ys = zip(*loader, strict=True)
            return torch.cat(xs), torch.cat(ys)

        if not self.decode_cache:
            return decode()
        files = part.dataset.samples if isinstance(part, Subset) else part.samples
        samples = [files[i] for i in part.indices] if isinstance(part, Subset) else files
        return decoded(samples, self.in_channels, self.image_size, decode)

    def setup(self, stage: str | None = None) -> None:
        if self.in_memory:
            return super().setup(stage)
        if self.splits:
            return
        train = self._parts(train=True)
        n_val = self.val_size if isinstance(self.val_size, int) else round(self.val_size * len(train))
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.split_seed)).tolist()
        self.splits = {
            "train": Subset(train, order[n_val:]),
            "val": Subset(train, order[:n_val] or order),
            "test": self._parts(train=False),
        }

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if self.in_memory:
            return super()._loader(split, shuffle)
        data = self.splits[split]
        rank, world = rank_and_world()
        sampler = DistributedSampler(data, world, rank, shuffle=shuffle, seed=self.split_seed) if world > 1 else None
        generator = torch.Generator().manual_seed(self.split_seed)
        return DataLoader(
            data,
            batch_size=self.batch_size if split == "train" else self.eval_batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            generator=generator,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            drop_last=self.drop_last and shuffle,
            persistent_workers=self.num_workers > 0,
        )

    @staticmethod
    def is_present(root: str) -> bool:
        return Path(root).is_dir()
