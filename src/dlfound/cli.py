"""The `dlfound` command: a table from command name to its module in dlfound.commands, each with `main(argv)`.

Nothing heavy is imported here, so `dlfound --help` answers at once without loading torch.
"""

import importlib
import os
import sys

USAGE = """\
usage: dlfound COMMAND [ARGS]

Deep-learning foundations experiments from composable configs.

commands:
  train [OVERRIDES]       train and test a model; Hydra overrides, e.g. model=lenet5 data=mnist
                          -m / --multirun sweeps:  dlfound train -m optim.lr=0.1,0.01
                          --cfg job prints the composed config;  --help lists the config groups
                          resume=RUN_FOLDER continues a run from its last checkpoint
  eval ckpt_path=PATH [OVERRIDES]
                          re-test a checkpoint and compare with the metrics its run recorded
  list [GROUP]            tables of models, datasets, optimizers, schedulers, experiments, ...
  report PATH... [--metric M] [--csv F] [--markdown F] [--plot DIR]
                          compare runs and sweeps: one row per run, seeds grouped as mean ± std
  figure [NAME] [--budget cpu|long|paper] [--redraw] [--out FILE] [OVERRIDES]
                          run a lecture's figure (vanishing, init, optimizers, batchnorm, dropout,
                          lr_schedules, degradation, ...) and draw it into one PNG; no NAME lists them
  sample ckpt_path=PATH [n=64 ...]
                          write a PNG grid of samples from a generative model's checkpoint
  restore ckpt_path=PATH input=IMAGE output=OUT [sigma=25 | scale=2 | task=deblur|inpaint ...]
                          apply a trained restoration model to an image of any size, or use a
                          denoiser as the prior of a plug-and-play deblurring or inpainting solver
  generate ckpt_path=PATH [prompt="ROMEO:"] [length=500] [temperature=0.8] [top_k=40]
                          stream text from a language model's checkpoint
  predict ckpt_path=PATH input=IMAGE|FOLDER [top_k=5] [output=predictions.csv] [device=auto]
                          classify an image (top-k classes with names) or a folder (a CSV) with a
                          trained classifier

options:
  -h, --help              this help
  --version               print the version

Runs land in ./outputs/ (DLFOUND_OUTPUTS overrides); datasets in ~/.cache/dlfound/data (DLFOUND_DATA
overrides, or paths.data_dir=PATH). Your own configs compose with ours: dlfound train --config-dir DIR ...
"""

# Command name -> module of dlfound.commands.
COMMANDS = {
    "train": "train",
    "eval": "eval",
    "list": "list",
    "report": "report",
    "figure": "figure",
    "sample": "sample",
    "restore": "restore",
    "generate": "generate",
    "predict": "predict",
}


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
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
        print(USAGE, end="", file=sys.stderr)
        sys.exit(2)
    importlib.import_module(f"dlfound.commands.{COMMANDS[command]}").main(rest)
