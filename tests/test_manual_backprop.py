"""Backprop by hand (dlfound.models.manual_backprop): every hand-written backward pass agrees with finite
differences in float64 (torch.autograd.gradcheck), the layers compute what torch.nn's compute, `backprop=manual`
builds the MLP and LeNet-5 from them with the same initial weights, and training both ways from the same seed for
50 steps ends at the same weights. The classification task trains a manual network with its hand-written loss."""

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

from dlfound.models import lenet5, mlp
from dlfound.models import manual_backprop as mb
from dlfound.tasks.classification import ClassificationTask
from dlfound.tasks.optim import build_optimizer


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small float64 passes gain nothing from a second thread on a shared two-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def double(*shape, positive=False):
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(sum(shape)))
    return (x.abs() + 0.1 if positive else x).requires_grad_()


FUNCTIONS = {
    "linear": lambda: (mb.LinearFunction.apply, (double(4, 5), double(3, 5), double(3))),
    "linear without bias": lambda: (mb.LinearFunction.apply, (double(4, 5), double(3, 5), None)),
    # Away from the kink, where relu has no derivative and finite differences straddle it.
    "relu": lambda: (mb.ReLUFunction.apply, (double(4, 6, positive=True) * torch.tensor([1.0, -1.0] * 3),)),
    "sigmoid": lambda: (mb.SigmoidFunction.apply, (double(4, 6),)),
    "tanh": lambda: (mb.TanhFunction.apply, (double(4, 6),)),
    "softmax cross-entropy": lambda: (
        lambda z: mb.softmax_cross_entropy(z, torch.tensor([0, 2, 1, 2])),
        (double(4, 3),),
    ),
    "smoothed softmax cross-entropy": lambda: (
        lambda z: mb.softmax_cross_entropy(z, torch.tensor([0, 2, 1, 2]), 0.1),
        (double(4, 3),),
    ),
    "conv2d": lambda: (
        lambda x, w, b: mb.Conv2dFunction.apply(x, w, b, (1, 1), (1, 1), (1, 1)),
        (double(2, 2, 5, 4), double(3, 2, 3, 3), double(3)),
    ),
    "conv2d strided, dilated": lambda: (
        lambda x, w, b: mb.Conv2dFunction.apply(x, w, b, (2, 1), (0, 2), (1, 2)),
        (double(1, 2, 7, 6), double(2, 2, 2, 3), double(2)),
    ),
    "max pool": lambda: (lambda x: mb.MaxPool2dFunction.apply(x, (2, 2), (2, 2)), (double(2, 3, 6, 4),)),
    "overlapping max pool": lambda: (lambda x: mb.MaxPool2dFunction.apply(x, (3, 3), (2, 2)), (double(1, 2, 7, 7),)),
    "avg pool": lambda: (lambda x: mb.AvgPool2dFunction.apply(x, (2, 2), (2, 2)), (double(2, 3, 6, 4),)),
    "overlapping avg pool": lambda: (lambda x: mb.AvgPool2dFunction.apply(x, (3, 3), (2, 2)), (double(1, 2, 7, 7),)),
    "flatten": lambda: (mb.FlattenFunction.apply, (double(2, 3, 4, 5),)),
}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_hand_written_backward_passes_gradcheck(name):
    function, inputs = FUNCTIONS[name]()
    assert gradcheck(function, inputs, eps=1e-6, atol=1e-7)


LAYERS = [
    (mb.Linear(5, 3), torch.nn.Linear(5, 3), (4, 5)),
    (mb.Conv2d(3, 4, 5, padding=2), torch.nn.Conv2d(3, 4, 5, padding=2), (2, 3, 9, 8)),
    (mb.MaxPool2d(2, 2), torch.nn.MaxPool2d(2, 2), (2, 3, 8, 6)),
    (mb.AvgPool2d(2, 2), torch.nn.AvgPool2d(2, 2), (2, 3, 8, 6)),
    (mb.Flatten(), torch.nn.Flatten(), (2, 3, 4, 4)),
    (mb.ReLU(), torch.nn.ReLU(), (4, 7)),
    (mb.Sigmoid(), torch.nn.Sigmoid(), (4, 7)),
    (mb.Tanh(), torch.nn.Tanh(), (4, 7)),
]


@pytest.mark.parametrize("manual,usual,shape", LAYERS, ids=lambda v: type(v).__name__ if hasattr(v, "forward") else "")
def test_the_hand_written_layers_compute_and_differentiate_as_torch_nn(manual, usual, shape):
    usual.load_state_dict(manual.state_dict())
    x = torch.randn(*shape, requires_grad=True)
    out_manual, out_usual = manual(x), usual(x)
    torch.testing.assert_close(out_manual, out_usual)
    grad = torch.randn_like(out_usual)
    (g_manual,) = torch.autograd.grad(out_manual, x, grad)
    (g_usual,) = torch.autograd.grad(out_usual, x, grad)
    torch.testing.assert_close(g_manual, g_usual)


def test_the_hand_written_loss_is_torchs_cross_entropy():
    z, y = torch.randn(6, 4, requires_grad=True), torch.tensor([0, 3, 1, 1, 2, 0])
    for smoothing in (0.0, 0.2):
        torch.testing.assert_close(
            mb.softmax_cross_entropy(z, y, smoothing), F.cross_entropy(z, y, label_smoothing=smoothing)
        )
    assert mb.softmax_cross_entropy(z * 1e4, y).isfinite()  # the max is subtracted before exp


NETWORKS = {
    "mlp": (lambda backprop: mlp(1, 10, 8, hidden=[32, 16], activation="tanh", backprop=backprop), (1, 8, 8)),
    "lenet5 tanh avg": (lambda backprop: lenet5(1, 10, 12, backprop=backprop), (1, 12, 12)),
    "lenet5 relu max": (
        lambda backprop: lenet5(1, 10, 12, activation="relu", pool="max", backprop=backprop),
        (1, 12, 12),
    ),
}


def train(build, shape, backprop: str, steps: int = 50) -> torch.nn.Module:
    """`steps` steps of SGD with momentum through the classification task's training loss, in float64."""
    torch.manual_seed(0)
    net = build(backprop).double()
    task = ClassificationTask(net, 10, optim={"_target_": "torch.optim.SGD", "lr": 0.05, "momentum": 0.9})
    optimizer = build_optimizer(net, task.hparams.optim)
    data = torch.Generator().manual_seed(1)
    x = torch.rand(steps, 8, *shape, dtype=torch.float64, generator=data)
    y = torch.randint(0, 10, (steps, 8), generator=data)
    for step in range(steps):
        optimizer.zero_grad()
        task.training_loss(x[step], y[step]).backward()
        optimizer.step()
    return net


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")
@pytest.mark.parametrize("name", NETWORKS)
def test_training_by_hand_and_by_autograd_ends_at_the_same_weights(name):
    build, shape = NETWORKS[name]
    by_autograd, by_hand = train(build, shape, "autograd"), train(build, shape, "manual")
    assert by_hand.cross_entropy is mb.softmax_cross_entropy and not hasattr(by_autograd, "cross_entropy")
    moved = 0.0
    start = build("autograd").double()
    for (key, a), (_, m), (_, s) in zip(
        by_autograd.state_dict().items(), by_hand.state_dict().items(), start.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(m, a, rtol=1e-10, atol=1e-12, msg=f"{name}: {key} differs")
        moved = max(moved, (a - s).abs().max().item())
    assert moved > 1e-3  # the weights did move: the comparison is not of two untrained networks


def test_manual_refuses_layers_it_has_no_backward_for():
    with pytest.raises(ValueError, match="no hand-written batch norm"):
        mlp(backprop="manual", batch_norm=True)
    with pytest.raises(ValueError, match="no hand-written dropout"):
        lenet5(backprop="manual", dropout=0.5)
    with pytest.raises(ValueError, match="activations relu, sigmoid, tanh"):
        mlp(backprop="manual", activation="gelu")
    with pytest.raises(ValueError, match="autograd or manual"):
        mlp(backprop="symbolic")
