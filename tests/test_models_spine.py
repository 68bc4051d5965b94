"""The spine's classifiers (softmax regression, MLP, LeNet-5) on the dataset shapes the other tests leave out:
8x8 digits and flat 2-D points, with the MLP's batch norm and dropout on. (MNIST and CIFAR shapes: every model
in tests/test_every_model.py.)"""

import pytest
import torch

from dlfound.models import MLP, LeNet5, lenet5, softmax

# (in_channels, image_size, num_classes) of digits and the 2-D toy sets.
SHAPES = {"digits": (1, 8, 10), "toy2d": (2, None, 3)}
BUILDERS = {
    "softmax": lambda c, s, k: softmax(c, k, s),
    "mlp": lambda c, s, k: MLP(c, k, s, hidden=(32, 16), batch_norm=True, dropout=0.1),
    "lenet5": lambda c, s, k: LeNet5(c, k, s),
}


def batch(c, s, n=4):
    return torch.randn(n, c, s, s) if s else torch.randn(n, c)


@pytest.mark.parametrize("model", BUILDERS)
@pytest.mark.parametrize("data", SHAPES)
def test_forward_backward_every_parameter_gets_a_gradient(model, data):
    c, s, k = SHAPES[data]
    if model == "lenet5" and (s is None or s < 12):
        with pytest.raises(ValueError, match="LeNet-5 needs images of at least 12x12"):
            BUILDERS[model](c, s or 0, k)
        return
    net = BUILDERS[model](c, s, k)
    out = net(batch(c, s))
    assert out.shape == (4, k)
    out.logsumexp(1).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_lenet5_has_the_papers_layer_sizes():
    net = lenet5()
    # C1 156, C3 2,416, C5 48,120 (16*5*5*120+120), F6 10,164, output 850: 61,706 for 10 classes.
    assert sum(p.numel() for p in net.parameters()) == 61_706


def test_softmax_regression_is_linear():
    net = softmax(1, 10, 28)
    assert sum(p.numel() for p in net.parameters()) == 784 * 10 + 10


def test_unknown_activation_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown activation 'swishy'"):
        MLP(1, 10, 8, activation="swishy")
