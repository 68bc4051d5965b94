"""Where torchvision's image sets keep their files under data_dir, and whether they are there: read without
importing torch, so that `dlfound list data` answers at once."""

from pathlib import Path

# What torchvision expects under data_dir, per dataset: (folder, files).
MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
LAYOUTS = {
    "MNIST": ("MNIST/raw", MNIST_FILES),
    "FashionMNIST": ("FashionMNIST/raw", MNIST_FILES),
    "CIFAR10": ("cifar-10-batches-py", [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]),
    "CIFAR100": ("cifar-100-python", ["train", "test", "meta"]),
    "SVHN": (".", ["train_32x32.mat", "test_32x32.mat"]),
}


def torchvision_files_present(name: str, data_dir: str) -> bool:
    """Whether every file of the torchvision set NAME (a key of LAYOUTS) is under data_dir (or gzipped there)."""
    folder, files = LAYOUTS[name]
    base = Path(data_dir) / folder
    return all((base / f).is_file() or (base / f"{f}.gz").is_file() for f in files)
