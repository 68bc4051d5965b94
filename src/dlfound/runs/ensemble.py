"""Deep ensembles (Lakshminarayanan, Pritzel & Blundell, "Simple and Scalable Predictive Uncertainty Estimation
using Deep Ensembles", 2017): networks trained from different random initialisations, their softmax averaged,
p(y | x) = 1/M sum_m p_m(y | x). What `dlfound ensemble` measures over a sweep of classifiers.
"""

from pathlib import Path

from dlfound.runs.records import best_checkpoint, natural_key, read_results_file

COLUMNS = ("error", "nll", "ece", "brier", "ood_auroc")


def member_runs(sweep_dir: Path) -> list[tuple[Path, Path]]:
    """(run folder, best checkpoint) of every finished run under sweep_dir, in folder order."""
    members = []
    for results_file in sorted(sweep_dir.rglob("results.json"), key=natural_key):
        run = read_results_file(results_file)
        best = best_checkpoint(run) if run and run.results.get("status") == "done" else None
        if best is not None:
            members.append((run.folder, best))
    return members


def predict(task, loader, datamodule, device) -> tuple:
    """(probabilities, labels) of one loader, with the member's own predictive distribution (MC dropout members
    average their own `task.mc_samples` passes)."""
    import torch

    probs, labels = [], []
    with torch.no_grad():
        for x, y in loader:
            x = datamodule.prepare(x.to(device), training=False)
            probs.append(task.predict_probs(x).float().cpu())
            labels.append(y)
    return torch.cat(probs), torch.cat(labels)


def evaluate(sweep_dir: Path, device: str = "cpu") -> dict:
    """Each member's, the members' mean and the ensemble's error, NLL, ECE (15 bins), Brier and OOD AUROC
    (predictive entropy, when the runs had `data.ood`); `_pictures` holds the ensemble's probabilities, the labels
    and the OOD probabilities for the reliability diagram and the entropy histogram."""
    import torch

    from dlfound.errors import ConfigError
    from dlfound.metrics.calibration import calibration_metrics
    from dlfound.runs.build import load_trained

    runs = member_runs(sweep_dir)
    if len(runs) < 2:
        raise ConfigError(
            f"{sweep_dir} holds {len(runs)} finished run(s) with a best checkpoint; an ensemble needs at "
            "least two. Train them with `dlfound train experiment=mnist_ensemble` (or `dlfound train -m "
            "seed=0,1,2,3,4 ...`) and give the sweep's folder"
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
