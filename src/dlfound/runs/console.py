"""What a run shows on the terminal: the config tree, the results table, and errors as one paragraph."""

import sys
from typing import NoReturn

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.tree import Tree

console = Console()
err_console = Console(stderr=True)

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
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        if value is None:
            continue
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    table.add_row("run folder", str(run_dir), style="green")
    return table


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a user-facing error as one paragraph and exit non-zero."""
    err_console.print(Panel(message, title="dlfound: error", border_style="red", expand=False))
    sys.exit(code)
