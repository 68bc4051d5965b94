"""What `callbacks=diagnostics` costs: training samples/s with and without it, measured in the same run.

Each case trains twice per repeat, alternating with and without the callback (at its default interval of 50
steps, histograms on), as users run it (`dlfound train` in a subprocess); samples/s come from results.json
(training batches only, so the callback's work on the measured steps is inside the timed span). The overhead
is 1 - with / without, from the median of the repeats. Target: below 5 %.

    python scripts/diagnostics_overhead.py                       # MLPs on digits
    DLFOUND_DATA=../shared/data python scripts/diagnostics_overhead.py --cases lenet5_mnist,resnet20_cifar
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = {
    "mlp_digits": ["model=mlp", "data=digits", "trainer.max_epochs=40"],
    "deep_mlp_digits": ["model=deep_mlp", "data=digits", "trainer.max_epochs=40"],
    "lenet5_mnist": ["experiment=mnist_lenet5", "trainer.max_epochs=1"],
    "resnet20_cifar": [
        "experiment=cifar10_resnet20",
        "data=cifar10_jpeg",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=100",
    ],
}


def samples_per_s(overrides: list[str], folder: Path) -> float:
    command = [
        sys.executable,
        "-m",
        "dlfound",
        "train",
        *overrides,
        f"hydra.run.dir={folder}",
        "print_config=false",
        "test=false",
        "trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0",
    ]
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return json.loads((folder / "results.json").read_text())["train_samples_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="mlp_digits,deep_mlp_digits", help=f"comma-separated: {', '.join(CASES)}")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'case':<18} {'without (samples/s)':>20} {'with':>12} {'overhead':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            runs = {"without": [], "with": []}
            for repeat in range(args.repeats):
                for kind, extra in (("without", []), ("with", ["callbacks=diagnostics"])):
                    folder = Path(tmp) / f"{case}_{kind}_{repeat}"
                    runs[kind].append(samples_per_s([*CASES[case], *extra], folder))
            without, with_ = statistics.median(runs["without"]), statistics.median(runs["with"])
            print(f"{case:<18} {without:>20,.0f} {with_:>12,.0f} {1 - with_ / without:>9.1%}", flush=True)


if __name__ == "__main__":
    main()
