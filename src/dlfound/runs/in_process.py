"""`dlfound train [-m]` inside the calling process: the Python API's train and sweep, and the lines of a figure.

A process of its own costs the imports of torch and Lightning before anything trains (11 s on the two-core
virtual machine dlfound is developed on); a figure of five lines used to pay that six times. Here the very code of
`dlfound train` runs (the same overrides, checks, run folders and results.json), and what a run changes in its
process is put back afterwards, so that calls do not leak into each other.
"""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def torch_switches_kept() -> Iterator[None]:
    """torch's process-wide switches that a run may set, put back afterwards: the threads a parallel sweep's job
    takes, trainer.deterministic, matmul_precision."""
    import torch

    threads, matmul = torch.get_num_threads(), torch.get_float32_matmul_precision()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.set_float32_matmul_precision(matmul)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


@contextmanager
def in_process() -> Iterator[None]:
    """What a run changes in its process, put back afterwards: the root logger's handlers (Hydra points them at the
    run's log file), the environment (dlfound's command, Lightning's seed variables) and torch's switches
    (`torch_switches_kept`); failures raise DlfoundError instead of exiting."""
    from dlfound.runs.console import failures_raise
    from dlfound.runs.job_process import COMMAND_ENV

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    environment = dict(os.environ)
    os.environ[COMMAND_ENV] = "train"
    try:
        with failures_raise(), torch_switches_kept():
            yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:], root.level = handlers, level
        os.environ.clear()
        os.environ.update(environment)


def launch_train(overrides: list[str], multirun: bool) -> list[Path]:
    """Run `dlfound train [-m] OVERRIDES` here, through Hydra's own run/multirun (not hydra.main, which parses
    sys.argv and exits on errors); the run folders of its jobs. A mistake, a failed sweep job or a stop by a
    signal raises DlfoundError with the paragraph the CLI prints (its `exit_code` as the CLI's)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from dlfound.errors import DlfoundError
    from dlfound.runs.job import SweepOutcome, run_job
    from dlfound.runs.paths import config_dir
    from dlfound.runs.train_overrides import prepare

    with in_process():
        overrides = prepare(list(overrides))
        # The context clears Hydra's global state on the way out, also after an error.
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name="train"):
            hydra = GlobalHydra.instance().hydra
            if not multirun:
                returned = [hydra.run("train", run_job, overrides)]
            else:  # the mode `-m` sets: a failed job is recorded and the sweep goes on (dlfound.runs.job)
                SweepOutcome.last = None
                sweep = hydra.multirun("train", run_job, [*overrides, "hydra.mode=MULTIRUN"])
                returned = [job for batch in sweep or [] for job in batch]
                if SweepOutcome.last:
                    raise DlfoundError(SweepOutcome.last)
    return [Path(job.hydra_cfg.hydra.runtime.output_dir) for job in returned]
