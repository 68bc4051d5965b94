"""MNIST read as a sequence, the standard long-range benchmark for recurrent networks: row by row (28 steps of 28
pixels) or pixel by pixel (784 steps of 1 pixel, "sequential MNIST"), optionally with the 784 pixels in a fixed
random order, the permuted-MNIST benchmark of Le, Jaitly & Hinton 2015 ("A Simple Way to Initialize Recurrent
Networks of Rectified Linear Units"), which scatters the strokes over the whole sequence.

The digits are read by torchvision and held in memory as uint8 [N, 1, 28, 28], like `data=mnist`; the batch is
scaled, normalised with MNIST's mean and std, permuted and shaped into [B, T, F] after it reaches the device.
Batches: `(x float [B, T, F], y long [B])` with (T, F) = (28, 28) for rows and (784, 1) for pixels.
"""

from collections.abc import Sequence

import torch

from dlfound.data.splits import check_augment, check_choice, check_fact, check_int
from dlfound.data.vision import TorchvisionDataModule
from dlfound.errors import ConfigError

# sequence -> (seq_len, in_features)
SHAPES = {"rows": (28, 28), "pixels": (784, 1)}


def pixel_permutation(seed: int) -> torch.Tensor:
    """The fixed order of the 784 pixels of permuted MNIST: step t of a sequence shows pixel permutation[t]."""
    return torch.randperm(28 * 28, generator=torch.Generator().manual_seed(seed))


class MNISTSequenceDataModule(TorchvisionDataModule):
    """MNIST (or Fashion-MNIST, `name`) as sequences of rows or pixels; see the module docstring."""

    def __init__(
        self,
        data_dir: str,
        sequence: str = "rows",
        permute: bool = False,
        permute_seed: int = 0,
        name: str = "MNIST",
        download: bool = True,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        val_size: float | int = 5000,
        split_seed: int = 0,
        normalize: bool = True,
        mean: Sequence[float] | None = (0.1307,),
        std: Sequence[float] | None = (0.3081,),
        num_workers: int = 0,
        pin_memory: bool | str = "auto",
        drop_last: bool = False,
        overfit_batches: int = 0,
        augment: str = "none",
        in_features: int | None = None,
        seq_len: int | None = None,
        num_classes: int | None = 10,
        in_channels: int | None = 1,
        image_size: int | None = None,
        vocab_size: int | None = None,
        readout: str | None = "last",
    ):
        check_choice("sequence", sequence, tuple(SHAPES))
        check_choice("name", name, ("MNIST", "FashionMNIST"))
        check_augment(augment)
        self.seq_len, self.in_features = SHAPES[sequence]
        what = f"MNIST read as {sequence} (data.sequence={sequence})"
        for key, given, actual in [
            ("seq_len", seq_len, self.seq_len),
            ("in_features", in_features, self.in_features),
            ("num_classes", num_classes, 10),
            ("in_channels", in_channels, 1),
            ("image_size", image_size, None),
            ("vocab_size", vocab_size, None),
        ]:
            check_fact(key, given, actual, what, " (data=mnist_rows and data=mnist_pixels set them all)")
        if (mean is None) != (std is None):
            raise ConfigError("data.mean and data.std go together: give both or neither")
        super().__init__(
            name=name,
            data_dir=data_dir,
            download=download,
            in_channels=1,
            num_classes=10,
            image_size=None,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            val_size=val_size,
            split_seed=split_seed,
            normalize=normalize,
            mean=mean,
            std=std,
            num_workers=num_workers,
            pin_memory=pin_memory,
            drop_last=drop_last,
            overfit_batches=overfit_batches,
        )
        self.sequence, self.permute = sequence, bool(permute)
        self.permute_seed = check_int("permute_seed", permute_seed, minimum=0)
        self.permutation = pixel_permutation(self.permute_seed) if self.permute else None
        self.vocab_size, self.readout = None, readout
        self._on_device: dict[torch.device, torch.Tensor] = {}

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.seq_len, self.in_features)

    def _check_shape(self, x: torch.Tensor, y: torch.Tensor) -> None:
        # Stored as images; the sequence is made on the batch.
        if tuple(x.shape[1:]) != (1, 28, 28):
            raise ConfigError(
                f"{self.name} in {self.data_dir} has images of shape {tuple(x.shape[1:])}, not "
                "1x28x28; give the MNIST files in torchvision's layout"
            )
        if len(y) and int(y.max()) >= self.num_classes:
            raise ConfigError(f"labels go up to {int(y.max())} but MNIST has {self.num_classes} classes")

    def prepare(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        """uint8 images [B, 1, 28, 28] -> normalised float sequences [B, T, F] (permuted when asked)."""
        x = super().prepare(x, training=False).flatten(1)
        if self.permutation is not None:
            if x.device not in self._on_device:
                self._on_device[x.device] = self.permutation.to(x.device)
            x = x[:, self._on_device[x.device]]
        return x.reshape(len(x), self.seq_len, self.in_features)
