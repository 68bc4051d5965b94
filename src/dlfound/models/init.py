"""Weight initialisation: the schemes the families' papers use, and the task's `init=` option.

Every function walks `module.modules()` in order, initialises the weights of the layers of the given types and
zeroes their biases, and resets the normalisation layers to scale 1 and shift 0 (as PyTorch builds them):
- `kaiming_normal_`: He, Zhang, Ren & Sun (2015), w ~ N(0, 2 / fan) with fan the inputs (fan_in: keeps the
  variance of the activations through ReLU layers) or the outputs (fan_out: keeps that of the gradients).
- `normal_`: w ~ N(0, std^2) (or truncated to [-2, 2]), e.g. the N(0, 0.01) heads of AlexNet, VGG and MobileNet,
  DCGAN's N(0, 0.02), SRCNN's N(0, 0.001^2).
- `zero_bias_`: zero biases only, keeping PyTorch's default weights (torchvision's DenseNet and GoogLeNet heads).
The families call these in their constructors; a family's special case (zero-initialised residual branches, the
small last layer of a restoration network, a paper's unit biases) follows the call.

`initialize(module, scheme)` is the task's `init=` option, applied over whatever the model did:
xavier: Glorot & Bengio (2010), variance 2 / (fan_in + fan_out), suited to tanh/sigmoid.
kaiming: He et al. (2015), variance 2 / fan_in (fan_out for 2-D convolutions), suited to ReLU.
orthogonal: Saxe et al. (2014), orthogonal weight matrices that preserve norms through depth.
small_normal: w ~ N(0, 0.01^2) whatever the width, the lecture's counter-example: through a deep tanh or ReLU
  stack each layer shrinks the activations (and the gradients) by about 0.01 * sqrt(fan_in), so they vanish.
"default" keeps each layer's own PyTorch initialisation (or the paper's, where the model sets one).
"""

from collections.abc import Callable

from torch import Tensor, nn

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)
SCHEMES = ("default", "xavier", "kaiming", "orthogonal", "small_normal")
SMALL_STD = 0.01

Layers = type[nn.Module] | tuple[type[nn.Module], ...]


def weight_of(layer: nn.Module) -> Tensor:
    """The trainable weight: under spectral normalisation, the parametrisation's original, not the normalised one
    that `layer.weight` recomputes at every access."""
    return layer.parametrizations.weight.original if hasattr(layer, "parametrizations") else layer.weight


def init_layers_(
    module: nn.Module,
    layers: Layers,
    init_weight: Callable[[Tensor, nn.Module], object] | None,
    zero_bias: bool = True,
    norm_std: float = 0.0,
) -> None:
    """For every layer of type `layers` in `module`: init_weight(weight, layer) (None keeps the weight), and zero
    its bias (unless zero_bias is False); every normalisation layer: scale 1 (or ~ N(1, norm_std^2)), shift 0."""
    for m in module.modules():
        if isinstance(m, layers):
            if init_weight is not None:
                init_weight(weight_of(m), m)
            if zero_bias and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, NORMS) and m.weight is not None:
            if norm_std:
                nn.init.normal_(m.weight, 1.0, norm_std)
            else:
                nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def kaiming_normal_(module: nn.Module, mode: str = "fan_in", layers: Layers = CONVS, zero_bias: bool = True) -> None:
    """He normal weights with the ReLU gain, w ~ N(0, 2 / fan), fan = fan_in or fan_out (`mode`)."""
    init_layers_(module, layers, lambda w, _: nn.init.kaiming_normal_(w, mode=mode, nonlinearity="relu"), zero_bias)


def normal_(
    module: nn.Module, std: float, layers: Layers = nn.Linear, truncated: bool = False, norm_std: float = 0.0
) -> None:
    """w ~ N(0, std^2) (truncated: cut to [-2, 2], timm's trunc_normal_); norm scales ~ N(1, norm_std^2) (DCGAN)."""
    init = nn.init.trunc_normal_ if truncated else nn.init.normal_
    init_layers_(module, layers, lambda w, _: init(w, std=std), norm_std=norm_std)


def zero_bias_(module: nn.Module, layers: Layers = nn.Linear) -> None:
    """Zero the biases of the layers of type `layers`, keeping PyTorch's default weights."""
    init_layers_(module, layers, None)


def initialize(module: nn.Module, scheme: str = "default") -> None:
    """The task's `init=` option: re-initialise every convolution and linear layer by `scheme`."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init {scheme!r}; choose one of {', '.join(SCHEMES)}")
    if scheme == "default":
        return
    schemes = {
        "xavier": lambda w, layer: nn.init.xavier_uniform_(w),
        "kaiming": lambda w, layer: nn.init.kaiming_normal_(
            w, mode="fan_out" if isinstance(layer, nn.Conv2d) else "fan_in", nonlinearity="relu"
        ),
        "orthogonal": lambda w, layer: nn.init.orthogonal_(w),
        "small_normal": lambda w, layer: nn.init.normal_(w, std=SMALL_STD),
    }
    init_layers_(module, (nn.Linear, *CONVS), schemes[scheme])
