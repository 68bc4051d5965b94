"""The char-level GPT of `experiment=shakespeare_char_gpt`: dlfound's training throughput beside nanoGPT's plain loop.

The plain loop is nanoGPT's train.py reduced to its core, on the same text: random windows by `torch.randint`
and `torch.stack`, the same network (built from the same config), AdamW with weight decay on matrices only,
warm-up and cosine learning rate, gradient clipping at 1.0. dlfound runs as users run it, `dlfound train
experiment=shakespeare_char_gpt` in a subprocess (progress bar, logging, checkpoints on), and its training
windows/s come from the run's results.json (validation and text samples excluded). Target: ratio >= 0.9.

    python scripts/benchmark_gpt.py --text ../shared/data/text/tinyshakespeare.txt --steps 400 --threads 2
"""

import argparse
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from dlfound.runs.build import compose, instantiate_section
from dlfound.runs.gpus import drop_nvml_cuda_check

PRESET = "experiment=shakespeare_char_gpt"


def plain_loop(text: str, steps: int) -> float:
    """Windows per second of the hand-written loop."""
    drop_nvml_cuda_check()  # as benchmark_loop.plain_loop: no NVML check, and a frozen heap
    gc.freeze()
    torch.manual_seed(0)
    cfg = OmegaConf.to_container(compose([PRESET, f"data.path={text}", "hydra.runtime.output_dir=."]), resolve=True)
    datamodule = instantiate_section(cfg, "data")
    cfg["model"]["vocab_size"] = datamodule.vocab_size
    model = instantiate_section(cfg, "model")
    data, block, batch = datamodule.train_ids, datamodule.block_size, datamodule.batch_size
    optim = cfg["optim"]
    groups = [
        {"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": optim["weight_decay"]},
        {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=optim["lr"], betas=tuple(optim["betas"]))
    warmup = max(1, round(cfg["sched"]["warmup_fraction"] * steps))

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return cfg["sched"]["min_factor"] + (1 - cfg["sched"]["min_factor"]) * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    start = time.perf_counter()
    for _ in range(steps):
        offsets = torch.randint(len(data) - block - 1, (batch,))
        x = torch.stack([data[i : i + block] for i in offsets])
        y = torch.stack([data[i + 1 : i + 1 + block] for i in offsets])
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
    return steps * batch / (time.perf_counter() - start)


def dlfound_run(text: str, steps: int, threads: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DLFOUND_OUTPUTS": tmp, "OMP_NUM_THREADS": str(threads)}
        cmd = [
            sys.executable,
            "-m",
            "dlfound",
            "train",
            PRESET,
            f"data.path={text}",
            "trainer.max_epochs=1",
            f"data.steps_per_epoch={steps}",
            "data.val_batches=1",
            "task.sample_length=0",
            "test=false",
            "print_config=false",
        ]
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        [results] = Path(tmp).rglob("results.json")
        return json.loads(results.read_text())["train_samples_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", required=True, help="the corpus, e.g. ../shared/data/text/tinyshakespeare.txt")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=1, help="alternate plain/dlfound runs; report the best of each")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    text = str(Path(args.text).resolve())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps, best of {args.repeats}")
    plain, ours = 0.0, 0.0
    for _ in range(args.repeats):
        plain = max(plain, plain_loop(text, args.steps))
        ours = max(ours, dlfound_run(text, args.steps, args.threads))
    print(f"{'case':<22}{'plain loop (windows/s)':>24}{'dlfound (windows/s)':>22}{'ratio':>8}")
    print(f"{'shakespeare_char_gpt':<22}{plain:>24,.1f}{ours:>22,.1f}{ours / plain:>8.3f}")


if __name__ == "__main__":
    main()
