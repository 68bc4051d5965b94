"""The Python half of scripts/gpu_check.sh: short runs of every task family, their checks, the sweep, the paper
budgets and the summary. Each subcommand writes one JSON file of what it measured; `summary` gathers them.

    python scripts/gpu_check.py runs families --precisions 32-true bf16-mixed 16-mixed --json F.json
    python scripts/gpu_check.py runs resnet18 --json F.json        # 3 precisions, channels_last, compile
    python scripts/gpu_check.py sweep --json F.json                # 3 jobs through hydra/launcher=gpus
    python scripts/gpu_check.py paper --seconds 300 --json F.json  # ResNet-20's schedule, then degradation
    python scripts/gpu_check.py summary OUT_DIR                    # OUT_DIR/summary.md and summary.json

A run passes when it exits 0, its training loss falls (the mean of the last third of the logged steps below the
mean of the first third; a GAN's two losses only need to be finite, since adversarial losses need not fall; the
perceptron rule has none), its
last.ckpt loads with torch.load(map_location="cpu", weights_only=True), and `dlfound eval` re-tests that
checkpoint on CPU in fp32. CPU mode (--cpu, set by gpu_check.sh --dry-run) trains on the CPU at toy size.
"""

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("GPU_CHECK_WORK", "/tmp/gpu_check"))
DATA = Path(os.environ.get("DLFOUND_DATA", "."))

# name -> (data folder it reads under DLFOUND_DATA, or None for data made on the fly; overrides). One per task.
# The DDPM's test draws 1,000 samples of 1,000 steps: a short run draws 100 of 50.
FAMILIES = {
    "classification": ("MNIST", ["experiment=mnist_lenet5"]),
    "regression": (None, ["experiment=adding_lstm"]),
    "perceptron": (None, ["experiment=perceptron_blobs"]),
    "vae": ("MNIST", ["experiment=mnist_vae"]),
    "gan": ("MNIST", ["experiment=mnist_dcgan"]),
    "flow": ("MNIST", ["experiment=mnist_realnvp"]),
    "ddpm": ("MNIST", ["experiment=mnist_ddpm", "task.test_samples=100", "task.sample_steps=50"]),
    "score": (None, ["experiment=gmm2d_score"]),
    "restoration": ("restoration", ["experiment=dncnn_sigma25"]),
    "language_model": ("text", ["experiment=shakespeare_char_gpt"]),
    "seq2seq": (None, ["experiment=addition_seq2seq"]),
    "ctc": ("MNIST", ["experiment=mnist_strips_ctc"]),
    "bayesian": ("MNIST", ["experiment=mnist_bbb"]),
}
# On the CPU the GPU-sized networks shrink, so that a dry run takes seconds per step.
CPU_FAMILY_EXTRA = {
    "ddpm": ["model.base_channels=16"],
    "flow": ["model.blocks=2", "model.hidden=16"],
    "classification-cifar": ["data.eval_batch_size=16"],
}
RESNET18 = ["experiment=cifar10_resnet18", "data=cifar10_jpeg"]
# ResNet-18 at each precision, then its two switches at bf16-mixed (the precision a GPU user would pick).
RESNET18_VARIANTS = {"channels_last": ["task.channels_last=true"], "compile": ["task.compile=true"]}
GPU_SHORT = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=40",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.log_every_n_steps=5",
]
CPU_SHORT = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=20",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.log_every_n_steps=2",
    "data.batch_size=16",
]


def trainer_args(cpu: bool) -> list[str]:
    return ["trainer=cpu"] if cpu else ["trainer=gpu"]


def dlfound(args: list[str], log: Path, timeout: float, threads: int | None = None) -> tuple[int, float]:
    """`python -m dlfound ARGS`, output to `log`; (exit code, seconds). 124: it ran past `timeout`."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "160"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    start = time.perf_counter()
    with log.open("w") as out:
        out.write("$ dlfound " + " ".join(args) + "\n")
        out.flush()
        try:
            rc = subprocess.run(
                [sys.executable, "-m", "dlfound", *args], stdout=out, stderr=subprocess.STDOUT, env=env, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    return rc, time.perf_counter() - start


def tail(path: Path, lines: int = 6) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def loss_curves(run: Path) -> dict[str, list[float]]:
    """Step-level training losses in the run's csv/metrics.csv: {column: values in step order}."""
    path = run / "csv" / "metrics.csv"
    if not path.is_file():
        return {}
    rows = list(csv.DictReader(path.open(newline="")))
    columns = [
        c
        for c in (rows[0] if rows else {})
        if c.startswith("train/")
        and not c.endswith("_epoch")
        and any(word in c for word in ("loss", "nelbo", "nll", "bpd"))
    ]
    return {c: [float(r[c]) for r in rows if r.get(c) not in (None, "")] for c in columns}


def loss_check(run: Path, family: str) -> dict:
    if family == "perceptron":  # Rosenblatt's rule minimises no loss; its mistakes are counted per epoch
        return {"loss_ok": True, "loss": "no loss (perceptron rule)"}
    curves = {c: v for c, v in loss_curves(run).items() if v}
    if not curves:
        return {"loss_ok": False, "loss": "no step-level training loss in csv/metrics.csv"}
    if family == "gan":
        finite = all(math.isfinite(x) for v in curves.values() for x in v)
        text = "; ".join(f"{c} {v[0]:.3g} -> {v[-1]:.3g}" for c, v in curves.items())
        return {"loss_ok": finite, "loss": f"{text} (adversarial: finite)"}
    preferred = [c for c in ("train/loss_step", "train/loss", "train/nelbo_step", "train/bpd_step") if c in curves]
    column = max(preferred + list(curves), key=lambda c: len(curves[c]) >= 2)  # the first with a curve
    values = curves[column]
    third = max(1, len(values) // 3)
    first, last = sum(values[:third]) / third, sum(values[-third:]) / third
    ok = len(values) >= 2 and math.isfinite(last) and last < first
    return {"loss_ok": ok, "loss": f"{column} {first:.4g} -> {last:.4g} ({len(values)} points)"}


def checkpoint_check(run: Path) -> dict:
    import torch

    ckpt = run / "checkpoints" / "last.ckpt"
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        tensors = state["state_dict"].values()
        return {"ckpt_ok": all(t.device.type == "cpu" for t in tensors), "ckpt": f"{len(tensors)} tensors"}
    except Exception as err:  # whatever stops the load is the finding
        return {"ckpt_ok": False, "ckpt": f"{type(err).__name__}: {str(err)[:200]}"}


def eval_check(run: Path, timeout: float) -> dict:
    """`dlfound eval` of last.ckpt on the CPU in fp32; the first test metric beside what the run recorded."""
    ckpt = run / "checkpoints" / "last.ckpt"
    output = run / "eval_cpu.json"
    rc, seconds = dlfound(
        ["eval", f"ckpt_path={ckpt}", "trainer.accelerator=cpu", "trainer.precision=32-true", f"output={output}"],
        run / "eval.log",
        timeout,
        threads=2,
    )
    if rc != 0 or not output.is_file():
        return {"eval_ok": False, "eval": f"exit {rc}: {tail(run / 'eval.log', 3)}"}
    result = json.loads(output.read_text())
    metrics, recorded = result["metrics"], result["recorded"]
    key = next((k for k in metrics if k in recorded), next(iter(metrics), None))
    if key is None:
        return {"eval_ok": True, "eval": "no test metric"}
    text = f"{key} {metrics[key]:.4g} on CPU" + (f" (run: {recorded[key]:.4g})" if key in recorded else "")
    return {"eval_ok": True, "eval": text, "eval_s": round(seconds, 1)}


def one_run(name: str, overrides: list[str], cpu: bool, timeout: float, family: str) -> dict:
    run = WORK / "runs" / name
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    short = CPU_SHORT if cpu else GPU_SHORT
    args = ["train", *overrides, *trainer_args(cpu), *short, "print_config=false", f"hydra.run.dir={run}"]
    rc, seconds = dlfound(args, run / "train.log", timeout, threads=1 if cpu else 2)
    record = {"run": name, "command": "dlfound " + " ".join(args), "exit": rc, "seconds": round(seconds, 1)}
    results = run / "results.json"
    if results.is_file():
        r = json.loads(results.read_text())
        record.update(
            status=r.get("status"),
            train_samples_per_s=r.get("train_samples_per_s"),
            metrics={k: v for k, v in (r.get("metrics") or {}).items() if isinstance(v, (int, float))},
        )
    if rc != 0:
        record.update(ok=False, error=tail(run / "train.log", 8))
        return record
    record.update(loss_check(run, family))
    record.update(checkpoint_check(run))
    if record["ckpt_ok"]:
        record.update(eval_check(run, timeout))
    record["ok"] = bool(record.get("loss_ok") and record.get("ckpt_ok") and record.get("eval_ok"))
    return record


def planned_runs(which: str, precisions: list[str], cpu: bool) -> tuple[list[tuple], list[str]]:
    """(name, overrides, family) of each run, and the families skipped for want of their data."""
    plan, skipped = [], []
    if which == "families":
        for family, (data, overrides) in FAMILIES.items():
            if data and not (DATA / data).is_dir():
                skipped.append(f"{family} (no {data} under DLFOUND_DATA)")
                continue
            # On CPU one precision per family (plus 32-true for classification) exercises every command line.
            fam_precisions = precisions if not cpu or family == "classification" else precisions[-1:]
            extra = CPU_FAMILY_EXTRA.get(family, []) if cpu else []
            plan += [(f"{family}-{p}", [*overrides, *extra, f"trainer.precision={p}"], family) for p in fam_precisions]
    else:
        if not (DATA / "cifar10-jpeg").is_dir():
            return [], ["resnet18 (no cifar10-jpeg under DLFOUND_DATA)"]
        resnet18 = [*RESNET18, *(CPU_FAMILY_EXTRA["classification-cifar"] if cpu else [])]
        plan += [(f"resnet18-{p}", [*resnet18, f"trainer.precision={p}"], "classification") for p in precisions]
        plan += [
            (f"resnet18-{v}", [*resnet18, "trainer.precision=bf16-mixed", *o], "classification")
            for v, o in RESNET18_VARIANTS.items()
        ]
    return plan, skipped


def cmd_runs(args) -> None:
    plan, skipped = planned_runs(args.which, args.precisions, args.cpu)
    print(f"{len(plan)} runs, {args.jobs} at a time; skipped: {', '.join(skipped) or 'none'}", flush=True)
    records = []
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(one_run, name, o, args.cpu, args.timeout, fam) for name, o, fam in plan]
        for future in futures:
            record = future.result()
            records.append(record)
            print(
                f"{'ok  ' if record['ok'] else 'FAIL'} {record['run']:<28} {record['seconds']:>6.1f} s  "
                f"{record.get('loss', '')}  {record.get('eval', '')}",
                flush=True,
            )
            if not record["ok"]:
                print(f"     {record.get('error') or record.get('ckpt') or record.get('eval') or ''}", flush=True)
            # Written after every run, so that a step stopped at its time cap keeps what it measured.
            Path(args.json).write_text(json.dumps({"runs": records, "skipped": skipped}, indent=1))


def cmd_sweep(args) -> None:
    """Three jobs of `-m hydra/launcher=gpus`: each gets a GPU of its own, one at a time on a one-GPU machine."""
    root = WORK / "sweep"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    short = CPU_SHORT[:-1] if args.cpu else ["trainer.max_epochs=2"]
    sweep_args = [
        "train",
        "-m",
        "hydra/launcher=gpus",
        *trainer_args(args.cpu),
        "optim.lr=0.1,0.01,0.003",
        *short,
        "print_config=false",
        f"hydra.sweep.dir={root}",
    ]
    rc, seconds = dlfound(sweep_args, root / "sweep.log", args.timeout)
    jobs = []
    for results in sorted(root.rglob("results.json")):
        r = json.loads(results.read_text())
        jobs.append(
            {
                "job": results.parent.name,
                "status": r.get("status"),
                "cuda_visible_devices": r.get("cuda_visible_devices"),
                "val/acc_best": (r.get("metrics") or {}).get("val/acc_best"),
                "wall_time_s": r.get("wall_time_s"),
            }
        )
    ok = rc == 0 and len(jobs) == 3 and all(j["status"] == "done" for j in jobs)
    record = {
        "command": "dlfound " + " ".join(sweep_args),
        "exit": rc,
        "seconds": round(seconds, 1),
        "jobs": jobs,
        "ok": ok,
    }
    if not ok:
        record["error"] = tail(root / "sweep.log", 10)
    print(json.dumps(record, indent=1))
    Path(args.json).write_text(json.dumps(record, indent=1))


def cmd_paper(args) -> None:
    """The paper budgets, as far as `--seconds` allow: ResNet-20 with He et al.'s schedule (max_time caps it at
    two thirds of the time), then `dlfound figure degradation --budget paper` with each of its four runs capped
    at a quarter of what is left, so that the figure is drawn either way (its sidecar gives the epochs run)."""
    deadline = time.monotonic() + args.seconds
    record = {"budget_s": args.seconds}
    if not (DATA / "cifar10-jpeg").is_dir():
        record["skipped"] = "no cifar10-jpeg under DLFOUND_DATA"
        Path(args.json).write_text(json.dumps(record, indent=1))
        print(record["skipped"])
        return
    fast = ["trainer.precision=bf16-mixed", "data.on_device=true"]
    toy = [
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "data.batch_size=16",
        "data.eval_batch_size=16",
    ]
    run = WORK / "paper_resnet20"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    share = int(args.seconds * 2 / 3) - 45  # leave start-up and the test inside the share
    resnet20 = [
        "train",
        "experiment=cifar10_resnet56",
        "model=resnet20",
        "data=cifar10_jpeg",
        *trainer_args(args.cpu),
        *(toy + ["trainer.max_epochs=2"] if args.cpu else fast),
        f"trainer.max_time=00:00:{share // 60:02d}:{share % 60:02d}",
        "print_config=false",
        f"hydra.run.dir={run}",
    ]
    rc, seconds = dlfound(resnet20, run / "train.log", max(30.0, deadline - time.monotonic() - 60))
    entry = {"command": "dlfound " + " ".join(resnet20), "exit": rc, "seconds": round(seconds, 1)}
    if (run / "results.json").is_file():
        r = json.loads((run / "results.json").read_text())
        entry.update(
            status=r.get("status"),
            epochs=r.get("epochs"),
            global_step=r.get("global_step"),
            train_samples_per_s=r.get("train_samples_per_s"),
            metrics=r.get("metrics"),
        )
    else:
        entry["error"] = tail(run / "train.log", 8)
    record["resnet20"] = entry

    left = deadline - time.monotonic() - 30
    per_run = int(left / 4) - 30  # four runs, each with its start-up and test beside the capped training
    outputs = WORK / "figure_outputs"
    shutil.rmtree(outputs, ignore_errors=True)
    entry = {}
    if per_run < 20:
        entry["skipped"] = f"{left:.0f} s left for four runs"
    else:
        figure = [
            "figure",
            "degradation",
            "--budget",
            "paper",
            "data=cifar10_jpeg",
            *trainer_args(args.cpu),
            *(toy + ["trainer.max_epochs=1"] if args.cpu else fast),
            f"trainer.max_time=00:00:{per_run // 60:02d}:{per_run % 60:02d}",
        ]
        os.environ["DLFOUND_OUTPUTS"] = str(outputs)
        log = WORK / "figure.log"
        rc, seconds = dlfound(figure, log, max(30.0, deadline - time.monotonic()))
        entry = {"command": "dlfound " + " ".join(figure), "exit": rc, "seconds": round(seconds, 1)}
        pngs = sorted(outputs.rglob("degradation.png"))
        if pngs:
            shutil.copy(pngs[0], Path(args.out) / "degradation.png")
            shutil.copy(pngs[0].with_suffix(".md"), Path(args.out) / "degradation.md")
        runs = []
        for results in sorted(outputs.rglob("results.json")):
            r = json.loads(results.read_text())
            runs.append(
                {
                    "line": results.parent.parent.name,
                    "status": r.get("status"),
                    "epochs": r.get("epochs"),
                    "metrics": {k: v for k, v in (r.get("metrics") or {}).items() if "acc" in k},
                }
            )
        entry["runs"] = runs
        if rc != 0:
            entry["error"] = tail(log, 8)
    record["degradation"] = entry
    print(json.dumps(record, indent=1))
    Path(args.json).write_text(json.dumps(record, indent=1))


# -- the summary -------------------------------------------------------------------------------------------
def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def fmt(value, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.{digits}g}"
    return "-" if value is None else str(value)


def runs_table(data: dict) -> list[str]:
    lines = [
        "| run | ok | s | samples/s | training loss | checkpoint on CPU | `dlfound eval` on CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in data.get("runs", []):
        problem = r.get("error", "").replace("\n", " ")[-160:].replace("|", "/")
        lines.append(
            f"| {r['run']} | {'yes' if r.get('ok') else '**no**'} | {fmt(r.get('seconds'))} | "
            f"{fmt(r.get('train_samples_per_s'))} | {r.get('loss', problem) or '-'} | "
            f"{r.get('ckpt', '-')} | {r.get('eval', '-')} |".replace("\n", " ")
        )
    if data.get("skipped"):
        lines.append(f"\nSkipped: {', '.join(data['skipped'])}.")
    return lines


def cmd_summary(args) -> None:
    out = Path(args.out)
    steps = (
        [json.loads(line) for line in (WORK / "steps.jsonl").read_text().splitlines() if line.strip()]
        if (WORK / "steps.jsonl").is_file()
        else []
    )
    parts = {
        name: read_json(WORK / f"{name}.json") for name in ("env", "families", "resnet18", "sweep", "loop", "paper")
    }
    env = parts["env"] or {}
    summary = {"steps": steps, **{k: v for k, v in parts.items() if v is not None}}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))

    md = [
        f"# gpu_check {'(dry run on CPU)' if env.get('dry_run') else ''}",
        "",
        f"Device: {env.get('device', '?')}; torch {env.get('torch', '?')}, CUDA {env.get('cuda', '?')}, "
        f"lightning {env.get('lightning', '?')}, hydra-core {env.get('hydra', '?')}, omegaconf "
        f"{env.get('omegaconf', '?')}, Python {env.get('python', '?')}; data: {env.get('data', '?')}.",
        "",
        "## Steps",
        "",
        "| step | result | s | time cap (s) |",
        "|---|---|---|---|",
    ]
    for s in steps:
        result = (
            {0: "ok", 124: "**ran past its cap**"}.get(s["rc"], f"**exit {s['rc']}**")
            if s["rc"] >= 0
            else s.get("note", "skipped")
        )
        md.append(f"| {s['step']} | {result} | {s['seconds']} | {s['cap']} |")
    tests = WORK / "tests.txt"
    if tests.is_file():
        md += ["", "## gpu-marked tests", "", "```", *tail(tests, 4).splitlines(), "```"]
    for name, title in (("families", "One short run per task family"), ("resnet18", "ResNet-18 on CIFAR-10")):
        if parts[name]:
            md += ["", f"## {title}", "", *runs_table(parts[name])]
    if parts["sweep"]:
        sweep = parts["sweep"]
        md += [
            "",
            "## 3-job sweep, hydra/launcher=gpus",
            "",
            f"`{sweep['command']}`: exit {sweep['exit']}, "
            f"{sweep['seconds']} s, {'ok' if sweep['ok'] else '**not ok**'}",
            "",
        ]
        md += [
            f"- {j['job']}: {j['status']}, GPUs {j['cuda_visible_devices']}, val/acc_best {fmt(j['val/acc_best'])}, "
            f"{fmt(j['wall_time_s'])} s"
            for j in sweep["jobs"]
        ]
        if sweep.get("error"):
            md += ["", "```", sweep["error"], "```"]
    if parts["loop"]:
        loop = parts["loop"]
        md += [
            "",
            "## Loop benchmark: dlfound against a plain PyTorch loop",
            "",
            loop.get("setting", ""),
            "",
            "| case | precision | plain (samples/s) | dlfound (samples/s) | ratio |",
            "|---|---|---|---|---|",
        ]
        md += [
            f"| {c['case']} | {c['precision']} | {fmt(c['plain'])} | {fmt(c['dlfound'])} | {c['ratio']:.3f} |"
            if "ratio" in c
            else f"| {c['case']} | {c.get('precision', '-')} | {c.get('skipped', c.get('error', '?'))} | | |"
            for c in loop.get("cases", [])
        ]
    if parts["paper"]:
        paper = parts["paper"]
        md += ["", "## Paper budgets", ""]
        if paper.get("skipped"):
            md.append(f"Skipped: {paper['skipped']}.")
        r20 = paper.get("resnet20") or {}
        if r20:
            m = r20.get("metrics") or {}
            md.append(
                f"- ResNet-20, CIFAR-10 (JPEG copy), the paper's schedule capped by max_time: exit "
                f"{r20.get('exit')}, {r20.get('epochs', '?')} of 182 epochs ({r20.get('global_step', '?')} "
                f"steps) in {r20.get('seconds')} s, {fmt(r20.get('train_samples_per_s'))} samples/s; test/acc "
                f"{fmt(m.get('test/acc'))}, val/acc_best {fmt(m.get('val/acc_best'))} (paper: 91.25 %)"
            )
        deg = paper.get("degradation") or {}
        if deg.get("skipped"):
            md.append(f"- degradation --budget paper: skipped, {deg['skipped']}")
        elif deg:
            md.append(
                f"- degradation --budget paper, each run capped: exit {deg.get('exit')}, {deg.get('seconds')} s"
                + (", figure in degradation.png/.md" if (out / "degradation.png").is_file() else "")
            )
            md += [
                f"  - {r['line']}: {r['status']}, {r['epochs']} epochs, "
                + ", ".join(f"{k} {fmt(v)}" for k, v in r["metrics"].items())
                for r in deg.get("runs", [])
            ]
    md += ["", "The whole log: log.txt; every figure: summary.json."]
    (out / "summary.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def cmd_env(args) -> None:
    import torch

    versions = {}
    for module in ("lightning", "hydra", "omegaconf"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError as err:
            versions[module] = f"missing ({err})"
    gpu = torch.cuda.is_available()
    record = {
        "dry_run": args.cpu,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(0) if gpu else "CPU only",
        "bf16_supported": torch.cuda.is_bf16_supported() if gpu else None,
        "data": ", ".join(sorted(p.name for p in DATA.iterdir())) if DATA.is_dir() else "none",
        **versions,
    }
    print(json.dumps(record, indent=1))
    Path(args.json).write_text(json.dumps(record, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("env", "runs", "sweep", "paper"):
        p = sub.add_parser(name)
        p.add_argument("--cpu", action="store_true", help="toy size on the CPU (the dry run)")
        p.add_argument("--json", required=True)
        if name == "runs":
            p.add_argument("which", choices=["families", "resnet18"])
            p.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed", "16-mixed"])
            p.add_argument("--jobs", type=int, default=4, help="runs at once")
        if name in ("runs", "sweep"):
            p.add_argument("--timeout", type=float, default=240, help="seconds for one dlfound command")
        if name == "paper":
            p.add_argument("--seconds", type=float, required=True)
            p.add_argument("--out", required=True, help="where the figure's PNG and sidecar go")
    p = sub.add_parser("summary")
    p.add_argument("out")
    args = parser.parse_args()
    {"env": cmd_env, "runs": cmd_runs, "sweep": cmd_sweep, "paper": cmd_paper, "summary": cmd_summary}[args.command](
        args
    )


if __name__ == "__main__":
    main()
