"""dlfound's training throughput against the tightest hand-written PyTorch loop, measured in the same run.

The plain loop is what a PyTorch user writes for data that fits in memory: the training tensors in memory (on
the GPU too where the dlfound run has `data.on_device=true`), a random permutation each epoch, no DataLoader
workers, the same model, optimizer, precision (torch.autocast, and a GradScaler for 16-mixed) and batch size.
Augmentation (crop and flip for CIFAR-10, the square's symmetries and the noise for DnCNN) is dlfound's batch op
in both loops, so the ratio measures the rest: Lightning, the task, logging and checkpoints. dlfound runs as
users run it, `dlfound train ...` in a subprocess (progress bar, logging and checkpoints on), and its training
samples/s are read from the run's results.json. Both exclude validation. Target: ratio >= 0.95.

    python scripts/benchmark_loop.py                        # MLP on digits, and LeNet-5 on MNIST if present
    DLFOUND_DATA=../shared/data python scripts/benchmark_loop.py --epochs 2 --repeats 2
    python scripts/benchmark_loop.py --device cuda --precision bf16-mixed --limit-batches 150 \\
        --cases lenet5_mnist_on_device resnet18_cifar10 vit_tiny_cifar10 dcgan_mnist dncnn --json loop.json

Cases whose data set is not under DLFOUND_DATA are reported as skipped.
"""

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from omegaconf import OmegaConf

from dlfound.data.batch_augment import augment
from dlfound.data.restoration import random_symmetry
from dlfound.runs.build import instantiate_section
from dlfound.runs.gpus import drop_nvml_cuda_check
from dlfound.runs.paths import config_dir

# name -> (overrides, the folder under DLFOUND_DATA it reads or None, the kind of plain loop)
CASES = {
    "mlp_digits": (["model=mlp", "data=digits"], None, "classify"),
    "mlp_mnist": (["experiment=mnist_mlp"], "MNIST", "classify"),
    "lenet5_mnist": (["experiment=mnist_lenet5"], "MNIST", "classify"),
    "lenet5_mnist_on_device": (["experiment=mnist_lenet5", "data.on_device=true"], "MNIST", "classify"),
    "resnet18_cifar10": (["experiment=cifar10_resnet18", "data=cifar10_jpeg"], "cifar10-jpeg", "classify"),
    "vit_tiny_cifar10": (
        [
            "experiment=cifar10_resnet18",
            "data=cifar10_jpeg",
            "model=vit_tiny",
            "optim=adamw",
            "optim.lr=1e-3",
            "optim.weight_decay=0.05",
        ],
        "cifar10-jpeg",
        "classify",
    ),
    "dcgan_mnist": (["experiment=mnist_dcgan"], "MNIST", "gan"),
    # A seeded subset of the ~233,000 DnCNN patches keeps the set-up short; the step is the preset's.
    "dncnn": (["experiment=dncnn_sigma25", "data.max_patches=20000"], "restoration", "restore"),
}
AUTOCAST = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def composed(overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides + ["sched=none"])
    cfg.paths.output_dir = "."
    return OmegaConf.to_container(cfg, resolve=True)


def optimizer_for(params, cfg: dict) -> torch.optim.Optimizer:
    kwargs = {k: v for k, v in cfg.items() if k not in ("_target_", "no_decay_norm_and_bias")}
    return get_class(cfg["_target_"])(params, **kwargs)


class Loop:
    """What every plain loop shares: the device, autocast and the gradient scaler of the precision."""

    def __init__(self, device: torch.device, precision: str):
        self.device = device
        dtype = AUTOCAST.get(precision)
        self.autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else nullcontext
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def plain_loop(cfg: dict, kind: str, epochs: int, limit: int | None, loop: Loop) -> float:
    """Samples/s of the hand-written loop over the same training tensors."""
    # A hand-written loop does not import Lightning, so it does not pay for Lightning's NVML-based CUDA check at
    # every optimizer step either (dlfound.runs.gpus.drop_nvml_cuda_check, which dlfound runs do too).
    drop_nvml_cuda_check()
    # Nor does its process hold Hydra's and Lightning's objects, which this one imported to build the data: frozen,
    # the garbage collector skips them, as dlfound's runs do (dlfound.runs.training.fit).
    gc.freeze()
    torch.manual_seed(0)
    device = loop.device
    datamodule = instantiate_section(cfg, "data")
    datamodule.setup("fit")
    model = instantiate_section(cfg, "model").to(device)
    if kind == "restore":
        x_all, y_all = datamodule.patches, None
    else:
        x_all, y_all = datamodule.splits["train"].x, datamodule.splits["train"].y
        if cfg["data"].get("on_device"):
            x_all, y_all = x_all.to(device), y_all.to(device)
    if kind == "classify":
        optimizer = optimizer_for(model.parameters(), cfg["optim"])
        mean = torch.tensor(datamodule.mean, device=device).view(1, -1, *[1] * (x_all.dim() - 2))
        std = torch.tensor(datamodule.std, device=device).view(1, -1, *[1] * (x_all.dim() - 2))
    elif kind == "gan":
        opt_g = optimizer_for(model.generator.parameters(), {**cfg["optim"], **cfg["task"]["optim_g"]})
        opt_d = optimizer_for(model.discriminator.parameters(), {**cfg["optim"], **cfg["task"]["optim_d"]})
    else:
        optimizer = optimizer_for(model.parameters(), cfg["optim"])
        sigma = cfg["data"]["sigma"] / 255
    batch_size, n, seen, seconds = datamodule.batch_size, len(x_all), 0, 0.0
    model.train()
    for _ in range(epochs):
        loop.sync()
        start = time.perf_counter()
        for i, idx in enumerate(torch.randperm(n, device=x_all.device).split(batch_size)):
            if limit is not None and i == limit:
                break
            x = x_all[idx].to(device, non_blocking=True)
            if kind == "classify":
                x = (x.float() / 255 - mean) / std
                if datamodule.augment != "none":
                    x = augment(x, datamodule.augment, datamodule.crop_padding)
                with loop.autocast():
                    loss = F.cross_entropy(model(x), y_all[idx].to(device, non_blocking=True))
                loop.step(loss, optimizer)
            elif kind == "gan":
                real = x.float() / 255 * 2 - 1
                with loop.autocast():
                    with torch.no_grad():
                        fake = model.generator(torch.randn(len(x), model.latent_dim, device=device))
                    d_loss = (
                        F.softplus(-model.discriminator(real)).mean() + F.softplus(model.discriminator(fake)).mean()
                    )
                loop.step(d_loss, opt_d)
                with loop.autocast():
                    fake = model.generator(torch.randn(len(x), model.latent_dim, device=device))
                    g_loss = F.softplus(-model.discriminator(fake)).mean()
                loop.step(g_loss, opt_g)
            else:
                clean = random_symmetry(x.float() / 255, datamodule.augment)
                noisy = clean + sigma * torch.randn_like(clean)
                with loop.autocast():
                    loss = F.mse_loss(model(noisy), clean)
                loop.step(loss, optimizer)
            seen += len(idx)
        loop.sync()
        seconds += time.perf_counter() - start
    return seen / seconds


def dlfound_run(overrides: list[str], epochs: int, threads: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DLFOUND_OUTPUTS": tmp, "OMP_NUM_THREADS": str(threads)}
        cmd = [
            sys.executable,
            "-m",
            "dlfound",
            "train",
            *overrides,
            "sched=none",
            f"trainer.max_epochs={epochs}",
            "trainer.limit_val_batches=2",
            "test=false",
            "print_config=false",
        ]
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[2:])} exited {proc.returncode}: {proc.stderr[-1500:]}")
        [results] = Path(tmp).rglob("results.json")
        return json.loads(results.read_text())["train_samples_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=None)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--limit-batches",
        type=int,
        default=None,
        help="training batches per epoch in both loops (trainer.limit_train_batches); default all",
    )
    parser.add_argument("--repeats", type=int, default=1, help="alternate plain/dlfound runs; report the best of each")
    parser.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch threads for both; 1 gives steady figures on a shared machine",
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cuda: dlfound runs trainer=gpu")
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed", "16-mixed"])
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--overrides",
        nargs="*",
        default=[],
        help="more overrides for both loops, e.g. data.batch_size=16 for a dry run",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = True  # as Lightning's Trainer sets it (benchmark=None, deterministic off)
    data_dir = Path(os.environ.get("DLFOUND_DATA", "") or "/nonexistent")
    mnist_here = (data_dir / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    cases = args.cases or (["mlp_digits", "lenet5_mnist"] if mnist_here else ["mlp_digits"])
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    setting = (
        f"torch {torch.__version__}, {name}, {args.precision}, {args.epochs} epochs"
        f"{f' of {args.limit_batches} batches' if args.limit_batches else ''}, best of {args.repeats}"
        f"{'; ' + ' '.join(args.overrides) if args.overrides else ''}"
    )
    print(setting)
    print(f"{'case':<24}{'plain loop (samples/s)':>24}{'dlfound (samples/s)':>22}{'ratio':>8}", flush=True)
    extra = ["trainer=gpu" if device.type == "cuda" else "trainer=cpu", f"trainer.precision={args.precision}"]
    extra += [f"trainer.limit_train_batches={args.limit_batches}"] if args.limit_batches else []
    extra += args.overrides
    results = []
    for case in cases:
        overrides, data, kind = CASES[case]
        record = {"case": case, "precision": args.precision}
        results.append(record)
        if data and not (data_dir / data).is_dir():
            record["skipped"] = f"no {data} under DLFOUND_DATA"
            print(f"{case:<24}  skipped: {record['skipped']}", flush=True)
            continue
        try:
            cfg = composed(overrides + extra)
            loop = Loop(device, args.precision)
            plain, ours = 0.0, 0.0
            for _ in range(args.repeats):
                plain = max(plain, plain_loop(cfg, kind, args.epochs, args.limit_batches, loop))
                ours = max(ours, dlfound_run(overrides + extra, args.epochs, args.threads))
        except Exception as err:  # one failing case must not cost the others their figures
            record["error"] = f"{type(err).__name__}: {str(err)[-600:]}"
            print(f"{case:<24}  FAILED: {record['error']}", flush=True)
            continue
        record.update(plain=plain, dlfound=ours, ratio=ours / plain)
        print(f"{case:<24}{plain:>24,.0f}{ours:>22,.0f}{ours / plain:>8.3f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"setting": setting, "cases": results}, indent=1))


if __name__ == "__main__":
    main()
