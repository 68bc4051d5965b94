"""The model registry: every named constructor of the zoo, by name and family (timm's `register_model` idea).

    @register_model("classifier")
    def resnet18(**kwargs) -> ResNet: ...

records `resnet18` under its function name. Each registered name NAME has a config, configs/model/NAME.yaml, whose
`_target_` is that constructor, and each config has a registered constructor (the tests hold both ways), so
`dlfound train model=NAME`, `from dlfound.models import NAME` and `create_model("NAME", ...)` name the same network.
Constructors follow one contract: `in_channels`, `num_classes` (classifiers, conditional generative models),
`image_size` (None for flat vectors), then the family's options; sequence models take `vocab_size` (token ids) or
`in_features` (feature sequences) instead of the image's shape.
"""

import difflib
from collections.abc import Callable

from torch import nn

# sequence: recurrent nets and GPT (sequence in, a prediction per sequence or per step); seq2seq: encoder-decoders;
# ctc: per-column label scores for connectionist temporal classification (CRNN); bayesian: classifiers with weight
# posteriors whose `kl()` enters the loss (Bayes by Backprop).
FAMILIES = ("classifier", "vae", "gan", "flow", "diffusion", "restoration", "sequence", "seq2seq", "ctc", "bayesian")

_MODELS: dict[str, tuple[str, Callable[..., nn.Module]]] = {}


def register_model(family: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: record a named constructor under its function name in `family`; returns it unchanged."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")

    def register(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = fn.__name__
        if name in _MODELS and _MODELS[name][1].__module__ != fn.__module__:
            raise ValueError(
                f"a model named {name!r} is already registered by {_MODELS[name][1].__module__}; "
                "give the constructor another name"
            )
        if fn.__module__.rpartition(".")[2] == name:
            # The constructor has its module's name (alexnet in alexnet.py), so in the package it hides the module:
            # `dlfound.models.alexnet` is the function. Dotted paths through it, such as the Hydra targets
            # `dlfound.models.alexnet.AlexNet` of older configs, find the module's names as the function's attributes.
            fn.__dict__ = fn.__globals__
        _MODELS[name] = (family, fn)
        return fn

    return register


def list_models(family: str | None = None) -> list[str]:
    """The registered names, in registration order (the package imports the families in curriculum order)."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    return [name for name, (fam, _) in _MODELS.items() if family in (None, fam)]


def get_model(name: str) -> Callable[..., nn.Module]:
    """The constructor registered as `name`; an unknown name is a ValueError that suggests close matches."""
    if name not in _MODELS:
        close = difflib.get_close_matches(name, _MODELS, n=5, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "`dlfound list model` shows them all"
        raise ValueError(f"unknown model {name!r}; {hint}")
    return _MODELS[name][1]


def model_family(name: str) -> str:
    """classifier, vae, gan, flow, restoration, sequence, seq2seq or ctc."""
    get_model(name)
    return _MODELS[name][0]


def create_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model `name`, e.g. create_model("resnet18", in_channels=3, num_classes=10)."""
    return get_model(name)(**kwargs)
