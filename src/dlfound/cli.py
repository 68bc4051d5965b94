"""The `dlfound` command. Thin: it picks the sub-command and hands the rest to Hydra or the entry points.

Nothing heavy is imported here, so `dlfound --help` answers at once without loading torch.
"""

import os
import sys
from pathlib import Path

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
  sample ckpt_path=PATH [n=64 ...]
                          write a PNG grid of samples from a generative model's checkpoint
  restore ckpt_path=PATH input=IMAGE output=OUT [sigma=25 | scale=2 | task=deblur|inpaint ...]
                          apply a trained restoration model to an image of any size, or use a
                          denoiser as the prior of a plug-and-play deblurring or inpainting solver

options:
  -h, --help              this help
  --version               print the version

Runs land in ./outputs/ (DLFOUND_OUTPUTS overrides); datasets in ~/.cache/dlfound/data (DLFOUND_DATA
overrides, or paths.data_dir=PATH). Your own configs compose with ours: dlfound train --config-dir DIR ...
"""

HYDRA_COMMANDS = ("train",)
# Commands that take key=value arguments and run one module's `main(args)`.
ENTRY_POINTS = {"eval": "dlfound.evaluate", "list": "dlfound.listing", "sample": "dlfound.sample",
                "restore": "dlfound.restore", "report": "dlfound.report"}
# Lightning re-launches DDP ranks as `dlfound <overrides>`; this tells those child processes their command.
COMMAND_ENV = "DLFOUND_COMMAND"


def _run_hydra(command: str, args: list[str]) -> None:
    import hydra

    from dlfound.errors import DlfoundError
    from dlfound.gpus import gpu_count, register_resolver
    from dlfound.paths import config_dir

    register_resolver()
    if "hydra/launcher=gpus" in args:
        try:
            gpu_count()  # here, its refusal is one paragraph; inside Hydra's launcher setup, a traceback
        except DlfoundError as err:
            _fail(str(err))
    os.environ[COMMAND_ENV] = command
    if command == "train":
        from dlfound.train import hydra_task

        args = _expand_resume(args)
        _refuse_overwrite(args)
        # Sweeper databases (Optuna's sqlite) live under the outputs folder, which must exist before Hydra starts.
        Path(os.environ.get("DLFOUND_OUTPUTS", "outputs")).mkdir(parents=True, exist_ok=True)
    # Hydra parses sys.argv[1:]; argv[0] stays the real script so that re-launched DDP ranks find it.
    sys.argv = [sys.argv[0], *args]
    main_fn = hydra.main(config_path=str(config_dir()), config_name=command, version_base="1.3")(hydra_task)
    main_fn()
    from dlfound.train import FAILED_RUNS

    if FAILED_RUNS:
        _fail(f"{len(FAILED_RUNS)} job(s) of the sweep failed; each failure is recorded in its results.json: "
              + ", ".join(str(p) for p in FAILED_RUNS))


def _expand_resume(args: list[str]) -> list[str]:
    """`resume=RUN_FOLDER` becomes that run's own overrides, its folder, and resume=last."""
    for i, arg in enumerate(args):
        if arg.startswith("resume=") and arg not in ("resume=auto", "resume=last", "resume=null"):
            folder = Path(arg.split("=", 1)[1]).expanduser()
            saved = folder / ".hydra" / "overrides.yaml"
            if not saved.is_file():
                _fail(f"resume={folder}: no run folder there ({saved} is missing). Give the folder of a "
                      "previous `dlfound train` run, which holds .hydra/ and checkpoints/.")
            import yaml

            previous = [o for o in yaml.safe_load(saved.read_text()) or [] if not o.startswith(("resume=", "hydra.run.dir="))]
            rest = args[:i] + args[i + 1:]
            return previous + rest + [f"hydra.run.dir={folder}", "resume=last"]
    return args


def _refuse_overwrite(args: list[str]) -> None:
    """An explicit hydra.run.dir that already holds a finished run is only reused to resume it."""
    from dlfound.train import slurm_requeued

    for arg in args:
        if arg.startswith("hydra.run.dir="):
            folder = Path(arg.split("=", 1)[1])
            resuming = slurm_requeued() or any(a.startswith(("resume=", "ckpt_path=")) and not a.endswith("=null")
                                               for a in args)
            if (folder / "results.json").exists() and not resuming:
                _fail(f"{folder} already holds a finished run, and training into it would overwrite its files. "
                      f"Choose another hydra.run.dir, or continue that run with resume=last.")


def _fail(message: str) -> None:
    from dlfound.console import fail

    fail(message)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return
    if args[0] == "--version":
        from dlfound import __version__

        print(f"dlfound {__version__}")
        return
    command, rest = args[0], args[1:]
    if command.startswith("-sc") or command.startswith("--shell-completion"):
        command, rest = "train", args
    elif command not in ENTRY_POINTS and command not in HYDRA_COMMANDS and os.environ.get(COMMAND_ENV):
        command, rest = os.environ[COMMAND_ENV], args  # a DDP rank re-launched by Lightning
    if command in HYDRA_COMMANDS:
        _run_hydra(command, rest)
    elif command in ENTRY_POINTS:
        import importlib

        importlib.import_module(ENTRY_POINTS[command]).main(rest)
    else:
        print(f"dlfound: unknown command {command!r}\n", file=sys.stderr)
        print(USAGE, end="", file=sys.stderr)
        sys.exit(2)
