"""The torchvision image sets (MNIST, Fashion-MNIST, CIFAR-10/100, SVHN), read by torchvision's own loaders
and then held in memory as uint8 tensors.

They download into `data_dir` by default. Offline, a missing or corrupt set ends in one `DatasetUnavailableError`
that names the folder and the files expected there; a damaged file (truncated, or not the original) is named with
the size it should have.
"""

from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn

from dlfound.data.layouts import LAYOUTS, torchvision_files_present
from dlfound.data.memory import InMemoryDataModule, TensorBatches
from dlfound.errors import DatasetUnavailableError

# Sizes in bytes of the official files, to say how a damaged one differs (the MNIST-like files say it themselves
# in their IDX headers; CIFAR-100's and SVHN's are checked against torchvision's md5 sums).
OFFICIAL_BYTES = {
    "MNIST": {
        "train-images-idx3-ubyte": 47040016,
        "train-labels-idx1-ubyte": 60008,
        "t10k-images-idx3-ubyte": 7840016,
        "t10k-labels-idx1-ubyte": 10008,
    },
    "CIFAR10": {
        "data_batch_1": 31035704,
        "data_batch_2": 31035320,
        "data_batch_3": 31035999,
        "data_batch_4": 31035696,
        "data_batch_5": 31035623,
        "test_batch": 31035526,
        "batches.meta": 158,
    },
}
OFFICIAL_BYTES["FashionMNIST"] = OFFICIAL_BYTES["MNIST"]


def idx_problem(path: Path) -> str | None:
    """What is wrong with an IDX file (MNIST's format: 0, 0, type 0x08, ndim, then ndim big-endian sizes and
    the uint8 data), judged by its own header."""
    size = path.stat().st_size
    head = path.read_bytes()[: 4 + 4 * 4] if size else b""
    official = OFFICIAL_BYTES["MNIST"].get(path.name)
    usual = f" (the official file is {official:,} bytes)" if official and official != size else ""
    if len(head) < 4 or head[:3] != b"\x00\x00\x08" or not 1 <= head[3] <= 4 or len(head) < 4 + 4 * head[3]:
        return f"{path} ({size:,} bytes) is not an IDX file of uint8 data{usual}"
    dims = [int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(head[3])]
    expected = 4 + 4 * len(dims) + int(np.prod(dims))
    if size != expected:
        what = "truncated" if size < expected else "longer than its header says"
        return (
            f"{path} is {what}: {size:,} bytes, but its header ({' x '.join(map(str, dims))} values) needs "
            f"{expected:,} bytes" + (usual if official != expected else "")
        )
    return None


def damaged_file(name: str, data_dir: str) -> str | None:
    """A sentence naming the first damaged file of the set and the size it should have, or None."""
    folder, files = LAYOUTS[name]
    base = Path(data_dir) / folder
    present = [base / f for f in files if (base / f).is_file()]
    if name in ("MNIST", "FashionMNIST"):
        return next((problem for problem in map(idx_problem, present) if problem), None)
    for path in present:
        official = OFFICIAL_BYTES.get(name, {}).get(path.name)
        if official and path.stat().st_size != official:
            return f"{path} is {path.stat().st_size:,} bytes but the official file is {official:,} bytes"
    import torchvision.datasets as tvd
    from torchvision.datasets.utils import check_integrity

    cls = getattr(tvd, name)
    checksums = dict(getattr(cls, "train_list", []) + getattr(cls, "test_list", []))
    checksums.update({v[1]: v[2] for v in getattr(cls, "split_list", {}).values()})
    if "meta" in vars(cls):
        checksums[cls.meta["filename"]] = cls.meta["md5"]
    for path in present:
        if path.name in checksums and not check_integrity(str(path), checksums[path.name]):
            return f"{path} ({path.stat().st_size:,} bytes) does not match the official file's md5 checksum"
    return None


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
    damage = damaged_file(name, data_dir)
    if damage:
        raise DatasetUnavailableError(
            f"{name} in {where} is missing or unreadable: {damage}. It is truncated or not the original: delete "
            f"it and download it again (data.download=true), or copy it in again from a machine with network access."
        ) from None
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


def to_shape(x: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    """uint8 images [N, C, H, W] as `channels` (RGB to grey by ITU-R 601 luma, grey to RGB by repetition) at
    size x size (bilinear, antialiased): another set shaped as this one's samples."""
    if x.shape[1] == 3 and channels == 1:
        x = (x.float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    elif x.shape[1] == 1 and channels == 3:
        x = x.expand(-1, 3, -1, -1)
    if tuple(x.shape[-2:]) != (size, size):
        x = torch.nn.functional.interpolate(
            x.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
    return x.round().clamp(0, 255).to(torch.uint8).contiguous() if x.is_floating_point() else x.contiguous()


def load_ood(ood: str, data_dir: str, download: bool, channels: int, size: int) -> torch.Tensor:
    """The test images of the out-of-distribution set `ood`: a torchvision set's name (FashionMNIST, CIFAR10, ...,
    read from data_dir) or a folder of images (any depth; e.g. DATA/cifar10-jpeg/test), shaped as this set's."""
    if ood in LAYOUTS:
        return to_shape(_to_tensors(_read(ood, data_dir, False, download))[0], channels, size)
    from dlfound.data.imagefolder import image_files, load_image

    files = image_files(Path(ood)) if Path(ood).is_dir() else []
    if not files:
        raise DatasetUnavailableError(
            f"data.ood={ood!r} is neither a torchvision set ({', '.join(LAYOUTS)}, read from "
            f"{Path(data_dir).resolve()}) "
            "nor a folder holding images; name one of those sets, give the path of a folder of images, or drop "
            "data.ood (null) to test without an out-of-distribution set."
        )
    return to_shape(torch.stack([load_image(f, 3, None) for f in files]), channels, size)


class TorchvisionDataModule(InMemoryDataModule):
    """One of torchvision's in-memory image sets, chosen by `name` (the torchvision class name).

    `ood` adds an out-of-distribution set as a second test loader (labels -1), for tasks that measure whether
    their uncertainty flags unfamiliar inputs (see dlfound.metrics.calibration): a torchvision set's name, such
    as FashionMNIST beside MNIST, or a folder of images, converted to this set's channels and size and
    normalised as its samples."""

    def __init__(self, name: str, data_dir: str, download: bool = True, ood: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if name not in LAYOUTS:
            raise DatasetUnavailableError(f"unknown torchvision dataset {name!r}; choose one of {', '.join(LAYOUTS)}")
        self.name, self.data_dir, self.download, self.ood = name, data_dir, download, ood

    def setup(self, stage: str | None = None) -> None:
        fresh = not self.splits
        super().setup(stage)
        if fresh and self.ood:
            try:
                x = load_ood(self.ood, self.data_dir, self.download, self.in_channels, self.image_size)
            except DatasetUnavailableError:
                if self.ood not in LAYOUTS:  # a folder the user named: a typo there must not pass silently
                    raise
                # A preset's optional extra (Fashion-MNIST beside MNIST): the run goes on without the score.
                where = (Path(self.data_dir) / LAYOUTS[self.ood][0]).resolve()
                rank_zero_warn(
                    f"out-of-distribution score skipped: {self.ood} is not in {where} (offline). Copy its "
                    f"files there to add test/ood_auroc, or set data.ood=null to test without it."
                )
                return
            self.splits["ood"] = TensorBatches(x, torch.full((len(x),), -1, dtype=torch.long))

    def test_dataloader(self):
        """The test set, and the out-of-distribution set after it when `ood` names one."""
        if "ood" not in self.splits:
            return super().test_dataloader()
        return [super().test_dataloader(), self._loader("ood", shuffle=False)]

    def predict_dataloader(self):
        return self._loader("test", shuffle=False)

    def prepare_data(self) -> None:
        # Runs once per node before setup on every rank, so only one process downloads.
        for train in (True, False):
            _read(self.name, self.data_dir, train, self.download)

    def load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        return _to_tensors(_read(self.name, self.data_dir, train, self.download))

    files_present = staticmethod(torchvision_files_present)
