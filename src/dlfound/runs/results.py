"""results.json: the contract that sweeps, `dlfound report`, `dlfound eval` and benchmarks read.

A finished run writes {"status": "done", "metrics", "monitor", "epochs", "global_step", "wall_time_s",
"fit_time_s", "train_samples_per_s", "num_params", "world_size", "cuda_visible_devices", "resumed_from",
"choices", "overrides", "seed", "run_dir", "finished_at", "versions"}, and with lr_find=true "lr_find":
{"suggestion", "plot"}; a failed one {"status": "failed", "error", "last_checkpoint", "choices", "overrides",
"run_dir", "finished_at", "versions"}, with the status "not_started" instead of "failed" when the error came
before training began (no logs, no checkpoint: a data set missing, a setting refused), which `dlfound report`
hides unless asked, and "interrupted" for a run stopped by Ctrl-C or SIGTERM. Keep these keys stable.
"""

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from dlfound.files import write_text

RESULTS_FILE = "results.json"


def write_json(path: Path, data: dict) -> None:
    """Atomic (dlfound.files): a reader never sees half a file, and a crash never truncates the previous one."""
    write_text(path, json.dumps(data, indent=2, default=str))


def read_results(run_dir: Path) -> dict | None:
    """The run's results.json, or None when it has none (still running, or killed) or it is unreadable."""
    try:
        return json.loads((Path(run_dir) / RESULTS_FILE).read_text())
    except (OSError, ValueError):
        return None


def versions() -> dict:
    import importlib.metadata as md

    found = {"python": platform.python_version()}
    for package in ("dlfound", "torch", "torchvision", "lightning", "hydra-core", "omegaconf"):
        try:
            found[package] = md.version(package)
        except md.PackageNotFoundError:
            found[package] = None
    return found


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def last_checkpoint(run_dir: Path) -> Path | None:
    """The run folder's newest last*.ckpt, the one a resumed run continues from."""
    found = sorted((Path(run_dir) / "checkpoints").glob("last*.ckpt"), key=os.path.getmtime)
    return found[-1] if found else None


def record_done(run_dir: Path, results: dict) -> dict:
    results = {"status": "done", **results, "run_dir": str(run_dir), "finished_at": now(), "versions": versions()}
    write_json(Path(run_dir) / RESULTS_FILE, results)
    return results


FAILED_STATUSES = ("failed", "not_started")
# What a run writes once training begins: its loggers' folders, then checkpoints.
STARTED_MARKS = ("csv", "tensorboard")


def record_failure(
    run_dir: Path, error: str, overrides: list[str], choices: dict, status: str = "failed", began: bool = False
) -> None:
    """`began`: the error came from fitting or testing (dlfound.runs.training marks it), so the run started even
    where it left no logs or checkpoint (a non-finite loss at the first step with logger=none)."""
    last = last_checkpoint(run_dir)
    started = began or last is not None or any((Path(run_dir) / mark).exists() for mark in STARTED_MARKS)
    write_json(
        Path(run_dir) / RESULTS_FILE,
        {
            "status": status if started or status != "failed" else "not_started",
            "error": error,
            "last_checkpoint": str(last) if last else None,
            "choices": choices,
            "overrides": overrides,
            "run_dir": str(run_dir),
            "finished_at": now(),
            "versions": versions(),
        },
    )


def objective(results: dict, key: str | None) -> float | None:
    """The number a sweeper optimises: any key of results.json's metrics or top level (default: best monitor)."""
    key = key or f"{results['monitor']['metric']}_best"
    value = results.get("metrics", {}).get(key, results.get(key))
    return float(value) if isinstance(value, (int, float)) else None
