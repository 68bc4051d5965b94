"""dlfound's own Lightning callbacks: throughput, a lighter progress bar, and what keeps a run safe to resume."""

import time

import lightning as L
from lightning.pytorch.callbacks import RichModelSummary, RichProgressBar

from dlfound.data.batch_groups import BatchGroup, grouped_batches_per_epoch


class Throughput(L.Callback):
    """Training samples per second over the training batches only (validation and testing excluded)."""

    def __init__(self):
        self.samples = 0
        self.seconds = 0.0
        self._start: float | None = None

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def _stop(self):
        if self._start is not None:
            self.seconds += time.perf_counter() - self._start
            self._start = None

    def on_validation_start(self, trainer, pl_module):
        self._stop()

    def on_train_epoch_end(self, trainer, pl_module):
        self._stop()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        samples = getattr(batch, "samples", None)  # a group of batches (steps_per_iteration) counts all of its own
        self.samples += (samples if samples is not None else len(batch[-1])) * trainer.world_size

    @property
    def samples_per_s(self) -> float | None:
        return self.samples / self.seconds if self.seconds else None


class ConfigInCheckpoint(L.Callback):
    """Stores the resolved run config (plain dicts and lists) in each checkpoint, so that `dlfound eval` and
    `dlfound sample` rebuild the data, network and task from the checkpoint file alone."""

    def __init__(self, config: dict):
        self.config = config

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        checkpoint["dlfound_config"] = self.config


class StopOnNonFiniteLoss(L.Callback):
    """Stops the run at the first NaN or infinite training loss, rather than training on garbage. On the CPU each
    step's loss is looked at; on an accelerator, looking costs a device synchronisation that stalls the queue of
    work, so whether every loss was finite is kept on the device and looked at every `log_every_n_steps` steps
    and at the epoch's end (before its checkpoint)."""

    def __init__(self):
        self.all_finite = None  # on an accelerator: whether every loss since the last look was finite

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        import torch

        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs  # None under manual optimisation
        if loss is None:
            return
        finite = torch.isfinite(loss.detach()).all()
        if loss.device.type == "cpu":
            self.look(trainer, finite, loss)
            return
        self.all_finite = finite if self.all_finite is None else self.all_finite & finite
        if (batch_idx + 1) % max(1, trainer.log_every_n_steps) == 0:
            self.look(trainer, self.all_finite, loss)

    def on_train_epoch_end(self, trainer, pl_module):
        if self.all_finite is not None:
            self.look(trainer, self.all_finite, None)

    def look(self, trainer, finite, loss) -> None:
        from dlfound.errors import NonFiniteLossError

        self.all_finite = None
        if not bool(finite):
            value, step = "nan or inf", trainer.global_step
            if loss is not None and loss.device.type == "cpu":
                import torch

                # A group of steps (steps_per_iteration) gives a loss per step: name the first that was not finite.
                losses = loss.detach().reshape(-1)
                first = int((~torch.isfinite(losses)).nonzero()[0])
                value, step = losses[first].item(), step - (len(losses) - 1 - first)
            raise NonFiniteLossError(
                f"the training loss became {value} at epoch {trainer.current_epoch}, step {step}; "
                "training stopped. Lower the learning rate, or clip gradients with trainer.gradient_clip_val=1.0."
            )


class SaveOnSigterm(L.Callback):
    """On SIGTERM (preemption) or Ctrl-C (dlfound.runs.stopping), Lightning stops at the next batch; during training
    this saves last.ckpt first, so that `dlfound train resume=RUN_FOLDER` continues from there. (While testing, the
    model holds the best checkpoint's weights, and last.ckpt from training must stay.)"""

    def __init__(self, checkpoint_dir: str):
        self.checkpoint_dir = checkpoint_dir

    def on_exception(self, trainer, pl_module, exception):
        from lightning.pytorch.trainer.states import TrainerFn
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if isinstance(exception, SIGTERMException) and trainer.state.fn == TrainerFn.FITTING:
            trainer.save_checkpoint(f"{self.checkpoint_dir}/last.ckpt")


class StopOnRequest(L.Callback):
    """Stops Lightning's loops on a Ctrl-C or SIGTERM that dlfound.runs.stopping recorded (`stops.signum`), the way
    Lightning stops on SIGTERM (SIGTERMException): at the next batch, and, since one batch of an evaluation can run
    the network a thousand times (diffusion sampling, the variational bound, the pictures drawn after validation),
    at the next network evaluation outside a gradient step."""

    def __init__(self, stops):
        self.stops = stops
        self.handles = []

    def look(self, *args) -> None:
        import torch
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if self.stops.signum and not torch.is_grad_enabled():
            raise SIGTERMException

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if self.stops.signum:
            raise SIGTERMException

    # The hook on every module's forward is there only while evaluating (validation, testing, prediction): a global
    # forward hook sends every module call of a training step through PyTorch's slower hook-handling path, and a
    # training step is stopped at the next batch anyway (on_train_batch_start). The evaluation loops' *_end hooks
    # run after the task's epoch-end pictures and samples, so those stay covered.
    def watch(self, *args, **kwargs) -> None:
        from torch.nn.modules.module import register_module_forward_pre_hook

        if not self.handles:  # every module's: a task may sample with a copy of its network (the weights' EMA)
            self.handles = [register_module_forward_pre_hook(self.look)]

    def unwatch(self, *args, **kwargs) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []

    on_validation_start = on_test_start = on_predict_start = watch
    on_validation_end = on_test_end = on_predict_end = teardown = unwatch


class SamplingTimeEstimate(L.Callback):
    """For a task whose test phase samples in many steps (diffusion, score models): after the second training
    batch, when testing would take far longer than training, one warning with both times and the overrides that
    shorten it. Training time: that batch's time times the run's training batches. Testing time: a few sampling
    steps timed on a batch of 16 (the test batch on a GPU), scaled linearly to the test samples and the steps per
    sample. Neither counts validation."""

    FAR_BEYOND = 10  # times the training time
    AT_LEAST_S = 120

    def __init__(self):
        self.batch_started = None
        self.done = False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batch_started = time.perf_counter()

    def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx):
        if self.done or (batch_idx < 1 and trainer.num_training_batches > 1) or not trainer.is_global_zero:
            return
        self.done = True
        batch_seconds = time.perf_counter() - self.batch_started
        batches = trainer.estimated_stepping_batches * trainer.accumulate_grad_batches
        samples = self.test_samples(trainer, task)
        if not samples or batches == float("inf"):
            return
        training = batch_seconds * batches
        probe = min(samples, self.eval_batch_size(trainer) or samples, 16 if task.device.type == "cpu" else samples)
        sampling = task.seconds_per_sample(probe) * samples
        if sampling < max(self.FAR_BEYOND * training, self.AT_LEAST_S):
            return
        from dlfound.tasks.generative import readable_duration

        fewer = max(1, int(samples * training / sampling))
        label, evaluations = task.sampler_description()
        task.print(
            f"note: testing will take far longer than training. It draws {samples} samples ({label}: "
            f"{evaluations} network evaluations each), about {readable_duration(sampling)} on this device, "
            f"against about {readable_duration(training)} of training (measured: one training batch "
            f"{batch_seconds:.2f} s, sampling {sampling / samples:.2f} s a sample). To shorten it: "
            f"task.test_samples={fewer}, or test=false to skip it."
        )

    @staticmethod
    def eval_batch_size(trainer) -> int | None:
        data = trainer.datamodule
        return getattr(data, "eval_batch_size", None) or getattr(data, "batch_size", None)

    def test_samples(self, trainer, task) -> int | None:
        """How many samples the test phase draws, when the config says (test_samples, or batches times their size)."""
        samples, limit = task.test_samples, trainer.limit_test_batches
        batch = self.eval_batch_size(trainer)
        if isinstance(limit, int) and batch:
            samples = min(samples or limit * batch, limit * batch)
        return samples


class RNGStateInCheckpoint(L.Callback):
    """Saves and restores the torch, numpy and Python RNG states, so that a run resumed at an epoch boundary
    draws the same dropout masks and augmentations as an uninterrupted one. Stored as tensors and ints only,
    so the checkpoint still loads with weights_only=True."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        import random

        import numpy as np
        import torch

        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        py_version, py_state, py_gauss = random.getstate()
        checkpoint["dlfound_rng"] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {
                "keys": torch.from_numpy(keys.astype(np.int64)),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "gauss": float(gauss),
            },
            "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint):
        import random

        import numpy as np
        import torch

        state = checkpoint.get("dlfound_rng")
        if not state:
            return
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        n = state["numpy"]
        np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
        p = state["python"]
        random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


class ProgressBar(RichProgressBar):
    """Lightning's rich progress bar, touched only every `refresh_rate` training batches. Each update reads
    the logged metrics as Python numbers (a device sync on a GPU) and re-renders the bar, which costs more
    than a small model's whole training step."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if jupyter_without_widgets():
            # Rich animates a bar in Jupyter through ipywidgets, and without them shows nothing at all; as plain
            # text in the cell's output the bar shows each epoch's end instead.
            self._console_kwargs = {**self._console_kwargs, "force_jupyter": False}

    @property
    def total_train_batches(self):
        """Batches, not loop iterations: a run with several steps per iteration (steps_per_iteration) counts
        each of its batches, so that the bar and its rate read as they do with one."""
        batches = grouped_batches_per_epoch(self.trainer)
        return batches if batches is not None else super().total_train_batches

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        grouped = isinstance(batch, BatchGroup)
        size = len(batch) if grouped else 1
        done = batch.first + size if grouped else batch_idx + 1  # batches of the epoch done
        if done // self.refresh_rate > (done - size) // self.refresh_rate or done == self.total_train_batches:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, done - 1)


class ModelSummary(RichModelSummary):
    """Lightning's summary table and totals, without the FLOPs column and the "Total FLOPs: 0" line when it
    counted none: it counts FLOPs only for a model that sets an `example_input_array`, which dlfound's tasks do
    not, so every run printed a zero that told a user nothing."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs,
    ) -> None:
        if total_flops:
            return RichModelSummary.summarize(
                summary_data,
                total_parameters,
                trainable_parameters,
                model_size,
                total_training_modes,
                total_flops,
                **summarize_kwargs,
            )
        from lightning.pytorch.utilities.model_summary import get_formatted_model_size, get_human_readable_count
        from rich import get_console
        from rich.table import Table

        numbers = ("Params", "Params per Device", "In sizes", "Out sizes")
        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:
            table.add_column(
                name,
                justify="right" if name in numbers else "left",
                no_wrap=name == "Name",
                style="dim" if name == " " else None,
            )
        for row in zip(*(values for _, values in columns), strict=True):
            table.add_row(*row)
        totals = Table.grid(expand=True)
        totals.add_column()
        for label, value in (
            ("Trainable params", get_human_readable_count(int(trainable_parameters))),
            ("Non-trainable params", get_human_readable_count(int(total_parameters - trainable_parameters))),
            ("Total params", get_human_readable_count(int(total_parameters))),
            ("Total estimated model params size (MB)", get_formatted_model_size(model_size)),
            ("Modules in train mode", total_training_modes["train"]),
            ("Modules in eval mode", total_training_modes["eval"]),
        ):
            totals.add_row(f"[bold]{label}[/]: {value}")
        console = get_console()
        console.print(table)
        console.print(totals)
        return None


def jupyter_without_widgets() -> bool:
    """Whether this process is a Jupyter kernel that lacks ipywidgets."""
    import importlib.util

    from rich.console import Console

    return Console().is_jupyter and importlib.util.find_spec("ipywidgets") is None
