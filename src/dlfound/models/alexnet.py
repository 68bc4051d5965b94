"""AlexNet: Krizhevsky, Sutskever & Hinton, "ImageNet classification with deep convolutional neural networks",
NeurIPS 2012.

Five convolutions (11x11 stride 4, 5x5, then three 3x3) with overlapping 3x3 stride-2 max-pools after the
first, second and fifth, and three fully connected layers (4096, 4096, classes) regularised by dropout 0.5:
the network that made ReLUs, dropout and GPU training the default. The 2012 paper split the layers across two
GPUs (96-256-384-384-256 maps, 60,965,224 parameters) and used local response normalisation; torchvision's
`alexnet` follows the single-GPU "one weird trick" variant (Krizhevsky 2014: 64-192-384-256-256 maps, no LRN,
61,100,840 parameters), which is the default here. `widths=[96, 256, 384, 384, 256]` and `lrn=True` give the
2012 widths and normalisation (without the two-GPU grouping).

- ImageNet stem: as above, adaptive average pooling to 6x6 before the classifier (224 -> 55 -> 27 -> 13 -> 6).
- Small stem: the first convolution is 3x3 stride 1 and its max-pool is dropped, so 32x32 input shrinks
  32 -> 15 -> 7 at the two remaining pools, and the classifier sees an adaptive 3x3 average of that map.
`forward_features` gives the last hidden fully connected layer's output after its ReLU (`hidden` wide), the input
of the output layer.
Initialisation: the paper draws weights from N(0, 0.01) with biases 1 in layers 2, 4, 5 and the hidden
fully connected ones (init="paper"). That scheme needs the paper's long schedule to get started, so the default
is He normal (init="kaiming"), which trains at the usual learning rates.
"""

from collections.abc import Sequence

import torch
from torch import nn

from dlfound.models import init as weight_init
from dlfound.models.layers import all_but_last, check_stem
from dlfound.models.registry import register_model


class AlexNet(nn.Module):
    """Args: widths of the five convolutions; hidden width of the fully connected layers; dropout; lrn
    (local response normalisation after the first two convolutions); init: kaiming or paper."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1000,
        image_size: int | None = None,
        stem: str = "small",
        widths: Sequence[int] = (64, 192, 384, 256, 256),
        hidden: int = 4096,
        dropout: float = 0.5,
        lrn: bool = False,
        init: str = "kaiming",
    ):
        super().__init__()
        check_stem(stem)
        if init not in ("kaiming", "paper"):
            raise ValueError(f"unknown init {init!r}; choose kaiming or paper")
        if len(widths) != 5:
            raise ValueError(f"AlexNet has five convolutions; widths lists {len(widths)}")
        c1, c2, c3, c4, c5 = widths

        def norm() -> list[nn.Module]:
            # The paper's LRN: k=2, n=5, alpha=1e-4, beta=0.75.
            return [nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)] if lrn else []

        if stem == "imagenet":
            conv1 = [
                nn.Conv2d(in_channels, c1, 11, stride=4, padding=2),
                nn.ReLU(inplace=True),
                *norm(),
                nn.MaxPool2d(3, stride=2),
            ]
            pooled = 6
        else:
            conv1 = [nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(inplace=True), *norm()]
            pooled = 3
        self.features = nn.Sequential(
            *conv1,
            nn.Conv2d(c1, c2, 5, padding=2),
            nn.ReLU(inplace=True),
            *norm(),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(c2, c3, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
        )
        self.pool = nn.AdaptiveAvgPool2d(pooled)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(c5 * pooled * pooled, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )
        self.num_features = hidden
        self.reset_parameters(init)

    def reset_parameters(self, init: str) -> None:
        if init == "paper":  # N(0, 0.01) weights; biases 1 in conv 2, 4, 5 and the hidden FC layers, else 0
            weight_init.normal_(self, 0.01, layers=(nn.Conv2d, nn.Linear))
            convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
            linears = [m for m in self.classifier if isinstance(m, nn.Linear)]
            for m in (convs[1], convs[3], convs[4], linears[0], linears[1]):
                nn.init.ones_(m.bias)
        else:  # He normal (fan-in), zero biases; the output layer N(0, 0.01)
            weight_init.kaiming_normal_(self, "fan_in", layers=(nn.Conv2d, nn.Linear))
            nn.init.normal_(self.classifier[-1].weight, 0.0, 0.01)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return all_but_last(self.classifier, self.pool(self.features(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier[-1](self.forward_features(x))


@register_model("classifier")
def alexnet(in_channels: int = 3, num_classes: int = 1000, image_size: int | None = None, **kwargs) -> AlexNet:
    """AlexNet; `stem`, `widths`, `hidden`, `dropout`, `lrn`, `init` as `AlexNet`."""
    return AlexNet(in_channels, num_classes, image_size, **kwargs)
