"""GoogLeNet (Inception v1): Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke & Rabinovich,
"Going deeper with convolutions", CVPR 2015.

An Inception module runs 1x1, 3x3 and 5x5 convolutions and a 3x3 max-pool side by side on the same input and
concatenates their maps, so the next layer sees features at several scales; 1x1 "reduce" convolutions before
the 3x3 and 5x5 (and after the pool) keep the cost down. Nine modules (3a-5b, the paper's Table 1) with
max-pools between stages, global average pooling, dropout 0.4 and one linear layer make the 22-layer network.

Auxiliary classifiers (`aux_classifiers=True`): during training the paper attaches two small classifiers to
the outputs of 4a and 4d (5x5/3 average pool, here adaptive to 4x4; 1x1 conv to 128; FC 1024; dropout 0.7;
FC to classes) and adds their losses with weight 0.3. `forward` always returns the main logits only (a
tensor, what every task expects); in training mode with aux classifiers on, it also stores the two auxiliary
logits in `self.aux_logits` (a list, empty in eval mode or without aux), for the training step to add
`0.3 * cross_entropy(aux, y)` for each. The list is replaced at every forward.

Variants and faithfulness:
- `batch_norm=True` (default) puts BN after every convolution, as torchvision's `googlenet` and the
  BN-Inception of Ioffe & Szegedy (2015) do; `batch_norm=False` is the paper's (conv biases, no BN; the
  paper's local response normalisation is left out).
- The paper's "5x5" branch uses 5x5 kernels. torchvision builds it with 3x3 kernels (a bug it keeps for
  compatibility with its weights); `kernel_5x5=3` with batch norm reproduces torchvision's parameter count
  exactly (6,624,904 without aux, 13,004,888 with); the default 5x5 kernels give 7,005,832 with batch norm
  and 6,998,552 without (the paper's Table 1 lists ~6.8M weights, biases and BN not counted).
- ImageNet stem (the paper's): 7x7/2 conv 64, 3x3/2 max-pool, 1x1 conv 64, 3x3 conv 192, 3x3/2 max-pool
  (224 -> 28 at 3a). Small stem: the same three convolutions with the first one 3x3 stride 1 and no pools,
  so 3a sees 32x32 (28x28) maps, as in the CIFAR reproductions; the stage pools take it to 16 and 8.
`forward_features` gives the pooled 1024 features after the dropout (`num_features`), the input of `fc`.
Initialisation: He normal convolutions (the paper trained with DistBelief and states none), zero biases.
"""

import torch
from torch import nn

from dlfound.models import init as weight_init
from dlfound.models.layers import ConvNormAct, check_stem
from dlfound.models.registry import register_model


class BasicConv(ConvNormAct):
    """conv -> [BN] -> ReLU, with BN's epsilon 0.001 (torchvision's)."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool, kernel_size: int, stride: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride, norm=batch_norm, eps=0.001)


class Inception(nn.Module):
    """Four parallel branches concatenated along channels: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 max-pool -> 1x1."""

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        batch_norm: bool = True,
        kernel_5x5: int = 5,
    ):
        super().__init__()
        self.branch1 = BasicConv(in_channels, ch1x1, batch_norm, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv(in_channels, ch3x3red, batch_norm, kernel_size=1),
            BasicConv(ch3x3red, ch3x3, batch_norm, kernel_size=3),
        )
        self.branch3 = nn.Sequential(
            BasicConv(in_channels, ch5x5red, batch_norm, kernel_size=1),
            BasicConv(ch5x5red, ch5x5, batch_norm, kernel_size=kernel_5x5),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
            BasicConv(in_channels, pool_proj, batch_norm, kernel_size=1),
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: average pool to 4x4, 1x1 conv 128, FC 1024, ReLU, dropout 0.7, FC classes."""

    def __init__(self, in_channels: int, num_classes: int, batch_norm: bool = True, dropout: float = 0.7):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.conv = BasicConv(in_channels, 128, batch_norm, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = torch.flatten(self.conv(self.pool(x)), 1)
        return self.fc2(self.dropout(self.fc1(x).relu()))


# Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTIONS = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


class GoogLeNet(nn.Module):
    """Args: stem; aux_classifiers (the two training-time auxiliary heads, see the module docstring);
    batch_norm; kernel_5x5 (5 as in the paper, 3 as torchvision); dropout before the classifier."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1000,
        image_size: int | None = None,
        stem: str = "small",
        aux_classifiers: bool = False,
        batch_norm: bool = True,
        kernel_5x5: int = 5,
        dropout: float = 0.4,
        dropout_aux: float = 0.7,
    ):
        super().__init__()
        check_stem(stem)
        if kernel_5x5 not in (3, 5):
            raise ValueError(f"kernel_5x5 must be 5 (the paper) or 3 (torchvision), got {kernel_5x5}")
        bn = batch_norm
        if stem == "imagenet":
            self.stem = nn.Sequential(
                BasicConv(in_channels, 64, bn, kernel_size=7, stride=2),
                nn.MaxPool2d(3, stride=2, ceil_mode=True),
                BasicConv(64, 64, bn, kernel_size=1),
                BasicConv(64, 192, bn, kernel_size=3),
                nn.MaxPool2d(3, stride=2, ceil_mode=True),
            )
        else:
            self.stem = nn.Sequential(
                BasicConv(in_channels, 64, bn, kernel_size=3),
                BasicConv(64, 64, bn, kernel_size=1),
                BasicConv(64, 192, bn, kernel_size=3),
            )
        width = 192
        blocks = {}
        for name, channels in INCEPTIONS.items():
            blocks[name] = Inception(width, *channels, batch_norm=bn, kernel_5x5=kernel_5x5)
            width = blocks[name].out_channels
        self.inception3a, self.inception3b = blocks["3a"], blocks["3b"]
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a, self.inception4b, self.inception4c = blocks["4a"], blocks["4b"], blocks["4c"]
        self.inception4d, self.inception4e = blocks["4d"], blocks["4e"]
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a, self.inception5b = blocks["5a"], blocks["5b"]
        self.aux1 = InceptionAux(blocks["4a"].out_channels, num_classes, bn, dropout_aux) if aux_classifiers else None
        self.aux2 = InceptionAux(blocks["4d"].out_channels, num_classes, bn, dropout_aux) if aux_classifiers else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(width, num_classes)
        self.num_features = width
        self.aux_logits: list[torch.Tensor] = []
        weight_init.kaiming_normal_(self, "fan_in")
        weight_init.zero_bias_(self, nn.Linear)

    def __getstate__(self):
        # The last forward's auxiliary logits hold autograd graphs: copies and pickles start without them.
        return {**self.__dict__, "aux_logits": []}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled features after dropout, [N, num_features]; sets `aux_logits` as `forward` does."""
        aux = self.training and self.aux1 is not None
        x = self.inception3b(self.inception3a(self.stem(x)))
        x = self.inception4a(self.maxpool3(x))
        aux1 = self.aux1(x) if aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if aux else None
        x = self.inception4e(x)
        x = self.inception5b(self.inception5a(self.maxpool4(x)))
        self.aux_logits = [aux1, aux2] if aux else []
        return self.dropout(torch.flatten(self.pool(x), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


@register_model("classifier")
def googlenet(in_channels: int = 3, num_classes: int = 1000, image_size: int | None = None, **kwargs) -> GoogLeNet:
    """GoogLeNet; `stem`, `aux_classifiers`, `batch_norm`, `kernel_5x5`, `dropout` as `GoogLeNet`."""
    return GoogLeNet(in_channels, num_classes, image_size, **kwargs)
