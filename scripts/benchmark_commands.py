"""How long dlfound's commands take to answer: `dlfound --help`, each command's `--help`, `dlfound list` and
`dlfound list GROUP`, each run as a user runs it (a fresh `python -m dlfound` subprocess), best of N wall-clock
seconds. Goals: --help under 1 s, `dlfound list` (every group) and `dlfound list model` under 2 s on an idle machine.

    python scripts/benchmark_commands.py                     # best of 3
    python scripts/benchmark_commands.py --repeats 5 --only list
    python scripts/benchmark_commands.py --before-src ../main/src     # beside another checkout's, alternated

The caches of `dlfound list model` and `dlfound train --help` are the user's (run each once before timing the
warm case; XDG_CACHE_HOME=$(mktemp -d) times the cold one).
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from dlfound.cli import COMMANDS
from dlfound.commands.list import GROUPS

GOAL_SECONDS = {"help": 1.0, "list": 2.0}


def seconds(argv: list[str], source: str | None = None, limit: float | None = None) -> float:
    """Wall-clock time of `python -m dlfound ARGV` (importing dlfound from `source` when given); inf past `limit`."""
    env = {**os.environ, "COLUMNS": "200"}
    if source:
        env["PYTHONPATH"] = source
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "dlfound", *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=limit,
        )
    except subprocess.TimeoutExpired:
        return float("inf")
    if proc.returncode != 0:
        raise RuntimeError(f"dlfound {' '.join(argv)} exited {proc.returncode}: {proc.stderr[-800:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["help", "list"], help="time only the --help or only the list commands")
    parser.add_argument("--before-src", help="also time the dlfound of this source folder (another checkout's src/)")
    parser.add_argument("--before-limit", type=float, default=60.0, help="seconds after which a before run stops")
    args = parser.parse_args()
    cases = []
    if args.only != "list":
        cases += [("help", ["--help"])] + [("help", [name, "--help"]) for name in COMMANDS]
    if args.only != "help":
        cases += [("list", ["list"]), ("list", ["list", *GROUPS])] + [("list", ["list", group]) for group in GROUPS]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, best of {args.repeats} (wall seconds)")
    before_src = str(Path(args.before_src).resolve()) if args.before_src else None
    print(f"{'command':<44}{'seconds':>10}{'goal':>8}" + (f"{'before':>10}" if before_src else ""), flush=True)
    slowest = {}
    for kind, argv in cases:
        took, before = float("inf"), float("inf")
        for _ in range(args.repeats):  # alternated, so that both see the same load
            took = min(took, seconds(argv))
            if before_src and before != float("inf") or before_src and _ == 0:
                before = min(before, seconds(argv, before_src, args.before_limit))
        slowest[kind] = max(slowest.get(kind, 0.0), took)
        mark = "" if took < GOAL_SECONDS[kind] else "  over"
        line = f"{'dlfound ' + ' '.join(argv):<44}{took:>10.2f}{GOAL_SECONDS[kind]:>8.1f}"
        if before_src:
            line += f"{before:>10.2f}" if before != float("inf") else f"{'>' + str(int(args.before_limit)):>10}"
        print(line + mark, flush=True)
    for kind, took in slowest.items():
        print(f"slowest {kind}: {took:.2f} s (goal {GOAL_SECONDS[kind]:.1f} s)")


if __name__ == "__main__":
    main()
