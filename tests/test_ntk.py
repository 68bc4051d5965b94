"""Neural tangent kernels (dlfound.ops.ntk): the empirical kernel is J J^T, it meets the analytic kernel of a wide
one-hidden-layer ReLU network, kernel regression interpolates, a too-large request is refused before anything is
allocated, and `callbacks=ntk` on a real run logs finite values to TensorBoard and results.json, which the width
sweep's script turns into slopes and a plot."""

import json
import math

import pytest
import torch

from conftest import read_results, run_dlfound, run_folders
from dlfound.errors import ConfigError
from dlfound.models import ntk_mlp
from dlfound.ops.ntk import (
    analytic_ntk,
    empirical_ntk,
    linearization_distance,
    linearized_output,
    ntk_regression,
    parameters_of,
    relu_ntk,
)
from dlfound.ops.ntk.empirical import GIB

pytestmark = pytest.mark.usefixtures("one_thread")


def hand_jacobian(net, x):
    """[N, O, P]: each output's gradient by autograd, one backward pass per example and output."""
    rows = []
    for i in range(len(x)):
        out = net(x[i : i + 1])[0]
        for o in range(out.numel()):
            grads = torch.autograd.grad(out[o], list(net.parameters()), retain_graph=True)
            rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows).reshape(len(x), -1, rows[0].numel())


def test_empirical_ntk_is_j_jt_of_a_tiny_net():
    torch.manual_seed(0)
    net = ntk_mlp(in_channels=3, num_classes=2, width=5)
    x, x2 = torch.randn(4, 3), torch.randn(3, 3)
    j, j2 = hand_jacobian(net, x), hand_jacobian(net, x2)
    full = empirical_ntk(net, x, x2, trace=False)
    assert full.shape == (4, 3, 2, 2)
    torch.testing.assert_close(full, torch.einsum("aop,bqp->aboq", j, j2))
    torch.testing.assert_close(empirical_ntk(net, x), torch.einsum("aop,bop->ab", j, j))  # traced over outputs
    # A subset of the parameters: the readout's kernel is sigma_w^2 / n <relu(h), relu(h')> + sigma_b^2.
    readout = empirical_ntk(net, x, params=["readout"])
    features = net.forward_features(x)
    torch.testing.assert_close(readout, 2 * (features @ features.T / 5 + 1.0), atol=1e-5, rtol=1e-5)


def test_analytic_kernel_matches_the_empirical_one_at_large_width():
    """At width 16,384 each seed's kernel is within 3 % (Frobenius) of the limit (the fluctuation is ~1 / sqrt(n):
    ~0.7 % on average, 1.4 % at worst over 8 seeds, measured), and the mean over 4 seeds within 1.5 %."""
    x = torch.rand(32, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1
    kernels = []
    for seed in range(4):
        torch.manual_seed(seed)
        net = ntk_mlp(in_channels=2, num_classes=1, width=16384, bias_std=0.5)
        kernels.append(empirical_ntk(net, x).double())
        reference = analytic_ntk(net, x)
        assert torch.linalg.matrix_norm(kernels[-1] - reference) / torch.linalg.matrix_norm(reference) < 0.03
    mean = torch.stack(kernels).mean(0)
    assert torch.linalg.matrix_norm(mean - reference) / torch.linalg.matrix_norm(reference) < 0.015


def test_analytic_kernel_special_cases():
    """Without biases, sigma_w = 1: Theta(x, x) = |x|^2 / d (half from the readout, half from the first layer),
    and orthogonal inputs give |x| |x'| / (2 pi d) (the readout's alone: Sigma1 = 0)."""
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    k = relu_ntk(x, weight_std=1.0, bias_std=0.0)
    # x = x': theta = 0, E[relu^2] = s / 2, E[relu'^2] = 1/2 with s = |x|^2 / d; Theta = s / 2 + s / 2 = s.
    torch.testing.assert_close(k.diagonal(), torch.tensor([0.5, 2.0], dtype=torch.float64))
    # Orthogonal: theta = pi / 2, E[relu relu] = sqrt(s s') / (2 pi), Sigma1 = 0, so Theta = sqrt(s s') / (2 pi).
    torch.testing.assert_close(k[0, 1], torch.tensor(math.sqrt(0.5 * 2.0) / (2 * math.pi), dtype=torch.float64))
    with pytest.raises(ConfigError, match="NTK parameterisation"):
        analytic_ntk(ntk_mlp(in_channels=2, width=8, parameterization="standard"), x)


def test_kernel_regression_interpolates_its_training_points():
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 12)[:, None]
    y = torch.sin(3 * x)
    k = relu_ntk(x, weight_std=1.0, bias_std=1.0).float()
    f0 = torch.randn(12, 1)
    torch.testing.assert_close(ntk_regression(k, k, y), y, atol=1e-4, rtol=0)
    torch.testing.assert_close(ntk_regression(k, k, y, f0, f0), y, atol=1e-4, rtol=0)  # with initial outputs too
    # Between the points it follows the target (a smooth kernel, a smooth function).
    x_mid = (x[1:] + x[:-1]) / 2
    between = ntk_regression(relu_ntk(x_mid, x, 1.0, 1.0).float(), k, y)
    assert (between - torch.sin(3 * x_mid)).abs().max() < 0.05


def test_linearisation_distance_is_the_taylor_remainder():
    torch.manual_seed(0)
    net = ntk_mlp(in_channels=1, num_classes=1, width=64)
    x = torch.linspace(-1, 1, 32)[:, None]
    theta0 = parameters_of(net)
    torch.testing.assert_close(linearized_output(net, theta0, theta0, x), net(x).detach())
    with torch.no_grad():  # the network is linear in the readout: moving it alone leaves f = f_lin
        net.readout.weight.add_(0.3)
    assert linearization_distance(net, theta0, x) < 1e-5
    with torch.no_grad():
        net.readout.weight.sub_(0.3)
        h0 = net.hidden(x)
        net.hidden.weight.add_(0.2 * torch.randn_like(net.hidden.weight))
        h = net.hidden(x)
    # f - f_lin = sigma_w / sqrt(n) * sum_i a_i [relu(h_i) - relu(h0_i) - 1{h0_i > 0} (h_i - h0_i)]: the units
    # whose pre-activation changed sign.
    remainder = (torch.relu(h) - torch.relu(h0) - (h0 > 0) * (h - h0)) @ net.readout.weight.T / math.sqrt(64)
    expected = remainder.pow(2).mean().sqrt().item()
    assert expected > 1e-3
    assert linearization_distance(net, theta0, x) == pytest.approx(expected, rel=1e-4)


def test_too_large_a_request_is_refused_before_allocating_naming_its_size(monkeypatch):
    """Width 4,096 on 1,000,000 inputs of 784 numbers would take ~16,000 GiB of Jacobians and kernel; the error
    says so and how to shrink it, and comes before any Jacobian is computed."""
    import dlfound.ops.ntk.empirical

    def no_jacobian(*args, **kwargs):
        raise AssertionError("the Jacobians were computed before the size was checked")

    monkeypatch.setattr(dlfound.ops.ntk.empirical, "jacobian", no_jacobian)
    net = ntk_mlp(in_channels=784, num_classes=1, width=4096)
    x = torch.zeros(1, 784).expand(1_000_000, 784)  # a view: no memory for the inputs either
    with pytest.raises(ConfigError) as err:
        empirical_ntk(net, x, max_gib=1.0)
    message = str(err.value)
    params = sum(p.numel() for p in net.parameters())
    need = (1_000_000 * params + 1_000_000**2) * 4 / GIB
    assert f"{need:.2f} GiB" in message and "fewer inputs" in message and "subset of the parameters" in message
    assert "smaller model" in message


def test_standard_parameterisation_has_the_same_function_at_init_and_a_wider_kernel():
    x = torch.linspace(-1, 1, 8)[:, None]
    scales = []
    for parameterization in ("ntk", "standard"):
        torch.manual_seed(0)
        net = ntk_mlp(in_channels=1, num_classes=1, width=512, parameterization=parameterization)
        scales.append((net(x).std().item(), empirical_ntk(net, x).diagonal().mean().item()))
    (std_ntk, k_ntk), (std_std, k_std) = scales
    assert 0.5 < std_ntk / std_std < 2.0  # the same distribution of functions
    assert k_std > 50 * k_ntk  # the standard kernel grows with the width (here 512: ~ n / 2 larger)


# A three-width sweep of the preset, short and on one input dimension (so each run also draws its picture): the
# callback's values in TensorBoard and results.json, and the scaling script's table and plot.
SWEEP = [
    "train",
    "-m",
    "experiment=ntk_width_sweep",
    "model.width=32,64,128",
    "seed=0",
    "trainer.max_epochs=30",
    "data.dim=1",
    "data.side=16",
    "data.test_side=100",
    "callbacks.ntk_monitor.every_n_steps=10",
]


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("ntk_sweep")
    run_dlfound(SWEEP, cwd, env={"OMP_NUM_THREADS": "1"})
    runs = run_folders(cwd / "outputs")
    assert len(runs) == 3
    return runs


def test_callback_logs_finite_values_to_tensorboard_and_results(tiny_sweep):
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for run in tiny_sweep:
        metrics = read_results(run)["metrics"]
        for key in (
            "kernel_change",
            "linearization_distance",
            "weight_change",
            "regression_mse",
            "regression_distance",
        ):
            assert math.isfinite(metrics[f"test/ntk_{key}"]), key
        assert metrics["test/ntk_kernel_change"] > 0 and metrics["test/ntk_weight_change"] > 0
        acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
        acc.Reload()
        steps = [e.step for e in acc.Scalars("ntk/kernel_change")]
        assert steps[0] == 0 and steps[-1] >= 20 and len(steps) >= 3  # every 10 of the 30 full-batch steps
        assert all(math.isfinite(e.value) for e in acc.Scalars("ntk/linearization_distance"))
        assert "ntk/regression" in acc.Tags()["images"]
        with Image.open(run / "ntk_regression.png") as picture:
            assert picture.size[0] > 300 and picture.size[1] > 200


def test_scaling_command_writes_table_and_plot(tiny_sweep, tmp_path, capsys):
    from PIL import Image

    from dlfound.cli import main

    sweep = tiny_sweep[0].parent
    out = tmp_path / "scaling.png"
    main(["ntk-scaling", str(sweep), "--out", str(out)])
    lines = capsys.readouterr().out.splitlines()
    assert [int(line.split()[0]) for line in lines[1:4]] == [32, 64, 128]
    slopes = [float(line.split(":")[1].split()[0]) for line in lines if line.startswith("slope of")]
    assert len(slopes) == 3 and all(math.isfinite(s) for s in slopes)
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.size[0] > 600


def test_scaling_command_refuses_a_sweep_of_one_width_in_one_paragraph(tiny_sweep, tmp_path, capsys):
    from dlfound.cli import main

    for folder, message in ((tiny_sweep[0], "at 1 width(s)"), (tmp_path / "missing", "is not a folder")):
        with pytest.raises(SystemExit) as exit_info:
            main(["ntk-scaling", str(folder)])
        err = " ".join(capsys.readouterr().err.replace("│", " ").split())
        assert exit_info.value.code != 0 and "Traceback" not in err and message in err, err


def test_cli_refuses_a_kernel_too_large_before_training(tmp_path, dlfound_in_process):
    proc = dlfound_in_process(
        ["train", "experiment=ntk_width_sweep", "model.width=64", "name=too_big", "callbacks.ntk_monitor.max_gib=1e-9"],
        tmp_path,
    )
    assert proc.returncode != 0
    message = " ".join((proc.stdout + proc.stderr).split())
    assert "KiB" in message and "fewer inputs" in message and "probe_size" in message and "Traceback" not in message
    results = json.loads(next((tmp_path / "outputs").rglob("results.json")).read_text())
    assert results["status"] == "failed"
    assert not list((tmp_path / "outputs").rglob("*.ckpt"))  # refused before the first training step
