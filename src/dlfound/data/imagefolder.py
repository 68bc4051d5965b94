"""Any folder of class sub-folders (torchvision's ImageFolder layout), with given train/test folders or a
seeded split of one folder.

Images are resized to `image_size`. With `in_memory: true` they are decoded once into a uint8 tensor and
served by the fast in-memory path; otherwise each sample is decoded in `__getitem__` by DataLoader workers,
the path for sets too large for memory.
"""

from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset
from torch.utils.data.distributed import DistributedSampler

from dlfound.data.memory import InMemoryDataModule, rank_and_world
from dlfound.errors import ConfigError, DatasetUnavailableError


def to_rgb(image):
    return image.convert("RGB")


class ImageFolderDataModule(InMemoryDataModule):
    def __init__(self, root: str, train_dir: str | None = "train", test_dir: str | None = "test",
                 test_size: float = 0.2, in_memory: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.root, self.train_dir, self.test_dir, self.test_size = Path(root), train_dir, test_dir, test_size
        self.in_memory = in_memory

    def _folder(self, sub: str | None) -> Path:
        folder = self.root / sub if sub else self.root
        if not folder.is_dir() or not any(p.is_dir() for p in folder.iterdir()):
            raise DatasetUnavailableError(
                f"no image folder at {folder.resolve()}: dlfound expected one sub-folder per class there, each "
                f"holding image files (torchvision's ImageFolder layout). Set data.root to the folder that holds "
                f"them, and data.train_dir/data.test_dir to its train and test sub-folders (null to split one folder)."
            )
        return folder

    def _dataset(self, sub: str | None):
        from torchvision import datasets, transforms

        size = self.image_size
        tf = transforms.Compose([
            transforms.Grayscale(1) if self.in_channels == 1 else transforms.Lambda(to_rgb),
            transforms.Resize((size, size), antialias=True),
            transforms.PILToTensor(),
        ])
        try:
            ds = datasets.ImageFolder(str(self._folder(sub)), transform=tf)
        except (FileNotFoundError, OSError) as err:
            raise DatasetUnavailableError(f"could not read images under {self.root.resolve()}: {err}") from None
        if len(ds.classes) != self.num_classes:
            raise ConfigError(f"{ds.root} has {len(ds.classes)} class folders but data.num_classes="
                              f"{self.num_classes}; set data.num_classes={len(ds.classes)}")
        return ds

    def _parts(self, train: bool):
        if self.test_dir:
            return self._dataset(self.train_dir if train else self.test_dir)
        whole = self._dataset(self.train_dir)
        order = torch.randperm(len(whole), generator=torch.Generator().manual_seed(self.split_seed + 1))
        n_test = round(self.test_size * len(whole))
        return Subset(whole, (order[n_test:] if train else order[:n_test]).tolist())

    def load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        ds = self._parts(train)
        loader = DataLoader(ds, batch_size=256, num_workers=self.num_workers)
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
        self.splits = {"train": Subset(train, order[n_val:]), "val": Subset(train, order[:n_val] or order),
                       "test": self._parts(train=False)}

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if self.in_memory:
            return super()._loader(split, shuffle)
        data = self.splits[split]
        rank, world = rank_and_world()
        sampler = DistributedSampler(data, world, rank, shuffle=shuffle, seed=self.split_seed) if world > 1 else None
        generator = torch.Generator().manual_seed(self.split_seed)
        return DataLoader(data, batch_size=self.batch_size if split == "train" else self.eval_batch_size,
                          shuffle=shuffle and sampler is None, sampler=sampler, generator=generator,
                          num_workers=self.num_workers, pin_memory=self.pin_memory,
                          drop_last=self.drop_last and shuffle, persistent_workers=self.num_workers > 0)

    @staticmethod
    def is_present(root: str) -> bool:
        return Path(root).is_dir()
