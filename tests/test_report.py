"""`dlfound report`: the table, seed groups, sorting, CSV/Markdown export, plots and the best-run command.

One real sweep (2 learning rates x 2 seeds on the bundled digits) checks the report against what training
actually writes; the other cases use run folders fabricated in the same format, so they take milliseconds.
"""

import csv
import json
import statistics
from pathlib import Path

import pytest
import yaml
from PIL import Image

from conftest import read_results, run_dlfound, run_folders
from dlfound.commands import report

SWEEP = [
    "train",
    "-m",
    "optim.lr=0.01,0.003",
    "seed=1,2",
    "trainer.max_epochs=2",
    "print_config=false",
    "callbacks=none",
]


def table_rows(stdout: str) -> list[dict[str, str]]:
    """The rich table's body as {header: cell}, read from the box-drawing characters."""
    header = next(line for line in stdout.splitlines() if line.startswith("┃"))
    names = [c.strip() for c in header.strip("┃").split("┃")]
    rows = [line for line in stdout.splitlines() if line.startswith("│")]
    return [dict(zip(names, (c.strip() for c in line.strip("│").split("│")), strict=False)) for line in rows]


def assert_png(path: Path, min_size=(300, 200)) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width >= min_size[0] and image.height >= min_size[1]


# ------------------------------------------------------------------ a real sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("sweep")
    run_dlfound(SWEEP, cwd)
    folders = run_folders(cwd / "outputs")
    assert len(folders) == 4
    return cwd, folders


@pytest.fixture(scope="module")
def sweep_report(sweep):
    cwd, _ = sweep
    proc = run_dlfound(
        ["report", "outputs", "--csv", "out/table.csv", "--markdown", "out/table.md", "--plot", "out/plots"], cwd
    )
    return proc


def expected_groups(folders):
    """{lr: [test/acc of each seed]} straight from the runs' results.json."""
    groups = {}
    for folder in folders:
        results = read_results(folder)
        lr = next(o.split("=")[1] for o in results["overrides"] if o.startswith("optim.lr="))
        groups.setdefault(lr, []).append(results["metrics"]["test/acc"])
    return groups


@pytest.mark.slow
def test_real_sweep_groups_seeds_and_sorts(sweep, sweep_report):
    _, folders = sweep
    groups = expected_groups(folders)
    rows = table_rows(sweep_report.stdout)
    assert len(rows) == 2, sweep_report.stdout
    by_mean = sorted(groups, key=lambda lr: -statistics.fmean(groups[lr]))
    assert [row["optim.lr"] for row in rows] == by_mean  # best test/acc first: the monitor (val/acc) says max
    for row in rows:
        accs = groups[row["optim.lr"]]
        assert row["n"] == "2" and row["seed"] == "1,2" and row["status"] == "done"
        assert row["test/acc"] == f"{statistics.fmean(accs):.4f} ± {statistics.stdev(accs):.4f}"
        assert row["params"] == "50,826"
    # what all runs share is said once, above the table, not as columns
    assert "same in all runs: trainer.max_epochs=2 print_config=False callbacks=none" in sweep_report.stdout
    assert "trainer.max_epochs" not in rows[0]


def test_real_sweep_best_command(sweep, sweep_report):
    best_lr = max(expected_groups(sweep[1]).items(), key=lambda kv: statistics.fmean(kv[1]))[0]
    lines = sweep_report.stdout.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("best by test/acc"))
    assert "n=2" in lines[i]
    # a seed group's command has no seed: the point is the configuration, not one lucky seed
    assert lines[i + 1] == f"dlfound train optim.lr={best_lr} trainer.max_epochs=2 print_config=False callbacks=none"


def test_real_sweep_csv_and_markdown(sweep, sweep_report):
    cwd, folders = sweep
    groups = expected_groups(folders)
    with (cwd / "out" / "table.csv").open(newline="") as file:
        records = list(csv.DictReader(file))
    assert [r["optim.lr"] for r in records] == [r["optim.lr"] for r in table_rows(sweep_report.stdout)]
    for record in records:
        accs = groups[record["optim.lr"]]
        assert record["n"] == "2" and record["status"] == "done" and record["num_params"] == "50826"
        assert float(record["test/acc"]) == pytest.approx(statistics.fmean(accs))
        assert float(record["test/acc std"]) == pytest.approx(statistics.stdev(accs))
        assert {"test/loss", "val/acc_best", "wall_time_s", "run"} <= set(record)

    markdown = (cwd / "out" / "table.md").read_text().splitlines()
    table = [line for line in markdown if line.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header[:4] == ["optim.lr", "seed", "n", "test/acc"] and set(table[1]) <= set("|-: ")
    body = [dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=False)) for line in table[2:]]
    assert body == [{k: v for k, v in row.items() if k in header} for row in table_rows(sweep_report.stdout)]
    assert any(line.startswith("Best: `dlfound train optim.lr=") for line in markdown)


def test_real_sweep_plots(sweep, sweep_report):
    plots = Path(sweep[0]) / "out" / "plots"
    assert sorted(p.name for p in plots.iterdir()) == ["learning_curves.png", "test_acc_vs_optim.lr.png"]
    assert_png(plots / "learning_curves.png", (800, 300))
    assert_png(plots / "test_acc_vs_optim.lr.png")


# ------------------------------------------------------------------ fabricated runs


def fake_run(
    folder: Path,
    overrides: list[str],
    seed: int,
    acc: float | None,
    status: str = "done",
    choices: dict | None = None,
    config: dict | None = None,
    epochs: int = 3,
) -> Path:
    """A run folder in the format `dlfound train` writes (results.json, .hydra/, csv/metrics.csv)."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config or {"optim": {"lr": 0.001}, "seed": seed}))
    metrics = {} if acc is None else {"test/loss": 1 - acc, "test/acc": acc, "val/acc_best": acc - 0.01}
    results = {
        "status": status,
        "metrics": metrics,
        "monitor": {"metric": "val/acc", "mode": "max", "best": acc, "best_checkpoint": None},
        "epochs": epochs,
        "global_step": 21 * epochs,
        "wall_time_s": 3.5,
        "fit_time_s": 3.2,
        "train_samples_per_s": 900.0,
        "num_params": 50826,
        "resumed_from": None,
        "choices": {"model": "mlp", "data": "digits", "optim": "adam", **(choices or {})},
        "overrides": overrides,
        "seed": seed,
        "run_dir": str(folder),
        "finished_at": "2026-11-21T04:31:00+00:00",
        "versions": {"python": "3.11.7", "dlfound": "0.1.0"},
    }
    if status == "failed":
        results["error"] = "Traceback ...\nNonFiniteLossError: the training loss became nan at epoch 1"
    (folder / "results.json").write_text(json.dumps(results, indent=2))
    (folder / "csv").mkdir()
    lines = ["epoch,step,test/acc,test/loss,train/acc,train/loss_epoch,val/acc,val/loss"]
    for epoch in range(epochs):
        step = 21 * (epoch + 1) - 1
        lines += [
            f"{epoch},{step},,,,,{0.8 + 0.05 * epoch},{0.5 - 0.1 * epoch}",
            f"{epoch},{step},,,{0.7 + 0.05 * epoch},{1.0 - 0.2 * epoch},,",
        ]
    if acc is not None:
        lines.append(f"{epochs},{21 * epochs},{acc},{1 - acc},,,,")
    (folder / "csv" / "metrics.csv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """In-process reports print to pytest's capture, which rich sees as an 80-column file: widen it."""
    monkeypatch.setattr(report.console, "_width", 200)


def run_report(args: list[str], capsys) -> tuple[str, str]:
    report.main([str(a) for a in args])
    captured = capsys.readouterr()
    return captured.out, captured.err


@pytest.fixture
def lr_sweep(tmp_path):
    """Three learning rates spanning 100x, two seeds each; the middle one is best."""
    accs = {"0.1": (0.80, 0.82), "0.01": (0.95, 0.97), "0.001": (0.90, 0.90)}
    job = 0
    for lr, pair in accs.items():
        for seed, acc in zip((1, 2), pair, strict=True):
            fake_run(
                tmp_path / "sweep" / str(job), [f"optim.lr={lr}", f"seed={seed}", "trainer.max_epochs=3"], seed, acc
            )
            job += 1
    return tmp_path / "sweep"


def test_sort_direction_and_metric_choice(lr_sweep, capsys):
    out, _ = run_report([lr_sweep], capsys)
    assert [r["optim.lr"] for r in table_rows(out)] == ["0.01", "0.001", "0.1"]
    assert table_rows(out)[0]["test/acc"] == "0.9600 ± 0.0141"
    out, _ = run_report([lr_sweep, "--min"], capsys)
    assert [r["optim.lr"] for r in table_rows(out)] == ["0.1", "0.001", "0.01"]
    # a loss sorts lowest first without being told; the best run is still judged by --metric (test/acc)
    out, _ = run_report([lr_sweep, "--sort", "test/loss"], capsys)
    assert [r["optim.lr"] for r in table_rows(out)] == ["0.01", "0.001", "0.1"]
    assert "dlfound train optim.lr=0.01 trainer.max_epochs=3" in out.splitlines()
    out, _ = run_report([lr_sweep, "--columns", "val/acc_best,wall_time_s"], capsys)
    assert "test/acc" not in table_rows(out)[0] and table_rows(out)[0]["val/acc_best"] == "0.9500 ± 0.0141"


def test_log_axis_sweep_plot_and_curves(lr_sweep, tmp_path, capsys):
    run_report([lr_sweep, "--plot", tmp_path / "plots"], capsys)
    assert_png(tmp_path / "plots" / "learning_curves.png", (800, 300))
    assert_png(tmp_path / "plots" / "test_acc_vs_optim.lr.png")
    assert report.wants_log_axis([0.1, 0.01, 0.001]) and not report.wants_log_axis([16, 32, 64, 128])
    assert not report.wants_log_axis([0.0, 0.1, 0.5])  # dropout 0 has no place on a log axis


def test_single_runs_are_not_grouped_and_seed_is_a_column(tmp_path, capsys):
    fake_run(tmp_path / "a", ["optim.lr=0.01", "seed=1"], 1, 0.9)
    fake_run(tmp_path / "b", ["optim.lr=0.02", "seed=2"], 2, 0.8)
    out, _ = run_report([tmp_path / "a", tmp_path / "b", "--csv", tmp_path / "t.csv"], capsys)
    rows = table_rows(out)
    assert [(r["optim.lr"], r["seed"], r["test/acc"]) for r in rows] == [
        ("0.01", "1", "0.9000"),
        ("0.02", "2", "0.8000"),
    ]
    assert "n" not in rows[0]
    assert "dlfound train optim.lr=0.01 seed=1" in out.splitlines()  # one run: its seed is part of it
    with (tmp_path / "t.csv").open(newline="") as file:
        assert [r["run"] for r in csv.DictReader(file)] == ["a", "b"]


def test_default_values_fill_keys_a_run_did_not_override(tmp_path, capsys):
    """A run without `model=`/`optim.lr=` shows what it actually used, from its choices and config."""
    fake_run(tmp_path / "runs" / "x", [], 42, 0.95)
    fake_run(tmp_path / "runs" / "y", ["model=lenet5", "optim.lr=0.01"], 42, 0.98, choices={"model": "lenet5"})
    out, _ = run_report([tmp_path / "runs"], capsys)
    rows = table_rows(out)
    assert [(r["model"], r["optim.lr"]) for r in rows] == [("lenet5", "0.01"), ("mlp", "0.001")]
    assert "seed" not in rows[0] and "same in all runs: seed=42" in out
    # a categorical sweep has no hyperparameter axis: only learning curves
    run_report([tmp_path / "runs", "--plot", tmp_path / "plots"], capsys)
    assert [p.name for p in (tmp_path / "plots").iterdir()] == ["learning_curves.png"]


def test_failed_run_is_shown_apart_and_never_best(tmp_path, capsys):
    fake_run(tmp_path / "s" / "0", ["optim.lr=1.0", "seed=1"], 1, None, status="failed")
    fake_run(tmp_path / "s" / "1", ["optim.lr=1.0", "seed=2"], 2, 0.5)
    fake_run(tmp_path / "s" / "2", ["optim.lr=0.1", "seed=1"], 1, 0.4)
    out, _ = run_report([tmp_path / "s", "--markdown", tmp_path / "t.md"], capsys)
    rows = table_rows(out)
    assert [(r["optim.lr"], r["status"], r["test/acc"]) for r in rows] == [
        ("1.0", "done", "0.5000"),
        ("0.1", "done", "0.4000"),
        ("1.0", "failed", "-"),
    ]
    assert "the training loss became nan at epoch 1" in out
    assert "dlfound train optim.lr=1.0 seed=2" in out.splitlines()
    assert "| 1.0 | 1 | - |" in (tmp_path / "t.md").read_text()


def test_unfinished_runs_are_mentioned(tmp_path, capsys):
    fake_run(tmp_path / "s" / "0", ["seed=1"], 1, 0.9)
    (tmp_path / "s" / "1" / ".hydra").mkdir(parents=True)  # started, killed before results.json
    _, err = run_report([tmp_path / "s"], capsys)
    assert "1 run folder(s) have no results.json yet" in err


def test_bad_input_is_one_message(tmp_path, capsys):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(SystemExit) as exit_info:
        run_report([tmp_path / "empty"], capsys)
    assert exit_info.value.code != 0
    assert "No results.json under" in capsys.readouterr().err

    fake_run(tmp_path / "r", ["seed=1"], 1, 0.9)
    with pytest.raises(SystemExit) as exit_info:
        run_report([tmp_path / "r", "--metric", "test/nope"], capsys)
    err = capsys.readouterr().err
    assert exit_info.value.code != 0 and "test/nope" in err and "test/acc" in err


def test_cli_errors_without_traceback_and_help(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run_dlfound(["report", "empty"], tmp_path, check=False)
    assert proc.returncode != 0 and "No results.json under empty" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    proc = run_dlfound(["report", "missing_folder"], tmp_path, check=False)
    assert proc.returncode != 0 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_dlfound(["report", "--help"], tmp_path)
    assert "usage: dlfound report" in proc.stdout and "--markdown" in proc.stdout


def test_best_checkpoint_follows_a_moved_run_folder(tmp_path):
    """The checkpoint results.json names, found in the run's checkpoints/ after the folder moved; none when
    results.json names none or the file is gone."""
    from dlfound.runs.records import best_checkpoint, read_results_file

    old = fake_run(tmp_path / "old", [], seed=1, acc=0.9)
    assert best_checkpoint(old) is None  # results.json names no checkpoint
    results = json.loads((old / "results.json").read_text())
    results["monitor"]["best_checkpoint"] = str(old / "checkpoints" / "best-epoch002.ckpt")
    (old / "results.json").write_text(json.dumps(results))
    assert best_checkpoint(old) is None  # named, but not there
    (old / "checkpoints").mkdir()
    (old / "checkpoints" / "best-epoch002.ckpt").write_bytes(b"weights")
    assert best_checkpoint(old) == old / "checkpoints" / "best-epoch002.ckpt"
    moved = old.rename(tmp_path / "moved")
    assert best_checkpoint(moved) == moved / "checkpoints" / "best-epoch002.ckpt"
    assert best_checkpoint(read_results_file(moved / "results.json")) == moved / "checkpoints" / "best-epoch002.ckpt"
