"""LightningDataModules. Each exposes `in_channels`, `image_size` and `num_classes`, which the data config
also holds so that model configs can take them by interpolation."""
