"""Restoration data from any folder of clean images: training patches in memory, whole images for evaluation,
and the degradation (noise, bicubic down-and-up, blur, missing pixels) applied on the fly to each batch.

Training follows the DnCNN recipe (Zhang, Zuo, Chen, Meng & Zhang 2017, "Beyond a Gaussian denoiser:
residual learning of deep CNN for image denoising"): every training image is resized by each factor in
`scales` (MATLAB bicubic), cut into `patch_size` patches every `stride` pixels, and each batch is flipped and
rotated at random (the eight symmetries of the square). Patches are held as one uint8 tensor [N, C, p, p] and
served a whole batch per index operation, like dlfound.data.memory; the clean patches become float on the
device, and the degradation runs there on the whole batch with torch's global generator (seeded by Lightning).

Validation and test images are whole, of any size, one per batch, degraded with a generator seeded from
(eval_seed, image index): every run, model and device sees the same noisy test images. Super-resolution test
images are first cropped to a multiple of the scale (the published tables' convention).

Batches reaching the task: training (degraded, clean); evaluation (degraded, clean, info) where info holds the
set's and image's names and the evaluation convention of this data (`shave`, `y_channel`).

Folder layout is config: `root`/`train_dir` for training, `val_dir` (or `val_size` images held out of the
training folder) and `test_dirs`, each any folder of PNG/JPEG/BMP/TIFF images. Every image is checked before
it is read (see image_check.py): a bad one is an error, or left out with a warning under `skip_bad_files: true`.
"""

from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from dlfound.data.degradations import KINDS, Degradation
from dlfound.data.image_check import good_images
from dlfound.data.loading import BatchedDataModule
from dlfound.data.memory import IndexBatchSampler
from dlfound.errors import ConfigError, DatasetUnavailableError
from dlfound.image_files import IMAGE_SUFFIXES, read_image
from dlfound.ops.colour import quantize
from dlfound.ops.resize import imresize, modcrop

CHANNELS = {"gray": 1, "y": 1, "rgb": 3}
AUGMENTS = ("none", "flip", "d8")


# -- reading images ------------------------------------------------------------------------------------------
def list_images(folder: Path) -> list[Path]:
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    if not files:
        raise DatasetUnavailableError(
            f"no images in {folder.resolve()}: dlfound's restoration data expects a folder of clean images "
            f"({', '.join(IMAGE_SUFFIXES)}). Set data.root to the folder holding the sets and data.train_dir, "
            f"data.val_dir and data.test_dirs to its sub-folders, or put the images there."
        )
    return files


def extract_patches(image: torch.Tensor, patch_size: int, stride: int, scales=(1.0,)) -> torch.Tensor:
    """All patch_size x patch_size windows every `stride` pixels of the image resized by each scale
    (MATLAB bicubic); uint8 [N, C, p, p]."""
    out = []
    for s in scales:
        x = image
        if s != 1:
            size = (int(image.shape[-2] * s), int(image.shape[-1] * s))
            x = quantize(imresize(image.double() / 255, size=size)).mul(255).round().to(torch.uint8)
        if min(x.shape[-2:]) < patch_size:
            continue
        windows = x.unfold(1, patch_size, stride).unfold(2, patch_size, stride)  # [C, nh, nw, p, p]
        out.append(windows.permute(1, 2, 0, 3, 4).reshape(-1, x.shape[0], patch_size, patch_size))
    return torch.cat(out) if out else torch.empty(0, image.shape[0], patch_size, patch_size, dtype=torch.uint8)


def dihedral(x: torch.Tensor, mode: int) -> torch.Tensor:
    """One of the eight symmetries of the square: transpose if mode & 4, then rotate by 90 * (mode & 3)."""
    if mode & 4:
        x = x.transpose(-1, -2)
    return x.rot90(mode & 3, dims=(-2, -1)) if mode & 3 else x


def random_symmetry(x: torch.Tensor, augment: str) -> torch.Tensor:
    """Each image of a square batch gets a random flip (augment=flip) or one of the 8 symmetries (d8)."""
    if augment == "none":
        return x
    if augment == "flip":
        flip = torch.rand(x.shape[0], device=x.device) < 0.5
        return torch.where(flip[:, None, None, None], x.flip(-1), x)
    modes = torch.randint(0, 8, (x.shape[0],), device=x.device)
    out = x.clone()
    for mode in range(1, 8):
        idx = (modes == mode).nonzero().flatten()
        if len(idx):
            out[idx] = dihedral(x[idx], mode)
    return out


# -- datasets ------------------------------------------------------------------------------------------------
class PatchBatches(Dataset):
    """uint8 patches indexed a whole batch at a time: `dataset[index_tensor] -> patches[index]`."""

    def __init__(self, patches: torch.Tensor):
        self.patches = patches

    def __len__(self) -> int:
        return len(self.patches)

    def __getitem__(self, index):
        return self.patches[index]


class WholeImages(Dataset):
    """Whole uint8 images of any size with their names: (image [C, H, W], index, set name, image name,
    primary), where `primary` marks the first of several evaluation sets."""

    def __init__(self, images: list[torch.Tensor], names: list[str], set_name: str, primary: bool = True):
        self.images, self.names, self.set_name, self.primary = images, names, set_name, primary

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], i, self.set_name, self.names[i], self.primary


# -- the data module -----------------------------------------------------------------------------------------
def check_images(
    channels: str, in_channels: int, augment: str, eval_batch_size: int, patch_size: int, stride: int
) -> None:
    if channels not in CHANNELS:
        raise ConfigError(f"data.channels={channels!r}: choose gray, y (luma of RGB images) or rgb")
    if CHANNELS[channels] != in_channels:
        raise ConfigError(
            f"data.channels={channels} gives {CHANNELS[channels]}-channel images but "
            f"data.in_channels={in_channels}; set data.in_channels={CHANNELS[channels]}"
        )
    if augment not in AUGMENTS:
        raise ConfigError(f"data.augment={augment!r} for restoration data: choose one of {', '.join(AUGMENTS)}")
    if eval_batch_size != 1:
        raise ConfigError(
            "restoration data evaluates whole images of different sizes, one per batch: keep data.eval_batch_size=1"
        )
    if patch_size < 4 or stride < 1:
        raise ConfigError(
            f"data.patch_size ({patch_size}) and data.stride ({stride}) must be positive (patch_size at least 4)"
        )


def check_degradation(degradation: str, sigma: float | list[float], scale: int) -> None:
    if degradation not in KINDS:
        raise ConfigError(f"data.degradation={degradation!r}: choose one of {', '.join(KINDS)}")
    if isinstance(sigma, (list, tuple)) and (len(sigma) != 2 or sigma[0] > sigma[1]):
        raise ConfigError(f"data.sigma={list(sigma)}: give one noise level or a range [low, high]")
    if degradation == "bicubic" and int(scale) < 2:
        raise ConfigError(f"data.scale={scale}: super-resolution needs a scale of 2 or more")


class RestorationDataModule(BatchedDataModule):
    """Clean images from folders, degraded on the fly. See the module docstring and configs/data/denoise.yaml."""

    def __init__(
        self,
        root: str,
        train_dir: str | None = "Train400",
        val_dir: str | None = None,
        test_dirs: list[str] | str | None = ("Set12",),
        val_size: int = 8,
        channels: str = "gray",
        in_channels: int = 1,
        degradation: str = "noise",
        sigma: float | list[float] = 25.0,
        eval_sigma: float | None = None,
        scale: int = 2,
        train_scales: list[int] | None = None,
        round_lr: bool = True,
        blur_size: int = 25,
        blur_sigma: float = 1.6,
        mask_ratio: float = 0.5,
        patch_size: int = 40,
        stride: int = 10,
        scales: list[float] = (1.0, 0.9, 0.8, 0.7),
        max_patches: int | None = None,
        augment: str = "d8",
        batch_size: int = 128,
        eval_batch_size: int = 1,
        eval_seed: int = 0,
        split_seed: int = 0,
        num_log_images: int = 4,
        num_workers: int = 0,
        pin_memory: bool | str = "auto",
        drop_last: bool = True,
        overfit_batches: int = 0,
        skip_bad_files: bool = False,
    ):
        check_images(channels, in_channels, augment, eval_batch_size, patch_size, stride)
        check_degradation(degradation, sigma, scale)
        super().__init__(batch_size, eval_batch_size, num_workers, pin_memory, overfit_batches)
        self.root = Path(root)
        self.train_dir, self.val_dir, self.val_size = train_dir, val_dir, int(val_size)
        self.test_dirs = [test_dirs] if isinstance(test_dirs, str) else list(test_dirs or [])
        self.channels, self.in_channels = channels, in_channels
        self.image_size, self.num_classes = None, None
        degrade = dict(
            kind=degradation,
            scale=int(scale),
            round_lr=round_lr,
            blur_size=blur_size,
            blur_sigma=blur_sigma,
            mask_ratio=mask_ratio,
        )
        self.degrade = Degradation(sigma=sigma, **degrade)
        # Validation and test may use one level where training draws from a range (blind denoising).
        self.eval_degrade = Degradation(sigma=sigma if eval_sigma is None else eval_sigma, **degrade)
        self.train_scales = list(train_scales) if train_scales else None
        self.patch_size, self.stride, self.scales = patch_size, stride, list(scales)
        self.max_patches, self.augment = max_patches, augment
        self.eval_seed, self.split_seed = eval_seed, split_seed
        self.num_log_images, self.drop_last, self.skip_bad_files = num_log_images, drop_last, skip_bad_files
        self.patches: torch.Tensor | None = None
        self.val_sets: list[WholeImages] = []
        self.test_sets: list[WholeImages] = []

    @property
    def shave(self) -> int:
        """Border pixels left out of PSNR/SSIM: the scale for super-resolution, none otherwise."""
        return self.degrade.scale if self.degrade.kind == "bicubic" else 0

    @property
    def y_channel(self) -> bool:
        """Super-resolution of RGB images is measured on the luma, as the published tables do."""
        return self.degrade.kind == "bicubic" and self.in_channels == 3

    # -- loading -----------------------------------------------------------------------------------------
    def _read_folder(self, sub: str) -> tuple[list[torch.Tensor], list[str]]:
        folder = self.root / sub
        files = good_images(list_images(folder), folder, self.skip_bad_files)
        return [read_image(f, self.channels) for f in files], [f.stem for f in files]

    def setup(self, stage: str | None = None) -> None:
        if self.test_sets or self.val_sets:
            return
        if stage in ("fit", "validate", None):
            self._setup_fit()
        self.test_sets = [
            WholeImages(*self._read_folder(d), Path(d).name, i == 0) for i, d in enumerate(self.test_dirs)
        ]
        if not self.val_sets:
            self.val_sets = self.test_sets[:1]

    def _setup_fit(self) -> None:
        if not self.train_dir:
            raise ConfigError("data.train_dir is null: training needs a folder of clean images")
        images, names = self._read_folder(self.train_dir)
        if self.val_dir:
            self.val_sets = [WholeImages(*self._read_folder(self.val_dir), Path(self.val_dir).name)]
        elif self.val_size:
            if self.val_size >= len(images):
                raise ConfigError(
                    f"data.val_size={self.val_size} leaves no training images out of {len(images)} "
                    f"in {self.root / self.train_dir}; lower it or set data.val_dir"
                )
            order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.split_seed)).tolist()
            held = sorted(order[: self.val_size])
            self.val_sets = [
                WholeImages([images[i] for i in held], [names[i] for i in held], f"{Path(self.train_dir).name}-val")
            ]
            images = [images[i] for i in sorted(order[self.val_size :])]
        # Many small tensor ops: one thread is faster than several, and far faster on a busy machine.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self.patches = torch.cat([extract_patches(im, self.patch_size, self.stride, self.scales) for im in images])
        finally:
            torch.set_num_threads(threads)
        if not len(self.patches):
            raise ConfigError(
                f"no {self.patch_size}x{self.patch_size} patch fits in the images of "
                f"{self.root / self.train_dir}; lower data.patch_size"
            )
        if self.max_patches and len(self.patches) > self.max_patches:
            keep = torch.randperm(len(self.patches), generator=torch.Generator().manual_seed(self.split_seed))
            self.patches = self.patches[keep[: self.max_patches].sort().values]
        if self.overfit_batches:
            self.patches = self.patches[: self.overfit_batches * self.batch_size]
            self.augment = "none"

    # -- loaders -----------------------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        data = PatchBatches(self.patches)
        drop_last = self.drop_last and len(data) >= self.batch_size
        sampler = IndexBatchSampler(len(data), self.batch_size, True, drop_last, self.split_seed)
        return self.batched_loader(data, sampler, self.split_seed)

    def _eval_loader(self, sets: list[WholeImages]) -> DataLoader:
        """One loader over every set in turn (so Lightning reports all of them in one metrics dict); the
        first set is the primary one, whose metrics the task also logs without the set's name."""
        return DataLoader(ConcatDataset(sets), batch_size=1, shuffle=False, num_workers=0)

    def val_dataloader(self):
        return self._eval_loader(self.val_sets)

    def test_dataloader(self):
        return self._eval_loader(self.test_sets)

    def predict_dataloader(self):
        return self.test_dataloader()

    # -- degradation on the batch ------------------------------------------------------------------------
    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if isinstance(batch, torch.Tensor):  # training patches
            clean = random_symmetry(batch.float().div_(255.0), self.augment)
            scale = None
            if self.train_scales and self.degrade.kind == "bicubic":
                scale = self.train_scales[int(torch.randint(len(self.train_scales), ()))]
            return self.degrade(clean, scale=scale), clean
        image, index, set_name, name, primary = batch
        clean = image.float().div_(255.0)
        degraded = self.degrade_eval(clean, int(index[0]))
        if self.degrade.kind == "bicubic":
            clean = modcrop(clean, self.degrade.scale)
        info = {
            "set": set_name[0],
            "name": name[0],
            "index": int(index[0]),
            "primary": bool(primary[0]),
            "shave": self.shave,
            "y_channel": self.y_channel,
            "log_image": int(index[0]) < self.num_log_images,
        }
        return degraded, clean, info

    def degrade_eval(self, clean: torch.Tensor, index: int) -> torch.Tensor:
        """The seeded degradation of evaluation image number `index` (the same in every run)."""
        if self.degrade.kind == "bicubic":
            clean = modcrop(clean, self.degrade.scale)
        generator = torch.Generator().manual_seed(self.eval_seed * 1_000_003 + index)
        return self.eval_degrade(clean, generator)
