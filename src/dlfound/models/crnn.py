"""CRNN: Shi, Bai & Yao, "An end-to-end trainable neural network for image-based sequence recognition and its
application to scene text recognition", TPAMI 2017.

A convolutional network turns a strip of text (here a row of handwritten digits, [B, 1, 28, W]) into a sequence
of feature columns, a bidirectional LSTM reads the columns in both directions, and a linear layer scores every
label, blank included, at every column. Trained with CTC (Graves et al. 2006), it needs no segmentation: the
loss sums over all alignments of the label string to the columns.

The CNN here is a small VGG-style stack for 28-pixel-high strips (the paper's has seven convolutions for 32-pixel
text): conv3x3-BN-ReLU blocks of `channels`, with a 2x2 max pool after the first two, so height and width shrink
by 4 (floor): T = W // 4 columns, each receptive over a 4-pixel-wide band and its neighbours. "Map-to-sequence":
each column's features over the remaining height (channels[-1] x image_size // 4 numbers) are one LSTM input.
"""

from collections.abc import Sequence

import torch
from torch import nn

from dlfound.models.layers import ConvNormAct
from dlfound.models.registry import register_model


class CRNN(nn.Module):
    """Args: in_channels; num_classes (labels + the CTC blank, 11 for digits); image_size (the strip's height;
    any width); channels (the convolutions' widths; the first two are followed by a 2x2 max pool); hidden_size
    and num_layers of the bidirectional LSTM (the paper: 2 layers of 256)."""

    downsample = 4  # two 2x2 max pools: T = W // 4

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 11,
        image_size: int = 28,
        channels: Sequence[int] = (32, 64, 128),
        hidden_size: int = 128,
        num_layers: int = 2,
    ):
        super().__init__()
        if not image_size or image_size < self.downsample:
            raise ValueError(
                f"CRNN needs the strips' height as image_size (at least {self.downsample}), got {image_size}"
            )
        layers: list[nn.Module] = []
        for i, width in enumerate(channels):
            layers.append(ConvNormAct(in_channels if i == 0 else channels[i - 1], width))
            if i < 2:
                layers.append(nn.MaxPool2d(2))
        self.cnn = nn.Sequential(*layers)
        self.image_size = image_size
        self.rnn = nn.LSTM(
            channels[-1] * (image_size // self.downsample),
            hidden_size,
            num_layers,
            batch_first=True,
            bidirectional=True,
        )
        self.fc = nn.Linear(2 * hidden_size, num_classes)

    def output_length(self, width: int) -> int:
        """The number of columns T the strip of width `width` gives (the CTC input length)."""
        return width // self.downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[2] != self.image_size:
            raise ValueError(
                f"CRNN reads strips [B, C, {self.image_size}, W], got a batch of shape "
                f"{tuple(x.shape)}; set model.image_size to the strips' height"
            )
        f = self.cnn(x)  # [B, C', H/4, W/4]
        f = f.flatten(1, 2).transpose(1, 2)  # map to sequence: [B, T, C' * H/4], one vector per column
        return self.fc(self.rnn(f)[0])  # [B, T, num_classes]


@register_model("ctc")
def crnn(in_channels: int = 1, num_classes: int = 11, image_size: int = 28, **kwargs) -> CRNN:
    """CRNN for strips of digits: CNN, map-to-sequence, bidirectional LSTM, per-column scores for CTC."""
    return CRNN(in_channels, num_classes, image_size, **kwargs)
