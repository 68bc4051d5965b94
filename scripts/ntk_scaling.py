"""Lee et al. (2019), Figure 1: how far wide networks move from their tangent kernel, against the width.

Reads the runs of a width sweep (`dlfound train -m experiment=ntk_width_sweep`, or any sweep over `model.width`
with callbacks=ntk), takes from each run's results.json the width and the two quantities the NTK monitor measured
at test time, for the trained network:

    test/ntk_kernel_change            ||K_T - K_0||_F / ||K_0||_F on the probe batch
    test/ntk_linearization_distance   RMS |f(x; theta_T) - f_lin(x; theta_T)| on the probe batch
    test/ntk_weight_change            ||theta_T - theta_0|| / ||theta_0||

averages the runs of each width (several seeds: the geometric mean, the average of the logarithms that the fit
uses), fits each quantity by least squares on log-log axes, log y = slope * log width + c, prints a table with the
slopes (Lee et al.'s bound: -0.5) and writes a log-log plot with a width^(-1/2) reference line.

    python scripts/ntk_scaling.py outputs/train/multiruns/DATE [--out ntk_scaling.png]
"""

import argparse
import math
import sys
from pathlib import Path

from dlfound.runs.results import read_results

QUANTITIES = {
    "test/ntk_kernel_change": "kernel change ||K_T - K_0|| / ||K_0||",
    "test/ntk_linearization_distance": "linearisation distance RMS |f - f_lin|",
    "test/ntk_weight_change": "weight change ||theta_T - theta_0|| / ||theta_0||",
}


def width_of(run: Path, results: dict) -> int | None:
    """model.width from the run's overrides, else from its composed config."""
    for override in results.get("overrides") or []:
        key, _, value = override.lstrip("+").partition("=")
        if key == "model.width":
            return int(value)
    for name in (".hydra/config.yaml", "config.yaml"):
        if (run / name).is_file():
            from omegaconf import OmegaConf

            width = OmegaConf.select(OmegaConf.load(run / name), "model.width")
            if width is not None:
                return int(width)
    return None


def collect(sweep: Path) -> list[dict]:
    """One row per width: the geometric means of the quantities over that width's finished runs."""
    by_width: dict[int, list[dict]] = {}
    for results_file in sorted(sweep.rglob("results.json")):
        run = results_file.parent
        results = read_results(run)
        if not results or results.get("status") != "done":
            print(f"skipping {run}: not a finished run", file=sys.stderr)
            continue
        width = width_of(run, results)
        metrics = results.get("metrics", {})
        if width is None or not all(key in metrics for key in QUANTITIES):
            print(
                f"skipping {run}: no model.width or no test/ntk_* metrics (was it run with callbacks=ntk?)",
                file=sys.stderr,
            )
            continue
        by_width.setdefault(width, []).append(metrics)
    rows = []
    for width, runs in sorted(by_width.items()):
        row = {"width": width, "runs": len(runs)}
        for key in [*QUANTITIES, "test/mse"]:
            values = [m[key] for m in runs if m.get(key) is not None]
            row[key] = math.exp(sum(math.log(v) for v in values) / len(values)) if values else None
        rows.append(row)
    return rows


def fit_slope(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares slope and intercept of log y against log x."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    slope = sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)
    return slope, my - slope * mx


def plot(rows: list[dict], fits: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widths = [row["width"] for row in rows]
    fig, axes = plt.subplots(1, len(QUANTITIES), figsize=(5 * len(QUANTITIES), 4))
    for ax, (key, label) in zip(axes, QUANTITIES.items()):
        ys = [row[key] for row in rows]
        slope, intercept = fits[key]
        ax.plot(widths, ys, "o", label="measured")
        ax.plot(widths, [math.exp(intercept) * w**slope for w in widths], "-", label=f"fit: slope {slope:.3f}")
        # The reference through the geometric mean of the points, so it sits among them.
        anchor_w = math.exp(sum(math.log(w) for w in widths) / len(widths))
        anchor_y = math.exp(sum(math.log(y) for y in ys) / len(ys))
        ax.plot(widths, [anchor_y * (w / anchor_w) ** -0.5 for w in widths], "k--", lw=1, label="width^(-1/2)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width n")
        ax.set_title(label, fontsize="medium")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="the sweep folder (its runs' results.json are read)")
    parser.add_argument("--out", type=Path, default=None, help="the PNG (default: SWEEP/ntk_scaling.png)")
    args = parser.parse_args()
    rows = collect(args.sweep)
    if len({row["width"] for row in rows}) < 2:
        sys.exit(
            f"error: {args.sweep} holds finished NTK runs at fewer than two widths; run "
            f"`dlfound train -m experiment=ntk_width_sweep` and pass its multirun folder"
        )
    fits = {key: fit_slope([row["width"] for row in rows], [row[key] for row in rows]) for key in QUANTITIES}
    print(
        f"{'width':>6} {'runs':>4} {'kernel change':>14} {'lin. distance':>14} {'weight change':>14} {'test mse':>10}"
    )
    for row in rows:
        mse = f"{row['test/mse']:.2e}" if row["test/mse"] is not None else "-"
        print(
            f"{row['width']:>6} {row['runs']:>4} {row['test/ntk_kernel_change']:>14.3e} "
            f"{row['test/ntk_linearization_distance']:>14.3e} {row['test/ntk_weight_change']:>14.3e} {mse:>10}"
        )
    for key, label in QUANTITIES.items():
        print(f"slope of {label}: {fits[key][0]:+.3f}  (Lee et al. 2019 bound it by width^-0.5)")
    out = args.out or args.sweep / "ntk_scaling.png"
    plot(rows, fits, out)
    print(f"plot: {out}")


if __name__ == "__main__":
    main()
