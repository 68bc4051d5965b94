"""Every registered model, built from its config the way `dlfound train model=NAME` builds it, trains.

- For each name in `list_models()` (so a model registered later is covered without editing this file), on its
  family's natural data (classifiers on MNIST- and CIFAR-shaped input, VAEs, GANs and flows on MNIST, restoration
  nets on the data their config selects; recurrent nets on MNIST rows, text, the adding and copy problems, GPT on
  text, encoder-decoders on addition strings, the CRNN on MNIST strips): a forward pass at batch 2 in training
  mode, the family's loss (sequence models: cross-entropy per sequence or per step, MSE for a regression;
  seq2seq: teacher-forced cross-entropy; ctc: CTC), backward, and every trainable parameter receives a finite
  gradient; the outputs are finite and shaped as the tasks expect. The batches are random tensors shaped as the
  data config says (no data set is read). Classifiers also expose `forward_features` [N, num_features], the input
  of their last linear layer, with forward(x) = head(features).
- configs/model/NAME.yaml exists for every registered NAME and the other way round, its `_target_` is the
  registered constructor, its shapes come from the data config, and `from dlfound.models import NAME` gives that
  function.
- The `_target_`s of older configs still build the same networks (same state_dict), so old checkpoints load.
- Adding a model is one module and one config.
- The models import no Lightning and no Hydra, and their modules import each other without cycles.
In-process tests run on one thread (see `one_thread`).
"""

import ast
import inspect
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import get_object, instantiate
from omegaconf import OmegaConf
from torch import nn

import dlfound.models
from dlfound.models import registry
from dlfound.models.registry import create_model, get_model, list_models, model_family

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
MODELS_SRC = REPO / "src" / "dlfound" / "models"
BATCH = 2
# The data each family trains on; None keeps the data the model's config selects (restoration: denoise or sr).
FAMILY_DATA = {
    "classifier": ["mnist", "cifar10"],
    "vae": ["mnist"],
    "gan": ["mnist"],
    "flow": ["mnist"],
    "diffusion": ["mnist", "cifar10"],
    "restoration": [None],
    "sequence": ["mnist_rows", "tinyshakespeare", "adding", "copy"],
    "seq2seq": ["addition"],
    "ctc": ["mnist_strips"],
    "bayesian": ["mnist", "cifar10"],
}
# Models that read only some of their family's data: GPT reads token ids, the score MLP vectors.
MODEL_DATA = {"gpt": ["tinyshakespeare"], "score_mlp": ["ring8"]}
# What the run builder fills in from the data files (the corpus's vocabulary), here set as it would.
FILLED = {"tinyshakespeare": ["++data.vocab_size=65", "++data.num_classes=65"]}
# Each case takes at most ~3 s on two cores (resnext29_16x64d), so none is marked slow.
CASES = [
    pytest.param(name, data, id=f"{name}-{data}" if data else name)
    for name in list_models()
    for data in MODEL_DATA.get(name, FAMILY_DATA[model_family(name)])
]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Batch-2 passes gain little from a second thread, and on a shared two-core machine intra-op threads that
    wait on each other make them several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def compose_run(name: str, data: str | None, config_dirs: tuple[Path, ...] = (), extra: tuple[str, ...] = ()):
    """The composed train config of `dlfound train model=NAME [data=DATA] [EXTRA...]`; `config_dirs` are added to
    the search path as `--config-dir` does."""
    overrides = [f"model={name}", *extra] + ([f"data={data}", *FILLED.get(data, [])] if data else [])
    if config_dirs:
        overrides.append(f"hydra.searchpath=[{','.join(f'file://{d}' for d in config_dirs)}]")
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", overrides=overrides)


def natural_input(data_cfg) -> torch.Tensor:
    """A batch in [0, 1] shaped like the data: images [N, C, S, S] (32x32 for the restoration data, whose
    images have any size) or vectors [N, C]."""
    size = data_cfg.image_size or (32 if data_cfg.get("degradation") else None)
    shape = (BATCH, data_cfg.in_channels, size, size) if size else (BATCH, data_cfg.in_channels)
    return torch.rand(shape)


def labels(data_cfg) -> torch.Tensor | None:
    classes = data_cfg.get("num_classes") or 0
    return torch.randint(0, classes, (BATCH,)) if classes else None


def sequence_batch(cfg) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids [N, T] or features [N, T, F]; class ids per sequence [N] or per step [N, T], or a float per
    sequence [N] (regression)."""
    data, model = cfg.data, cfg.model
    steps = data.get("block_size") or data.seq_len
    x = (
        torch.randint(0, model.vocab_size, (BATCH, steps))
        if model.get("vocab_size")
        else torch.rand(BATCH, steps, model.in_features)
    )
    if not data.num_classes:
        return x, torch.rand(BATCH)
    return x, torch.randint(0, data.num_classes, (BATCH, steps) if data.readout == "all" else (BATCH,))


def seq2seq_batch(cfg) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    """((src [N, S] with PAD at the end of row 0, tgt_in [N, U] starting with BOS), tgt_out [N, U])."""
    model = cfg.model
    src = torch.randint(3, model.vocab_size, (BATCH, 7))
    src[0, 5:] = model.pad_id
    tgt = torch.randint(3, model.vocab_size, (BATCH, 6))
    tgt[:, 0], tgt[1, -1] = model.bos_id, model.eos_id
    return (src, tgt[:, :-1]), tgt[:, 1:]


def strips_batch(cfg) -> tuple[torch.Tensor, torch.Tensor]:
    """Strips [N, C, H, W] and k labels per strip (1..num_classes-1; 0 is the CTC blank)."""
    data = cfg.data
    width = data.get("strip_width") or 4 * data.image_size
    x = torch.rand(BATCH, data.in_channels, data.image_size, width)
    return x, torch.randint(1, data.num_classes, (BATCH, data.get("k") or 3))


def natural_batch(family: str, cfg) -> tuple:
    batches = {"sequence": sequence_batch, "seq2seq": seq2seq_batch, "ctc": strips_batch}
    if family in batches:
        return batches[family](cfg)
    return natural_input(cfg.data), labels(cfg.data)


# -- the families' losses: (scalar loss, outputs that must be finite) -------------------------------------------
def classifier_loss(net, x, y):
    logits = net(x)
    # A network with hand-written backward passes brings its own loss (model.backprop=manual), as the task uses it.
    cross_entropy = getattr(net, "cross_entropy", F.cross_entropy)
    # GoogLeNet's auxiliary heads run in training mode only, and add 0.3 x their losses (absent by default).
    loss = cross_entropy(logits, y) + sum(0.3 * cross_entropy(a, y) for a in getattr(net, "aux_logits", []))
    return loss, [logits]


def bayesian_loss(net, x, y):
    """Bayes by Backprop's minibatch free energy: cross-entropy plus the KL of the weights' draw, here over a
    training set of 1,000 samples (the task weighs it by 1/(number of batches x batch size))."""
    logits = net(x)
    return F.cross_entropy(logits, y) + net.kl() / 1000, [logits]


def vae_loss(net, x, y):
    y = y if net.conditional else None
    params, mu, logvar = net(x, y)
    elbo = net.log_likelihood(x, params) - net.kl_divergence(mu, logvar)
    samples = net.sample(BATCH, y)
    assert samples.shape == (BATCH, *net.data_shape)
    return -elbo.mean(), [params, mu, logvar, samples]


def gan_loss(net, x, y):
    """D's cross-entropy on data and on G's samples: G gets its gradient through D."""
    y = y if net.conditional else None
    fake = net.generate(torch.randn(BATCH, net.latent_dim), y)
    assert fake.shape == (BATCH, *net.data_shape)
    logits = net.discriminate(torch.cat([net.to_model(x), fake]), None if y is None else torch.cat([y, y]))
    target = torch.cat([torch.ones(BATCH), torch.zeros(BATCH)])
    samples = net.sample(BATCH, y)
    return F.binary_cross_entropy_with_logits(logits, target), [fake, logits, samples]


def flow_loss(net, x, y):
    log_prob = net.log_prob(x)
    assert log_prob.shape == (BATCH,)
    samples = net.sample(BATCH)
    assert samples.shape == (BATCH, *net.data_shape)
    return -log_prob.mean(), [log_prob, samples]


def diffusion_loss(net, x, y):
    """L_simple at random steps; a conditional net also runs with the null class (y None)."""
    t = torch.randint(0, 1000, (BATCH,))
    noise = torch.randn_like(x)
    eps = net(x + noise, t, y if net.num_classes else None)
    assert eps.shape == x.shape
    unconditional = net(x + noise, t)
    return F.mse_loss(eps, noise) + F.mse_loss(unconditional, noise), [eps, unconditional]


def restoration_loss(net, x, y):
    out = net(x)
    assert out.shape == x.shape
    return F.mse_loss(out, x), [out]


def sequence_loss(net, x, y):
    out = net(x)
    if y.is_floating_point():  # regression: one number per sequence
        assert out.shape == y.shape
        return F.mse_loss(out, y), [out]
    assert out.shape[:-1] == y.shape, f"outputs {tuple(out.shape)} for targets {tuple(y.shape)}"
    return F.cross_entropy(out.flatten(0, -2), y.flatten()), [out]


def seq2seq_loss(net, x, y):
    src, tgt_in = x
    logits = net(src, tgt_in)
    assert logits.shape == (*tgt_in.shape, net.vocab_size)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=net.pad_id), [logits]


def ctc_loss(net, x, y):
    logits = net(x)
    steps = net.output_length(x.shape[-1])
    assert logits.shape == (BATCH, steps, net.fc.out_features)
    log_probs = logits.log_softmax(-1).transpose(0, 1)  # [T, N, C], as CTCLoss reads them
    lengths = torch.full((BATCH,), steps), torch.full((BATCH,), y.shape[1])
    return nn.CTCLoss(blank=0)(log_probs, y, *lengths), [logits]


LOSSES = {
    "classifier": classifier_loss,
    "vae": vae_loss,
    "gan": gan_loss,
    "flow": flow_loss,
    "diffusion": diffusion_loss,
    "restoration": restoration_loss,
    "sequence": sequence_loss,
    "seq2seq": seq2seq_loss,
    "ctc": ctc_loss,
    "bayesian": bayesian_loss,
}


def check_features(net: nn.Module, x: torch.Tensor) -> None:
    """forward_features gives [N, num_features], the input of the last linear layer (what a hook on it sees,
    the FID features of older versions), and that layer maps it to the logits."""
    net.eval()
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    seen = []
    hook = linears[-1].register_forward_hook(lambda m, inputs, out: seen.append(inputs[0])) if linears else None
    with torch.no_grad():
        logits = net(x)
        features = net.forward_features(x)
    assert isinstance(net.num_features, int) and features.shape == (len(x), net.num_features)
    if hook is None:  # NiN has no linear layer: its features are the pooled class maps, the scores themselves
        torch.testing.assert_close(features, logits)
        return
    hook.remove()
    torch.testing.assert_close(features, seen[0].flatten(1))
    with torch.no_grad():
        torch.testing.assert_close(linears[-1](features), logits)


def check_model(name: str, cfg) -> None:
    torch.manual_seed(0)
    net = instantiate(cfg.model, _convert_="all")
    family = model_family(name)
    x, y = natural_batch(family, cfg)
    net.train()
    loss, outputs = LOSSES[family](net, x, y)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert all(torch.isfinite(out).all() for out in outputs), "non-finite outputs"
    if family in ("classifier", "bayesian"):
        assert outputs[0].shape == (BATCH, cfg.data.num_classes)
    loss.backward()
    params = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    missing = [n for n, p in params if p.grad is None]
    bad = [n for n, p in params if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not missing and not bad, f"no gradient: {missing[:5]}, non-finite: {bad[:5]}"
    # Flows start as the identity: each coupling's last layer (and scale) is zero, so the layers before it get
    # exactly zero gradient at the first step, by design (Glow); the DDPM U-Net's residual branches and output
    # conv start at zero likewise (Ho et al.'s code). Every other network's parameters all move.
    if family not in ("flow", "diffusion"):
        zero = [n for n, p in params if not p.grad.any()]
        assert not zero, f"zero gradient: {zero[:5]}"
    if family == "classifier":
        check_features(net, x)


# The data keys each family's config must interpolate (others: in_channels).
SHAPE_KEYS = {
    "classifier": ["in_channels", "num_classes", "image_size"],
    "sequence": ["vocab_size"],
    "seq2seq": ["vocab_size"],
    "ctc": ["in_channels", "num_classes", "image_size"],
    "bayesian": ["in_channels", "num_classes", "image_size"],
}
# Keys that only some data configs have: ${oc.select:data.KEY,DEFAULT} reads them where they are.
SEQUENCE_KEYS = ("vocab_size", "in_features", "num_outputs", "readout", "block_size", "pad_id", "bos_id", "eos_id")


def check_config(name: str, cfg) -> None:
    """The config's target is the registered constructor, and its shapes come from the data config, so moving the
    model to another dataset is one override."""
    assert get_object(cfg.model._target_) is get_model(name), f"configs/model/{name}.yaml targets another constructor"
    model = OmegaConf.to_container(cfg.model, resolve=False)
    keys = SHAPE_KEYS.get(model_family(name), ["in_channels"])
    for key in [*keys, *(k for k in ("num_classes", "image_size", "stem", *SEQUENCE_KEYS) if k in model)]:
        allowed = [f"${{data.{key}}}"] + ([f"${{oc.select:data.{key},"] if key in SEQUENCE_KEYS else [])
        assert isinstance(model.get(key), str) and any(model[key].startswith(a) for a in allowed), (
            f"configs/model/{name}.yaml: {key} should be ${{data.{key}}}"
        )


@pytest.mark.parametrize("name,data", CASES)
def test_every_model_builds_from_its_config_and_trains(name, data):
    cfg = compose_run(name, data)
    check_config(name, cfg)
    check_model(name, cfg)


# Options that build a model from other layers: each runs through the same checks as the model's default build.
SWITCHES = [("mlp", "model.backprop=manual"), ("lenet5", "model.backprop=manual")]


@pytest.mark.parametrize("name,switch", SWITCHES, ids=lambda v: v)
def test_every_switch_of_layers_builds_and_trains(name, switch):
    for data in FAMILY_DATA[model_family(name)]:
        check_model(name, compose_run(name, data, extra=(switch,)))


def test_configs_and_registry_agree():
    configs = {p.stem for p in (CONFIGS / "model").glob("*.yaml") if not p.name.startswith("_")}  # _NAME: bases
    registered = set(list_models())
    assert not configs - registered, f"configs without a registered constructor: {sorted(configs - registered)}"
    assert not registered - configs, f"registered models without a config: {sorted(registered - configs)}"
    assert set(registry.FAMILIES) == set(FAMILY_DATA)
    for name in registered:
        text = (CONFIGS / "model" / f"{name}.yaml").read_text()
        assert text.startswith("# ") and len(text.splitlines()[0]) > 20, f"{name}.yaml needs a one-line description"


def test_every_registered_name_is_a_constructor_of_the_package():
    for name in list_models():
        namespace: dict = {}
        exec(f"from dlfound.models import {name}", namespace)
        assert inspect.isfunction(namespace[name]) and namespace[name] is get_model(name), name
        assert name in dlfound.models.__all__
    assert dlfound.models.ZOO == list_models("classifier")
    assert set(list_models()) == {n for family in registry.FAMILIES for n in list_models(family)}


def test_unknown_model_names_suggest_close_ones():
    with pytest.raises(ValueError, match="unknown model 'resnet19'; did you mean .*resnet18"):
        create_model("resnet19")
    with pytest.raises(ValueError, match="unknown model family"):
        list_models("classifiers")
    assert model_family("glow") == "flow" and isinstance(create_model("resnet20", num_classes=3), nn.Module)


# Older configs' targets (and checkpoints' stored configs) by today's config name.
OLD_TARGETS = {
    "mlp": "dlfound.models.mlp.MLP",
    "softmax": "dlfound.models.mlp.softmax_regression",
    "lenet5": "dlfound.models.lenet.LeNet5",
    "alexnet": "dlfound.models.alexnet.AlexNet",
    "vgg11_bn": "dlfound.models.vgg.VGG",
    "nin": "dlfound.models.nin.NiN",
    "googlenet": "dlfound.models.googlenet.GoogLeNet",
    "densenet_bc100": "dlfound.models.densenet.densenet_bc",
    "resnext29_8x64d": "dlfound.models.resnext.resnext29",
    "mobilenet_v2": "dlfound.models.mobilenet.MobileNetV2",
    "wrn28_10": "dlfound.models.wideresnet.wide_resnet",
    "vit_tiny": "dlfound.models.vit.VisionTransformer",
    "vae": "dlfound.models.vae.MLPVAE",
    "cvae": "dlfound.models.vae.MLPVAE",
    "conv_vae": "dlfound.models.vae.ConvVAE",
    "gan": "dlfound.models.gan.mlp_gan",
    "cgan": "dlfound.models.gan.mlp_gan",
    "dncnn": "dlfound.models.restoration.DnCNN",
    "srcnn": "dlfound.models.restoration.SRCNN",
    "vdsr": "dlfound.models.restoration.VDSR",
    "unet": "dlfound.models.restoration.UNet",
}


@pytest.mark.parametrize("name", OLD_TARGETS)
def test_older_targets_build_the_same_network(name):
    """A module and its constructor share a name (`dlfound.models.alexnet` is the function), yet dotted paths
    through it still reach the module's classes, and build the same state_dict as today's target."""
    cfg = compose_run(name, FAMILY_DATA[model_family(name)][0])
    networks = []
    for target in (cfg.model._target_, OLD_TARGETS[name]):
        cfg.model._target_ = target
        torch.manual_seed(0)
        networks.append(instantiate(cfg.model, _convert_="all").state_dict())
    new, old = networks
    assert list(new) == list(old) and all(torch.equal(new[k], old[k]) for k in new)


def test_shadowed_modules_still_import():
    import dlfound.models.alexnet
    from dlfound.models.senet import SqueezeExcitation
    from dlfound.models.vae import MLPVAE

    assert sys.modules["dlfound.models.vae"].MLPVAE is MLPVAE and dlfound.models.vae.MLPVAE is MLPVAE
    assert dlfound.models.alexnet.AlexNet is get_object("dlfound.models.alexnet.AlexNet")
    assert SqueezeExcitation is dlfound.models.SqueezeExcitation


TINY_MODULE = '''
"""A tiny classifier, registered from outside the package."""
import torch
from torch import nn

from dlfound.models import register_model


class TinyNet(nn.Module):
    def __init__(self, in_channels, num_classes, image_size, width):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(width, num_classes)
        self.num_features = width

    def forward_features(self, x):
        return self.features(x)

    def forward(self, x):
        return self.fc(self.forward_features(x))


@register_model("classifier")
def tiny_net(in_channels: int = 1, num_classes: int = 10, image_size: int = 28, width: int = 8) -> TinyNet:
    return TinyNet(in_channels, num_classes, image_size, width)
'''
TINY_CONFIG = """# A tiny classifier: one 3x3 convolution, global average pooling and a linear layer.
_target_: tiny_zoo.tiny_net
in_channels: ${data.in_channels}
num_classes: ${data.num_classes}
image_size: ${data.image_size}
width: 8
"""


def test_adding_a_model_is_one_module_and_one_config(tmp_path, monkeypatch):
    """`dlfound train --config-dir DIR model=tiny_net` with DIR/model/tiny_net.yaml and tiny_zoo.py importable."""
    (tmp_path / "tiny_zoo.py").write_text(TINY_MODULE)
    (tmp_path / "configs" / "model").mkdir(parents=True)
    (tmp_path / "configs" / "model" / "tiny_net.yaml").write_text(TINY_CONFIG)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))  # forget tiny_net afterwards
    try:
        cfg = compose_run("tiny_net", "cifar10", config_dirs=(tmp_path / "configs",))
        check_config("tiny_net", cfg)  # the same checks as every packaged model
        check_model("tiny_net", cfg)
        assert "tiny_net" in list_models("classifier")
        assert create_model("tiny_net", num_classes=3)(torch.rand(1, 1, 28, 28)).shape == (1, 3)
    finally:
        sys.modules.pop("tiny_zoo", None)


def test_models_import_no_lightning_no_hydra_and_no_cycles():
    """Plain torch modules: usable in a notebook, and each family imports only what it builds on."""
    graph: dict[str, set[str]] = {}
    for path in MODELS_SRC.glob("*.py"):
        imports = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imports |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imports |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        roots = {name.split(".")[0] for name in imports}
        assert not roots & {"lightning", "pytorch_lightning", "hydra", "omegaconf"}, path.name
        if path.stem != "__init__":
            graph[path.stem] = {
                name.split(".")[2]
                for name in imports
                if name.startswith("dlfound.models.") and (MODELS_SRC / f"{name.split('.')[2]}.py").is_file()
            } - {path.stem}

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        for dep in graph[module]:
            visit(dep, (*path, module))

    for module in graph:
        visit(module, ())
