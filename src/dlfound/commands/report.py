"""`dlfound report PATH...`: compare runs and sweeps from their results.json files.

One row per run, or per group of runs that differ only in `seed` (mean ± std over the seeds, with n). The
columns are the overrides that differ between runs, the chosen metrics, status, wall time and parameters;
the overrides shared by all runs are printed once above the table. The same table goes to CSV and Markdown on
request, `--plot` draws learning curves and metric-against-hyperparameter, and the best run is printed as a
`dlfound train ...` command the user can paste.

The runs are read by dlfound.runs.records (results.json, `.hydra/config.yaml` and `csv/metrics.csv` only), so the
report works on runs from any dlfound version and never imports torch.
"""

import argparse
import csv
import math
import os
import re
import shlex
from pathlib import Path

from rich.table import Table

from dlfound.runs.console import console, err_console, fail
from dlfound.runs.records import (
    Row,
    Run,
    check_metric,
    default_metric,
    group_runs,
    higher_is_better,
    load_runs,
    log_log_fit,
    read_curves,
    sort_rows,
    split_keys,
)

# More default metric columns than this make the table unreadable; --columns picks others.
MAX_DEFAULT_METRICS = 5
MAX_LEGEND = 12


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="dlfound report",
        description="Compare runs and sweeps: one row per run (seeds grouped as mean ± std), sorted by a metric; "
        "prints the best run as a command to paste.",
        epilog="example: dlfound report outputs/train/multiruns/2026-11-21_10-00-00 --csv sweep.csv --plot plots/",
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        type=Path,
        help="run or sweep folders; every results.json under them is read",
    )
    parser.add_argument(
        "--metric",
        help="the metric that decides the best run (default: the monitored metric's test counterpart, e.g. test/acc)",
    )
    parser.add_argument("--sort", metavar="METRIC", help="sort the table by this metric (default: --metric)")
    direction = parser.add_mutually_exclusive_group()
    direction.add_argument(
        "--min", dest="direction", action="store_const", const="min", help="lower is better for the sort metric"
    )
    direction.add_argument(
        "--max", dest="direction", action="store_const", const="max", help="higher is better for the sort metric"
    )
    parser.add_argument(
        "--columns",
        metavar="M1,M2",
        help="metrics to show, comma-separated (any key of results.json's metrics, or wall_time_s, epochs, ...)",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="also show the runs that never started (stopped by an error before training, e.g. a missing data set)",
    )
    parser.add_argument("--csv", metavar="FILE", type=Path, help="write the table as CSV")
    parser.add_argument("--markdown", metavar="FILE", type=Path, help="write the table as Markdown")
    parser.add_argument(
        "--plot",
        metavar="DIR",
        type=Path,
        help="write learning curves and, for one-dimensional sweeps, metric against hyperparameter (PNG)",
    )
    return parser.parse_args(argv)


def metric_columns(args: argparse.Namespace, runs: list[Run], metric: str, sort: str, every: bool = False) -> list[str]:
    """The metric columns: --columns, else the first MAX_DEFAULT_METRICS of the runs' metrics (all of them when
    `every`: a CSV file is read by programs, which want every metric)."""
    if args.columns:
        return [check_metric(m.strip(), runs) for m in args.columns.split(",") if m.strip()]
    names = list(dict.fromkeys([metric, sort, *(k for run in runs for k in (run.results.get("metrics") or {}))]))
    if every:
        return names
    if len(names) > MAX_DEFAULT_METRICS:
        console.print(f"[dim]more metrics (choose with --columns): {', '.join(names[MAX_DEFAULT_METRICS:])}[/]")
    return names[:MAX_DEFAULT_METRICS]


# ---------------------------------------------------------------- the table


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.3e}"


NUMERIC_COLUMNS = ("n", "wall time (s)", "params")


def table_cells(rows: list[Row], keys: list[str], metrics: list[str], root: Path) -> tuple[list, list[list[str]]]:
    """Header and text cells, shared by the terminal table and the Markdown file."""
    grouped = any(len(row.runs) > 1 for row in rows)
    header = [*keys, *(["n"] if grouped else []), *metrics, "status", *NUMERIC_COLUMNS[1:], "run"]
    cells = []
    for row in rows:
        line = [row.label.get(k, "") for k in keys] + ([str(len(row.runs))] if grouped else [])
        for name in metrics:
            mean, std, _ = row.stats(name)
            line.append(fmt(mean) + (f" ± {fmt(std)}" if std is not None else ""))
        wall = row.stats("wall_time_s")[0]
        params = row.runs[0].results.get("num_params")
        line += [
            row.status,
            "-" if wall is None else f"{wall:.1f}",
            f"{params:,}" if isinstance(params, int) else "-",
            run_names(row, root),
        ]
        cells.append(line)
    return header, cells


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def run_names(row: Row, root: Path) -> str:
    return ", ".join(str(run.folder.relative_to(root)) for run in row.runs)


def common_root(runs: list[Run]) -> Path:
    """Where the runs meet, so that the run column shows short names (a sweep's job numbers)."""
    root = Path(os.path.commonpath([str(run.folder) for run in runs]))
    return root.parent if len(runs) == 1 else root


def print_table(
    header: list[str], cells: list[list[str]], title: str, constant: list[str], numeric: set[str], keep: int
) -> None:
    """The table with the columns that fit the terminal, and a line naming those it left out; the first `keep`
    metrics (the best-run and sort metrics) and the status are never left out."""
    from rich.markup import escape
    from rich.measure import Measurement

    def natural_width(table: Table) -> int:  # without the folding that squeezes a table into the terminal
        return Measurement.get(console, console.options.update_width(10**6), table).maximum

    if constant:
        console.print(f"[bold]same in all runs:[/] {' '.join(constant)}", highlight=False, soft_wrap=True)
    shown = list(range(len(header)))
    left_out = []
    table = build_table(header, cells, title, numeric, shown)
    full_width = natural_width(table)
    for column in columns_to_leave_out(header, numeric, keep):
        if natural_width(table) <= console.width:
            break
        shown.remove(column)
        left_out.append(header[column])
        table = build_table(header, cells, title, numeric, shown)
    console.print(table)
    if left_out:
        console.print(
            f"[dim]left out to fit {console.width} columns: {escape(', '.join(left_out))}; --csv FILE writes them "
            f"all, a terminal {full_width} wide shows them, --columns M1,M2 picks the metrics[/]",
            highlight=False,
        )


def columns_to_leave_out(header: list[str], numeric: set[str], keep: int) -> list[int]:
    """Column indexes in the order a narrow terminal drops them: parameters and wall time, the metrics after the
    first `keep` (last first), the differing settings (last first), and the run folders."""
    index = {name: i for i, name in enumerate(header)}
    metrics = [i for i, name in enumerate(header) if name in numeric and name not in NUMERIC_COLUMNS]
    keys = [i for i in range(metrics[0] if metrics else index["status"]) if header[i] != "n"]
    return [
        index["params"],
        index["wall time (s)"],
        *reversed(metrics[keep:]),
        *reversed(keys),
        index["run"],
    ]


def build_table(header: list[str], cells: list[list[str]], title: str, numeric: set[str], shown: list[int]) -> Table:
    table = Table(title=title, title_style="bold")
    for i in shown:
        right = header[i] in numeric
        table.add_column(
            header[i],
            justify="right" if right else "left",
            overflow="fold",
            style="cyan" if header[i] not in ("status", "run") and not right else None,
        )
    for line in cells:
        table.add_row(*(line[i] for i in shown), style="red" if "failed" in line else None)
    return table


def write_csv(path: Path, rows: list[Row], keys: list[str], metrics: list[str], root: Path) -> None:
    """Numbers as numbers (mean and std in separate columns) so that a spreadsheet or pandas can use them."""
    grouped = any(len(row.runs) > 1 for row in rows)
    header = [*keys, *(["n"] if grouped else [])]
    for name in metrics:
        header += [name, f"{name} std"] if grouped else [name]
    header += ["status", "wall_time_s", "num_params", "run"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for row in rows:
            line = [row.label.get(k, "") for k in keys] + ([len(row.runs)] if grouped else [])
            for name in metrics:
                mean, std, _ = row.stats(name)
                line += [mean, std] if grouped else [mean]
            line += [
                row.status,
                row.stats("wall_time_s")[0],
                row.runs[0].results.get("num_params"),
                run_names(row, root),
            ]
            writer.writerow(["" if v is None else v for v in line])


def write_markdown(
    path: Path,
    header: list[str],
    cells: list[list[str]],
    title: str,
    constant: list[str],
    numeric: set[str],
    command: str | None,
) -> None:
    def line(values):
        return "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"

    text = [f"**{title}**", ""]
    if constant:
        text += ["Same in all runs: " + " ".join(f"`{c}`" for c in constant), ""]
    text += [line(header), line("---:" if h in numeric else "---" for h in header)]
    text += [line(c) for c in cells]
    if command:
        text += ["", f"Best: `{command}`"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text) + "\n")


def best_command(row: Row) -> str:
    """The best row's overrides as a pasteable command; a seed group's without the seed (any seed will do)."""
    overrides = [o for k, o in row.runs[0].overrides.items() if not (k == "seed" and len(row.runs) > 1)]
    return " ".join(["dlfound", "train", *(shlex.quote(o) for o in overrides)])


# ---------------------------------------------------------------- plots


def curve_columns(curves: list[dict], monitor: str | None) -> tuple[str | None, str | None]:
    """The validation metric (the monitored one) and the per-epoch training loss among the CSV's columns."""
    columns = list(dict.fromkeys(c for curve in curves for c in curve))
    val = monitor if monitor in columns else next((c for c in columns if c.startswith("val/")), None)
    train = next((c for c in ("train/loss_epoch", "train/loss") if c in columns), None)
    train = train or next(
        (c for c in columns if c.startswith("train/") and "loss" in c and not c.endswith("_step")), None
    )
    return val, train


def row_label(row: Row) -> str:
    parts = [f"{k}={v}" for k, v in row.label.items() if not (k == "seed" and len(row.runs) > 1)]
    label = ", ".join(parts) or row.runs[0].folder.name
    return label + (f" (n={len(row.runs)})" if len(row.runs) > 1 else "")


def plot_learning_curves(rows: list[Row], out: Path, monitor: str | None) -> Path | None:
    import matplotlib.pyplot as plt

    curves = {id(run): read_curves(run.folder) for row in rows for run in row.runs}
    val, train = curve_columns(list(curves.values()), monitor)
    panels = [c for c in (val, train) if c]
    if not panels:
        err_console.print("[yellow]no learning curves: the runs have no csv/metrics.csv (logger=none?)[/]")
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, row in enumerate(rows):
        color = colors[i % len(colors)]
        for j, run in enumerate(row.runs):  # every seed drawn in its group's colour: the spread stays visible
            for ax, column in zip(axes[0], panels, strict=False):
                points = sorted(curves[id(run)].get(column, {}).items())
                if points:
                    ax.plot(
                        *zip(*points, strict=True),
                        color=color,
                        marker=".",
                        alpha=0.85,
                        label=row_label(row) if j == 0 else None,
                    )
    from matplotlib.ticker import MaxNLocator

    for ax, column in zip(axes[0], panels, strict=False):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_xlabel("epoch")
        ax.set_ylabel(column)
        ax.set_title(column)
        ax.grid(alpha=0.3)
    if len(rows) <= MAX_LEGEND:
        axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    path = out / "learning_curves.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def wants_log_axis(xs) -> bool:
    """Learning rates and weight decays are swept by factors, not steps: over 10x, a log axis spaces them evenly."""
    return min(xs) > 0 and max(xs) / min(xs) > 10


def plot_sweep(rows: list[Row], out: Path, metric: str) -> Path | None:
    """A one-dimensional sweep (one numeric key besides seed) as metric against that key."""
    keys = [k for k in rows[0].label if k != "seed"]
    done = [row for row in rows if row.stats(metric)[0] is not None]
    if len(keys) != 1 or len(done) < 2:
        return None
    key = keys[0]
    try:
        points = sorted((float(row.label[key]), *row.stats(metric)[:2]) for row in done)
    except ValueError:
        return None  # a categorical sweep (model=mlp,lenet5) has no axis to draw
    import matplotlib.pyplot as plt

    xs, means, stds = zip(*points, strict=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    errors = [s or 0.0 for s in stds] if any(s is not None for s in stds) else None
    ax.errorbar(xs, means, yerr=errors, marker="o", capsize=4)
    title = f"{metric} against {key}"
    if wants_log_axis(xs):
        ax.set_xscale("log")
        if wants_log_axis(means):  # a power law (error against width): log-log, and its exponent
            ax.set_yscale("log")
            slope, intercept = log_log_fit(xs, means)
            ax.plot(
                xs, [math.exp(intercept) * x**slope for x in xs], "--", color="grey", label=f"fit: slope {slope:.2f}"
            )
            ax.legend()
            title += f" (log-log slope {slope:.2f})"
    ax.set_xlabel(key)
    ax.set_ylabel(metric + (" (mean ± std over seeds)" if errors else ""))
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    path = out / f"{re.sub(r'[^A-Za-z0-9.]+', '_', metric)}_vs_{re.sub(r'[^A-Za-z0-9.]+', '_', key)}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_plots(rows: list[Row], out: Path, metric: str, monitor: str | None) -> list[Path]:
    try:
        import matplotlib
    except ImportError:
        fail("--plot needs matplotlib, which is not installed: pip install matplotlib")
    matplotlib.use("Agg")  # files only: no display needed, and none is opened
    out.mkdir(parents=True, exist_ok=True)
    return [p for p in (plot_learning_curves(rows, out, monitor), plot_sweep(rows, out, metric)) if p]


# ---------------------------------------------------------------- the command


def print_failures(rows: list[Row]) -> None:
    """A failed run's row has no metrics; its error's last line usually says why (NaN loss, out of memory)."""
    for row in rows:
        for run in row.runs:
            if run.results.get("status") == "failed":
                error = str(run.results.get("error") or "no error recorded").strip().splitlines() or [""]
                console.print(f"[red]failed:[/] {run.folder}: {error[-1][:300]}", highlight=False)


def print_best(rows: list[Row], metric: str, higher: bool) -> str | None:
    """Print the best finished row's command, alone on its line so that it pastes cleanly; return it."""
    finished = [r for r in sort_rows(rows, metric, higher) if r.status == "done" and r.stats(metric)[0] is not None]
    if not finished:
        console.print(f"[yellow]no finished run recorded {metric}: no best run to show[/]")
        return None
    mean, std, n = finished[0].stats(metric)
    score = fmt(mean) + (f" ± {fmt(std)}, n={n}" if std is not None else "")
    console.print(f"[bold]best[/] by {metric} ({score}):", highlight=False)
    command = best_command(finished[0])
    console.print(command, markup=False, highlight=False, soft_wrap=True)
    return command


def shown_runs(runs: list[Run], everything: bool) -> list[Run]:
    """The runs to report: without --all, not those that never started (a line says how many and how to show them)."""
    never = [run for run in runs if run.results.get("status") == "not_started"]
    if everything or not never:
        return runs
    note = (
        f"{plural(len(never), 'run')} that never started (an error before training, e.g. a missing data set) "
        f"{'is' if len(never) == 1 else 'are'} not shown; --all shows {'it' if len(never) == 1 else 'them'}"
    )
    if len(never) == len(runs):
        fail(f"{note}; no other run was found to report.")
    err_console.print(f"[yellow]{note}[/]", highlight=False)
    return [run for run in runs if run not in never]


def fresh_output(path: Path) -> Path:
    from dlfound.files import fresh_output_path

    out, renamed = fresh_output_path(path)
    if renamed:
        console.print(renamed, highlight=False, markup=False)
    return out


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    runs = shown_runs(load_runs(args.paths), args.all)
    metric = check_metric(args.metric, runs) if args.metric else default_metric(runs)
    sort = check_metric(args.sort, runs) if args.sort else metric
    descending = args.direction == "max" if args.direction else higher_is_better(sort, runs)
    metrics = metric_columns(args, runs, metric, sort)

    differing, constant = split_keys(runs)
    rows = sort_rows(group_runs(runs, differing), sort, descending)
    root = common_root(runs)
    shown_constant = [
        next((run.overrides[k] for run in runs if k in run.overrides), f"{k}={runs[0].value(k)}") for k in constant
    ]
    summary = f"{plural(len(runs), 'run')} under {root}" + (
        f", seeds grouped into {plural(len(rows), 'row')}" if len(rows) < len(runs) else ""
    )
    console.print(summary, highlight=False, soft_wrap=True)
    title = f"sorted by {sort} ({'higher' if descending else 'lower'} is better)"
    header, cells = table_cells(rows, differing, metrics, root)
    numeric = {*metrics, *NUMERIC_COLUMNS}
    print_table(header, cells, title, shown_constant, numeric, keep=len({metric, sort} & set(metrics)) or 1)

    print_failures(rows)
    # The best run is judged by --metric; --min/--max speak about it only when it is also the sort key.
    metric_up = args.direction == "max" if args.direction and sort == metric else higher_is_better(metric, runs)
    command = print_best(rows, metric, metric_up)

    if args.csv:
        out = fresh_output(args.csv)
        write_csv(out, rows, differing, metric_columns(args, runs, metric, sort, every=True), root)
        console.print(f"wrote {out}", highlight=False)
    if args.markdown:
        out = fresh_output(args.markdown)
        write_markdown(out, header, cells, f"{summary}; {title}", shown_constant, numeric, command)
        console.print(f"wrote {out}", highlight=False)
    if args.plot:
        monitor = (runs[0].results.get("monitor") or {}).get("metric")
        for path in write_plots(rows, args.plot, metric, monitor):
            console.print(f"wrote {path}", highlight=False)
