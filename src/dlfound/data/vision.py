"""The torchvision image sets (MNIST, Fashion-MNIST, CIFAR-10/100, SVHN), read by torchvision's own loaders
and then held in memory as uint8 tensors.

They download into `data_dir` by default. Offline, a missing or corrupt set ends in one `DatasetUnavailableError`
that names the folder and the files expected there.
"""

from pathlib import Path

import numpy as np
import torch

from dlfound.data.memory import InMemoryDataModule
from dlfound.errors import DatasetUnavailableError

# What torchvision expects under data_dir, per dataset: (folder, files).
MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte"]
LAYOUTS = {
    "MNIST": ("MNIST/raw", MNIST_FILES),
    "FashionMNIST": ("FashionMNIST/raw", MNIST_FILES),
    "CIFAR10": ("cifar-10-batches-py", [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]),
    "CIFAR100": ("cifar-100-python", ["train", "test", "meta"]),
    "SVHN": (".", ["train_32x32.mat", "test_32x32.mat"]),
}


def _read(name: str, data_dir: str, train: bool, download: bool):
    import torchvision.datasets as tvd

    cls = getattr(tvd, name)
    kwargs = {"split": "train" if train else "test"} if name == "SVHN" else {"train": train}
    try:
        return cls(root=data_dir, download=False, **kwargs)
    except Exception as missing:  # torchvision raises RuntimeError for missing or corrupt files
        first_error = missing
    if download:
        try:
            return cls(root=data_dir, download=True, **kwargs)
        except Exception as failed:
            first_error = failed
    folder, files = LAYOUTS[name]
    where = (Path(data_dir) / folder).resolve()
    how = "and could not be downloaded" if download else "and download is off (data.download=false)"
    raise DatasetUnavailableError(
        f"{name} is missing or unreadable in {where} {how} ({type(first_error).__name__}: "
        f"{str(first_error).splitlines()[0] if str(first_error) else 'no detail'}). dlfound expected the files "
        f"{', '.join(files)} there, in torchvision's layout. Copy them in from a machine with network access, or point "
        f"the data root elsewhere with paths.data_dir=PATH or the DLFOUND_DATA environment variable."
    ) from None


def _to_tensors(ds) -> tuple[torch.Tensor, torch.Tensor]:
    data = ds.data if isinstance(ds.data, torch.Tensor) else torch.from_numpy(np.asarray(ds.data))
    if data.dim() == 3:  # MNIST-like [N, H, W]
        data = data[:, None]
    elif data.shape[-1] == 3:  # CIFAR [N, H, W, C]; SVHN is already [N, C, H, W]
        data = data.permute(0, 3, 1, 2)
    labels = getattr(ds, "targets", None)
    if labels is None:
        labels = ds.labels
    return data.contiguous(), torch.as_tensor(np.asarray(labels), dtype=torch.long)


class TorchvisionDataModule(InMemoryDataModule):
    """One of torchvision's in-memory image sets, chosen by `name` (the torchvision class name)."""

    def __init__(self, name: str, data_dir: str, download: bool = True, **kwargs):
        super().__init__(**kwargs)
        if name not in LAYOUTS:
            raise DatasetUnavailableError(f"unknown torchvision dataset {name!r}; choose one of {', '.join(LAYOUTS)}")
        self.name, self.data_dir, self.download = name, data_dir, download

    def prepare_data(self) -> None:
        # Runs once per node before setup on every rank, so only one process downloads.
        for train in (True, False):
            _read(self.name, self.data_dir, train, self.download)

    def load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        return _to_tensors(_read(self.name, self.data_dir, train, self.download))

    @staticmethod
    def files_present(name: str, data_dir: str) -> bool:
        folder, files = LAYOUTS[name]
        base = Path(data_dir) / folder
        return all((base / f).is_file() or (base / f"{f}.gz").is_file() for f in files)
