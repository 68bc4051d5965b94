"""Ctrl-C (SIGINT) and SIGTERM while a run builds, trains or tests: a request to stop cleanly, not a traceback.

Before training, either signal stops the run where it is. Later the signal is recorded here (Lightning's own SIGTERM
handler, while it trains or tests, records SIGTERM too), and dlfound.runs.callbacks.StopOnRequest stops Lightning's
loops at the next batch, and evaluations and sampling loops (a diffusion model's thousand steps) at the next network
evaluation, as Lightning does on SIGTERM: SaveOnSigterm writes last.ckpt when it happens during training. A second
Ctrl-C stops the process at once. The run then ends in RunInterrupted: results.json says "interrupted", and the
message names the command that continues the run.
"""

import os
import signal
import sys
from pathlib import Path

from dlfound.errors import DlfoundError
from dlfound.runs.results import last_checkpoint
from dlfound.runs.slurm import TIME_LIMIT_SIGNALS, in_slurm_job

NAMES = {
    signal.SIGINT: "Ctrl-C",
    signal.SIGTERM: "SIGTERM",
    signal.SIGUSR1: "the warning of its SLURM job's time limit (SIGUSR1)",
    signal.SIGUSR2: "the warning of its SLURM job's time limit (SIGUSR2)",
}


class RunInterrupted(DlfoundError):
    """The run stopped on a signal; `saved` says whether a checkpoint to continue from exists."""

    def __init__(self, message: str, signum: int, saved: bool):
        super().__init__(message)
        self.exit_code, self.saved = 128 + signum, saved
        self.time_limit = signum in TIME_LIMIT_SIGNALS  # the run requeues its SLURM job (dlfound.runs.slurm)


class StopOnSignals:
    """A context in which SIGINT and SIGTERM request a clean stop (module docstring)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.signum: int | None = None
        self.phase = "before training"  # what the run is doing, for the message: "during training", ...
        self._previous: dict = {}

    def __enter__(self) -> "StopOnSignals":
        # In a SLURM job also the early warning of its time limit (`--signal`): a stop that requeues the job.
        for signum in NAMES if in_slurm_job() else (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self.handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def handle(self, signum: int, frame) -> None:
        if self.signum is not None:
            if signum == signal.SIGINT:
                print("\nsecond Ctrl-C: stopped at once.", file=sys.stderr, flush=True)
                os._exit(128 + signum)
            return  # Lightning's SIGTERM handler calling this one, or a repeated SIGTERM
        self.signum = signum
        if self.phase == "before training":  # nothing to save yet: stop here
            raise self.interrupted()
        if signum == signal.SIGINT:
            print(
                "\nCtrl-C: stopping after this step (training saves checkpoints/last.ckpt); press Ctrl-C again to "
                "stop at once.",
                file=sys.stderr,
                flush=True,
            )

    def interrupted(self, trainer=None) -> RunInterrupted:
        """The RunInterrupted for a stop in the current phase."""
        signum = self.signum or signal.SIGTERM  # Lightning's handler alone saw a SIGTERM sent before ours was set
        found = last_checkpoint(self.run_dir)
        at = f" at epoch {trainer.current_epoch}, step {trainer.global_step}" if trainer else ""
        where = self.phase
        if signum in TIME_LIMIT_SIGNALS:  # dlfound.runs.job requeues the job and says so
            saved = f"what it has done is saved in {found}" if found else "it had saved no checkpoint yet"
            message = f"the run stopped on {NAMES[signum]} {where}{at}; {saved}, and"
        elif found:
            message = (
                f"the run was interrupted by {NAMES[signum]} {where}{at}; what it has done is saved in {found}. "
                "Continue it with the command below."
            )
        else:
            message = (
                f"the run was interrupted by {NAMES[signum]} {where}{at}, before it saved a checkpoint: "
                "there is nothing to continue. Run the same command again to start it anew."
            )
        return RunInterrupted(" ".join(message.split()), signum, saved=found is not None)
