"""Deep ensembles (Lakshminarayanan, Pritzel & Blundell, "Simple and Scalable Predictive Uncertainty Estimation
using Deep Ensembles", 2017): networks trained from different random initialisations, their softmax averaged,
p(y | x) = 1/M sum_m p_m(y | x).

    dlfound train experiment=mnist_ensemble                  # five seeds, one run folder each
    python scripts/ensemble.py outputs/train/multiruns/<time>  # or any folder holding runs of one classifier

Loads each finished run's best checkpoint (the one its results.json names), predicts the run's test set and its
out-of-distribution set (`data.ood`, when the runs had one) with each member (MC dropout members average their
own `task.mc_samples` passes), and prints error, NLL, ECE (15 bins), Brier and OOD AUROC (predictive entropy) for
each member, the members' mean and the ensemble. Writes SWEEP_DIR/ensemble.json and the ensemble's reliability
diagram and entropy histogram as SWEEP_DIR/ensemble_reliability.png and ensemble_entropy.png.

Options (key=value after the folder): device=cpu (or cuda, auto).
"""

import json
import sys
from pathlib import Path

USAGE = "python scripts/ensemble.py SWEEP_DIR [device=cpu]"
COLUMNS = ("error", "nll", "ece", "brier", "ood_auroc")


def member_runs(sweep_dir: Path) -> list[tuple[Path, Path]]:
    """(run folder, best checkpoint) of every finished run under sweep_dir, in folder order."""
    from dlfound.runs.results import read_results

    runs = []
    for results_file in sorted(sweep_dir.rglob("results.json")):
        results = read_results(results_file.parent) or {}
        best = (results.get("monitor") or {}).get("best_checkpoint")
        if results.get("status") == "done" and best and Path(best).is_file():
            runs.append((results_file.parent, Path(best)))
    return runs


def predict(task, loader, datamodule, device) -> tuple:
    """(probabilities, labels) of one loader, with the member's own predictive distribution."""
    import torch

    probs, labels = [], []
    with torch.no_grad():
        for x, y in loader:
            x = datamodule.prepare(x.to(device), training=False)
            probs.append(task.predict_probs(x).float().cpu())
            labels.append(y)
    return torch.cat(probs), torch.cat(labels)


def evaluate(sweep_dir: Path, device: str = "cpu") -> dict:
    import torch

    from dlfound.errors import ConfigError
    from dlfound.metrics.calibration import calibration_metrics
    from dlfound.runs.build import load_trained

    runs = member_runs(sweep_dir)
    if len(runs) < 2:
        raise ConfigError(
            f"{sweep_dir} holds {len(runs)} finished run(s) with a best checkpoint; an ensemble needs at "
            "least two. Train them with `dlfound train experiment=mnist_ensemble` (or `dlfound train -m "
            "seed=0,1,2,3,4 ...`) and give the sweep's folder."
        )
    datamodule, members, test, ood = None, [], [], []
    for run, ckpt in runs:
        dm, task, _ = load_trained(
            ckpt, "ClassificationTask", "an ensemble averages classifiers trained with task=classification"
        )
        task.to(device).eval()
        if datamodule is None:  # the members share their data: one copy serves them all
            datamodule = dm
            datamodule.setup("test")
            loaders = datamodule.test_dataloader()
            loaders = loaders if isinstance(loaders, list) else [loaders]
        probs, y = predict(task, loaders[0], datamodule, device)
        test.append(probs)
        ood.append(predict(task, loaders[1], datamodule, device)[0] if len(loaders) > 1 else None)
        members.append({"run": str(run), "checkpoint": str(ckpt), **calibration_metrics(probs, y, ood[-1])})
    mean = {k: sum(m[k] for m in members) / len(members) for k in COLUMNS if k in members[0]}
    ensemble_probs = torch.stack(test).mean(0)
    ensemble_ood = torch.stack(ood).mean(0) if ood[0] is not None else None
    ensemble = calibration_metrics(ensemble_probs, y, ensemble_ood)
    return {
        "members": members,
        "member_mean": mean,
        "ensemble": ensemble,
        "size": len(members),
        "_pictures": (ensemble_probs, y, ensemble_ood),
    }


def main(args: list[str]) -> None:
    from dlfound.errors import DlfoundError
    from dlfound.runs.console import fail

    folders = [a for a in args if "=" not in a]
    options = dict(a.split("=", 1) for a in args if "=" in a)
    if len(folders) != 1 or not Path(folders[0]).is_dir() or set(options) - {"device"}:
        fail(f"ensemble: give one sweep folder (and optionally device=). Usage: {USAGE}")
    device = options.get("device", "cpu")
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    sweep_dir = Path(folders[0])
    try:
        report = evaluate(sweep_dir, device)
    except DlfoundError as err:
        fail(f"ensemble: {str(err).rstrip('. ')}.")
    from rich.console import Console
    from rich.table import Table

    from dlfound.files import write_text
    from dlfound.image_files import write_picture
    from dlfound.metrics.calibration import entropy_histogram, reliability_diagram

    probs, y, ood = report.pop("_pictures")
    columns = [c for c in COLUMNS if c in report["ensemble"]]
    table = Table(title=f"Deep ensemble of {report['size']} ({sweep_dir})", title_justify="left")
    for column in ("member", *columns):
        table.add_column(column, justify="left" if column == "member" else "right")
    rows = [(Path(m["run"]).name, m) for m in report["members"]]
    rows += [("mean of members", report["member_mean"]), ("ensemble", report["ensemble"])]
    for name, metrics in rows:
        table.add_row(name, *(f"{metrics[c]:.4f}" for c in columns))
    Console().print(table)
    write_text(sweep_dir / "ensemble.json", json.dumps(report, indent=2))
    write_picture(
        reliability_diagram(probs, y, title=f"ensemble of {report['size']}"), sweep_dir / "ensemble_reliability.png"
    )
    write_picture(
        entropy_histogram(probs, ood, title=f"ensemble of {report['size']}: predictive entropy"),
        sweep_dir / "ensemble_entropy.png",
    )
    print(f"wrote {sweep_dir / 'ensemble.json'}, ensemble_reliability.png, ensemble_entropy.png")


if __name__ == "__main__":
    main(sys.argv[1:])
