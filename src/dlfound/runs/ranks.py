"""A DDP rank that dies: one paragraph naming it and the way back, and the failure in results.json.

When Lightning starts the other ranks itself (trainer=ddp, ddp_cpu), rank zero's process learns of a rank's death
in one of two ways: its next collective fails (gloo: "Connection reset by peer"), or a thread of Lightning's that
polls the ranks every few seconds kills every rank, rank zero's own process included, with SIGKILL. Until now the
run ended in a traceback or in silence, with no record. Now the first of the two to notice names the dead rank in
one paragraph, and the run's results.json records it; dlfound train resume=RUN continues the run.
"""

import os
import signal
import threading
import time
from pathlib import Path

from dlfound.errors import DlfoundError

# Set by whichever of the two ways reports a death first: the user reads one paragraph.
_reported = threading.Event()


class RankDied(DlfoundError):
    """A DDP rank of the run ended before the run did."""


def exit_description(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def rank_death_message(child_processes, trainer, run_dir: Path) -> str | None:
    """The paragraph for the ranks (1, 2, ... in the order Lightning started them) that ended with an error."""
    dead = [(rank, p) for rank, p in enumerate(child_processes, start=1) if p.poll()]
    if not dead:
        return None
    names = ", ".join(f"rank {rank} (process {p.pid}) {exit_description(p.returncode)}" for rank, p in dead)
    return (
        f"a DDP process of the run died: {names}, at epoch {trainer.current_epoch}, step {trainer.global_step}; "
        "the run's other ranks stop with it. The cause is at the end of that rank's output (out of memory: the "
        f"kernel's log, `dmesg`). {way_back(run_dir)}"
    )


# What a collective raises when a peer process has gone (gloo over TCP; NCCL reports it as a DistError).
PEER_GONE = ("Connection reset by peer", "Connection closed by peer", "Broken pipe", "Connection refused")


def way_back(run_dir: Path) -> str:
    from dlfound.runs.results import last_checkpoint

    last = last_checkpoint(run_dir)
    if last:
        return f"It continues from its last checkpoint ({last.name}) with: dlfound train resume={run_dir}"
    return f"It had saved no checkpoint; run the same command again (or dlfound train resume={run_dir})."


def rank_died(trainer, run_dir: Path, err: BaseException) -> RankDied | None:
    """After fit raised: a RankDied when a rank of the run has died. In rank zero of ranks Lightning started, the
    rank is named (its exit code may lag the failed collective by a moment); in a rank that torchrun or srun
    started, which cannot see the others' processes, the peer's silence is what is known."""
    if trainer.world_size < 2 or _reported.is_set() or isinstance(err, DlfoundError):
        return None  # a diagnosis of this rank's own (a non-finite loss, a full disk) says more than a peer's exit
    procs = getattr(getattr(trainer.strategy, "launcher", None), "procs", None)
    if procs:
        deadline = time.time() + 3
        while (message := rank_death_message(procs, trainer, run_dir)) is None and time.time() < deadline:
            time.sleep(0.1)
        if message:
            _reported.set()
            return RankDied(message)
    import torch.distributed as dist

    text = f"{type(err).__name__}: {err}"
    if not (isinstance(err, dist.DistError) or any(gone in text for gone in PEER_GONE)):
        return None
    _reported.set()
    return RankDied(
        f"rank {trainer.global_rank} of {trainer.world_size} lost its peers at epoch {trainer.current_epoch}, step "
        f"{trainer.global_step} ({text.splitlines()[0][:160]}): another rank or node of the run died or was "
        "stopped; its own output says why. Every rank stops with it. Start the run again the way it was started "
        "(every node's torchrun, or the SLURM job), with resume=RUN instead of the run's overrides. "
        + way_back(run_dir)
    )


def watch_ranks(trainer, run_dir: Path, overrides: list[str], choices: dict) -> None:
    """Have Lightning's launcher start dlfound's watcher for the ranks it starts in this process: Lightning's own,
    which first records the death in results.json and prints the paragraph (unless rank zero already has)."""
    from lightning.fabric.strategies.launchers.subprocess_script import _ChildProcessObserver
    from lightning.pytorch.strategies.launchers import subprocess_script

    from dlfound.runs.console import err_console
    from dlfound.runs.results import record_failure

    class RankWatcher(_ChildProcessObserver):
        def _terminate_all(self) -> None:
            message = rank_death_message(self._child_processes, trainer, run_dir)
            if message and not _reported.is_set():
                _reported.set()
                try:
                    record_failure(run_dir, message, overrides, choices, began=True)
                except Exception as err:  # the paragraph must still reach the user
                    message += f" (This failure could not be recorded in results.json: {err})"
                from rich.panel import Panel
                from rich.text import Text

                err_console.print(Panel(Text(message), title="dlfound: error", border_style="red", expand=False))
                err_console.file.flush()
            super()._terminate_all()

    def launch_watcher(child_processes) -> None:
        RankWatcher(child_processes=child_processes, main_pid=os.getpid()).start()

    subprocess_script._launch_process_observer = launch_watcher
