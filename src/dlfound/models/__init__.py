"""The model zoo: plain `torch.nn.Module`s, usable from a notebook without Lightning or Hydra.

Every classifier shares one constructor contract: `in_channels`, `num_classes`, `image_size`, then the
family's own options. `image_size` is the side of a square input (None for flat vectors).
"""

from dlfound.models.lenet import LeNet5, lenet5
from dlfound.models.mlp import MLP, softmax_regression

__all__ = ["MLP", "LeNet5", "lenet5", "softmax_regression"]

# The classification zoo (issue 3): one family per module, torchvision-style named constructors.
from dlfound.models.alexnet import AlexNet
from dlfound.models.densenet import DenseNet, densenet121, densenet169, densenet201, densenet_bc, densenet_bc100
from dlfound.models.googlenet import GoogLeNet, Inception
from dlfound.models.mobilenet import InvertedResidual, MobileNetV2, mobilenet_v2
from dlfound.models.nin import NiN
from dlfound.models.resnet import (
    BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck, ResNet, cifar_resnet, preact_cifar_resnet,
    preact_resnet18, preact_resnet110, preact_resnet164, resnet18, resnet20, resnet32, resnet34, resnet44,
    resnet50, resnet56, resnet101, resnet110, resnet152,
)
from dlfound.models.resnext import resnext29, resnext29_8x64d, resnext29_16x64d, resnext50_32x4d
from dlfound.models.senet import SqueezeExcitation, se_resnet18, se_resnet50
from dlfound.models.vgg import VGG, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn
from dlfound.models.vit import VisionTransformer, vit_b_16, vit_tiny
from dlfound.models.wideresnet import wide_resnet, wrn28_10

__all__ += [
    "AlexNet", "VGG", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "NiN",
    "GoogLeNet", "Inception", "ResNet", "BasicBlock", "Bottleneck", "PreActBasicBlock", "PreActBottleneck",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "cifar_resnet", "resnet20", "resnet32",
    "resnet44", "resnet56", "resnet110", "preact_resnet18", "preact_cifar_resnet", "preact_resnet110",
    "preact_resnet164", "DenseNet", "densenet121", "densenet169", "densenet201", "densenet_bc", "densenet_bc100",
    "resnext50_32x4d", "resnext29", "resnext29_8x64d", "resnext29_16x64d", "SqueezeExcitation", "se_resnet18",
    "se_resnet50", "MobileNetV2", "InvertedResidual", "mobilenet_v2", "wide_resnet", "wrn28_10",
    "VisionTransformer", "vit_tiny", "vit_b_16",
]

# The classifier zoo by config name (configs/model/NAME.yaml), for tests and benchmarks that run all of it.
ZOO = [
    "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "nin",
    "googlenet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnet20", "resnet32",
    "resnet44", "resnet56", "resnet110", "preact_resnet18", "preact_resnet110", "preact_resnet164",
    "densenet121", "densenet169", "densenet201", "densenet_bc100", "resnext50_32x4d", "resnext29_8x64d",
    "resnext29_16x64d", "se_resnet18", "se_resnet50", "mobilenet_v2", "wrn28_10", "vit_tiny",
]
