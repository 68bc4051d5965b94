"""What every task shares: the network, its initialisation, optimizers and schedulers built from config, and
the efficiency switches that work with any network: torch.compile, channels_last and an EMA of the weights.

Hyperparameters are saved as plain dicts and numbers only (never modules or partials), so checkpoints load
with torch.load(weights_only=True). What a task receives from outside its config (the network; facts of the
data such as mode centres; a feature network) is not a hyperparameter and stays out of them.
"""

from pathlib import Path

import lightning as L
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from dlfound.data.batch_groups import BatchGroup
from dlfound.errors import CheckpointError, ConfigError
from dlfound.models.init import initialize
from dlfound.tasks.optim import build_optimizer, build_scheduler
from dlfound.tasks.step_groups import GroupSettings, total_optimizer_steps, train_on_group

# Constructor arguments that are inputs, not hyperparameters (see dlfound.runs.build.task_inputs).
INPUTS = ["net", "mode_centers", "mode_std", "mode_weights", "features", "optimum", "hessian_eigenvalues"]
# Where a Lightning user who found no network in a checkpoint is sent.
FRONT_DOOR = "dlfound.load(path).network() gives the trained network, and dlfound.load(path) the whole run"
# Recurrent networks clip the gradient norm at this value unless trainer.gradient_clip_val says otherwise (0: off):
# through time, one exploding gradient can undo a whole run (Pascanu, Mikolov & Bengio 2013).
RECURRENT_CLIP_NORM = 1.0


class WarmedUpEMA:
    """The EMA update with a warm-up: after n updates the decay is min(decay, (1 + n) / (10 + n)) (TensorFlow's
    ExponentialMovingAverage with num_updates), so the average of a short run is not held back by the random
    initial weights (a plain 0.999 EMA still gives them 37 % of the weight after 1,000 steps). A callable object:
    the decay is computed on the device, with no host synchronisation per step."""

    def __init__(self, decay: float):
        self.decay = decay

    @torch.no_grad()
    def __call__(self, averaged: list[torch.Tensor], current: list[torch.Tensor], updates: torch.Tensor) -> None:
        if averaged[0].is_floating_point():
            # In the weights' own float type, whatever the default dtype of the moment (64-true sets float64 only
            # inside training steps, and grouped steps update the EMA there).
            updates = updates.to(averaged[0].dtype)
            decay = torch.clamp((1 + updates) / (10 + updates), max=self.decay)
            torch._foreach_lerp_(averaged, current, 1 - decay)
        else:  # integer buffers (batch norm's counters) take the latest value
            for a, c in zip(averaged, current, strict=True):
                a.copy_(c)


class Task(L.LightningModule):
    """The contract of a task: `step(batch, stage)` computes and logs one batch at every stage, and Lightning's
    hooks call it; a task overrides a hook only to add something (pictures of the first validation batch, a
    second test loader). It names the metric that picks the best checkpoint in `monitor` and `monitor_mode`."""

    # Whether the task drives its network through forward(); tasks that call other methods (a flow's
    # log_prob, a GAN's generator and discriminator) set False, and refuse compile instead of ignoring it.
    calls_forward = True
    # Whether a lower ("min") or higher ("max") `monitor` is better.
    monitor_mode = "min"
    # Whether the task's training step is that of automatic optimisation and may be made several times in one loop
    # iteration (dlfound.tasks.step_groups): one optimizer, a loss that depends on the batch alone, and no
    # per-batch hook of its own.
    steps_in_groups = False

    @property
    def monitor(self) -> str:
        """The logged metric that picks the best checkpoint (early stopping and the results follow it); runs read
        it in dlfound.runs.training, where the run config's `monitor` and `monitor_mode` win. A task names it as
        a class attribute (`monitor = "val/acc"`), or overrides this property when the metric depends on the data
        (a flow's bits per dimension for images, nats for points)."""
        raise NotImplementedError(f"{type(self).__name__} names no monitored metric (class attribute `monitor`)")

    def __init__(
        self,
        net: nn.Module,
        optim: dict,
        sched: dict | None = None,
        init: str = "default",
        compile: bool = False,
        channels_last: bool = False,
        ema_decay: float | None = None,
    ):
        super().__init__()
        if compile and not self.calls_forward:
            raise ConfigError(
                f"task.compile=true compiles the network's forward(), which {type(self).__name__} "
                "does not call (it uses the network's other methods); run it with task.compile=false"
            )
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ConfigError(f"task.ema_decay must lie in (0, 1), e.g. 0.999, or be null; got {ema_decay}")
        self.net = net
        initialize(self.net, init)
        self.channels_last = channels_last
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        # Polyak averaging of the weights (and buffers); validation, test and sampling use the average.
        self.ema = AveragedModel(self.net, multi_avg_fn=WarmedUpEMA(ema_decay), use_buffers=True) if ema_decay else None
        self.use_compile = compile
        self._compiled = None
        self.group_settings: GroupSettings | None = None  # set when steps are grouped
        self.batch_index_in_epoch = 0
        self.save_hyperparameters(ignore=INPUTS, logger=False)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, hparams_file=None, strict=None, **kwargs):
        """Lightning's loader for a dlfound checkpoint. The network is an input of the task, not a hyperparameter,
        so unless `net=` is given it is rebuilt from the model config the checkpoint stores; a checkpoint that
        cannot be rebuilt this way is one DlfoundError paragraph that points at `dlfound.load`."""
        if "net" not in kwargs:
            kwargs["net"] = network_of_checkpoint(checkpoint_path, cls.__name__)
        try:
            return super().load_from_checkpoint(checkpoint_path, map_location, hparams_file, strict, **kwargs)
        except TypeError as err:  # an input from the data (a toy set's mode centres) that no hyperparameter holds
            raise ConfigError(
                f"{cls.__name__}.load_from_checkpoint({checkpoint_path}) cannot rebuild the task "
                f"alone ({err}); {FRONT_DOOR}."
            ) from None

    def log(self, name: str, value, *args, **kwargs) -> None:
        """Validation and test metrics are averaged over DDP ranks, each of which sees its own share of the set,
        so results.json holds the figure for the whole set and not rank 0's share. Training metrics stay per
        rank unless a task asks: syncing a per-step value costs an all-reduce every step."""
        if not name.startswith("train/"):
            kwargs.setdefault("sync_dist", True)
        super().log(name, value, *args, **kwargs)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Lightning loads a resumed run's weights before its precision plugin converts the network (64-true: to
        # float64), so they would pass through float32 and lose their last digits; convert it first.
        if self._trainer is not None:
            self.trainer.precision_plugin.convert_module(self)

    @property
    def model(self) -> nn.Module:
        """The network as evaluation sees it: the EMA weights outside training, when there is an EMA."""
        return self.ema.module if self.ema is not None and not self.training else self.net

    def picture(self, name: str, picture) -> None:
        """Log one picture (an HWC uint8 array) to TensorBoard and write it to RUN/images/NAME_epochEEE.png (rank
        zero only)."""
        if not self.trainer.is_global_zero:
            return
        from lightning.pytorch.loggers import TensorBoardLogger

        from dlfound.image_files import write_picture

        for logger in self.trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(f"images/{name}", picture, self.current_epoch, dataformats="HWC")
        folder = Path(self.trainer.default_root_dir) / "images"
        write_picture(picture, folder / f"{name}_epoch{self.current_epoch:03d}.png")

    def forward(self, *inputs):
        return self.run_net(*inputs)

    def run_net(self, x: torch.Tensor, *rest) -> torch.Tensor:
        """The network's forward as this task runs it: EMA weights when evaluating, compiled when asked."""
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.ema is not None and not self.training:
            return self.ema.module(x, *rest)
        if self.use_compile:
            if self._compiled is None:
                # Kept outside the module tree, so state dict keys stay those of the plain network and a
                # compiled run's checkpoint loads into an uncompiled one.
                object.__setattr__(self, "_compiled", torch.compile(self.net))
            return self._compiled(x, *rest)
        return self.net(x, *rest)

    def step(self, batch, stage: str) -> torch.Tensor | None:
        """The loss of one batch at `stage` (train, val or test), its metrics logged; every task implements it.
        A task that optimises by itself (manual optimisation, Rosenblatt's rule) makes its updates here at
        "train" and may return None."""
        raise NotImplementedError(f"{type(self).__name__} does not implement step(batch, stage)")

    @property
    def batch_in_epoch(self) -> int:
        """The current training batch's index within its epoch (Lightning's batch_idx), for a step whose loss
        depends on it; 0 outside a Trainer."""
        if self.group_settings is not None:
            return self.batch_index_in_epoch
        return self.trainer.fit_loop.epoch_loop.batch_idx if self._trainer is not None else 0

    def step_in_groups(self, settings: GroupSettings) -> None:
        """Make the optimizer steps of a group of batches in each loop iteration (dlfound.tasks.step_groups), with
        the gradient clipping the trainer would have done."""
        if not self.steps_in_groups:
            raise ConfigError(f"{type(self).__name__} steps once per loop iteration; set steps_per_iteration=1")
        self.automatic_optimization = False
        self.group_settings = settings

    def training_step(self, batch, batch_idx):
        if isinstance(batch, BatchGroup):
            return train_on_group(self, batch)
        return self.step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self.step(batch, "val")

    def test_step(self, batch, batch_idx):
        self.step(batch, "test")

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self.ema is not None and self.group_settings is None:  # a group updates it after each of its steps
            self.ema.update_parameters(self.net)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        if gradient_clip_val is None and getattr(self.net, "is_recurrent", False):
            gradient_clip_val, gradient_clip_algorithm = RECURRENT_CLIP_NORM, "norm"
        if gradient_clip_val is None and not self.trainer.gradient_clip_val:
            return  # nothing to clip: what Lightning's clip_gradients would find, after a few checks, every step
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self):
        optimizer = build_optimizer(self.net, self.hparams.optim)
        scheduler = build_scheduler(
            optimizer, self.hparams.sched, int(total_optimizer_steps(self.trainer)), self.trainer.max_epochs or 1
        )
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def network_of_checkpoint(path, task_name: str) -> nn.Module:
    """The untrained network a dlfound checkpoint of `task_name` describes (its stored model config), for
    `Task.load_from_checkpoint`, which loads the weights into it."""
    import pickle

    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, pickle.UnpicklingError) as err:
        raise CheckpointError(
            f"{path}: not a checkpoint Lightning can read safely ({type(err).__name__}); "
            f"{FRONT_DOOR}, and says what is wrong with the file."
        ) from None
    cfg = ckpt.get("dlfound_config") if isinstance(ckpt, dict) else None
    model, task = (cfg or {}).get("model") or {}, str(((cfg or {}).get("task") or {}).get("_target_", ""))
    if not str(model.get("_target_", "")).startswith("dlfound.models."):
        raise CheckpointError(
            f"{path} stores no dlfound model config, so {task_name}.load_from_checkpoint cannot "
            f"rebuild its network; pass net=YOUR_MODULE, or: {FRONT_DOOR}."
        )
    if task.rpartition(".")[2] != task_name:
        raise ConfigError(f"{path} was trained by {task or 'an unknown task'}, not {task_name}; {FRONT_DOOR}.")
    try:
        return instantiate(model, _convert_="all")
    except InstantiationException as err:
        raise ConfigError(
            f"{path}: its network ({model['_target_']}) could not be rebuilt ({err}); {FRONT_DOOR}."
        ) from None
