"""Run folders as data: what `dlfound report`, `figure`, `eval`, `compare`, `ensemble` and `ntk-scaling` read.

A run is its folder's results.json (the documented contract), its `.hydra/config.yaml` and `csv/metrics.csv`:
`load_runs` finds them under run or sweep folders, `split_keys` and `group_runs` set runs that differ only in seed
into one `Row` (mean ± std over the seeds), `read_curves` reads the learning curves, `log_log_fit` fits a power
law, and `best_checkpoint` finds the checkpoint a run was tested on. Nothing here imports torch, so reports work
on runs from any dlfound version.
"""

import csv
import json
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from dlfound.runs.console import err_console, fail
from dlfound.runs.results import read_results

# Overrides that say where or how a run was launched, not what it trained: never a column, never in the command.
LAUNCH_KEYS = ("hydra.", "hydra/", "resume")
# Words in a metric's name that mean lower is better, for metrics unrelated to the monitored one.
LOWER_IS_BETTER = ("loss", "err", "nll", "bpd", "nelbo", "fid", "kid", "mmd", "lpips", "time", "kl")


@dataclass
class Run:
    folder: Path
    results: dict
    overrides: dict[str, str]  # key -> the override exactly as typed ("optim.lr=0.01"), launch keys dropped
    _config: dict | None = field(default=None, repr=False)

    def value(self, key: str) -> str:
        """The run's value for a key: the typed override, else what the run actually used (its config)."""
        if key == "seed" and self.results.get("seed") is not None:
            return str(self.results["seed"])
        if key in self.overrides:
            return self.overrides[key].split("=", 1)[1]
        # Not overridden here but elsewhere: the run used a default, which its choices or config record.
        choices = self.results.get("choices") or {}
        if choices.get(key) is not None:
            return str(choices[key])
        node = self.config()
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return ""
            node = node[part]
        return "" if isinstance(node, (dict, list)) else str(node)

    def config(self) -> dict:
        if self._config is None:
            import yaml

            path = self.folder / ".hydra" / "config.yaml"
            try:
                self._config = yaml.safe_load(path.read_text()) or {}
            except (OSError, yaml.YAMLError):
                self._config = {}
        return self._config

    def metric(self, name: str) -> float | None:
        """A metric from results.json's `metrics`, or any numeric top-level key (wall_time_s, epochs, ...)."""
        value = (self.results.get("metrics") or {}).get(name, self.results.get(name))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None  # a NaN from a diverged run must not win or lose a sort; it shows as missing
        return float(value)


@dataclass
class Row:
    """One table row: a single run, or runs that differ only in seed."""

    runs: list[Run]
    label: dict[str, str]  # differing key -> value, shared by all runs in the row

    def stats(self, name: str) -> tuple[float | None, float | None, int]:
        values = [v for v in (run.metric(name) for run in self.runs) if v is not None]
        if not values:
            return None, None, 0
        std = statistics.stdev(values) if len(values) > 1 else None
        return statistics.fmean(values), std, len(values)

    @property
    def status(self) -> str:
        return self.runs[0].results.get("status", "?")


def natural_key(text: str | Path) -> list:
    """Sweep jobs are folders 0, 1, ..., 10 (and seeds 1, ..., 10): sort them as numbers, not as strings."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(text))]


def load_runs(paths: list[Path]) -> list[Run]:
    files: dict[Path, None] = {}  # ordered and deduplicated: overlapping PATHs must not count a run twice
    for path in paths:
        if not path.exists():
            fail(f"{path} does not exist. Give run or sweep folders, e.g. outputs/train/multiruns/<time>.")
        if path.is_file() and path.name != "results.json":
            fail(f"{path} is a file, not a run or sweep folder. Give the folder that holds results.json.")
        found = [path] if path.is_file() else sorted(path.rglob("results.json"), key=natural_key)
        for file in found:
            files[file.resolve()] = None
    if not files:
        fail(
            f"No results.json under {', '.join(map(str, paths))}. A run writes results.json into its folder "
            "when it finishes (a sweep: one per job folder); give the folder of a finished run or sweep, "
            "e.g. outputs/train/multiruns/<time>."
        )
    runs = [run for run in map(read_results_file, files) if run is not None]
    if not runs:
        fail(f"None of the results.json files under {', '.join(map(str, paths))} could be read.")
    warn_unfinished(paths, {run.folder for run in runs})
    return runs


def read_results_file(file: Path) -> Run | None:
    """The run whose results.json this is; None (said on stderr) when it is not readable."""
    try:
        results = json.loads(file.read_text())
    except (OSError, ValueError) as err:
        err_console.print(f"[yellow]skipped {file}: not readable as JSON ({err})[/]")
        return None
    return Run(file.parent, results, typed_overrides(file.parent, results))


def typed_overrides(folder: Path, results: dict) -> dict[str, str]:
    """The overrides as typed, keyed by their config key; results.json has them, older runs only .hydra/."""
    overrides = results.get("overrides")
    if overrides is None:
        import yaml

        saved = folder / ".hydra" / "overrides.yaml"
        overrides = yaml.safe_load(saved.read_text()) if saved.is_file() else []
    typed = {}
    for override in overrides or []:
        key = override.split("=", 1)[0].lstrip("+~")  # `+key=v` and `++key=v` set the same key as `key=v`
        if "=" in override and not key.startswith(LAUNCH_KEYS):
            typed[key] = override
    return typed


def warn_unfinished(paths: list[Path], finished: set[Path]) -> None:
    """Run folders without results.json are still running or were killed: say so instead of hiding them."""
    unfinished = {p.parent.resolve() for path in paths if path.is_dir() for p in path.rglob(".hydra")}
    unfinished -= {f.resolve() for f in finished}
    if unfinished:
        names = ", ".join(sorted(str(p) for p in unfinished)[:5]) + (" ..." if len(unfinished) > 5 else "")
        err_console.print(
            f"[yellow]{len(unfinished)} run folder(s) have no results.json yet (still running, or "
            f"stopped before the end): {names}[/]"
        )


def best_checkpoint(run: Run | Path | str) -> Path | None:
    """The checkpoint the run was tested on (results.json's monitor.best_checkpoint), looked for in the run
    folder's checkpoints/ first, since the folder may have moved since; None when results.json names none or the
    file is gone. `run` is a run folder or a `Run`."""
    folder, results = (run.folder, run.results) if isinstance(run, Run) else (Path(run), read_results(Path(run)))
    named = ((results or {}).get("monitor") or {}).get("best_checkpoint")
    if not named:
        return None
    for candidate in (folder / "checkpoints" / Path(named).name, Path(named)):
        if candidate.is_file():
            return candidate
    return None


def canonical(value: str) -> str:
    """`0.010`, `1e-2` and `0.01` are the same learning rate; `'adam'` and `adam` the same optimizer."""
    try:
        return repr(float(value))
    except ValueError:
        return value.strip("'\"")


def split_keys(runs: list[Run]) -> tuple[list[str], list[str]]:
    """(keys whose value differs between runs, keys identical in all runs), in the order they were typed."""
    keys = list(dict.fromkeys(k for run in runs for k in run.overrides))
    if "seed" not in keys:
        keys.append("seed")  # the seed always matters, typed or not
    differing, constant = [], []
    for key in keys:
        values = {canonical(run.value(key)) for run in runs}
        (differing if len(values) > 1 else constant).append(key)
    return differing, constant


def group_runs(runs: list[Run], differing: list[str]) -> list[Row]:
    """Runs with the same differing values except seed form one row; a failed seed is never averaged in."""
    keys = [k for k in differing if k != "seed"]
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault((tuple(canonical(run.value(k)) for k in keys), run.results.get("status")), []).append(run)
    rows = []
    for members in groups.values():
        label = {k: members[0].value(k) for k in keys}
        if "seed" in differing:
            label["seed"] = ",".join(sorted({run.value("seed") for run in members}, key=natural_key))
        rows.append(Row(members, label))
    return rows


def available_metrics(runs: list[Run]) -> list[str]:
    names = dict.fromkeys(k for run in runs for k in (run.results.get("metrics") or {}))
    names.update(
        dict.fromkeys(
            k
            for run in runs
            for k, v in run.results.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "seed"
        )
    )
    return list(names)


def check_metric(name: str, runs: list[Run]) -> str:
    if not any(run.metric(name) is not None for run in runs):
        fail(f"No run has the metric {name!r}. Metrics these runs recorded: {', '.join(available_metrics(runs))}.")
    return name


def default_metric(runs: list[Run]) -> str:
    """The monitored metric's test counterpart (val/acc -> test/acc), else the best validation value."""
    monitor = (runs[0].results.get("monitor") or {}).get("metric")
    candidates = []
    if monitor:
        candidates += ["test/" + monitor.split("/", 1)[-1], f"{monitor}_best"]
    candidates += available_metrics(runs)
    for name in candidates:
        if any(run.metric(name) is not None for run in runs):
            return name
    fail("None of these runs recorded a metric: they all failed before the end. Their errors are in results.json.")


def higher_is_better(name: str, runs: list[Run]) -> bool:
    """Follow monitor.mode for the monitored quantity (val/acc, test/acc, val/acc_best); guess from the name else."""
    monitor = runs[0].results.get("monitor") or {}
    base = name.rsplit("/", 1)[-1].removesuffix("_best")
    if monitor.get("metric") and monitor.get("mode") and base == monitor["metric"].rsplit("/", 1)[-1]:
        return monitor["mode"] == "max"
    return not any(word in name.lower() for word in LOWER_IS_BETTER)


def sort_rows(rows: list[Row], name: str, descending: bool) -> list[Row]:
    def key(row: Row):
        mean = row.stats(name)[0]
        return (mean is None, 0.0 if mean is None else (-mean if descending else mean))  # missing values last

    return sorted(rows, key=key)


def read_curves(folder: Path, x: str = "epoch") -> dict[str, dict[int, float]]:
    """metrics.csv as {column: {x: value}}, x the epoch or the step; Lightning fills only some columns per row, and
    a resumed run may log an epoch twice, so the last value of each x wins."""
    path = folder / "csv" / "metrics.csv"
    curves: dict[str, dict[int, float]] = {}
    if not path.is_file():
        return curves
    with path.open(newline="") as file:
        for record in csv.DictReader(file):
            try:
                at = int(float(record.get(x) or ""))
            except ValueError:
                continue
            for column, text in record.items():
                if column not in ("epoch", "step") and text not in (None, ""):
                    curves.setdefault(column, {})[at] = float(text)
    return curves


def log_log_fit(xs, ys) -> tuple[float, float]:
    """The least-squares line log y = p log x + c: (p, c), the exponent and log factor of y ~ e^c x^p."""
    import numpy as np

    slope, intercept = np.polyfit(np.log(xs), np.log(ys), 1)
    return float(slope), float(intercept)
