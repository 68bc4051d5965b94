"""Any folder of class sub-folders (torchvision's ImageFolder layout): ROOT/train/<class>/ and ROOT/test/<class>/,
or one folder of class folders, which is split into training and test images by seed (`test_size`).

The class names are the sub-folders' names, sorted; `num_classes` and `class_names` left null are read from the
folder, and the run builder writes them into the run's config, so that checkpoints carry them (`dlfound
predict` prints them). Every image is checked before training (see image_check.py); a bad one is an error, or
left out with a warning under `skip_bad_files: true`.

Images are read by dlfound.image_files.read_image and resized to `image_size` by `load_image`, the one test-time
transform that `dlfound predict` uses too. With `in_memory: true` they are decoded once into a uint8 tensor and
served by the fast in-memory path; otherwise each sample is decoded in `__getitem__` by DataLoader workers,
the path for sets too large for memory.
"""

from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Subset
from torch.utils.data.distributed import DistributedSampler

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
        num_classes: int | None = None,
        class_names: list[str] | None = None,
        **kwargs,
    ):
        self.root, self.train_dir, self.test_dir = Path(root), train_dir, test_dir
        self._class_names = list(class_names) if class_names else None
        if num_classes is None:  # the models need it when they are built, before setup
            num_classes = len(self.class_names)
        super().__init__(num_classes=num_classes, **kwargs)
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
        if class_folders(self.root) and any(image_files(c) for c in class_folders(self.root)):
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
            self._class_names = [c.name for c in class_folders(self._train_folder())]
        return self._class_names

    def _samples(self, folder: Path) -> list[tuple[Path, int]]:
        if folder not in self._checked:
            self._checked[folder] = self._list_samples(folder)
        return self._checked[folder]

    def _list_samples(self, folder: Path) -> list[tuple[Path, int]]:
        found = [c.name for c in class_folders(folder)]
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
        return [(f, labelled[f]) for f in good_images(list(labelled), folder, self.skip_bad_files)]

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
        loader = DataLoader(self._parts(train), batch_size=256, num_workers=self.num_workers)
        xs, ys = zip(*loader)
        return torch.cat(xs), torch.cat(ys)

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
