"""scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes): offline, and trains in seconds."""

import numpy as np
import torch

from dlfound.data.memory import InMemoryDataModule


class DigitsDataModule(InMemoryDataModule):
    """The 8x8 digits with a seeded hold-out test split (`test_size` of the images)."""

    def __init__(self, test_size: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        self.test_size = test_size

    def load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        # Pixel values are counts 0..16; store them as uint8 on the 0..255 scale shared by every image set.
        images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
        order = np.random.default_rng(1234).permutation(len(images))
        n_test = round(self.test_size * len(images))
        part = order[n_test:] if train else order[:n_test]
        return torch.from_numpy(images[part]), torch.from_numpy(digits.target[part]).long()

    @staticmethod
    def is_present(data_dir: str) -> bool:
        return True
