"""The panels of `dlfound figure`: learning curves, statistics by layer and activation percentiles, drawn from the
run folders of a figure's sweeps (their csv/metrics.csv and diagnostics/diagnostics.json) into one PNG.

A figure is a list of panels; each panel draws every line (a sweep of the figure, or one row of it when the sweep
varies a setting) that its `select` pattern admits:
- `curve`: `metric` (a metrics.csv column, `*` wildcards allowed: lr-*) against `x` (epoch or step); `error: true`
  draws 100 (1 - accuracy) in percent; `log: true` a log y axis; `ylabel` names the axis.
- `layers`: a diagnostics statistic (grad_norm, update_ratio, weight_norm) by layer index, averaged over the
  `epoch` (first or last) of each run.
- `quantiles`: the 15th, 50th and 85th percentiles of one activation's input over training (Ioffe & Szegedy
  2015, Fig. 1), `layer` counting activation modules (-1: the last); one line (`select`) per panel.
- `sweep`: a results.json metric against the setting a sweep varies (`key`, e.g. model.width), mean and standard
  deviation over seeds (`best: true`: the smallest value over the seeds, "there exists a network"), one curve per
  sweep; `log: true` draws log-log axes with the fitted exponent; `theory: piecewise_linear` adds the sup error of
  the best piecewise-linear interpolant of the runs' 1-D data.target with key + 1 pieces (key = model.width:
  what one hidden layer of that many ReLU units can make).
- `trace`: an optimisation experiment's `metric` against the step, log y (`logx: true`: log-log), one curve per
  line, beside the theory's line: `theory: rate` draws d_0 rho^k with d_0 and rho the run's test/start_distance
  and test/theory_rate (the bound of linear convergence), `theory: inverse` a C / k line through the last point
  (sub-linear convergence; k counted from 1). A line of several seeds draws their mean curve. Reports per line
  each results metric named in `report` (e.g. test/rate, test/theory_rate; the mean over seeds), the name after
  the last slash naming it.
- `image`: the last picture a run wrote (`file`, a glob in its folder such as images/test_reliability_*.png) of
  the first line `select` admits; its `metric` from results.json is the number the panel reports.
- `power_law`: a metric against a GPT's non-embedding parameters or its training tokens, log-log, with fitted
  and published exponents (dlfound.runs.scaling_panels).
"""

import fnmatch
import math
from dataclasses import dataclass
from pathlib import Path

from dlfound.runs.diagnostics import by_layer, read_diagnostics
from dlfound.runs.records import Row, log_log_fit, read_curves
from dlfound.runs.scaling_panels import draw_power_law


@dataclass
class Line:
    """One line of the figure: its label, the figure sweep it belongs to (`group`), and its runs (several when
    seeds repeat it; dlfound.runs.records.Run: folder, results, settings)."""

    label: str
    group: str
    runs: list


def series(folder: Path, metric: str, x: str = "epoch", error: bool = False) -> list[tuple[int, float]]:
    """The points of one metric of one run (the first column matching `metric`'s wildcards)."""
    columns = read_curves(folder, x)
    name = next((c for c in sorted(columns) if fnmatch.fnmatchcase(c, metric)), None)
    points = sorted(columns.get(name, {}).items())
    return [(at, 100.0 * (1.0 - v)) for at, v in points] if error else points


def selected(lines: list[Line], pattern: str | None) -> list[tuple[int, Line]]:
    return [(i, line) for i, line in enumerate(lines) if pattern is None or fnmatch.fnmatchcase(line.label, pattern)]


def draw_curve(ax, panel: dict, lines: list[Line], colors) -> dict[str, float]:
    x, finals = panel.get("x", "epoch"), {}
    for i, line in selected(lines, panel.get("select")):
        for j, run in enumerate(line.runs):
            points = series(run.folder, panel["metric"], x, panel.get("error", False))
            if points:
                ax.plot(
                    *zip(*points, strict=True),
                    color=colors[i % len(colors)],
                    alpha=0.9,
                    lw=1.5,
                    marker="." if len(points) < 40 else None,
                    label=line.label if j == 0 else None,
                )
                finals.setdefault(line.label, points[-1][1])
    if x == "epoch":
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(x)
    ax.set_ylabel(panel.get("ylabel") or panel["metric"] + (" error (%)" if panel.get("error") else ""))
    return finals


def draw_layers(ax, panel: dict, lines: list[Line], colors) -> dict[str, float]:
    stat, which, ratios = panel.get("stat", "grad_norm"), panel.get("epoch", "first"), {}
    for i, line in selected(lines, panel.get("select")):
        for j, run in enumerate(line.runs):
            records = read_diagnostics(run.folder)
            if not records:
                continue
            epoch = records[0]["epoch"] if which == "first" else records[-1]["epoch"]
            values = by_layer(records, stat, epoch)
            ax.plot(values, "o-", ms=3, color=colors[i % len(colors)], label=line.label if j == 0 else None)
            if values[-1] > 0:
                ratios.setdefault(line.label, values[0] / values[-1])
    ax.set_xlabel("layer index (input to output)")
    ax.set_ylabel(f"{stat}, {which} epoch")
    return ratios


def draw_quantiles(ax, panel: dict, lines: list[Line], colors) -> dict[str, float]:
    spreads = {}
    for i, line in selected(lines, panel.get("select"))[:1]:
        records = [r for r in read_diagnostics(line.runs[0].folder) if r.get("activation_input_quantiles")]
        if not records:
            continue
        name = list(records[0]["activation_input_quantiles"])[panel.get("layer", -1)]
        steps = [r["step"] for r in records]
        values = [r["activation_input_quantiles"][name] for r in records]
        for q, style in zip(range(3), (":", "-", ":"), strict=True):
            ax.plot(
                steps,
                [v[q] for v in values],
                style,
                color=colors[i % len(colors)],
                label=f"{line.label}: 15th, 50th, 85th percentile" if q == 1 else None,
            )
        spreads[line.label] = values[-1][2] - values[-1][0]
        ax.set_ylabel(f"input of {name}, unit 0")
    ax.set_xlabel("step")
    return spreads


def draw_sweep(ax, panel: dict, lines: list[Line], colors) -> dict[str, float]:
    key, metric, best, numbers = panel["key"], panel["metric"], panel.get("best", False), {}
    groups = dict.fromkeys(line.group for _, line in selected(lines, panel.get("select")))
    for i, group in enumerate(groups):
        points = []
        for line in (line for line in lines if line.group == group):
            values = [v for v in (run.metric(metric) for run in line.runs) if v is not None]
            mean, std, _ = Row(line.runs, {}).stats(metric)
            if values:
                points.append((float(line.runs[0].value(key)), min(values) if best else mean, 0.0 if best else std))
        if not points:
            continue
        xs, means, stds = zip(*sorted(points), strict=True)
        ax.errorbar(
            xs,
            means,
            yerr=None if best else [s or 0.0 for s in stds],
            marker="o",
            capsize=3,
            color=colors[i % len(colors)],
            label=f"{group} (best of the seeds)" if best else f"{group} (mean ± std over seeds)",
        )
        if best:
            numbers.update({f"{group} {key}={x:g}": value for x, value in zip(xs, means, strict=True)})
        if panel.get("log") and len(xs) > 1 and min(means) > 0:
            slope, intercept = log_log_fit(xs, means)
            ax.plot(
                xs,
                [math.exp(intercept) * x**slope for x in xs],
                "--",
                color="grey",
                label=f"{group}: slope {slope:.2f}",
            )
            numbers[f"{group} slope" if best else group] = slope
    if panel.get("theory") == "piecewise_linear" and lines:
        numbers.update(
            draw_interpolant(ax, lines[0].runs[0], key, sorted({float(line.runs[0].value(key)) for line in lines}))
        )
    if panel.get("log"):
        from matplotlib.ticker import NullFormatter, ScalarFormatter

        ax.set_xscale("log")
        # The swept values themselves as ticks (2, 4, ..., 64), not powers of ten with a mantissa.
        ax.set_xticks(sorted({float(line.runs[0].value(key)) for line in lines}))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(key)
    ax.set_ylabel(panel.get("ylabel") or metric)
    return numbers


def draw_interpolant(ax, run, key: str, widths: list[float]) -> dict[str, float]:
    """The theory's line of a 1-D universal-approximation sweep: the sup error of the best piecewise-linear
    interpolant of the run's data.target over [data.low, data.high] with width + 1 pieces."""
    from dlfound.data.function import target_function
    from dlfound.ops.piecewise_linear import best_interpolant_sup_error

    target = target_function(run.value("data.target"), 1)
    low, high = float(run.value("data.low")), float(run.value("data.high"))
    errors = [best_interpolant_sup_error(lambda t: target(t[:, None]).flatten(), int(w) + 1, low, high) for w in widths]
    ax.plot(widths, errors, "k:", marker="x", label="best piecewise-linear interpolant, width + 1 pieces")
    return {f"interpolant {key}={w:g}": e for w, e in zip(widths, errors, strict=True)}


def draw_trace(ax, panel: dict, lines: list[Line], colors) -> dict[str, float]:
    numbers = {}
    for i, line in selected(lines, panel.get("select")):
        color, runs = colors[i % len(colors)], line.runs
        # Several seeds of a line: their mean curve (one SGD run fluctuates by tens of % around its expectation).
        curves = [dict(series(run.folder, panel["metric"], "step")) for run in runs]
        steps = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
        if not steps:
            continue
        values = [sum(c[k] for c in curves) / len(curves) for k in steps]
        seeds = f" (mean of {len(runs)} seeds)" if len(runs) > 1 else ""
        ax.plot(steps, values, color=color, lw=1.5, label=line.label + seeds)
        rate, start = runs[0].metric("test/theory_rate"), runs[0].metric("test/start_distance")
        if panel.get("theory") == "rate" and rate and start:
            # The point logged at step k follows k + 1 updates; drawn down to the curve's lowest decade only.
            theory = [(k, start * rate ** (k + 1)) for k in steps]
            ax.plot(*zip(*[(k, v) for k, v in theory if v >= 0.1 * min(values)], strict=True), "--", color=color, lw=1)
        if panel.get("theory") == "inverse":
            ax.plot(
                steps, [values[-1] * (steps[-1] + 1) / (k + 1) for k in steps], "--", color=color, lw=1, label="C / k"
            )
        for metric in panel.get("report", []):
            found = [v for v in (run.metric(metric) for run in runs) if v is not None]
            if found:
                numbers[f"{line.label} {metric.rpartition('/')[2]}"] = sum(found) / len(found)
    if panel.get("theory") == "rate":
        ax.plot([], [], "--", color="grey", lw=1, label="theory: ||w_0 - w*|| rho^k")
    if panel.get("logx"):
        ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(panel.get("ylabel") or panel["metric"])
    return numbers


def draw_image(ax, panel: dict, lines: list[Line], colors) -> dict[str, float]:
    from PIL import Image

    ax.axis("off")
    for _, line in selected(lines, panel.get("select"))[:1]:
        run = line.runs[0]
        found = sorted(run.folder.glob(panel["file"]))
        if found:
            with Image.open(found[-1]) as picture:
                ax.imshow(picture.convert("RGB"))
        value = run.metric(panel["metric"]) if panel.get("metric") else None
        return {line.label: value} if value is not None else {}
    return {}


DRAW = {
    "curve": draw_curve,
    "layers": draw_layers,
    "quantiles": draw_quantiles,
    "sweep": draw_sweep,
    "trace": draw_trace,
    "image": draw_image,
    "power_law": draw_power_law,
}


def draw_figure(panels: list[dict], lines: list[Line], title: str, path: Path) -> list[dict[str, float]]:
    """All panels side by side (at most three per row) into `path`; returns, per panel, the number it shows per
    line: a curve's last value, a layer statistic's first-to-last ratio, the final percentile spread, a sweep's
    fitted exponent, an image's metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.9 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    numbers = []
    for ax, panel in zip(axes.flat, panels, strict=False):
        numbers.append(DRAW[panel["kind"]](ax, panel, lines, colors))
        if panel.get("log"):
            ax.set_yscale("log")
        ax.set_title(panel.get("title", ""), fontsize="medium")
        ax.grid(alpha=0.3, which="both")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="x-small")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize="large")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return numbers
