"""The model zoo: plain `torch.nn.Module`s, usable from a notebook without Lightning or Hydra.

    from dlfound.models import resnet18, create_model, list_models
    net = resnet18(num_classes=10)                    # or create_model("resnet18", num_classes=10)
    list_models("classifier")                         # every name NAME has configs/model/NAME.yaml

One family per module, torchvision-style named constructors registered with `registry.register_model`, the blocks
two families share in `layers`, and the initialisation schemes in `init`. Every constructor shares one contract:
`in_channels`, `num_classes` (classifiers and conditional generative models), `image_size` (the side of a square
input; None for flat vectors), then the family's own options. Every classifier also has `forward_features(x)`
([N, num_features], the input of its last linear layer) and `num_features`. Sequence models (recurrent nets, GPT)
take `vocab_size` (token ids [B, T]) or `in_features` (features [B, T, F]) instead of an image's shape;
encoder-decoders (seq2seq) and the CRNN (ctc) have their own contracts, in their modules.

Adding a model: a module (or a few lines in its family's module) whose constructor is decorated with
`@register_model(family)`, an import below, and configs/model/NAME.yaml with `_target_` the constructor.
"""

from types import ModuleType as _ModuleType

from dlfound.models.layers import SqueezeExcitation
from dlfound.models.registry import create_model, get_model, list_models, model_family, register_model

# In curriculum order: the order of `list_models()` and of ZOO.
from dlfound.models.perceptron import Perceptron, perceptron
from dlfound.models.mlp import MLP, deep_mlp, mlp, softmax, softmax_regression
from dlfound.models.lenet import LeNet5, lenet5
from dlfound.models.alexnet import AlexNet, alexnet
from dlfound.models.vgg import VGG, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn
from dlfound.models.nin import NiN, nin
from dlfound.models.googlenet import GoogLeNet, Inception, googlenet
from dlfound.models.resnet import (
    BasicBlock,
    Bottleneck,
    PreActBasicBlock,
    PreActBottleneck,
    ResNet,
    cifar_resnet,
    preact_cifar_resnet,
    preact_resnet18,
    preact_resnet110,
    preact_resnet164,
    resnet18,
    resnet20,
    resnet32,
    resnet34,
    resnet44,
    resnet50,
    resnet56,
    resnet101,
    resnet110,
    resnet152,
)
from dlfound.models.densenet import DenseNet, densenet121, densenet169, densenet201, densenet_bc, densenet_bc100
from dlfound.models.resnext import resnext29, resnext29_8x64d, resnext29_16x64d, resnext50_32x4d
from dlfound.models.senet import se_resnet18, se_resnet50
from dlfound.models.mobilenet import InvertedResidual, MobileNetV2, mobilenet_v2
from dlfound.models.wideresnet import wide_resnet, wrn28_10
from dlfound.models.vit import VisionTransformer, vit_b_16, vit_tiny
from dlfound.models.vae import ConvVAE, MLPVAE, conv_vae, cvae, vae
from dlfound.models.gan import GAN, cgan, dcgan, gan
from dlfound.models.flows import Flow, glow, nice, realnvp
from dlfound.models.diffusion import DDPMUNet, ScoreMLP, ddpm_unet, score_mlp
from dlfound.models.restoration import SRCNN, VDSR, DnCNN, UNet, dncnn, srcnn, unet, vdsr
from dlfound.models.rnn import ElmanCell, GRUCell, LSTMCell, Recurrent, RecurrentNet, elman_rnn, gru, lstm, rnn
from dlfound.models.gpt import GPT, gpt
from dlfound.models.seq2seq import RNNSearch, Seq2SeqTransformer, seq2seq_gru, seq2seq_transformer
from dlfound.models.crnn import CRNN, crnn
from dlfound.models.ntk_mlp import NTKMLP, ntk_mlp
from dlfound.models.linear import LinearModel, linear
from dlfound.models.bayesian import BayesConv2d, BayesLeNet5, BayesLinear, BayesMLP, bbb_lenet5, bbb_mlp

# The classifiers by config name (configs/model/NAME.yaml), for tests and benchmarks that run all of them.
ZOO = list_models("classifier")

# The registered constructors, and the classes, parametric builders and registry functions imported above.
__all__ = list(
    dict.fromkeys(
        [
            *list_models(),
            *(
                name
                for name, value in globals().items()
                if not name.startswith("_") and not isinstance(value, _ModuleType)
            ),
        ]
    )
)
