"""data=function (targets on a grid, user expressions from a whitelist only), the regression task's sup-norm and
L2 errors and fit pictures, and the universal-approximation sweep's log-log report."""

import math

import pytest
import torch
from PIL import Image

from conftest import read_results, run_folders
from dlfound.data.function import FunctionDataModule, parse_expression
from dlfound.errors import ConfigError
from dlfound.runs.records import log_log_fit

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("dim", [1, 2])
def test_targets_on_a_training_grid_and_a_finer_test_grid(dim):
    data = FunctionDataModule(
        target="product" if dim == 2 else "step", dim=dim, low=-1.0, high=1.0, side=5, test_side=9
    )
    data.setup()
    x, y = data.train_set.tensors
    x_test, y_test = data.test_set.tensors
    assert x.shape == (5**dim, dim) and y.shape == (5**dim, 1) and x_test.shape == (9**dim, dim)
    assert x.min() == -1.0 and x.max() == 1.0
    expected = x_test.prod(1) if dim == 2 else (x_test[:, 0] > 0).float()
    assert torch.equal(y_test[:, 0], expected)


def test_expressions_compute_what_they_say():
    x = torch.linspace(-2, 2, 11)[:, None]
    assert torch.allclose(
        parse_expression("sin(3*x) + x**2 - maximum(x, 0) / 2", 1)(x)[:, 0],
        torch.sin(3 * x[:, 0]) + x[:, 0] ** 2 - x[:, 0].clamp_min(0) / 2,
    )
    assert torch.equal(parse_expression("pi", 1)(x), torch.full((11, 1), math.pi))
    x2 = torch.randn(7, 2)
    assert torch.allclose(
        parse_expression("x1 * x2 + exp(-x1**2)", 2)(x2)[:, 0], x2[:, 0] * x2[:, 1] + torch.exp(-(x2[:, 0] ** 2))
    )


@pytest.mark.parametrize(
    "text,named",
    [
        ("__import__('os').system('ls')", "__import__"),
        ("y + x", "names y"),
        ("x.real", "Attribute"),
        ("open('f')", "names open"),
        ("x2 * x", "names x2"),
        ("sin(x, out=x)", "keyword"),
        ("x +", "not an expression"),
    ],
)
def test_expressions_outside_the_whitelist_are_refused_by_name(text, named):
    with pytest.raises(ConfigError, match="data.target") as err:
        FunctionDataModule(target=text, dim=1)
    assert named in str(err.value)


def test_sup_and_l2_errors_of_a_known_fit(workdir, dlfound_in_process):
    # The perceptron's zero-initialised linear layer predicts 0 everywhere; untrained (max_epochs=0), its errors
    # against |x| on a grid of [-1, 1] are max |x| = 1 and the grid's RMS of |x|.
    dlfound_in_process(
        [
            "train",
            "task=regression",
            "data=function",
            "data.target=abs",
            "data.low=-1",
            "data.high=1",
            "data.test_side=101",
            "model=perceptron",
            "trainer.max_epochs=0",
            "print_config=false",
            "hydra.run.dir=zero",
        ],
        workdir,
        check=True,
    )
    metrics = read_results(workdir / "zero")["metrics"]
    grid = torch.linspace(-1, 1, 101)
    assert metrics["test/sup_error"] == pytest.approx(1.0)
    assert metrics["test/l2_error"] == pytest.approx(float(grid.pow(2).mean().sqrt()), rel=1e-5)


def test_a_width_sweep_draws_its_fits_and_a_log_log_report(workdir, dlfound_in_process):
    dlfound_in_process(
        [
            "train",
            "-m",
            "experiment=uat_width_sweep",
            "model.width=2,8,32",
            "seed=0",
            "trainer.max_epochs=10",  # L-BFGS steps of 20 iterations each
            "trainer.check_val_every_n_epoch=5",
            "data.side=100",
            "data.test_side=201",
            "print_config=false",
            "hydra.sweep.dir=sweep",
        ],
        workdir,
        check=True,
    )
    runs = run_folders(workdir / "sweep")
    assert len(runs) == 3
    for run in runs:
        with Image.open(run / "images" / "fit_epoch009.png") as picture:
            assert picture.size == (384, 384)
    proc = dlfound_in_process(["report", "sweep", "--metric", "test/sup_error", "--plot", "plots"], workdir, check=True)
    assert "model.width" in proc.stdout
    with Image.open(workdir / "plots" / "test_sup_error_vs_model.width.png") as picture:
        assert picture.width > 100


def test_the_log_log_slope_of_a_power_law():
    widths = [2, 4, 8, 16, 32]
    assert log_log_fit(widths, [3 * w**-0.5 for w in widths]) == pytest.approx((-0.5, math.log(3)))
