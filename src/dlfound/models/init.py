"""Weight initialisation schemes, chosen by name from the task config.

xavier: Glorot & Bengio (2010), variance 2 / (fan_in + fan_out), suited to tanh/sigmoid.
kaiming: He et al. (2015), variance 2 / fan_in, suited to ReLU.
orthogonal: Saxe et al. (2014), orthogonal weight matrices that preserve norms through depth.
"default" keeps each layer's own PyTorch initialisation (or the paper's, where the model sets one).
"""

from torch import nn

SCHEMES = ("default", "xavier", "kaiming", "orthogonal")


def initialize(module: nn.Module, scheme: str = "default") -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init {scheme!r}; choose one of {', '.join(SCHEMES)}")
    if scheme == "default":
        return
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)):
            if scheme == "xavier":
                nn.init.xavier_uniform_(layer.weight)
            elif scheme == "kaiming":
                nn.init.kaiming_normal_(layer.weight, mode="fan_out" if isinstance(layer, nn.Conv2d) else "fan_in",
                                        nonlinearity="relu")
            else:
                nn.init.orthogonal_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)) and layer.weight is not None:
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)
