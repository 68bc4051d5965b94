"""`dlfound ensemble SWEEP [--device cpu]`: a deep ensemble of a sweep's classifiers against its members.

Loads each finished run's best checkpoint (the one its results.json names), predicts the runs' test set and their
out-of-distribution set (`data.ood`, when the runs had one) with each member, and prints error, NLL, ECE (15 bins),
Brier and OOD AUROC (predictive entropy) for each member, the members' mean and the ensemble
(dlfound.runs.ensemble). Writes SWEEP/ensemble.json and the ensemble's reliability diagram and entropy histogram
as SWEEP/ensemble_reliability.png and ensemble_entropy.png.
"""

import argparse
import json
from pathlib import Path

from dlfound.errors import DlfoundError
from dlfound.runs.console import console, fail


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="dlfound ensemble",
        description="Average the softmax of a sweep's classifiers (a deep ensemble, Lakshminarayanan et al. 2017) "
        "and compare it with its members: error, NLL, ECE, Brier, OOD AUROC.",
        epilog="example: dlfound train experiment=mnist_ensemble, then dlfound ensemble outputs/train/multiruns/<time>",
    )
    parser.add_argument(
        "sweep",
        type=Path,
        metavar="SWEEP",
        help="a folder holding finished runs of one classifier (a seed sweep's folder)",
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    try:
        if not args.sweep.is_dir():
            raise DlfoundError(
                f"{args.sweep} is not a folder. Give the folder of a seed sweep of one classifier, "
                "e.g. outputs/train/multiruns/<time> after `dlfound train experiment=mnist_ensemble`"
            )
        from dlfound.runs.ensemble import evaluate
        from dlfound.runs.options import resolve_device

        report = evaluate(args.sweep, resolve_device(args.device))
    except DlfoundError as err:
        fail(f"{str(err).rstrip('. ')}.")
    from rich.table import Table

    from dlfound.files import write_text
    from dlfound.image_files import write_picture
    from dlfound.metrics.calibration import entropy_histogram, reliability_diagram
    from dlfound.runs.ensemble import COLUMNS

    probs, y, ood = report.pop("_pictures")
    columns = [c for c in COLUMNS if c in report["ensemble"]]
    table = Table(title=f"Deep ensemble of {report['size']} ({args.sweep})", title_justify="left")
    for column in ("member", *columns):
        table.add_column(column, justify="left" if column == "member" else "right")
    rows = [(Path(m["run"]).name, m) for m in report["members"]]
    rows += [("mean of members", report["member_mean"]), ("ensemble", report["ensemble"])]
    for name, metrics in rows:
        table.add_row(name, *(f"{metrics[c]:.4f}" for c in columns))
    console.print(table)
    write_text(args.sweep / "ensemble.json", json.dumps(report, indent=2))
    write_picture(
        reliability_diagram(probs, y, title=f"ensemble of {report['size']}"), args.sweep / "ensemble_reliability.png"
    )
    write_picture(
        entropy_histogram(probs, ood, title=f"ensemble of {report['size']}: predictive entropy"),
        args.sweep / "ensemble_entropy.png",
    )
    console.print(
        f"wrote {args.sweep / 'ensemble.json'}, ensemble_reliability.png, ensemble_entropy.png",
        highlight=False,
        soft_wrap=True,
    )
