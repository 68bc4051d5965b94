"""How long dlfound's commands take to answer: `dlfound --help`, each command's `--help`, `dlfound list` and
`dlfound list GROUP`, each run as a user runs it (a fresh `python -m dlfound` subprocess), best of N wall-clock
seconds. Goals: --help under 1 s, `dlfound list` (every group) and `dlfound list model` under 2 s on an idle machine.

    python scripts/benchmark_commands.py                     # best of 3
    python scripts/benchmark_commands.py --repeats 5 --only list
"""

import argparse
import os
import subprocess
import sys
import time

from dlfound.cli import COMMANDS
from dlfound.commands.list import GROUPS

GOAL_SECONDS = {"help": 1.0, "list": 2.0}


def seconds(argv: list[str], repeats: int) -> float:
    """Best wall-clock time of `python -m dlfound ARGV` over REPEATS runs."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "dlfound", *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        best = min(best, time.perf_counter() - start)
        if proc.returncode != 0:
            raise RuntimeError(f"dlfound {' '.join(argv)} exited {proc.returncode}: {proc.stderr[-800:]}")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["help", "list"], help="time only the --help or only the list commands")
    args = parser.parse_args()
    cases = []
    if args.only != "list":
        cases += [("help", ["--help"])] + [("help", [name, "--help"]) for name in COMMANDS]
    if args.only != "help":
        cases += [("list", ["list"]), ("list", ["list", *GROUPS])] + [("list", ["list", group]) for group in GROUPS]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, best of {args.repeats} (wall seconds)")
    print(f"{'command':<44}{'seconds':>10}{'goal':>8}", flush=True)
    slowest = {}
    for kind, argv in cases:
        took = seconds(argv, args.repeats)
        slowest[kind] = max(slowest.get(kind, 0.0), took)
        mark = "" if took < GOAL_SECONDS[kind] else "  over"
        print(f"{'dlfound ' + ' '.join(argv):<44}{took:>10.2f}{GOAL_SECONDS[kind]:>8.1f}{mark}", flush=True)
    for kind, took in slowest.items():
        print(f"slowest {kind}: {took:.2f} s (goal {GOAL_SECONDS[kind]:.1f} s)")


if __name__ == "__main__":
    main()
