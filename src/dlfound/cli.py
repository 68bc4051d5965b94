"""The `dlfound` command: a table from command name to its module in dlfound.commands (each with `main(argv)`),
its arguments and its summary, from which `dlfound --help` is made.

Nothing heavy is imported here, so `dlfound --help` answers at once without loading torch.
"""

import importlib
import os
import sys
from typing import NamedTuple


class Command(NamedTuple):
    module: str  # of dlfound.commands, imported only when the command runs
    usage: str  # the arguments, on one line
    summary: tuple[str, ...]  # the help's lines


# The commands, in the order `dlfound --help` lists them.
COMMANDS = {
    "train": Command(
        "train",
        "[OVERRIDES]",
        (
            "train and test a model; Hydra overrides, e.g. model=lenet5 data=mnist",
            "-m / --multirun sweeps:  dlfound train -m optim.lr=0.1,0.01",
            "--cfg job prints the composed config;  --help lists the config groups",
            "resume=RUN_FOLDER continues a run from its last checkpoint",
        ),
    ),
    "eval": Command(
        "eval", "ckpt_path=PATH [OVERRIDES]", ("re-test a checkpoint and compare with the metrics its run recorded",)
    ),
    "list": Command("list", "[GROUP]", ("tables of models, datasets, optimizers, schedulers, experiments, ...",)),
    "report": Command(
        "report",
        "PATH... [--metric M] [--csv F] [--markdown F] [--plot DIR]",
        ("compare runs and sweeps: one row per run, seeds grouped as mean ± std",),
    ),
    "figure": Command(
        "figure",
        "[NAME] [--budget cpu|long|paper] [--redraw] [--out FILE] [OVERRIDES]",
        (
            "run a lecture's figure (vanishing, init, optimizers, batchnorm, dropout,",
            "lr_schedules, degradation, ...) and draw it into one PNG; no NAME lists them",
        ),
    ),
    "sample": Command(
        "sample", "ckpt_path=PATH [n=64 ...]", ("write a PNG grid of samples from a generative model's checkpoint",)
    ),
    "compare": Command(
        "compare",
        "features=CLASSIFIER.ckpt [n=10000 ...] RUN_OR_CKPT[@SAMPLER[:STEPS]]...",
        (
            "score generative models of every family on one scale: FID and KID (images),",
            "modes and MMD² (2-D), bits/dim, training and sampling time; one table",
        ),
    ),
    "guided": Command(
        "guided",
        "ckpt_path=PATH classifier=PATH [guidance=0,1,3 ...]",
        (
            "how often a classifier sees the requested class in a conditional model's",
            "samples, per guidance scale (classifier-free guidance)",
        ),
    ),
    "ensemble": Command(
        "ensemble",
        "SWEEP [--device cpu]",
        (
            "a deep ensemble of a sweep's classifiers against its members: error, NLL,",
            "ECE, Brier, OOD AUROC, a reliability diagram",
        ),
    ),
    "ntk-scaling": Command(
        "ntk_scaling",
        "SWEEP [--out FILE]",
        (
            "a width sweep's distance from its tangent kernel against the width, with",
            "log-log slopes and a plot (Lee et al. 2019, Fig. 1)",
        ),
    ),
    "restore": Command(
        "restore",
        "ckpt_path=PATH input=IMAGE output=OUT [sigma=25 | scale=2 | task=deblur|inpaint ...]",
        (
            "apply a trained restoration model to an image of any size, or use a",
            "denoiser as the prior of a plug-and-play deblurring or inpainting solver",
        ),
    ),
    "generate": Command(
        "generate",
        'ckpt_path=PATH [prompt="ROMEO:"] [length=500] [temperature=0.8] [top_k=40]',
        ("stream text from a language model's checkpoint",),
    ),
    "predict": Command(
        "predict",
        "ckpt_path=PATH input=IMAGE|FOLDER [top_k=5] [output=predictions.csv] [device=auto]",
        ("classify an image (top-k classes with names) or a folder (a CSV) with a", "trained classifier"),
    ),
}
SUMMARY_COLUMN = 26


def usage() -> str:
    """`dlfound --help`, made from the command table."""
    lines = [
        "usage: dlfound COMMAND [ARGS]",
        "",
        "Deep-learning foundations experiments from composable configs.",
        "",
        "commands:",
    ]
    for name, command in COMMANDS.items():
        head = f"  {name} {command.usage}"
        first, *rest = command.summary
        if len(head) < SUMMARY_COLUMN - 1:
            lines.append(head.ljust(SUMMARY_COLUMN) + first)
        else:
            lines += [head, " " * SUMMARY_COLUMN + first]
        lines += [" " * SUMMARY_COLUMN + line for line in rest]
    lines += [
        "",
        "options:",
        "  -h, --help".ljust(SUMMARY_COLUMN) + "this help",
        "  --version".ljust(SUMMARY_COLUMN) + "print the version",
        "",
        "Runs land in ./outputs/ (DLFOUND_OUTPUTS overrides); datasets in ~/.cache/dlfound/data (DLFOUND_DATA",
        "overrides, or paths.data_dir=PATH). Your own configs compose with ours: dlfound train --config-dir DIR ...",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage(), end="")
        return
    if args[0] == "--version":
        from dlfound import __version__

        print(f"dlfound {__version__}")
        return
    from dlfound.runs.job_process import COMMAND_ENV

    command, rest = args[0], args[1:]
    if command.startswith(("-sc", "--shell-completion")):
        command, rest = "train", args
    elif command not in COMMANDS and os.environ.get(COMMAND_ENV):
        command, rest = os.environ[COMMAND_ENV], args  # a DDP rank re-launched by Lightning
    if command not in COMMANDS:
        print(f"dlfound: unknown command {command!r}\n", file=sys.stderr)
        print(usage(), end="", file=sys.stderr)
        sys.exit(2)
    importlib.import_module(f"dlfound.commands.{COMMANDS[command].module}").main(rest)
