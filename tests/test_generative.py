"""Generative models (VAEs, normalizing flows, GANs): exactness of the flows, the IWAE bound, that training lowers
each family's loss, every model through the real CLI, `dlfound sample`, and the sample-quality metrics."""

import math

import pytest
import torch
from PIL import Image

from conftest import read_results, run_dlfound, run_folders
from dlfound.metrics.sample_quality import (
    ClassifierFeatures,
    frechet_distance,
    kernel_inception_distance,
    mmd_rbf,
    mode_coverage,
)
from dlfound.models import flows
from dlfound.models.gan import GAN, MLPDiscriminator, mlp_gan
from dlfound.models.vae import MLPVAE, ConvVAE
from dlfound.plots import grid_size

pytestmark = pytest.mark.usefixtures("one_thread")


def digits_images(n: int | None = None) -> torch.Tensor:
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().images, dtype=torch.float32)[:, None] / 16.0
    return x if n is None else x[:n]


# -- flows are exact -------------------------------------------------------------------------------------------
FLOWS = {
    "nice_image": (lambda: flows.nice(1, 4, hidden=16, depth=2), (1, 4, 4)),
    "realnvp_image": (lambda: flows.realnvp(1, 4, num_scales=1, hidden=8, blocks=1), (1, 4, 4)),
    "glow_image": (lambda: flows.glow(2, 4, levels=2, steps=2, hidden=8), (2, 4, 4)),
    "realnvp_2d": (lambda: flows.realnvp(2, None, hidden=16), (2,)),
    "glow_2d": (lambda: flows.glow(2, None, hidden=16, num_layers=3), (2,)),
    "nice_2d": (lambda: flows.nice(2, None, hidden=16, depth=2), (2,)),
}


def _perturbed_flow(name):
    """A flow whose actnorm has seen data and whose zero-initialised layers are not the identity any more."""
    torch.manual_seed(0)
    make, shape = FLOWS[name]
    flow = make().double()
    x = torch.rand(16, *shape, dtype=torch.float64) * 0.9 + 0.05
    flow(x)  # data-dependent actnorm initialisation
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return flow, x


@pytest.mark.parametrize("name", FLOWS)
def test_flow_is_invertible(name):
    flow, x = _perturbed_flow(name)
    flow = flow.float()
    x = x.float()
    z, _ = flow(x)
    assert z.shape == (len(x), math.prod(x.shape[1:]))
    assert torch.allclose(flow.inverse(z), x, atol=1e-4)
    with torch.no_grad():
        samples = flow.sample(5, temperature=0.5)
    assert samples.shape == (5, *x.shape[1:]) and torch.isfinite(samples).all()


@pytest.mark.parametrize("name", FLOWS)
def test_flow_log_determinant_equals_the_brute_force_jacobian(name):
    flow, x = _perturbed_flow(name)
    shape = x.shape[1:]
    for sample in x[:2]:
        jacobian = torch.autograd.functional.jacobian(lambda v: flow(v.view(1, *shape))[0].view(-1), sample.reshape(-1))
        _, logdet = flow(sample[None])
        assert logdet.item() == pytest.approx(torch.linalg.slogdet(jacobian)[1].item(), abs=1e-6)


def test_flow_log_prob_integrates_to_one_in_2d():
    flow, _ = _perturbed_flow("realnvp_2d")
    xs = torch.linspace(-8, 8, 401, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="xy"), -1).reshape(-1, 2)
    with torch.no_grad():
        mass = flow.log_prob(grid).exp().sum() * (xs[1] - xs[0]) ** 2
    assert mass.item() == pytest.approx(1.0, abs=0.02)


# -- VAE bound -------------------------------------------------------------------------------------------------
def test_importance_weighted_estimate_is_at_least_the_elbo():
    from dlfound.tasks.vae import VAETask

    torch.manual_seed(0)
    task = VAETask(MLPVAE(1, 8, latent_dim=4, hidden=[32]), optim={"_target_": "torch.optim.Adam"})
    x = digits_images(64)
    with torch.no_grad():
        rec = torch.stack([task.elbo_terms(x)[0] for _ in range(200)]).mean(0)  # E_q[-log p(x|z)], well estimated
        _, kl = task.elbo_terms(x)
        elbo = -(rec + kl)
        iw1 = task.iw_log_likelihood(x, k=1)
        iw50 = task.iw_log_likelihood(x, k=50)
    assert iw50.mean() >= elbo.mean()
    assert iw1.mean().item() == pytest.approx(elbo.mean().item(), rel=0.05)  # k = 1 is the ELBO


# -- a few steps lower each family's loss ----------------------------------------------------------------------
def _adam_steps(params, loss_fn, steps, lr=1e-3):
    opt = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()


def test_vae_steps_lower_the_negative_elbo():
    from dlfound.tasks.vae import VAETask

    torch.manual_seed(0)
    x = digits_images(256)
    for net in (MLPVAE(1, 8, latent_dim=8, hidden=[64]), ConvVAE(1, 8, latent_dim=8, channels=[8, 16], hidden=32)):
        task = VAETask(net, optim={"_target_": "torch.optim.Adam"})
        nelbo = lambda task=task: sum(task.elbo_terms(x)).mean()  # noqa: E731
        before = nelbo().item()
        _adam_steps(task.parameters(), nelbo, 60, lr=3e-3)
        assert nelbo().item() < before - 5


def test_flow_steps_lower_the_bits_per_dimension_and_the_2d_nll():
    from dlfound.tasks.flow import FlowTask

    torch.manual_seed(0)
    x = digits_images(128)
    task = FlowTask(flows.realnvp(1, 8, num_scales=2, hidden=16, blocks=1), optim={"_target_": "torch.optim.Adam"})
    bpd = lambda: task.nll(x)[1].mean()  # noqa: E731
    before = bpd().item()
    _adam_steps(task.parameters(), bpd, 30, lr=3e-3)
    assert bpd().item() < before - 0.3
    from dlfound.data.mixtures import mixture_centers

    points = mixture_centers("ring", 4, 2.0)[torch.randint(0, 4, (512,))] + 0.2 * torch.randn(512, 2)
    task = FlowTask(flows.glow(2, None, hidden=32, num_layers=4), optim={"_target_": "torch.optim.Adam"})
    nll = lambda: task.nll(points)[0].mean()  # noqa: E731
    before = nll().item()
    _adam_steps(task.parameters(), nll, 100, lr=1e-2)
    assert nll().item() < before - 0.5


@pytest.mark.parametrize("loss", ["nonsaturating", "minimax", "wgan_gp", "hinge"])
def test_gan_steps_lower_each_players_loss_and_move_samples_to_the_data(loss):
    from dlfound.tasks.gan import GANTask

    torch.manual_seed(0)
    task = GANTask(
        mlp_gan(2, None, latent_dim=4, g_hidden=[32], d_hidden=[32], g_batch_norm=False),
        optim={"_target_": "torch.optim.Adam", "lr": 1e-3},
        loss=loss,
        optim_g={"betas": [0.5, 0.999]},
        optim_d={"betas": [0.5, 0.999]},
    )
    opt_g, opt_d = task.configure_optimizers()
    real = torch.randn(256, 2) * 0.5 + torch.tensor([3.0, 3.0])
    z = torch.randn(256, 4)
    fake = task.net.generate(z).detach()
    d_loss = lambda: task.discriminator_loss(real, fake, None)[0]  # noqa: E731
    before = d_loss().item()
    for _ in range(20):  # the critic alone, against fixed samples
        opt_d.zero_grad()
        d_loss().backward()
        opt_d.step()
    assert d_loss().item() < before
    g_loss = lambda: task.generator_loss(task.net.generate(z), None)  # noqa: E731
    before = g_loss().item()
    for _ in range(20):  # the generator alone, against that critic
        opt_g.zero_grad()
        g_loss().backward()
        opt_g.step()
    assert g_loss().item() < before
    start = mmd_rbf(real, fake)
    for _ in range(300):  # both players: the samples move onto the data
        opt_d.zero_grad()
        task.discriminator_loss(real, task.net.generate(torch.randn(256, 4)).detach(), None)[0].backward()
        opt_d.step()
        opt_g.zero_grad()
        task.generator_loss(task.net.generate(torch.randn(256, 4)), None).backward()
        opt_g.step()
    with torch.no_grad():
        assert mmd_rbf(real, task.net.generate(torch.randn(256, 4))) < start / 2


# -- every generative model through the real CLI, in one multirun ----------------------------------------------
# (experiment name, model, task, data, extra settings), small enough for debug=fast to take seconds.
JOBS = [
    ("g_vae", "vae", "vae", "digits", "task:\n  iw_samples: 5\n"),
    ("g_conv_vae", "conv_vae", "beta_vae", "digits", "model:\n  channels: [8, 16]\n"),
    ("g_cvae", "cvae", "vae", "digits", "task:\n  iw_samples: 5\n"),
    ("g_vae_2d", "vae", "vae", "moons", "model:\n  likelihood: gaussian\n"),
    ("g_nice", "nice", "flow", "digits", "model:\n  hidden: 64\n"),
    ("g_realnvp", "realnvp", "flow", "digits", "model:\n  hidden: 16\n  blocks: 1\n"),
    ("g_glow", "glow", "flow", "digits", "model:\n  hidden: 16\n  steps: 2\n"),
    ("g_realnvp_2d", "realnvp", "flow", "moons", "model:\n  hidden: 16\n"),
    ("g_gan", "gan", "gan", "digits", "model:\n  g_hidden: [64]\n  d_hidden: [64]\n  spectral_norm: true\n"),
    ("g_dcgan", "dcgan", "wgan", "digits", "model:\n  base_channels: 8\n  conditional: true\n"),
    ("g_cgan_ring", "cgan", "wgan_gp", "ring8", "model:\n  g_hidden: [32]\n  d_hidden: [32]\n"),
]
QUIET = ["callbacks.progress_bar=null", "callbacks.model_summary=null", "print_config=false"]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def job_configs(tmp_path_factory):
    """The jobs as experiment configs in a config folder of the user's (`dlfound train --config-dir DIR`)."""
    root = tmp_path_factory.mktemp("generative")
    folder = root / "configs" / "experiment"
    folder.mkdir(parents=True)
    for name, model, task, data, extra in JOBS:
        folder.joinpath(f"{name}.yaml").write_text(
            f"# @package _global_\n# test job\ndefaults:\n  - override /data: {data}\n  - override /model: {model}\n"
            f"  - override /task: {task}\n{extra}"
        )
    return root


@pytest.fixture(scope="module")
def multirun(job_configs):
    names = ",".join(job[0] for job in JOBS)
    proc = run_dlfound(
        ["train", "--config-dir", str(job_configs / "configs"), "-m", f"experiment={names}", "debug=fast", *QUIET],
        job_configs,
        env=ONE_THREAD,
    )
    folders = run_folders(job_configs / "outputs")
    return proc, {read_results(f)["choices"]["experiment"]: f for f in folders}


@pytest.fixture(scope="module")
def cvae_run(job_configs, tmp_path_factory):
    """Three short epochs of the conditional VAE: checkpoints and TensorBoard events to read."""
    cwd = tmp_path_factory.mktemp("cvae")
    run_dlfound(
        ["train", "--config-dir", str(job_configs / "configs"), "experiment=g_cvae", "debug=limit", *QUIET],
        cwd,
        env=ONE_THREAD,
    )
    [folder] = run_folders(cwd / "outputs")
    return folder


def test_debug_fast_runs_every_generative_model(multirun):
    _, runs = multirun
    assert set(runs) == {job[0] for job in JOBS}
    expected = {
        "vae": "test/nelbo",
        "beta_vae": "test/nelbo",
        "flow": "test/bpd",
        "gan": "test/kid",
        "wgan": "test/kid",
        "wgan_gp": "test/mmd",
    }
    for name, folder in runs.items():
        results = read_results(folder)
        task = results["choices"]["task"]
        key = "test/nll" if name.endswith("_2d") and task == "flow" else expected[task]
        assert math.isfinite(results["metrics"][key]), (name, results["metrics"])
        assert list((folder / "images").glob("samples_epoch*.png")), name
    ring = read_results(runs["g_cgan_ring"])["metrics"]
    assert {"test/modes_covered", "test/hq_fraction"} <= set(ring)
    assert "test/nll_iw" in read_results(runs["g_vae"])["metrics"]
    assert list((runs["g_dcgan"] / "images").glob("classes_epoch*.png"))  # per-class rows of a conditional GAN


def test_vae_run_logs_image_grids_to_tensorboard(cvae_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(cvae_run / "tensorboard"), size_guidance={"images": 0})
    acc.Reload()
    assert {"images/samples", "images/reconstructions", "images/classes"} <= set(acc.Tags()["images"])
    assert len(acc.Images("images/samples")) == 3  # one per epoch


def test_sample_writes_a_png_of_the_requested_grid(cvae_run, tmp_path, dlfound_in_process):
    ckpt = cvae_run / "checkpoints" / "last.ckpt"
    out = tmp_path / "grid.png"
    dlfound_in_process(
        ["sample", f"ckpt_path={ckpt}", "n=24", "nrow=6", "class=3", f"output={out}"], tmp_path, check=True
    )
    image = Image.open(out)
    image.verify()
    assert Image.open(out).size == grid_size(24, 6, 8, 8)


def test_sample_explains_a_class_the_model_does_not_know(cvae_run, capsys):
    from dlfound.commands.sample import main

    with pytest.raises(SystemExit) as exit_info:
        main([f"ckpt_path={cvae_run / 'checkpoints' / 'last.ckpt'}", "class=11"])
    assert exit_info.value.code != 0
    assert "class=11" in capsys.readouterr().err


def _save_checkpoint(tmp_path, overrides):
    """A checkpoint as `dlfound train` writes it (state dict + resolved config) for an untrained task."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    from dlfound.runs.build import build
    from dlfound.runs.paths import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    cfg.hydra.runtime.output_dir = str(tmp_path)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    plain = OmegaConf.to_container(cfg, resolve=True)
    _, task = build(plain)
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": task.state_dict(), "dlfound_config": plain}, path)
    return path


@pytest.mark.parametrize(
    "overrides,args,size",
    [
        (
            ["model=gan", "task=gan", "data=digits", "model.g_hidden=[16]", "model.d_hidden=[16]"],
            ["interpolate=true", "n=30", "steps=10"],
            grid_size(30, 10, 8, 8),
        ),
        (
            ["model=glow", "task=flow", "data=digits", "model.hidden=8", "model.steps=1"],
            ["n=10", "nrow=5", "temperature=0.7"],
            grid_size(10, 5, 8, 8),
        ),
        (["model=realnvp", "task=flow", "data=moons", "model.hidden=8"], ["n=200"], (512 * 2 + 8, 512)),
    ],
)
def test_sample_command_for_each_family(tmp_path, overrides, args, size):
    from dlfound.commands.sample import main

    ckpt = _save_checkpoint(tmp_path, overrides)
    out = tmp_path / "out.png"
    main([f"ckpt_path={ckpt}", *args, f"output={out}", "device=cpu"])
    assert Image.open(out).size == size


def test_sample_refuses_a_classifier_checkpoint(tmp_path):
    from dlfound.commands.sample import main

    ckpt = _save_checkpoint(tmp_path, ["model=mlp", "data=digits"])
    with pytest.raises(SystemExit) as exit_info:
        main([f"ckpt_path={ckpt}"])
    assert exit_info.value.code != 0


# -- sample quality --------------------------------------------------------------------------------------------
def test_fid_and_kid_are_near_zero_for_the_same_data_and_larger_for_shifted_data(tmp_path):
    torch.manual_seed(0)
    images = digits_images()[torch.randperm(1797)]
    a, b = images[:898], images[898:]
    shifted = torch.roll(b, shifts=1, dims=3).clamp(0, 1) * 0.8  # one pixel to the right, and dimmer
    # A dlfound classifier checkpoint as the feature extractor (untrained: features still separate the sets).
    ckpt = _save_checkpoint(tmp_path, ["model=mlp", "data=digits", "model.hidden=[64,32]"])
    from dlfound.runs.build import load_feature_extractor

    extractor = load_feature_extractor(str(ckpt))
    assert isinstance(extractor, ClassifierFeatures)
    fa, fb, fs = extractor(a), extractor(b), extractor(shifted)
    assert fa.shape == (898, 32)
    same, moved = frechet_distance(fa, fb), frechet_distance(fa, fs)
    assert same < 0.1 * moved
    assert frechet_distance(fa, fa) == pytest.approx(0.0, abs=1e-6)
    kid_same, kid_moved = kernel_inception_distance(fa, fb, subset_size=500), kernel_inception_distance(fa, fs, 10, 500)
    assert abs(kid_same) < 0.05 * kid_moved
    with pytest.raises(Exception, match="shape"):
        extractor(torch.rand(4, 1, 28, 28))
    # A GAN measured with these features (the run builder loads them from task.fid_features and hands them
    # to the task) keeps them out of its own checkpoints.
    from omegaconf import OmegaConf

    from dlfound.runs.build import build, compose

    cfg = compose(
        [
            "model=gan",
            "data=digits",
            "model.g_hidden=[8]",
            "model.d_hidden=[8]",
            f"task.fid_features={ckpt}",
            "hydra.runtime.output_dir=.",
        ]
    )
    _, task = build(OmegaConf.to_container(cfg, resolve=True))
    assert task.measures_fid and task.extractor()(a[:5]).shape == (5, 32)
    assert all(k.startswith("net.") for k in task.state_dict())


def test_mode_check_scores_a_collapsed_generator_worse():
    import lightning as L

    from dlfound.data.mixtures import GaussianMixtureDataModule
    from dlfound.tasks.gan import GANTask

    class MixtureSampler(torch.nn.Module):
        """A perfect generator for the ring: the first latent picks the mode."""

        def __init__(self, centers, std):
            super().__init__()
            self.register_buffer("centers", centers)
            self.std = std
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def forward(self, z, onehot=None):
            mode = (torch.special.ndtr(z[:, 0]) * len(self.centers)).long().clamp(max=len(self.centers) - 1)
            return self.centers[mode] + self.std * z[:, 1:3]

    class Collapsed(MixtureSampler):
        def forward(self, z, onehot=None):
            return self.centers[0] + self.std * z[:, 1:3]

    dm = GaussianMixtureDataModule(
        in_channels=2, num_classes=8, image_size=None, n_train=1000, n_test=2500, val_size=100, eval_batch_size=2500
    )
    scores = {}
    for name, generator in (("good", MixtureSampler), ("collapsed", Collapsed)):
        torch.manual_seed(0)
        net = GAN(generator(dm.mode_centers, dm.mode_std), MLPDiscriminator((2,), [8]), 3, (2,))
        task = GANTask(net, optim={"_target_": "torch.optim.Adam"}, mode_centers=dm.mode_centers, mode_std=dm.mode_std)
        trainer = L.Trainer(
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
        )
        scores[name] = trainer.test(task, datamodule=dm, verbose=False)[0]
    good, collapsed = scores["good"], scores["collapsed"]
    assert good["test/modes_covered"] == 8 and collapsed["test/modes_covered"] == 1
    assert good["test/hq_fraction"] > 0.95
    assert collapsed["test/mmd"] > 10 * good["test/mmd"]
    # The metric functions directly: a generator that lands between the modes has no high-quality samples.
    between = torch.randn(2500, 2) * 0.01 + dm.mode_centers[:1] * 0.5
    assert mode_coverage(between, dm.mode_centers, dm.mode_std) == {"modes_covered": 0.0, "hq_fraction": 0.0}


FAMILY_TASK = {
    "vae": "vae",
    "conv_vae": "vae",
    "cvae": "vae",
    "nice": "flow",
    "realnvp": "flow",
    "glow": "flow",
    "gan": "gan",
    "cgan": "gan",
    "dcgan": "gan",
}


@pytest.mark.parametrize("data", ["mnist", "cifar10"])
@pytest.mark.parametrize("model", FAMILY_TASK)
def test_every_generative_model_takes_mnist_and_cifar_shapes(model, data, tmp_path):
    """Shapes come from the data config: each model trains a step and samples on 1x28x28 and 3x32x32 images."""
    from omegaconf import OmegaConf

    from dlfound.runs.build import build, compose

    smaller = {"nice": ["model.hidden=64"], "glow": ["model.steps=2"]}.get(model, [])
    cfg = compose(
        [f"model={model}", f"task={FAMILY_TASK[model]}", f"data={data}", "hydra.runtime.output_dir=.", *smaller]
    )
    cfg = OmegaConf.to_container(cfg, resolve=True)
    assert cfg["data"]["normalize"] is False  # generative tasks model grey values in [0, 1]
    _, task = build(cfg)
    net = task.net
    c, s = cfg["data"]["in_channels"], cfg["data"]["image_size"]
    x, y = torch.rand(4, c, s, s), torch.arange(4) % 10
    if FAMILY_TASK[model] == "vae":
        loss = sum(task.elbo_terms(x, y if net.conditional else None)).mean()
    elif FAMILY_TASK[model] == "flow":
        loss = task.nll(x)[1].mean()
    else:
        loss = task.discriminator_loss(net.to_model(x), net.generate(torch.randn(4, net.latent_dim), y), y)[0]
    loss.backward()
    assert torch.isfinite(loss)
    task.eval()
    assert task.sample(3, y=2 if task.num_classes else None).shape == (3, c, s, s)
