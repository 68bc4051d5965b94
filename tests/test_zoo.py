"""The classification zoo (issue 3): every model config trains at 224 px and counts its parameters right.

- Forward and backward at batch 2 on 1x28x28 and 3x32x32 input with the small stem, for every registered model:
  tests/test_every_model.py.
- At 3x224x224 with the ImageNet stem, forward and backward only for a representative subset that covers each
  family's ImageNet stem (`IMAGENET_FORWARD`: alexnet, vgg11_bn, nin, googlenet with aux, resnet18, resnet50,
  preact_resnet18, se_resnet18, resnet20, densenet121, densenet_bc100, mobilenet_v2, vit_tiny); the others
  (vgg13-19, resnet34/101/152, densenet169/201, resnext*, se_resnet50, wrn28_10, ..., and the `vit_b_16`
  constructor, which has no config) are built on the meta device only, in the parameter-count tests.
- In-process tests run on one thread (see `one_thread`); the two CLI sweeps run side by side, one thread each.
- Parameter counts: exactly torchvision's for the ImageNet variants torchvision has (built with weights=None
  on the meta device), the papers' counts (to their rounding) for the CIFAR architectures.
- `dlfound train -m model=<one model of each zoo module> data=<gray 28x28 | RGB 32x32 image folders> debug=fast`:
  two Hydra multiruns over tiny fake image folders, run side by side, one results.json per job. One model per
  constructor (`CLI_SWEEP`): the deeper variants differ only in their block counts, which the in-process tests
  above build and train; each job costs seconds of Lightning's set-up whatever the model.
"""

import concurrent.futures
import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision.models as tvm
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from conftest import REPO, read_results, run_dlfound, run_folders
from dlfound import models
from dlfound.models import ZOO
from dlfound.models.googlenet import INCEPTIONS
from dlfound.runs.parameter_counts import InputShape, build_model

IMAGENET_FORWARD = [
    "alexnet",
    "vgg11_bn",
    "nin",
    "googlenet",
    "resnet18",
    "resnet50",
    "preact_resnet18",
    "se_resnet18",
    "resnet20",
    "densenet121",
    "densenet_bc100",
    "mobilenet_v2",
    "vit_tiny",
]
# One model per zoo module (and per kind of block within it) for the CLI sweeps.
CLI_SWEEP = [
    "mlp",
    "softmax",
    "perceptron",
    "lenet5",
    "alexnet",
    "vgg11_bn",
    "nin",
    "googlenet",
    "resnet18",
    "resnet20",
    "preact_resnet18",
    "densenet_bc100",
    "resnext29_8x64d",
    "se_resnet18",
    "mobilenet_v2",
    "wrn28_10",
    "vit_tiny",
    "ntk_mlp",
    "linear",
]


def test_the_cli_sweep_covers_every_zoo_module():
    from dlfound.models.registry import get_model

    assert set(CLI_SWEEP) <= set(ZOO)
    assert {get_model(name).__module__ for name in CLI_SWEEP} == {get_model(name).__module__ for name in ZOO}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Batch-2 passes gain little from a second thread, and on a shared two-core machine intra-op threads that
    wait on each other make them several times slower; one thread keeps the timing steady."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(
    name: str, in_channels: int = 3, image_size: int = 32, num_classes: int = 10, stem: str = "small", **overrides
):
    """A zoo model as `dlfound train` builds it for data of this shape."""
    return build_model(name, InputShape(in_channels, image_size, num_classes, stem), **overrides)


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def meta_count(factory, *args, **kwargs) -> int:
    with torch.device("meta"):
        return count(factory(*args, **kwargs))


def forward_backward(net, in_channels: int, size: int, num_classes: int) -> None:
    torch.manual_seed(0)
    net.train()
    x = torch.randn(2, in_channels, size, size)
    y = torch.randint(0, num_classes, (2,))
    logits = net(x)
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, num_classes)
    assert torch.isfinite(logits).all()
    loss = F.cross_entropy(logits, y) + sum(0.3 * F.cross_entropy(a, y) for a in getattr(net, "aux_logits", []))
    loss.backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    bad = [n for n, p in net.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    zero = [n for n, p in net.named_parameters() if p.grad is not None and not p.grad.any()]
    assert not missing and not bad and not zero, f"no gradient: {missing[:5]}, non-finite: {bad[:5]}, zero: {zero[:5]}"


@pytest.mark.slow
@pytest.mark.parametrize("name", IMAGENET_FORWARD)
def test_imagenet_stem_forward_backward(name):
    extra = {"aux_classifiers": True} if name == "googlenet" else {}
    forward_backward(build(name, 3, 224, num_classes=5, stem="imagenet", **extra), 3, 224, 5)


# Ours (config, extra options) at 224 px and 1000 classes against torchvision's model of that name.
TORCHVISION_EQUAL = [
    ("alexnet", {}, "alexnet", {}),
    *[(f"vgg{d}{bn}", {}, f"vgg{d}{bn}", {}) for d in (11, 13, 16, 19) for bn in ("", "_bn")],
    ("googlenet", {"kernel_5x5": 3}, "googlenet", {"aux_logits": False, "init_weights": False}),
    ("googlenet", {"kernel_5x5": 3, "aux_classifiers": True}, "googlenet", {"aux_logits": True, "init_weights": False}),
    *[(f"resnet{d}", {}, f"resnet{d}", {}) for d in (18, 34, 50, 101, 152)],
    *[(f"densenet{d}", {}, f"densenet{d}", {}) for d in (121, 169, 201)],
    ("resnext50_32x4d", {}, "resnext50_32x4d", {}),
    ("mobilenet_v2", {}, "mobilenet_v2", {}),
    ("mobilenet_v2", {"width_mult": 0.5}, "mobilenet_v2", {"width_mult": 0.5}),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "ours,options,theirs,their_options",
    TORCHVISION_EQUAL,
    ids=["-".join([t[0], *map(str, t[1].values())]) for t in TORCHVISION_EQUAL],
)
def test_imagenet_parameter_counts_equal_torchvision(ours, options, theirs, their_options):
    with torch.device("meta"):
        mine = count(build(ours, 3, 224, 1000, "imagenet", **options))
        reference = count(getattr(tvm, theirs)(weights=None, **their_options))
    assert mine == reference


def test_vit_b_16_equals_torchvision():
    assert meta_count(models.vit_b_16) == meta_count(tvm.vit_b_16, weights=None) == 86_567_656


def test_wide_bottleneck_resnet_equals_torchvision_wide_resnet50_2():
    mine = meta_count(
        models.ResNet, 3, 1000, 224, block="bottleneck", layers=[3, 4, 6, 3], width_per_group=128, stem="imagenet"
    )
    assert mine == meta_count(tvm.wide_resnet50_2, weights=None)


def test_googlenet_with_the_papers_5x5_kernels():
    """Each 5x5 branch has ch5x5red * ch5x5 * (25 - 9) more weights than torchvision's 3x3 ones."""
    extra = sum(c[3] * c[4] * 16 for c in INCEPTIONS.values())
    assert meta_count(build, "googlenet", 3, 224, 1000, "imagenet") == 6_624_904 + extra == 7_005_832


def se_parameters(resnet) -> int:
    """2 C^2 / r weights and C / r + C biases per SE block, C the output width of each block."""
    total = 0
    for m in resnet.modules():
        if isinstance(m, models.SqueezeExcitation):
            c, hidden = m.fc1.in_channels, m.fc1.out_channels
            total += 2 * c * hidden + hidden + c
    return total


def test_se_resnets_add_the_papers_se_parameters_to_resnet():
    with torch.device("meta"):
        se50 = build("se_resnet50", 3, 224, 1000, "imagenet")
        se18 = build("se_resnet18", 3, 224, 1000, "imagenet")
        assert count(se50) == count(tvm.resnet50(weights=None)) + se_parameters(se50) == 28_088_024
        assert count(se18) == count(tvm.resnet18(weights=None)) + se_parameters(se18) == 11_778_592


# CIFAR architectures at 3x32x32, CIFAR-10: (millions reported by the paper, tolerance of its rounding).
PAPER_COUNTS = {
    "resnet20": (0.27, 0.005),
    "resnet32": (0.46, 0.005),
    "resnet44": (0.66, 0.005),
    "resnet56": (0.85, 0.005),
    "resnet110": (1.7, 0.05),
    "preact_resnet110": (1.7, 0.05),
    "preact_resnet164": (1.7, 0.05),
    "densenet_bc100": (0.8, 0.05),
    "resnext29_8x64d": (34.4, 0.05),
    "resnext29_16x64d": (68.1, 0.1),
    "wrn28_10": (36.5, 0.05),
    "nin": (0.97, 0.005),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", PAPER_COUNTS)
def test_cifar_parameter_counts_match_the_papers(name):
    expected, tolerance = PAPER_COUNTS[name]
    assert math.isclose(meta_count(build, name) / 1e6, expected, abs_tol=tolerance)


def test_known_exact_cifar_counts():
    """Counts the reference code reports: akamaster's ResNet-20/110, szagoruyko's WRN-28-10, kuangliu's
    ResNet-18 and VGG-16; and the larger DenseNet-BCs of the paper's Table 2 (15.3M, 25.6M)."""
    exact = {
        "resnet20": 269_722,
        "resnet110": 1_727_962,
        "wrn28_10": 36_479_194,
        "resnet18": 11_173_962,
        "vgg16_bn": 14_728_266,
        "vit_tiny": 5_362_762,
    }
    assert {name: meta_count(build, name) for name in exact} == exact
    assert round(meta_count(models.densenet_bc, 250, 24, num_classes=10) / 1e6, 1) == 15.3
    assert round(meta_count(models.densenet_bc, 190, 40, num_classes=10) / 1e6, 1) == 25.6
    assert round(meta_count(models.densenet_bc, 40, 12, 1.0, False, num_classes=10) / 1e6, 1) == 1.0


def test_option_a_shortcuts_have_no_parameters():
    a, b = models.resnet20(num_classes=10), models.resnet20(num_classes=10, shortcut="B")
    assert count(b) - count(a) == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)  # two 1x1 projections with BN


def test_plain_resnets_are_the_same_layers_without_the_residual_sum():
    residual = models.resnet20(num_classes=10, zero_init_residual=True).eval()
    plain = models.resnet20(num_classes=10, shortcut=False, zero_init_residual=True).eval()
    assert count(plain) == count(residual) == 269_722  # option A shortcuts have no parameters to remove
    assert not any(isinstance(m, models.resnet.PadShortcut) for m in plain.modules())
    plain.load_state_dict(residual.state_dict())
    # Zeroed last BN scales make every branch output 0: a residual block passes its (non-negative) input on,
    # a plain block outputs relu(0) = 0.
    x = torch.relu(torch.randn(2, 16, 8, 8))
    block = residual.stages[0][0], plain.stages[0][0]
    assert torch.equal(block[0](x), x) and torch.count_nonzero(block[1](x)) == 0
    with pytest.raises(ValueError, match="plain network"):
        models.resnet20(shortcut="C")
    with pytest.raises(ValueError, match="plain network"):
        models.resnet20(shortcut=0)  # 0 == False, but only false means plain


def test_googlenet_aux_logits_only_in_training():
    net = models.GoogLeNet(3, 4, 32, aux_classifiers=True)
    x = torch.randn(2, 3, 32, 32)
    net.train()
    out = net(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 4)
    assert len(net.aux_logits) == 2 and all(a.shape == (2, 4) for a in net.aux_logits)
    net.eval()
    with torch.no_grad():
        assert net(x).shape == (2, 4)
    assert net.aux_logits == []
    net.train()
    net(x)
    assert copy.deepcopy(net).aux_logits == []  # an EMA copy or a pickle made mid-training does not fail
    plain = models.GoogLeNet(3, 4, 32).train()
    plain(x)
    assert plain.aux_logits == [] and plain.aux1 is None


@pytest.mark.parametrize(
    "factory",
    [models.resnet20, models.preact_resnet110, models.resnext29_8x64d, models.wrn28_10, models.resnet50],
    ids=lambda f: f.__name__,
)
def test_squeeze_excitation_plugs_into_every_residual_family(factory):
    with torch.device("meta"):
        plain, se = factory(num_classes=10), factory(num_classes=10, se_reduction=8)
    blocks = [m for m in se.modules() if hasattr(m, "se")]
    assert blocks and all(isinstance(m.se, models.SqueezeExcitation) for m in blocks)
    assert count(se) == count(plain) + se_parameters(se)


def test_zero_init_residual_starts_each_block_as_identity():
    net = models.resnet18(num_classes=10, zero_init_residual=True)
    assert all(not b.bn2.weight.any() for b in net.modules() if isinstance(b, models.BasicBlock))
    net = models.resnet50(num_classes=10, zero_init_residual=True)
    assert all(not b.bn3.weight.any() for b in net.modules() if isinstance(b, models.Bottleneck))


def test_usable_from_plain_pytorch_with_defaults():
    net = models.resnet18(num_classes=10)
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    assert models.vit_tiny(num_classes=10)(torch.randn(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: models.resnet18(stem="cifar"), "unknown stem"),
        (lambda: models.cifar_resnet(21), r"6n\+2"),
        (lambda: models.densenet_bc(99), "depth"),
        (lambda: models.vit_tiny(image_size=30), "multiple of its patch size"),
        (lambda: models.ResNet(block="tiny"), "unknown block"),
        (lambda: models.VGG(config="Z"), "unknown VGG config"),
    ],
    ids=["stem", "cifar-depth", "densenet-depth", "vit-size", "block", "vgg-config"],
)
def test_impossible_options_say_what_to_do(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def fake_image_folders(root: Path) -> Path:
    """2 classes x 4 PNGs for train and test, and data configs for 1x28x28 and 3x32x32 views of them."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label in ("cat", "dog"):
            folder = root / "images" / split / label
            folder.mkdir(parents=True)
            for i in range(4):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    configs = root / "zoo_configs" / "data"
    configs.mkdir(parents=True)
    common = (
        f"defaults:\n  - imagefolder\n  - _self_\nroot: {root / 'images'}\nin_memory: true\nnum_workers: 0\n"
        "num_classes: 2\nstem: small\nnormalize: false\nbatch_size: 2\neval_batch_size: 2\n"
    )
    (configs / "fake_gray.yaml").write_text("# 1x28x28 test images\n" + common + "in_channels: 1\nimage_size: 28\n")
    (configs / "fake_rgb.yaml").write_text("# 3x32x32 test images\n" + common + "in_channels: 3\nimage_size: 32\n")
    return configs.parent


@pytest.mark.slow
def test_dlfound_train_runs_each_zoo_module_on_mnist_and_cifar_shapes(workdir):
    config_dir = fake_image_folders(workdir)
    # One thread per sweep: the two sweeps run side by side, and oversubscribed threads slow small convs 5x.
    env = {"OMP_NUM_THREADS": "1"}

    def sweep(data: str):
        args = [
            "train",
            "-m",
            "--config-dir",
            str(config_dir),
            f"model={','.join(CLI_SWEEP)}",
            f"data={data}",
            "debug=fast",
            "callbacks.progress_bar=null",
            "callbacks.model_summary=null",
            "callbacks.model_checkpoint=null",
        ]
        return run_dlfound(args, workdir, env={**env, "DLFOUND_OUTPUTS": str(workdir / data)}, timeout=900)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(sweep, ["fake_gray", "fake_rgb"]))
    for data, (in_channels, size) in {"fake_gray": (1, 28), "fake_rgb": (3, 32)}.items():
        results = [read_results(folder) for folder in run_folders(workdir / data)]
        assert sorted(r["choices"]["model"] for r in results) == sorted(CLI_SWEEP)
        for r in results:
            assert r["status"] == "done" and math.isfinite(r["metrics"]["test/loss"])
            with torch.device("meta"):
                expected = count(build(r["choices"]["model"], in_channels, size, num_classes=2))
            assert r["num_params"] == expected


RECIPES = [
    "cifar10_resnet18",
    "cifar10_vgg16",
    "cifar10_densenet121",
    "cifar10_resnext29",
    "cifar10_senet18",
    "cifar10_resnet56",
    "cifar100_resnet18",
    "fashionmnist_lenet5",
    "fashionmnist_resnet18",
]


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES)
def test_recipes_compose_into_the_standard_cifar_settings(recipe):

    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={recipe}"])
    assert cfg.data.stem == "small" and cfg.data.batch_size == 128
    if cfg.optim._target_ == "torch.optim.SGD":
        assert cfg.optim.lr == 0.1 and cfg.optim.momentum == 0.9 and cfg.optim.weight_decay in (5e-4, 1e-4)
        assert cfg.data.augment == "crop_flip"
    with torch.device("meta"):
        net = instantiate(cfg.model, _convert_="all")
    assert count(net) > 0
