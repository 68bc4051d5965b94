"""Bayesian networks and uncertainty: Bayes by Backprop layers (their KL and the local reparameterisation trick),
MC dropout, deep ensembles, and the calibration and out-of-distribution measurements they are judged by.

- BayesLinear's KL: closed form against torch.distributions for a Gaussian prior, and the paper's Monte Carlo
  estimate (log q - log p at the draw) averaging to it when the mixture's two components coincide.
- Local reparameterisation gives pre-activations with the moments of sampling the weights (linear and conv).
- NLL, ECE (15 bins), Brier against hand-computed values; AUROC 1 on a separable case.
- MC dropout averages several stochastic passes; `task.mc_samples` on a network without dropout is refused.
- LeNet-5 with dropout=0 keeps the plain network's state_dict keys (old checkpoints load).
- `dlfound train model=bbb_mlp task=bbb data=digits` learns, and its results.json, PNGs (PIL) and TensorBoard
  images (EventAccumulator) hold the uncertainty measurements.
- A 2-seed sweep on a small synthetic MNIST with an out-of-distribution folder (data.ood), and
  `dlfound ensemble` on it: per-member, mean and ensemble metrics, OOD AUROC, files.
Offline; small runs on one thread.
"""

import math
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import read_results, run_dlfound, run_folders
from dlfound.errors import ConfigError
from dlfound.metrics import calibration
from dlfound.models import lenet5, mlp
from dlfound.models.bayesian import BayesConv2d, BayesLinear, ScaleMixturePrior
from dlfound.tasks.classification import ClassificationTask

pytestmark = pytest.mark.usefixtures("one_thread")
ADAM = {"name": "adam", "lr": 1e-3}


def test_kl_closed_form_and_monte_carlo_estimate_agree():
    torch.manual_seed(0)
    layer = BayesLinear(3, 2, prior=ScaleMixturePrior(pi=1.0, sigma1=0.5))
    with torch.no_grad():
        layer.weight_mu.normal_(0, 0.3)
        layer.weight_rho.uniform_(-2, 0)
    layer(torch.randn(4, 3))
    q = torch.distributions.Normal(layer.weight_mu, torch.nn.functional.softplus(layer.weight_rho))
    qb = torch.distributions.Normal(layer.bias_mu, torch.nn.functional.softplus(layer.bias_rho))
    p = torch.distributions.Normal(0.0, 0.5)
    exact = (torch.distributions.kl_divergence(q, p).sum() + torch.distributions.kl_divergence(qb, p).sum()).detach()
    torch.testing.assert_close(layer.kl(), exact)
    # A scale mixture of two equal Gaussians is that Gaussian: the paper's estimate log q(w) - log p(w) at a
    # sampled w is then an unbiased estimate of the same KL.
    layer.prior = ScaleMixturePrior(pi=0.5, sigma1=0.5, sigma2=0.5)
    with torch.no_grad():
        draws = [(layer(torch.randn(1, 3)), layer.kl())[1] for _ in range(4000)]
    assert abs(float(torch.stack(draws).mean()) - float(exact)) < 0.05 * float(exact) + 0.05


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_local_reparameterisation_matches_weight_sampling_moments(kind):
    torch.manual_seed(0)
    make = (
        (lambda lr: BayesLinear(4, 3, local_reparam=lr))
        if kind == "linear"
        else (lambda lr: BayesConv2d(2, 2, 3, local_reparam=lr))
    )
    sampled, local = make(False), make(True)
    with torch.no_grad():
        sampled.weight_rho.fill_(-1.0)
        sampled.bias_rho.fill_(-1.5)
    local.load_state_dict(sampled.state_dict())
    x = torch.randn(1, 4) if kind == "linear" else torch.randn(1, 2, 3, 3)
    with torch.no_grad():
        a = torch.cat([sampled(x) for _ in range(4000)])
        b = local(x.expand(4000, *x.shape[1:]))
        # The exact moments: mean x mu^T + mu_b, variance x^2 sigma^2^T + sigma_b^2.
        mean = sampled.affine(x, sampled.weight_mu, sampled.bias_mu)[0]
        var = sampled.affine(
            x * x,
            torch.nn.functional.softplus(sampled.weight_rho) ** 2,
            torch.nn.functional.softplus(sampled.bias_rho) ** 2,
        )[0]
    for out in (a, b):
        torch.testing.assert_close(out.mean(0), mean, atol=4 * float(var.max().sqrt()) / math.sqrt(4000), rtol=0)
        torch.testing.assert_close(out.var(0), var, rtol=0.1, atol=0)


def test_calibration_metrics_match_hand_computed_values():
    probs = torch.tensor([[0.9, 0.1], [0.62, 0.38], [0.3, 0.7], [0.82, 0.18]])
    y = torch.tensor([0, 1, 1, 0])
    # One sample per confidence bin (0.9, 0.62, 0.7, 0.82 lie in four of the 15 bins): ECE = mean |hit - conf|.
    assert calibration.ece(probs, y).item() == pytest.approx((0.1 + 0.62 + 0.3 + 0.18) / 4, abs=1e-6)
    assert calibration.nll(probs, y).item() == pytest.approx(
        -(math.log(0.9) + math.log(0.38) + math.log(0.7) + math.log(0.82)) / 4, abs=1e-6
    )
    assert calibration.brier(probs, y).item() == pytest.approx(2 * (0.1**2 + 0.62**2 + 0.3**2 + 0.18**2) / 4, abs=1e-6)
    assert calibration.entropy(torch.tensor([[0.5, 0.5], [1.0, 0.0]])).tolist() == pytest.approx([math.log(2), 0])
    metrics = calibration.calibration_metrics(probs, y)
    assert metrics["error"] == 0.25 and "ood_auroc" not in metrics


def test_ood_auroc_is_one_when_the_entropies_separate_and_zero_when_reversed():
    low, high = torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.5, 0.9])
    assert calibration.ood_auroc(low, high).item() == 1.0
    assert calibration.ood_auroc(high, low).item() == 0.0


def test_pictures_are_rgb_arrays_that_pil_reads(tmp_path):
    from dlfound.image_files import write_picture

    probs = torch.softmax(torch.randn(200, 10) * 3, 1)
    y = torch.randint(0, 10, (200,))
    for name, picture in {
        "reliability": calibration.reliability_diagram(probs, y, title="t"),
        "entropy": calibration.entropy_histogram(probs, probs.roll(1, 1)),
    }.items():
        assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
        path = write_picture(picture, tmp_path / f"{name}.png")
        with Image.open(path) as image:
            assert image.size == (picture.shape[1], picture.shape[0])


def test_mc_dropout_averages_stochastic_passes_and_restores_eval_mode():
    torch.manual_seed(0)
    task = ClassificationTask(lenet5(dropout=0.5, activation="relu", pool="max"), 10, ADAM, mc_samples=8).eval()
    x = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        deterministic = task.net(x).softmax(-1)  # eval mode: dropout off
        torch.manual_seed(1)
        averaged = task.predict_probs(x)
        torch.manual_seed(1)
        task.net.train()
        passes = torch.stack([task.net(x).softmax(-1) for _ in range(8)])
        task.net.eval()
    torch.testing.assert_close(averaged, passes.mean(0))
    assert not torch.allclose(passes[0], passes[1]) and not torch.allclose(averaged, deterministic, atol=1e-4)
    torch.testing.assert_close(averaged.sum(1), torch.ones(5))
    assert not any(m.training for m in task.net.modules())


def test_mc_samples_on_a_network_without_dropout_is_refused():
    with pytest.raises(ConfigError, match="no dropout layer.*model.dropout"):
        ClassificationTask(lenet5(), 10, ADAM, mc_samples=10)
    with pytest.raises(ConfigError, match="positive integer"):
        ClassificationTask(mlp(dropout=0.5), 10, ADAM, mc_samples=0)


def test_mc_samples_refusal_in_the_cli_is_one_paragraph(workdir, dlfound_in_process):
    proc = dlfound_in_process(["train", "model=mlp", "data=digits", "task.mc_samples=5"], workdir)
    assert proc.returncode != 0
    assert "no dropout layer" in proc.stderr and "Traceback" not in proc.stderr


def test_lenet5_without_dropout_keeps_its_state_dict_keys():
    old = [
        "features.0.weight",
        "features.0.bias",
        "features.3.weight",
        "features.3.bias",
        "classifier.1.weight",
        "classifier.1.bias",
        "classifier.3.weight",
        "classifier.3.bias",
        "classifier.5.weight",
        "classifier.5.bias",
    ]
    assert list(lenet5().state_dict()) == old
    net = lenet5(dropout=0.5)
    assert sum(isinstance(m, torch.nn.Dropout) for m in net.modules()) == 3
    assert net.forward_features(torch.randn(2, 1, 28, 28)).shape == (2, 84)


def test_bbb_learns_digits_and_writes_its_uncertainty_measurements(workdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dlfound(
        [
            "train",
            "model=bbb_mlp",
            "model.hidden=[100]",
            "task=bbb",
            "task.mc_samples=5",
            "data=digits",
            "trainer.max_epochs=6",
            "hydra.run.dir=run",
        ],
        workdir,
        env={"OMP_NUM_THREADS": "1"},
    )
    metrics = read_results(workdir / "run")["metrics"]
    assert metrics["test/acc"] > 0.75  # chance is 0.10
    for key in ("test/nll", "test/ece", "test/brier"):
        assert math.isfinite(metrics[key])
    assert 0 <= metrics["test/ece"] <= 1 and metrics["test/nll"] == pytest.approx(metrics["test/loss"], rel=1e-4)
    for name in ("test_reliability", "test_entropy"):
        with Image.open(workdir / "run" / "images" / f"{name}.png") as image:
            assert image.mode == "RGB" and min(image.size) > 100
    events = EventAccumulator(str(workdir / "run" / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert {"test/reliability", "test/entropy"} <= set(events.Tags()["images"])
    assert "train/kl" in events.Tags()["scalars"]
    # Re-testing with `dlfound eval` measures again but writes no pictures outside the run folder.
    ckpt = read_results(workdir / "run")["monitor"]["best_checkpoint"]
    proc = run_dlfound(["eval", f"ckpt_path={ckpt}", "task.mc_samples=2"], workdir, env={"OMP_NUM_THREADS": "1"})
    assert "test/ece" in proc.stdout and not (workdir / "images").exists()


def write_idx(folder, prefix, images, labels):
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, h, w) + images.tobytes())
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


def blocks_mnist(root):
    """An MNIST-shaped set that a small MLP learns in a few epochs: class c is a bright 7x7 block at one of ten
    places, over noise. 500 training, 200 test images; and a folder of 40 RGB noise images, out of distribution."""
    rng = np.random.default_rng(0)

    def images(n):
        y = np.arange(n) % 10
        x = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
        for i, c in enumerate(y):
            r, col = 2 + 14 * (c // 5), 1 + 5 * (c % 5)
            x[i, r : r + 7, col : col + 7] = 230
        return x, y.astype(np.uint8)

    write_idx(root / "MNIST" / "raw", "train", *images(500))
    write_idx(root / "MNIST" / "raw", "t10k", *images(200))
    ood = root / "noise"
    (ood / "any").mkdir(parents=True)
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(ood / "any" / f"{i}.png")
    return ood


def test_ood_set_is_a_second_test_loader_and_a_missing_one_names_its_folder(tmp_path):
    from dlfound.data.vision import TorchvisionDataModule

    ood = blocks_mnist(tmp_path)
    data = TorchvisionDataModule(
        "MNIST", str(tmp_path), download=False, ood=str(ood), in_channels=1, num_classes=10, image_size=28, val_size=100
    )
    data.setup("test")
    test, out = data.test_dataloader()
    x, y = next(iter(out))
    assert x.shape[1:] == (1, 28, 28) and x.dtype == torch.uint8 and (y == -1).all()
    assert len(out.dataset) == 40 and len(test.dataset) == 200
    missing = TorchvisionDataModule(
        "MNIST",
        str(tmp_path),
        download=False,
        ood="FashionMNIST",
        in_channels=1,
        num_classes=10,
        image_size=28,
        val_size=100,
    )
    # A preset's optional extra: a missing torchvision OOD set is skipped with a warning naming its folder.
    with pytest.warns(UserWarning, match="FashionMNIST/raw"):
        missing.setup("test")
    assert not isinstance(missing.test_dataloader(), list) or len(missing.test_dataloader()) == 1


def test_ensemble_command_averages_a_seed_sweep(workdir):
    ood = blocks_mnist(workdir / "data")
    run_dlfound(
        [
            "train",
            "-m",
            "seed=0,1",
            "model=mlp",
            "model.hidden=[32]",
            "data=mnist",
            "data.val_size=100",
            "data.download=false",
            f"data.ood={ood}",
            "trainer.max_epochs=3",
            "hydra.sweep.dir=sweep",
            "callbacks.progress_bar=null",
        ],
        workdir,
        env={"OMP_NUM_THREADS": "1"},
    )
    runs = run_folders(workdir / "sweep")
    assert len(runs) == 2 and all("test/ood_auroc" in read_results(r)["metrics"] for r in runs)
    from dlfound.cli import main

    main(["ensemble", str(workdir / "sweep")])
    report = __import__("json").loads((workdir / "sweep" / "ensemble.json").read_text())
    assert report["size"] == 2 and len(report["members"]) == 2
    for key in ("error", "nll", "ece", "brier", "ood_auroc"):
        assert math.isfinite(report["ensemble"][key])
    # The members' own figures match those their runs logged at the test on the same checkpoint.
    logged = sorted(read_results(r)["metrics"]["test/ece"] for r in runs)
    assert sorted(m["ece"] for m in report["members"]) == pytest.approx(logged, abs=1e-5)
    # Averaging probabilities can only lower the NLL below the members' mean (Jensen's inequality).
    assert report["ensemble"]["nll"] <= report["member_mean"]["nll"] + 1e-6
    assert report["ensemble"]["error"] < 0.5
    for name in ("ensemble_reliability.png", "ensemble_entropy.png"):
        with Image.open(workdir / "sweep" / name) as image:
            assert image.mode == "RGB"
