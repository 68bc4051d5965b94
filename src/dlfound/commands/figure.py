"""`dlfound figure NAME [--budget B] [--redraw] [--out FILE] [OVERRIDES...]`: a lecture's classic figure, one command.

A figure (configs/figure/NAME.yaml) names the runs behind its lines, the overrides every run shares (`base`), the
budgets it can run at (`cpu`, the default; `long` or the `paper`'s schedule, worth a GPU, where it has them) and
its panels (dlfound.runs.figure_panels). Each line is one `dlfound train -m` sweep in
OUTPUTS/figure/NAME/BUDGET/LINE with resume=auto (dlfound.runs.figures), so a figure interrupted or asked for again
reuses every finished run. The PNG and a sidecar NAME.md (what it
shows, the commands that made it, the numbers it shows) land in OUTPUTS/figure/NAME/BUDGET/. OVERRIDES are added
to every run, e.g. data=cifar10_jpeg or trainer=gpu; they change the folder (a suffix of their hash), so runs
with other settings are never mistaken for these.
"""

import argparse
import time
from pathlib import Path

from dlfound.runs.console import console, err_console, fail
from dlfound.runs.figures import (
    check_data,
    collect_lines,
    figure_names,
    figures_dir,
    folder_of,
    load_spec,
    run_sweeps,
    sweeps,
    write_sidecar,
)


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

    from dlfound.files import fresh_output_path
    from dlfound.runs.figure_panels import draw_figure

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
        out, renamed = fresh_output_path(args.out)
        if renamed:
            console.print(renamed, highlight=False, markup=False)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(png.read_bytes())
        console.print(f"wrote {out}", highlight=False)
    if failed:
        err_console.print(f"[red]{len(failed)} line(s) of the figure had failed runs: {', '.join(failed)}[/]")
        fail(
            f"figure {args.name} is drawn without the failed runs of: {', '.join(failed)}. Each failure is recorded "
            f"in its run's results.json under {root}; `dlfound report {root}` shows them.",
            code=1,
        )
