"""A lecture's figure from its config (configs/figure/NAME.yaml): the sweeps behind its lines, where they land, the
lines read back from their run folders, and the sidecar that says how the PNG was made. `dlfound figure` runs
these; dlfound.runs.figure_panels draws the panels.

A figure names the runs behind its lines, the overrides every run shares (`base`), the budgets it can run at
(`cpu`, the default; `long` or the `paper`'s schedule) and its panels. Each line is one `dlfound train -m` sweep in
OUTPUTS/figure/NAME/BUDGET/LINE with resume=auto, so a figure interrupted or asked for again reuses every finished
run. Overrides the user adds change the folder (a suffix of their hash), so runs with other settings are never
mistaken for these.
"""

import hashlib
import os
import re
import shlex
import time
from pathlib import Path

from dlfound.runs.console import console, err_console, fail
from dlfound.runs.records import group_runs, natural_key, read_results_file, split_keys


def figures_dir() -> Path:
    from dlfound.runs.paths import config_dir

    return config_dir() / "figure"


def figure_names() -> list[str]:
    return sorted(p.stem for p in figures_dir().glob("*.yaml"))


def load_spec(name: str) -> dict:
    import yaml

    path = figures_dir() / f"{name}.yaml"
    if not path.is_file():
        fail(
            f"unknown figure {name!r}. The figures are: {', '.join(figure_names())}. `dlfound figure` lists them "
            "with what each shows."
        )
    return yaml.safe_load(path.read_text())


def slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", label).strip("_")


def folder_of(name: str, budget: str, extra: list[str]) -> Path:
    outputs = Path(os.environ.get("DLFOUND_OUTPUTS", "outputs"))
    suffix = "-" + hashlib.sha1(" ".join(extra).encode()).hexdigest()[:8] if extra else ""
    return outputs / "figure" / name / f"{budget}{suffix}"


def sweeps(spec: dict, budget: str, extra: list[str]) -> dict[str, list[str]]:
    """Each line's label and the overrides of its `dlfound train -m`: base, budget, the line's own, the user's."""
    budgets = spec.get("budgets") or {"cpu": []}
    if budget not in budgets:
        fail(f"figure {spec['name']} has no budget {budget!r}; it has {', '.join(budgets)}.")
    shared = [*(spec.get("base") or []), *(budgets[budget] or [])]
    return {label: [*shared, *own, *extra] for label, own in spec["runs"].items()}


def first_job(overrides: list[str]) -> list[str]:
    """The first job of a sweep: `key=a,b,c` becomes `key=a` (lists in brackets are values, not sweeps)."""
    return [
        o.split("=", 1)[0] + "=" + o.split("=", 1)[1].split(",")[0] if "=" in o and "," in o and "[" not in o else o
        for o in overrides
    ]


def check_data(name: str, jobs: dict[str, list[str]]) -> None:
    """Every data set the runs read is there (or can be downloaded): one paragraph naming it, before any run."""
    import json

    from omegaconf import OmegaConf

    from dlfound.errors import DlfoundError
    from dlfound.runs.build import compose, instantiate_section

    seen = set()
    for label, overrides in jobs.items():
        try:
            cfg = OmegaConf.to_container(compose(first_job(overrides)), resolve=True)
        except Exception as err:  # Hydra's composition errors: an unknown key or option among the overrides
            fail(
                f"figure {name}, line {label!r}: its runs' config does not compose ({type(err).__name__}: "
                f"{str(err).strip()}). Check the overrides given after the figure's name."
            )
        # Where the files come from, not how they are augmented: each set is looked for once.
        key = json.dumps({k: cfg["data"].get(k) for k in ("_target_", "name", "root", "data_dir", "path")}, default=str)
        if key in seen:
            continue
        seen.add(key)
        try:
            instantiate_section(cfg, "data").prepare_data()
        except DlfoundError as err:
            fail(f"figure {name} cannot run: its data set is not available. {err}")


def train_command(overrides: list[str], sweep_dir: Path) -> list[str]:
    return ["dlfound", "train", "-m", *overrides, f"hydra.sweep.dir={sweep_dir}", "resume=auto", "print_config=false"]


def run_sweeps(jobs: dict[str, list[str]], root: Path) -> list[str]:
    """Run every line's sweep in turn, in this process (finished runs are skipped); the labels of those that
    failed. A line stopped by Ctrl-C or SIGTERM stops the figure."""
    from dlfound.errors import DlfoundError
    from dlfound.runs.in_process import launch_train

    failed = []
    for label, overrides in jobs.items():
        command = train_command(overrides, root / slug(label))
        console.print(f"[bold]figure line[/] {label}: {shlex.join(command)}", highlight=False, soft_wrap=True)
        try:
            launch_train(command[3:], multirun=True)
        except DlfoundError as err:
            if err.exit_code > 128:  # stopped by a signal: what the user asked for, not a failed line
                fail(str(err), err.exit_code, title="dlfound: interrupted")
            err_console.print(f"[red]figure line {label}:[/] {err}", highlight=False)
            failed.append(label)
    return failed


def collect_lines(jobs: dict[str, list[str]], root: Path) -> list:
    """The figure's lines: one per sweep, or one per row of a sweep that varies a setting (seeds grouped)."""
    from dlfound.runs.figure_panels import Line  # the panels import torch (diagnostics): only when drawing

    lines = []
    for label in jobs:
        files = sorted((root / slug(label)).rglob("results.json"), key=natural_key)
        runs = [run for run in (read_results_file(f) for f in files) if run and run.results.get("status") == "done"]
        if not runs:
            continue
        differing, _ = split_keys(runs)
        for row in group_runs(runs, differing):
            values = [v for k, v in row.label.items() if k != "seed"]
            lines.append(Line(", ".join([label, *values]), label, row.runs))
    return lines


def write_sidecar(
    path: Path,
    spec: dict,
    budget: str,
    jobs: dict[str, list[str]],
    root: Path,
    numbers: list[dict[str, float]],
    seconds: float,
) -> None:
    text = [
        f"# {spec['name']}: {spec['title']}",
        "",
        spec.get("shows", "").strip(),
        "",
        f"Source: {spec.get('paper', '-')}. Budget: `{budget}`. Drawn {time.strftime('%Y-%m-%d %H:%M')}; "
        f"this call took {seconds:.0f} s.",
        "",
        "Commands (finished runs are reused: resume=auto):",
        "",
        "```",
    ]
    text += [shlex.join(train_command(overrides, root / slug(label))) for label, overrides in jobs.items()]
    text += [
        "```",
        "",
        "What each panel shows per line (a curve's last value; a layer statistic's first-to-last "
        "layer ratio; the final 15th-85th percentile spread; a sweep's log-log slope; an image's metric):",
        "",
    ]
    for panel, found in zip(spec["panels"], numbers, strict=False):
        text.append(
            f"- {panel.get('title', panel['kind'])}: "
            + ("; ".join(f"{label} {value:.4g}" for label, value in found.items()) or "no data")
        )
    path.write_text("\n".join(text) + "\n")
