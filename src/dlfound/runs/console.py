"""What a run shows on the terminal: the config tree, the results table, and errors as one paragraph."""

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NoReturn

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

console = Console()
err_console = Console(stderr=True)
# Inside the Python API (dlfound.api) a failure is raised, never printed and exited: a notebook must survive it.
_failures_raise: ContextVar[bool] = ContextVar("failures_raise", default=False)

# Lightning's lines that tell a user nothing to act on: advertisements for its logging and model services, and
# "Trainer already configured with ..." notes about callbacks dlfound chose on purpose, and a note on how it counts
# batches.
NOISE = (
    "💡 Tip:",
    "litlogger",
    "litmodels",
    "already configured with",
    "to estimate number of stepping batches",
    "Received SIGTERM",  # dlfound.runs.stopping says which signal stopped a run, Ctrl-C included
)
# Deprecation notes from inside Lightning about its own use of torch: no user can act on them. Lightning's hint
# on every run of a machine with SLURM installed, and its note that a short epoch logs less often than
# log_every_n_steps (dlfound logs each epoch's metrics regardless): they tell a user nothing on every run.
INTERNAL_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\).*",
    r"The `srun` command is available on your system",
    r".*smaller than the logging interval Trainer\(log_every_n_steps",
)

TREE_ORDER = ("data", "model", "task", "optim", "sched", "trainer", "callbacks", "logger", "paths")


def config_tree(cfg: dict, title: str = "config") -> Tree:
    """A rich tree of the composed config, groups in the order they are built."""
    import yaml

    tree = Tree(f"[bold]{title}[/]")
    groups = [k for k in TREE_ORDER if isinstance(cfg.get(k), dict)]
    groups += [k for k, v in cfg.items() if isinstance(v, dict) and k not in groups]
    for key in groups:
        tree.add(f"[bold cyan]{key}[/]").add(yaml.safe_dump(cfg[key], sort_keys=False).rstrip() or "{}")
    scalars = {k: v for k, v in cfg.items() if not isinstance(v, dict)}
    tree.add("[bold cyan]run[/]").add(yaml.safe_dump(scalars, sort_keys=False).rstrip())
    return tree


def results_table(metrics: dict, run_dir: str, title: str = "results") -> Table:
    table = Table(title=title, title_style="bold")
    table.add_column("metric", style="cyan")
    table.add_column("value", justify="right", overflow="fold")  # a run folder's name says what the run was
    for key, value in metrics.items():
        if value is None:
            continue
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    table.add_row("run folder", str(run_dir), style="green")
    return table


def failures_are_raised() -> bool:
    """Whether `fail` raises here (inside `failures_raise`) rather than exiting."""
    return _failures_raise.get()


@contextmanager
def failures_raise() -> Iterator[None]:
    """Within this context `fail` raises DlfoundError(message) instead of printing it and exiting."""
    token = _failures_raise.set(True)
    try:
        yield
    finally:
        _failures_raise.reset(token)


def fail(message: str, code: int = 2, command: str | None = None, title: str = "dlfound: error") -> NoReturn:
    """Print a user-facing error as one paragraph and exit non-zero (inside `failures_raise`: raise it as a
    DlfoundError); `command`, what to type next, follows on a line of its own, never wrapped, so that it can be
    copied whole. The message is plain text: the brackets of a usage line ([n=64]) or an override
    (model.hidden=[32]) are not rich markup."""
    if failures_are_raised():
        from dlfound.errors import DlfoundError

        error = DlfoundError(f"{message} {command}" if command else message)
        error.exit_code = code
        raise error
    err_console.print(Panel(Text(message), title=title, border_style="red", expand=False))
    if command:
        err_console.print(command, soft_wrap=True, highlight=False, markup=False)
    sys.exit(code)


class DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(noise in message for noise in NOISE)


def quiet_lightning() -> None:
    """Silence Lightning's advertisements and redundant notes (NOISE); its actionable warnings stay."""
    for name in (
        "lightning.pytorch.utilities.rank_zero",
        "lightning.fabric.utilities.rank_zero",
        "lightning.pytorch.trainer.connectors.signal_connector",
    ):
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropNoise) for f in logger.filters):
            logger.addFilter(DropNoise())
    for message in INTERNAL_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    if not getattr(warnings.formatwarning, "dlfound", False):
        warnings.formatwarning = one_line_warning(warnings.formatwarning)


def one_line_warning(format_warning):
    """dlfound's own warnings (a skipped class folder or out-of-distribution set) as one line that says what was
    skipped and how to add it, without Python's file, line and source prefix."""

    def formatted(message, category, filename, lineno, line=None):
        if "/dlfound/" in filename.replace("\\", "/"):
            return f"warning: {message}\n"
        return format_warning(message, category, filename, lineno, line)

    formatted.dlfound = True
    return formatted
