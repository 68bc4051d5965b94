"""A Lightning callback that watches a network leave (or stay in) the lazy, kernel regime while it trains.

Lee et al. (2019, "Wide neural networks of any depth evolve as linear models under gradient descent") bound these by
width^(-1/2) in the NTK parameterisation (`ntk_width_sweep` measures how they shrink):

- `ntk/kernel_change` = ||K_t - K_0||_F / ||K_0||_F, the relative change of the empirical NTK on a fixed probe
  batch (the first `probe_size` training inputs). K is the empirical NTK summed (traced) over the outputs,
  K(x, x') = sum_o <df_o(x)/dtheta, df_o(x')/dtheta>: for one output, the kernel itself.
- `ntk/linearization_distance`: the root-mean-square distance, over the probe inputs and the outputs, between the
  network f(x; theta_t) and its linearisation around the initial parameters f_lin(x; theta_t) = f(x; theta_0)
  + J_0 (theta_t - theta_0), in the units of the outputs (absolute, not relative: the change f_t - f_0 that
  training makes is O(1) at every width, so the absolute gap shows the width^(-1/2) law directly).
  See `dlfound.ops.ntk.linearization`.
- `ntk/weight_change` = ||theta_t - theta_0|| / ||theta_0||, over all trainable parameters (Lee et al.'s third
  quantity; for one hidden layer ||theta_0|| grows like width^(1/2) and ||theta_t - theta_0|| stays O(1)).

All three are written to the loggers every `every_n_steps` optimizer steps (directly, so `log_every_n_steps`
does not thin them), and at test time, for the network under test, into the test metrics (results.json):
`test/ntk_kernel_change`, `test/ntk_linearization_distance`, `test/ntk_weight_change`. At test time the callback
also solves NTK kernel regression with the initial empirical kernel and the initial outputs
(`dlfound.ops.ntk.regression`: where the linearised network converges under gradient descent on the squared error)
over the whole training set, and logs
`test/ntk_regression_mse` (against the test targets) and `test/ntk_regression_distance` (RMS gap to the trained
network's test outputs); for one input and one output it draws the target, the network and the kernel
prediction (TensorBoard image `ntk/regression` and RUN/ntk_regression.png). `regression`: true does it (and
refuses before training if it will not fit), null does it when the targets are real-valued like the outputs
and the kernels fit in memory, false never.

The initial parameters and the probe batch are part of the callback's checkpoint state, so a resumed run and the
test of the best checkpoint measure against the same theta_0.
"""

import copy
import math
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn

from dlfound.errors import ConfigError
from dlfound.ops.ntk.empirical import check_size, empirical_ntk, split_parameters
from dlfound.ops.ntk.linearization import linearization_distance, parameters_of
from dlfound.ops.ntk.regression import ntk_regression


def inputs_and_targets(datamodule, dataset, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The first `limit` examples (all when None) of a map-style dataset of (input, target) pairs, stacked in
    their stored order and made into model inputs as evaluation makes them (`as_model_input`)."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    items = [dataset[i] for i in range(n)]
    if isinstance(items[0], (tuple, list)):
        x = torch.stack([torch.as_tensor(item[0]) for item in items])
        y = torch.stack([torch.as_tensor(item[1]) for item in items]) if len(items[0]) > 1 else None
    else:
        x, y = torch.stack([torch.as_tensor(item) for item in items]), None
    return as_model_input(datamodule, x), y


def as_model_input(datamodule, x: torch.Tensor) -> torch.Tensor:
    """Stored samples -> what the network sees at evaluation: in-memory data modules keep raw samples and scale and
    normalise them on the batch (`prepare(x, training=False)`: no augmentation); others give model inputs."""
    prepare = getattr(datamodule, "prepare", None)
    return prepare(x, False) if callable(prepare) else x.float() if x.dtype == torch.uint8 else x


class NTKMonitor(Callback):
    """Logs the relative kernel change and the linearisation distance during training and at test time, and
    compares the trained network with NTK kernel regression (module docstring). `params` restricts the kernel to
    some parameters (names or module prefixes); `max_gib` caps the memory of each kernel (default: half the free
    memory)."""

    def __init__(
        self,
        every_n_steps: int = 10,
        probe_size: int = 64,
        params: list[str] | None = None,
        regression: bool | None = None,
        max_gib: float | None = None,
    ):
        if every_n_steps < 1 or probe_size < 1:
            raise ConfigError(
                f"the NTK monitor needs every_n_steps >= 1 and probe_size >= 1, got "
                f"every_n_steps={every_n_steps}, probe_size={probe_size}"
            )
        self.every_n_steps = every_n_steps
        self.probe_size = probe_size
        self.params = list(params) if params else None
        self.regression = regression
        self.max_gib = max_gib
        self.theta0: dict[str, torch.Tensor] | None = None
        self.probe: torch.Tensor | None = None
        self._k0: torch.Tensor | None = None
        self._do_regression = False  # decided at fit start (check_sizes)

    # -- state -------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"theta0": self.theta0, "probe": self.probe} if self.theta0 is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        if state_dict.get("theta0") is not None:
            self.theta0, self.probe, self._k0 = state_dict["theta0"], state_dict["probe"], None

    # -- measurements ------------------------------------------------------------------------------------------
    def kernel(self, net: torch.nn.Module, x: torch.Tensor, x2: torch.Tensor | None = None) -> torch.Tensor:
        return empirical_ntk(net, x, x2, params=self.params, max_gib=self.max_gib)

    def initial_net(self, net: torch.nn.Module) -> torch.nn.Module:
        """A copy of the network at theta_0."""
        net0 = copy.deepcopy(net)
        with torch.no_grad():
            for name, p in net0.named_parameters():
                if name in self.theta0:
                    p.copy_(self.theta0[name])
        return net0

    def measure(self, net: torch.nn.Module) -> dict[str, float]:
        probe = self.probe.to(next(net.parameters()).device)
        theta0 = {k: v.to(probe.device) for k, v in self.theta0.items()}
        if self._k0 is None:
            self._k0 = self.kernel(self.initial_net(net), probe)
        k_t = self.kernel(net, probe)
        change = (torch.linalg.matrix_norm(k_t - self._k0) / torch.linalg.matrix_norm(self._k0)).item()
        theta = parameters_of(net)
        moved = math.sqrt(sum((theta[k] - theta0[k]).pow(2).sum().item() for k in theta0))
        size = math.sqrt(sum(v.pow(2).sum().item() for v in theta0.values()))
        return {
            "kernel_change": change,
            "linearization_distance": linearization_distance(net, theta0, probe),
            "weight_change": moved / size,
        }

    # -- hooks -------------------------------------------------------------------------------------------------
    def on_fit_start(self, trainer, pl_module) -> None:
        net = pl_module.net
        if self.theta0 is None:  # a resumed run keeps the theta_0 of its checkpoint
            train = trainer.datamodule.train_dataloader().dataset
            self.probe, _ = inputs_and_targets(trainer.datamodule, train, self.probe_size)
            self.theta0 = {k: v.cpu() for k, v in parameters_of(net).items()}
        self._k0 = None
        self.check_sizes(trainer, net)
        self.write(trainer, self.measure(net))

    def check_sizes(self, trainer, net) -> None:
        """Refuse now, not after training, a kernel that would not fit; decide whether to do the regression."""
        diff, _ = split_parameters(net, self.params)
        num_params = sum(p.numel() for p in diff.values())
        device = next(net.parameters()).device
        was_training = net.training
        net.eval()
        with torch.no_grad():
            outputs = net(self.probe[:1].to(device)).numel()
        net.train(was_training)
        check_size(len(self.probe), None, outputs, num_params, 4, True, device, self.max_gib)
        self._do_regression = False
        if self.regression is False:
            return
        train = trainer.datamodule.train_dataloader().dataset
        x, y = inputs_and_targets(trainer.datamodule, train, 1)
        real = y is not None and y.is_floating_point() and y[0].numel() == outputs
        if not real:
            if self.regression:
                raise ConfigError(
                    "the NTK monitor's regression (callbacks.ntk_monitor.regression=true) needs "
                    "real-valued targets shaped like the network's outputs (task=regression); set "
                    "it to false or null"
                )
            return
        n = len(train)
        try:
            n_test = len(trainer.datamodule.test_dataloader().dataset)
        except Exception:  # a test set not built yet (or none): size it as the training set
            n_test = n
        try:  # the peak: K(test, train) from the Jacobians of both sets
            check_size(n_test, n, outputs, num_params, 4, True, device, self.max_gib)
        except ConfigError as err:
            if self.regression:
                raise ConfigError(f"NTK regression over the {n} training examples: {err}") from None
            rank_zero_warn(
                f"the NTK monitor skips kernel regression over {n} training examples: it would need "
                f"too much memory (callbacks.ntk_monitor.regression=false silences this)"
            )
            return
        self._do_regression = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self.write(trainer, self.measure(pl_module.net))

    def write(self, trainer, values: dict[str, float]) -> None:
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics({f"ntk/{k}": v for k, v in values.items()}, step=trainer.global_step)

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        if self.theta0 is None:  # tested without fitting, from a checkpoint without the monitor's state
            return
        net = pl_module.model
        self._k0 = None
        for name, value in self.measure(net).items():
            pl_module.log(f"test/ntk_{name}", value)
        if self._do_regression:
            for name, value in self.regression_metrics(trainer, net).items():
                pl_module.log(f"test/ntk_{name}", value)

    # -- kernel regression -------------------------------------------------------------------------------------
    def regression_metrics(self, trainer, net: torch.nn.Module) -> dict[str, float]:
        device = next(net.parameters()).device
        x_train, y_train = inputs_and_targets(trainer.datamodule, trainer.datamodule.train_dataloader().dataset)
        loaders = trainer.test_dataloaders
        loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
        batches = list(loader)
        x_test = as_model_input(trainer.datamodule, torch.cat([b[0] for b in batches])).to(device)
        y_test = torch.cat([b[1] for b in batches]).to(device)
        x_train, y_train = x_train.to(device), y_train.to(device)
        net0 = self.initial_net(net).eval()
        k_train = self.kernel(net0, x_train)
        k_test = self.kernel(net0, x_test, x_train)
        was_training = net.training
        net.eval()
        with torch.no_grad():
            f0_train, f0_test = net0(x_train), net0(x_test)
            f_test = net(x_test)
        net.train(was_training)
        shape = f_test.shape
        prediction = ntk_regression(
            k_test,
            k_train,
            y_train.reshape(len(y_train), -1).float(),
            f0_test.reshape(len(x_test), -1),
            f0_train.reshape(len(x_train), -1),
        )
        prediction = prediction.reshape(shape)
        metrics = {
            "regression_mse": torch.mean((prediction - y_test.reshape(shape)) ** 2).item(),
            "regression_distance": math.sqrt(torch.mean((prediction - f_test) ** 2).item()),
        }
        if x_test[0].numel() == 1 and f_test[0].numel() == 1 and trainer.is_global_zero:
            self.draw(trainer, x_train, y_train, x_test, y_test, f_test, prediction)
        return metrics

    def draw(self, trainer, x_train, y_train, x_test, y_test, f_test, prediction) -> None:
        """The test target, the trained network and the NTK prediction against the one input, with the training
        points: TensorBoard's `ntk/regression` and RUN/ntk_regression.png."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        def flat(t):
            return t.detach().reshape(-1).cpu().numpy()

        order = torch.argsort(x_test.reshape(-1)).cpu()
        xs = flat(x_test)[order]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(xs, flat(y_test)[order], color="black", lw=1.5, label="target (test)")
        ax.plot(xs, flat(f_test)[order], color="tab:blue", lw=1.5, label="trained network")
        ax.plot(xs, flat(prediction)[order], color="tab:orange", lw=1.5, ls="--", label="NTK regression (K_0, f_0)")
        ax.scatter(flat(x_train), flat(y_train), s=10, color="tab:red", zorder=3, label="training points")
        ax.set_xlabel("x")
        ax.set_ylabel("f(x)")
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(Path(trainer.default_root_dir) / "ntk_regression.png", dpi=100)
        for logger in trainer.loggers:
            writer = getattr(logger, "experiment", None)
            if hasattr(writer, "add_figure"):
                writer.add_figure("ntk/regression", fig, global_step=trainer.global_step, close=False)
        plt.close(fig)
