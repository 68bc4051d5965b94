"""`dlfound ntk-scaling SWEEP [--out FILE]`: Lee et al. (2019), Figure 1, from a width sweep's runs.

Reads the runs of `dlfound train -m experiment=ntk_width_sweep` (or any sweep over `model.width` with
callbacks=ntk), prints per width the kernel change, the linearisation distance and the weight change the NTK monitor
measured (geometric mean over seeds), their log-log slopes against the width (Lee et al.'s bound: -0.5), and writes
a log-log plot with a width^(-1/2) reference line (dlfound.runs.ntk_scaling).
"""

import argparse
from pathlib import Path

from dlfound.runs.console import console, fail


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="dlfound ntk-scaling",
        description="How far wide networks move from their tangent kernel against the width (Lee et al. 2019, "
        "Fig. 1): a table, the log-log slopes and a plot, from a width sweep run with callbacks=ntk.",
        epilog="example: dlfound train -m experiment=ntk_width_sweep, then dlfound ntk-scaling "
        "outputs/train/multiruns/<time>",
    )
    parser.add_argument("sweep", type=Path, metavar="SWEEP", help="the sweep folder (its runs' results.json are read)")
    parser.add_argument("--out", type=Path, metavar="FILE", help="the PNG (default: SWEEP/ntk_scaling.png)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    from dlfound.files import fresh_output_path
    from dlfound.runs.ntk_scaling import QUANTITIES, collect, fit_slopes, plot

    args = parse_args(argv)
    if not args.sweep.is_dir():
        fail(
            f"{args.sweep} is not a folder. Give the folder of a width sweep, e.g. outputs/train/multiruns/<time> "
            "after `dlfound train -m experiment=ntk_width_sweep`."
        )
    rows = collect(args.sweep)
    if len(rows) < 2:
        fail(
            f"{args.sweep} holds finished NTK runs at {len(rows)} width(s); a slope needs at least two. Run "
            "`dlfound train -m experiment=ntk_width_sweep` (or a sweep over model.width with callbacks=ntk) and give "
            "its multirun folder."
        )
    fits = fit_slopes(rows)
    console.print(
        f"{'width':>6} {'runs':>4} {'kernel change':>14} {'lin. distance':>14} {'weight change':>14} {'test mse':>10}",
        highlight=False,
        soft_wrap=True,
    )
    for row in rows:
        mse = f"{row['test/mse']:.2e}" if row["test/mse"] is not None else "-"
        console.print(
            f"{row['width']:>6} {row['runs']:>4} {row['test/ntk_kernel_change']:>14.3e} "
            f"{row['test/ntk_linearization_distance']:>14.3e} {row['test/ntk_weight_change']:>14.3e} "
            f"{mse:>10}",
            highlight=False,
            soft_wrap=True,
        )
    for key, label in QUANTITIES.items():
        console.print(
            f"slope of {label}: {fits[key][0]:+.3f}  (Lee et al. 2019 bound it by width^-0.5)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    out = args.sweep / "ntk_scaling.png"  # the sweep's own picture, redrawn on each call
    if args.out:
        out, renamed = fresh_output_path(args.out)
        if renamed:
            console.print(renamed, highlight=False, markup=False, soft_wrap=True)
    plot(rows, fits, out)
    console.print(f"plot: {out}", highlight=False, soft_wrap=True)
