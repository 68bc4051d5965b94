"""Convergence speed as an experiment (data=quadratic, model=linear, task=least_squares, `dlfound figure
convergence`): the problem has the Hessian it promises, gradient descent's measured rate is the theory's
1 - mu/L within 5 %, heavy ball's theory is (sqrt(kappa) - 1) / (sqrt(kappa) + 1), the 1/k step decays as
promised; and the universal-approximation figure's theory line and kink placement (dlfound.ops.piecewise_linear,
model.kink_range)."""

import math

import pytest
import torch
import torch.nn.functional as F

from conftest import run_dlfound
from dlfound.data.quadratic import QuadraticDataModule
from dlfound.errors import ConfigError
from dlfound.models import linear, ntk_mlp
from dlfound.ops.piecewise_linear import best_interpolant_sup_error
from dlfound.tasks.least_squares import log_log_slope, measured_rate, spectral_radius
from dlfound.tasks.optim import InverseTime


def test_the_quadratic_has_the_hessian_and_minimiser_it_promises():
    data = QuadraticDataModule(condition=100, dim=8, samples=30, noise=0.3)
    hessian = 2 / data.samples * data.x.T @ data.x
    torch.testing.assert_close(torch.linalg.eigvalsh(hessian), data.hessian_eigenvalues)
    assert data.hessian_eigenvalues.min().item() == pytest.approx(0.01) and data.hessian_eigenvalues.max() == 1
    gradient = hessian @ data.optimum.T - 2 / data.samples * data.x.T @ data.y  # the gradient at w* is zero
    assert gradient.abs().max() < 1e-10


def test_batches_are_the_whole_set_for_gradient_descent_and_draws_for_sgd():
    data = QuadraticDataModule(dim=4, samples=10, steps=7)
    data.setup()
    assert [len(x) for x, _ in data.train_dataloader()] == [10] * 7
    data = QuadraticDataModule(dim=4, samples=10, steps=7, batch_size=2)
    data.setup()
    assert [len(x) for x, _ in data.train_dataloader()] == [2] * 7
    with pytest.raises(ConfigError, match="samples >= dim"):
        QuadraticDataModule(dim=4, samples=3)


def descend(condition: float, lr: float, momentum: float, steps: int) -> torch.Tensor:
    """||w_k - w*|| over `steps` full-batch steps of torch's SGD on the mean squared error, in float64."""
    data = QuadraticDataModule(condition=condition, dim=20)
    net = linear(20, 1).double()
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    distances = [data.optimum.norm().item()]
    for _ in range(steps):
        optimizer.zero_grad()
        F.mse_loss(net(data.x), data.y).backward()
        optimizer.step()
        distances.append((net.readout.weight.detach() - data.optimum).norm().item())
    return torch.tensor(distances, dtype=torch.float64)


@pytest.mark.parametrize("condition", [10, 100])
def test_gradient_descent_converges_at_the_theorys_rate(condition):
    eigenvalues = QuadraticDataModule(condition=condition, dim=20).hessian_eigenvalues
    theory = spectral_radius(1.0, 0.0, False, eigenvalues)
    assert theory == pytest.approx(1 - 1 / condition)
    rate = measured_rate(descend(condition, 1.0, 0.0, 400))
    assert math.log(rate) / math.log(theory) == pytest.approx(1, rel=0.05)


@pytest.mark.parametrize("condition", [10, 100])
def test_heavy_ball_with_polyaks_parameters_converges_at_sqrt_kappas_rate(condition):
    mu, root = 1 / condition, math.sqrt(condition)
    lr, momentum = 4 / (1 + math.sqrt(mu)) ** 2, ((root - 1) / (root + 1)) ** 2
    eigenvalues = QuadraticDataModule(condition=condition, dim=20).hessian_eigenvalues
    theory = spectral_radius(lr, momentum, False, eigenvalues)
    assert theory == pytest.approx((root - 1) / (root + 1), rel=1e-6)
    rate = measured_rate(descend(condition, lr, momentum, 300))
    # The iteration's eigenvalues at mu and L are double: the distance goes like k rho^k, a little slower.
    assert theory <= rate < 1.1 * theory and rate < spectral_radius(1.0, 0.0, False, eigenvalues)
    nesterov = spectral_radius(1.0, (root - 1) / (root + 1), True, eigenvalues)
    assert nesterov == pytest.approx(1 - 1 / root, rel=1e-6)  # Nesterov's step 1/L: 1 - sqrt(mu / L)


def test_a_1_over_k_step_and_the_log_log_slope():
    assert [InverseTime(50)(k) for k in (0, 50, 150)] == [1.0, 0.5, 0.25]
    k = torch.arange(1, 2001, dtype=torch.float64)
    noisy = 3 / k * (1 + 0.3 * torch.randn(2000, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    assert log_log_slope(noisy.abs()) == pytest.approx(-1, abs=0.05)


def test_the_best_interpolant_of_a_parabola_has_equal_knots():
    # x^2 has constant curvature: equal knots are best, with error h^2 max|f''| / 8 = 1 / (4 n^2) on [0, 1].
    for pieces in (1, 3, 10):
        error = best_interpolant_sup_error(lambda x: x * x, pieces, 0.0, 1.0, points=4001, rounds=10)
        assert error == pytest.approx(1 / (4 * pieces**2), rel=1e-3)
    # sin(2 pi x) on [-1, 1]: the error falls like 1 / n^2 (a factor (33/9)^2 = 13 asymptotically; 1 / n: 3.7),
    # and moving the knots beats equal ones (2 pi^2 / n^2).
    sine = [best_interpolant_sup_error(lambda x: torch.sin(2 * math.pi * x), n, -1.0, 1.0, 4001) for n in (9, 33)]
    assert 8 < sine[0] / sine[1] < 16 and sine[1] < 2 * math.pi**2 / 33**2


def test_kink_range_puts_one_kink_in_each_part_of_the_interval():
    torch.manual_seed(0)
    for parameterization in ("standard", "ntk"):
        net = ntk_mlp(1, 1, width=8, parameterization=parameterization, kink_range=[-1.0, 1.0])
        layer = net.hidden
        weight, bias = layer.weight_scale * layer.weight.flatten(), layer.bias_scale * layer.bias
        kinks = (-bias / weight).sort().values
        parts = torch.floor((kinks + 1) / 2 * 8)
        assert parts.tolist() == list(range(8)) and weight.abs().allclose(torch.ones(8))
    with pytest.raises(ValueError, match="one input"):
        ntk_mlp(2, 1, width=8, kink_range=[-1.0, 1.0])


@pytest.mark.slow
def test_the_convergence_figure_measures_gradient_descents_rate(workdir):
    run_dlfound(["figure", "convergence"], workdir)
    (root,) = (workdir / "outputs" / "figure" / "convergence").iterdir()
    sidecar = (root / "convergence.md").read_text()
    assert (root / "convergence.png").is_file() and "Polyak" in sidecar
    for condition, theory in ((10, 0.9), (100, 0.99)):
        assert f"GD, {condition} rate {theory}" in sidecar and f"GD, {condition} theory_rate {theory}" in sidecar
