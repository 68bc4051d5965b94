"""Training throughput of every zoo model on CIFAR-sized input: dlfound's training step against a plain loop.

For each model (3x32x32 input, 10 classes, small stem) the same run times forward + backward + SGD step in
  - a plain PyTorch loop: `loss = cross_entropy(net(x), y); zero_grad; backward; step`, and
  - dlfound: `dlfound.tasks.classification.ClassificationTask` fitted by a real `lightning.Trainer` (no logger,
    checkpoints, progress bar or summary), so the task's logging and metrics are part of the cost,
over the same in-memory random batches (already on the device), with the same model, batch size and
optimizer (SGD, lr 0.1, momentum 0.9). The first `--warmup` steps are not timed (cuDNN autotuning, allocator
warm-up); then samples/s over `--steps` steps, synchronising the device before reading the clock. Both paths
get `torch.backends.cudnn.benchmark = True`.

    python scripts/benchmark_zoo.py                               # CPU: a few family representatives
    python scripts/benchmark_zoo.py --models resnet18 vit_tiny --batch-size 32 --steps 5 --repeats 3
    python scripts/benchmark_zoo.py --models all                  # GPU default: the whole zoo
    python scripts/benchmark_zoo.py --precision 32-true bf16-mixed --channels-last both   # on a GPU

Defaults: on a GPU batch 128, 10 warm-up + 30 timed steps, every zoo model, fp32 and bf16-mixed, contiguous
and channels_last; on CPU batch 32, 2 warm-up + 5 timed steps, fp32, and only CPU_MODELS (the whole zoo at
these settings takes far longer than 5 minutes on two cores; pass --models all for it).
"""

import argparse
import logging
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from dlfound.models import ZOO

REPO = Path(__file__).resolve().parents[1]
CPU_MODELS = ["resnet20", "resnet18", "vgg11_bn", "mobilenet_v2", "densenet_bc100", "vit_tiny"]
AUTOCAST = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def build(name: str, num_classes: int = 10):
    # Composed (not loaded) so that the config's bases (_zoo, _shape) are in it; the data keys are set below.
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        model = compose("train", overrides=[f"model={name}"]).model
    cfg = OmegaConf.create(
        {
            "data": {"in_channels": 3, "image_size": 32, "num_classes": num_classes, "stem": "small"},
            "model": OmegaConf.to_container(model, resolve=False),
        }
    )
    return instantiate(cfg.model, _convert_="all")


def random_batches(count: int, batch_size: int, num_classes: int, device: torch.device):
    g = torch.Generator().manual_seed(0)
    return [
        (
            torch.randn(batch_size, 3, 32, 32, generator=g).to(device),
            torch.randint(0, num_classes, (batch_size,), generator=g).to(device),
        )
        for _ in range(count)
    ]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_loop(name, batches, steps, warmup, device, precision, channels_last) -> float:
    torch.manual_seed(0)
    net = build(name).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")
    autocast = torch.autocast(device.type, dtype=AUTOCAST[precision]) if precision in AUTOCAST else nullcontext()
    net.train()
    start = None
    for step in range(warmup + steps):
        if step == warmup:
            sync(device)
            start = time.perf_counter()
        x, y = batches[step % len(batches)]
        if channels_last:
            x = x.contiguous(memory_format=fmt)
        with autocast:
            loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    sync(device)
    return steps * batches[0][1].shape[0] / (time.perf_counter() - start)


def dlfound_loop(name, batches, steps, warmup, device, precision, channels_last) -> float:
    import lightning as L
    from torch.utils.data import DataLoader, Dataset

    from dlfound.tasks.classification import ClassificationTask

    class Batches(Dataset):
        def __len__(self):
            return warmup + steps

        def __getitem__(self, i):
            return batches[i % len(batches)]

    class Clock(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == warmup:
                sync(device)
                self.start = time.perf_counter()

        def on_train_end(self, trainer, pl_module):
            sync(device)
            self.seconds = time.perf_counter() - self.start

    torch.manual_seed(0)
    net = build(name)
    extra = {"channels_last": True} if channels_last else {}
    task = ClassificationTask(net, 10, optim={"_target_": "torch.optim.SGD", "lr": 0.1, "momentum": 0.9}, **extra)
    clock = Clock()
    trainer = L.Trainer(
        accelerator=device.type,
        devices=1,
        precision=precision,
        max_steps=warmup + steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[clock],
    )
    trainer.fit(task, train_dataloaders=DataLoader(Batches(), batch_size=None))
    return steps * batches[0][1].shape[0] / clock.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--models", nargs="+", default=None, help=f"zoo config names, or all (default on CPU: {' '.join(CPU_MODELS)})"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=None, help="default 128 on a GPU, 32 on CPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 30 on a GPU, 5 on CPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 10 GPU, 2 CPU)")
    parser.add_argument("--repeats", type=int, default=1, help="alternate plain/dlfound runs; report the best of each")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    parser.add_argument(
        "--precision",
        nargs="+",
        default=None,
        choices=["32-true", "bf16-mixed", "16-mixed"],
        help="default 32-true and bf16-mixed on a GPU, 32-true on CPU",
    )
    parser.add_argument(
        "--channels-last",
        nargs="?",
        const="on",
        default=None,
        choices=["off", "on", "both"],
        help="run with channels_last memory format (both: contiguous and channels_last; "
        "default both on a GPU, off on CPU)",
    )
    args = parser.parse_args()
    import lightning  # noqa: F401  (configures its loggers on import; quieten them after)

    for logger in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    for message in (".*does not have many workers.*", ".*no `val_dataloader`.*", ".*LeafSpec.*"):
        warnings.filterwarnings("ignore", message)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    models = ZOO if args.models == ["all"] or (args.models is None and gpu) else (args.models or CPU_MODELS)
    unknown = sorted(set(models) - set(ZOO))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from: {' '.join(ZOO)}")
    batch_size = args.batch_size or (128 if gpu else 32)
    steps, warmup = args.steps or (30 if gpu else 5), args.warmup if args.warmup is not None else (10 if gpu else 2)
    precisions = args.precision or (["32-true", "bf16-mixed"] if gpu else ["32-true"])
    formats = {"off": [False], "on": [True], "both": [False, True]}[args.channels_last or ("both" if gpu else "off")]
    torch.backends.cudnn.benchmark = True
    if args.threads:
        torch.set_num_threads(args.threads)
    batches = random_batches(4, batch_size, 10, device)

    name = torch.cuda.get_device_name(device) if gpu else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"torch {torch.__version__}, {name}; batch {batch_size}, {warmup} warm-up + {steps} timed steps, 3x32x32, "
        f"best of {args.repeats}"
    )
    header = (
        f"{'model':<18}{'params':>9}{'precision':>12}{'layout':>9}{'plain (samples/s)':>19}"
        f"{'dlfound (samples/s)':>21}{'ratio':>7}"
    )
    print(header)
    print("-" * len(header))
    for model in models:
        with torch.device("meta"):
            params = sum(p.numel() for p in build(model).parameters())
        for precision in precisions:
            for channels_last in formats:
                plain = ours = 0.0
                for _ in range(args.repeats):
                    plain = max(plain, plain_loop(model, batches, steps, warmup, device, precision, channels_last))
                    ours = max(ours, dlfound_loop(model, batches, steps, warmup, device, precision, channels_last))
                layout = "NHWC" if channels_last else "NCHW"
                print(
                    f"{model:<18}{params / 1e6:>8.2f}M{precision:>12}{layout:>9}{plain:>19,.1f}{ours:>21,.1f}"
                    f"{ours / plain:>7.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
