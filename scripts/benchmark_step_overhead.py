"""What dlfound adds to every optimizer step, in microseconds, beside the ratios of the cases users run: all
measured in one run, each case's plain loop and dlfound run alternated (best of --repeats).

Overhead per step = (seconds per step of `dlfound train`) - (seconds per step of the plain PyTorch loop), for
a model whose step is nearly free (softmax regression on the in-memory 8x8 digits, batch 16: the plain step is
tens of microseconds), so what remains is the Python around the step: Lightning's loops, callbacks, logging,
the progress bar. The same difference and the throughput ratio are printed for the MLP on digits (the default
run), LeNet-5 on MNIST and the char-level GPT on Tiny Shakespeare.

The clock: the run's own training samples/s (results.json: training batches only, from each epoch's start to
its validation) against the plain loop's. Both loops use one thread.

The plain loops are those of scripts/benchmark_loop.py and scripts/benchmark_gpt.py; dlfound runs as users run
it, a `dlfound train` subprocess (progress bar, logging, checkpoints on), its samples/s read from results.json
(validation excluded).
Goals: overhead < 100 us/step, every ratio >= 0.95.

    python scripts/benchmark_step_overhead.py                                   # the free step and the MLP
    DLFOUND_DATA=../shared/data python scripts/benchmark_step_overhead.py --repeats 2   # + LeNet-5, char GPT
    python scripts/benchmark_step_overhead.py --before-src ../main/src     # + another checkout's dlfound, as "before"
"""

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_gpt  # noqa: E402
import benchmark_loop  # noqa: E402

FREE_STEP = ["model=softmax", "data=digits", "data.batch_size=16"]
# name -> (overrides, folder under DLFOUND_DATA or None, batch size or None for the config's)
CASES = {
    "free_step_digits": (FREE_STEP, None),
    "mlp_digits": (["model=mlp", "data=digits"], None),
    "lenet5_mnist": (["experiment=mnist_lenet5"], "MNIST"),
    "char_gpt": ([benchmark_gpt.PRESET], "text"),
}


def with_source(source: str | None, run, *args) -> float:
    """run(*args) with the `dlfound` subprocesses importing dlfound from `source` (None: this checkout's)."""
    if source is None:
        return run(*args)
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(Path(source).resolve())
    try:
        return run(*args)
    finally:
        os.environ.pop("PYTHONPATH") if saved is None else os.environ.update(PYTHONPATH=saved)


def per_step_seconds(case: str, overrides: list[str], args, data_dir: Path) -> tuple[float, list[float]]:
    """Seconds per optimizer step of the plain loop and of dlfound from each of the sources (this checkout, then
    --before-src), best of args.repeats each, alternated."""
    sources = [None] + ([args.before_src] if args.before_src else [])
    if case == "char_gpt":
        text, batch = str(data_dir / "text" / "tinyshakespeare.txt"), 12
        plain_run = lambda: benchmark_gpt.plain_loop(text, args.gpt_steps)  # noqa: E731
        ours_args = (benchmark_gpt.dlfound_run, text, args.gpt_steps, args.threads)
    else:
        extra = ["trainer=cpu"]
        limit = args.limit_batches if case == "lenet5_mnist" else None
        extra += [f"trainer.limit_train_batches={limit}"] if limit else []
        cfg = benchmark_loop.composed(overrides + extra)
        batch = cfg["data"]["batch_size"]
        loop = benchmark_loop.Loop(torch.device("cpu"), "32-true")
        plain_run = lambda: benchmark_loop.plain_loop(cfg, "classify", args.epochs, limit, loop)  # noqa: E731
        ours_args = (benchmark_loop.dlfound_run, overrides + extra, args.epochs, args.threads)
    plain, ours = 0.0, [0.0] * len(sources)
    for _ in range(args.repeats):
        plain = max(plain, plain_run())
        for i, source in enumerate(sources):
            ours[i] = max(ours[i], with_source(source, *ours_args))
    return batch / plain, [batch / rate for rate in ours]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=None)
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the digits and MNIST cases")
    parser.add_argument("--limit-batches", type=int, default=150, help="LeNet-5's training batches per epoch")
    parser.add_argument("--gpt-steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both; 1 is steadiest when shared")
    parser.add_argument("--before-src", help="also time the dlfound of this source folder (another checkout's src/)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data_dir = Path(os.environ.get("DLFOUND_DATA", "") or "/nonexistent")
    print(
        f"torch {torch.__version__}, CPU ({os.cpu_count()} cores), {args.threads} thread(s), best of {args.repeats}; "
        f"{args.epochs} epochs (LeNet-5: of {args.limit_batches} batches), GPT {args.gpt_steps} steps"
    )
    head = f"{'case':<20}{'plain us/step':>15}{'dlfound us/step':>17}{'overhead us/step':>18}{'ratio':>8}"
    if args.before_src:
        head += f"{'before us/step':>16}{'overhead':>10}{'ratio':>8}"
    print(head, flush=True)
    for case in args.cases or list(CASES):
        overrides, folder = CASES[case]
        if folder and not (data_dir / folder).is_dir():
            print(f"{case:<20}  skipped: no {folder} under DLFOUND_DATA", flush=True)
            continue
        plain, (ours, *before) = per_step_seconds(case, overrides, args, data_dir)
        line = f"{case:<20}{plain * 1e6:>15,.0f}{ours * 1e6:>17,.0f}{(ours - plain) * 1e6:>18,.0f}{plain / ours:>8.3f}"
        for seconds in before:
            line += f"{seconds * 1e6:>16,.0f}{(seconds - plain) * 1e6:>10,.0f}{plain / seconds:>8.3f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
