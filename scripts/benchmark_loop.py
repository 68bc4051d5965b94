"""dlfound's training throughput against the tightest hand-written PyTorch loop, measured in the same run.

The plain loop is what a PyTorch user writes for data that fits in memory: the training tensors in memory, a
random permutation each epoch, no DataLoader workers, the same model, optimizer and batch size. dlfound runs
as users run it, `dlfound train ...` in a subprocess (progress bar, logging and checkpoints on), and its
training samples/s are read from the run's results.json. Both exclude validation. Target: ratio >= 0.95.

    python scripts/benchmark_loop.py                        # MLP on digits, and LeNet-5 on MNIST if present
    DLFOUND_DATA=../shared/data python scripts/benchmark_loop.py --epochs 2 --repeats 2
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from dlfound.runs.paths import config_dir

CASES = {
    "mlp_digits": ["model=mlp", "data=digits"],
    "mlp_mnist": ["experiment=mnist_mlp"],
    "lenet5_mnist": ["experiment=mnist_lenet5"],
}


def composed(overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides + ["sched=none"])
    cfg.paths.output_dir = "."
    return OmegaConf.to_container(cfg, resolve=True)


def plain_loop(cfg: dict, epochs: int) -> float:
    """Samples/s of the hand-written loop over the same training tensors."""
    torch.manual_seed(0)
    datamodule = instantiate(cfg["data"], _convert_="all")
    datamodule.setup("fit")
    x_all, y_all = datamodule.splits["train"].x, datamodule.splits["train"].y
    mean = torch.tensor(datamodule.mean).view(1, -1, 1, 1)
    std = torch.tensor(datamodule.std).view(1, -1, 1, 1)
    model = instantiate(cfg["model"], _convert_="all")
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["optim"]["lr"])
    batch_size, n, seen, seconds = datamodule.batch_size, len(y_all), 0, 0.0
    for _ in range(epochs):
        start = time.perf_counter()
        for idx in torch.randperm(n).split(batch_size):
            x = (x_all[idx].float() / 255 - mean) / std
            loss = F.cross_entropy(model(x), y_all[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(idx)
        seconds += time.perf_counter() - start
    return seen / seconds


def dlfound_run(overrides: list[str], epochs: int, threads: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DLFOUND_OUTPUTS": tmp, "OMP_NUM_THREADS": str(threads)}
        cmd = [sys.executable, "-m", "dlfound", "train", *overrides, "sched=none", f"trainer.max_epochs={epochs}",
               "test=false", "print_config=false"]
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        [results] = Path(tmp).rglob("results.json")
        return json.loads(results.read_text())["train_samples_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=None)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="alternate plain/dlfound runs; report the best of each")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads for both; 1 gives steady figures on a shared machine")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data_dir = os.environ.get("DLFOUND_DATA", "")
    mnist_here = (Path(data_dir) / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file() if data_dir else False
    cases = args.cases or (["mlp_digits", "lenet5_mnist"] if mnist_here else ["mlp_digits"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.epochs} epochs, best of {args.repeats}")
    print(f"{'case':<14}{'plain loop (samples/s)':>24}{'dlfound (samples/s)':>22}{'ratio':>8}")
    for case in cases:
        cfg = composed(CASES[case])
        plain, ours = 0.0, 0.0
        for _ in range(args.repeats):
            plain = max(plain, plain_loop(cfg, args.epochs))
            ours = max(ours, dlfound_run(CASES[case], args.epochs, args.threads))
        print(f"{case:<14}{plain:>24,.0f}{ours:>22,.0f}{ours / plain:>8.3f}")


if __name__ == "__main__":
    main()
