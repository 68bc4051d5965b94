"""`dlfound figure NAME [--budget B] [--redraw] [--out FILE] [OVERRIDES...]`: a lecture's classic figure, one command.

A figure (configs/figure/NAME.yaml) names the runs behind its lines, the overrides every run shares (`base`), the
budgets it can run at (`cpu`, the default; `long` or the `paper`'s schedule, worth a GPU, where it has them) and
its panels (dlfound.commands.figure_panels). Each line is one `dlfound train -m` sweep in OUTPUTS/figure/NAME/BUDGET/LINE with resume=auto,
so a figure interrupted or asked for again reuses every finished run. The PNG and a sidecar NAME.md (what it
shows, the commands that made it, the numbers it shows) land in OUTPUTS/figure/NAME/BUDGET/. OVERRIDES are added
to every run, e.g. data=cifar10_jpeg or trainer=gpu; they change the folder (a suffix of their hash), so runs
with other settings are never mistaken for these.
"""

import argparse
import hashlib
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from dlfound.runs.console import console, err_console, fail


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


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="dlfound figure",
        description="Run a lecture's figure (its sweeps, reusing finished runs) and draw it into one PNG with a "
        "sidecar of the commands that made it. Without NAME: the list of figures.",
        epilog="example: dlfound figure vanishing;  dlfound figure degradation data=cifar10_jpeg --budget paper "
        "trainer=gpu",
    )
    parser.add_argument("name", nargs="?", help="the figure (dlfound figure lists them)")
    parser.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="added to every run, e.g. trainer=gpu")
    parser.add_argument(
        "--budget",
        default="cpu",
        help="the figure's budget: cpu (default), long or paper, where it has one (dlfound figure lists them)",
    )
    parser.add_argument("--redraw", action="store_true", help="draw from the runs already there; train nothing")
    parser.add_argument("--out", type=Path, metavar="FILE", help="also copy the PNG here")
    return parser.parse_intermixed_args(argv)  # overrides may come before and after --budget


def list_figures() -> None:
    import yaml
    from rich.table import Table

    table = Table(title="dlfound figure NAME", title_style="bold")
    for column in ("figure", "shows", "budgets"):
        table.add_column(column, overflow="fold")
    for name in figure_names():
        spec = yaml.safe_load((figures_dir() / f"{name}.yaml").read_text())
        table.add_row(name, spec["title"], ", ".join(spec.get("budgets", {"cpu": []})))
    console.print(table)


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
    """Run every line's sweep in turn (finished runs are skipped); the labels of those that failed."""
    failed = []
    for label, overrides in jobs.items():
        command = train_command(overrides, root / slug(label))
        console.print(f"[bold]figure line[/] {label}: {shlex.join(command)}", highlight=False, soft_wrap=True)
        if subprocess.run([sys.executable, "-m", "dlfound", *command[1:]]).returncode != 0:
            failed.append(label)
    return failed


def collect_lines(jobs: dict[str, list[str]], root: Path) -> list:
    """The figure's lines: one per sweep, or one per row of a sweep that varies a setting (seeds grouped)."""
    from dlfound.commands.figure_panels import Line
    from dlfound.commands.report import group_runs, natural_key, read_results_file, split_keys

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
    for panel, found in zip(spec["panels"], numbers):
        text.append(
            f"- {panel.get('title', panel['kind'])}: "
            + ("; ".join(f"{label} {value:.4g}" for label, value in found.items()) or "no data")
        )
    path.write_text("\n".join(text) + "\n")


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if not args.name:
        list_figures()
        return
    if "=" in args.name:
        fail(
            f"{args.name!r} is an override, not a figure: give the figure's name first, e.g. dlfound figure "
            f"vanishing {args.name}. The figures are: {', '.join(figure_names())}."
        )
    started = time.time()
    spec = {"name": args.name, **load_spec(args.name)}
    jobs = sweeps(spec, args.budget, args.overrides)
    root = folder_of(args.name, args.budget, args.overrides)
    failed = []
    if not args.redraw:
        check_data(args.name, jobs)
        failed = run_sweeps(jobs, root)

    from dlfound.commands.figure_panels import draw_figure

    lines = collect_lines(jobs, root)
    if not lines:
        fail(
            f"figure {args.name}: no finished run under {root} to draw"
            + (" (--redraw trains nothing: run it without --redraw first)." if args.redraw else ".")
        )
    png = root / f"{args.name}.png"
    numbers = draw_figure(spec["panels"], lines, spec["title"], png)
    write_sidecar(png.with_suffix(".md"), spec, args.budget, jobs, root, numbers, time.time() - started)
    console.print(f"wrote {png} and {png.with_suffix('.md')}", highlight=False)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(png.read_bytes())
        console.print(f"wrote {args.out}", highlight=False)
    if failed:
        err_console.print(f"[red]{len(failed)} line(s) of the figure had failed runs: {', '.join(failed)}[/]")
        fail(
            f"figure {args.name} is drawn without the failed runs of: {', '.join(failed)}. Each failure is recorded "
            f"in its run's results.json under {root}; `dlfound report {root}` shows them.",
            code=1,
        )
