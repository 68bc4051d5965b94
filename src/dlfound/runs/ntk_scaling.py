"""Lee et al. (2019), Figure 1: how far wide networks move from their tangent kernel, against the width, read from
the run folders of a width sweep (`dlfound train -m experiment=ntk_width_sweep`, or any sweep over `model.width`
with callbacks=ntk). Each run's results.json holds the three quantities the NTK monitor measured at test time, for
the trained network:

    test/ntk_kernel_change            ||K_T - K_0||_F / ||K_0||_F on the probe batch
    test/ntk_linearization_distance   RMS |f(x; theta_T) - f_lin(x; theta_T)| on the probe batch
    test/ntk_weight_change            ||theta_T - theta_0|| / ||theta_0||

The runs of each width are averaged (several seeds: the geometric mean, the average of the logarithms that the fit
uses) and each quantity is fitted on log-log axes (dlfound.runs.records.log_log_fit); Lee et al. bound the slopes
by -0.5.
"""

import math
from pathlib import Path

from dlfound.runs.console import err_console
from dlfound.runs.records import log_log_fit, natural_key, read_results_file

QUANTITIES = {
    "test/ntk_kernel_change": "kernel change ||K_T - K_0|| / ||K_0||",
    "test/ntk_linearization_distance": "linearisation distance RMS |f - f_lin|",
    "test/ntk_weight_change": "weight change ||theta_T - theta_0|| / ||theta_0||",
}


def collect(sweep: Path) -> list[dict]:
    """One row per width: the geometric means of the quantities (and test/mse) over that width's finished runs."""
    by_width: dict[int, list[dict]] = {}
    for results_file in sorted(sweep.rglob("results.json"), key=natural_key):
        run = read_results_file(results_file)
        if run is None or run.results.get("status") != "done":
            err_console.print(f"[yellow]skipping {results_file.parent}: not a finished run[/]", highlight=False)
            continue
        width = run.value("model.width")
        metrics = run.results.get("metrics") or {}
        if not width or not all(key in metrics for key in QUANTITIES):
            err_console.print(
                f"[yellow]skipping {run.folder}: no model.width or no test/ntk_* metrics (was it run "
                "with callbacks=ntk?)[/]",
                highlight=False,
            )
            continue
        by_width.setdefault(int(width), []).append(metrics)
    rows = []
    for width, runs in sorted(by_width.items()):
        row = {"width": width, "runs": len(runs)}
        for key in [*QUANTITIES, "test/mse"]:
            values = [m[key] for m in runs if m.get(key) is not None]
            row[key] = math.exp(sum(math.log(v) for v in values) / len(values)) if values else None
        rows.append(row)
    return rows


def fit_slopes(rows: list[dict]) -> dict[str, tuple[float, float]]:
    """Each quantity's (slope, log factor) of the least-squares line on log-log axes against the width."""
    return {key: log_log_fit([row["width"] for row in rows], [row[key] for row in rows]) for key in QUANTITIES}


def plot(rows: list[dict], fits: dict, out: Path) -> None:
    """One log-log panel per quantity: the measured points, their fit and a width^(-1/2) reference line."""
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
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
