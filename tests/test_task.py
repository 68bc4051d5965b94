"""The classification task's switches: mixup/CutMix, EMA, compile, channels_last and auxiliary heads."""

import lightning as L
import pytest
import torch
from torch import nn

from dlfound.models import MLP, LeNet5
from dlfound.tasks.classification import ClassificationTask
from dlfound.tasks.mixing import mix_batch

ADAM = {"_target_": "torch.optim.Adam", "lr": 1e-2}


def fit(task, x, y, epochs=3):
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    trainer = L.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(task, loader, loader)
    return trainer


def separable_data(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 12, 12, generator=g)
    y = (x.mean((1, 2, 3)) > 0).long()
    return x, y


def test_mixup_and_cutmix_mix_targets_in_proportion():
    x = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 8, 8).clone()
    y = torch.arange(4)
    mixed, ya, yb, lam = mix_batch(x, y, mixup_alpha=0.4, cutmix_alpha=0.0)
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[torch.argsort(torch.argsort(yb))][yb]) or 0 <= lam <= 1
    assert torch.equal(ya, y) and sorted(yb.tolist()) == [0, 1, 2, 3]
    cut, ya, yb, lam = mix_batch(x, y, mixup_alpha=0.0, cutmix_alpha=1.0)
    for i in range(4):  # each image is its own value outside the box and its partner's inside it
        own = (cut[i] == x[i]).float().mean().item()
        assert own == pytest.approx(lam, abs=1e-6) or (ya[i] == yb[i] and own == 1.0)


@pytest.mark.parametrize(
    "options",
    [
        {"mixup_alpha": 0.2},
        {"cutmix_alpha": 1.0},
        {"ema_decay": 0.9},
        {"channels_last": True},
        {"label_smoothing": 0.1},
    ],
)
def test_switches_still_learn(options):
    torch.manual_seed(0)
    x, y = separable_data()
    task = ClassificationTask(LeNet5(1, 2, 12), num_classes=2, optim=ADAM, **options)
    before = nn.functional.cross_entropy(task.eval()(x), y).item()
    task.train()
    fit(task, x, y, epochs=8)
    after = nn.functional.cross_entropy(task.eval()(x), y).item()
    assert after < before


def test_ema_evaluates_with_the_averaged_weights():
    x, y = separable_data()
    task = ClassificationTask(MLP(1, 2, 12, hidden=(8,)), num_classes=2, optim=ADAM, ema_decay=0.5)
    fit(task, x, y, epochs=1)
    task.eval()
    assert torch.allclose(task(x), task.ema.module(x))
    assert not torch.allclose(task.ema.module(x), task.net(x))


def test_compiled_checkpoint_loads_into_an_uncompiled_task(tmp_path):
    x, y = separable_data(32)
    compiled = ClassificationTask(MLP(1, 2, 12, hidden=(8,)), num_classes=2, optim=ADAM, compile=True)
    trainer = fit(compiled, x, y, epochs=1)
    path = tmp_path / "compiled.ckpt"
    trainer.save_checkpoint(path)
    plain = ClassificationTask(MLP(1, 2, 12, hidden=(8,)), num_classes=2, optim=ADAM)
    plain.load_state_dict(torch.load(path, weights_only=True)["state_dict"])
    assert torch.allclose(plain.eval()(x), compiled.eval().net(x))


def test_auxiliary_heads_add_to_the_loss():
    class WithAux(nn.Module):
        def __init__(self):
            super().__init__()
            self.main, self.head = nn.Linear(4, 3), nn.Linear(4, 3)
            self.aux_logits = []

        def forward(self, x):
            self.aux_logits = [self.head(x)] if self.training else []
            return self.main(x)

    net = WithAux()
    task = ClassificationTask(net, num_classes=3, optim=ADAM, aux_weight=0.3)
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    task.log = lambda *a, **k: None
    loss = task.training_step((x, y), 0)
    expected = nn.functional.cross_entropy(net.main(x), y) + 0.3 * nn.functional.cross_entropy(net.head(x), y)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_ema_warms_up_so_a_short_run_is_not_held_back_by_the_initial_weights():
    """After n updates the decay is min(decay, (1 + n) / (10 + n)): the average follows the first steps closely."""
    import torch
    from torch.optim.swa_utils import AveragedModel

    from dlfound.tasks.base import WarmedUpEMA

    net = torch.nn.Linear(1, 1, bias=False)
    ema = AveragedModel(net, multi_avg_fn=WarmedUpEMA(0.999), use_buffers=True)
    with torch.no_grad():
        net.weight.fill_(0.0)
        ema.update_parameters(net)  # the first update copies
        for _ in range(100):
            net.weight.add_(1.0)
            ema.update_parameters(net)
    # A plain 0.999 EMA would sit near 5 (the initial weights still weigh 90 %); the warmed-up one near 100 - 9.
    assert 85 < ema.module.weight.item() < 95
