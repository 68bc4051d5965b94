"""Resuming a run: from a checkpoint file, from its folder's last.ckpt, or after SLURM requeued the job.

`dlfound train resume=RUN_FOLDER` becomes that run's own overrides plus `hydra.run.dir=RUN_FOLDER resume=last`
before Hydra starts; `resume=auto` continues when there is a last.ckpt and skips runs already done, so that a
sweep re-run with the same `hydra.sweep.dir` only runs what is missing.
"""

import os
from pathlib import Path

from dlfound.errors import ConfigError
from dlfound.runs.results import RESULTS_FILE, last_checkpoint


def slurm_requeued() -> bool:
    return int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0


def resume_mode(cfg) -> str | None:
    """`resume` as given; a job that SLURM requeued (after preemption or a time limit) resumes as with `auto`, so
    it continues from its folder's last.ckpt, or is skipped if it had finished, instead of starting over."""
    resume = cfg.get("resume")
    return "auto" if resume is None and slurm_requeued() else resume


def find_resume_checkpoint(cfg: dict, run_dir: Path) -> str | None:
    """`ckpt_path=PATH` resumes from PATH. `resume=last` continues from this run folder's newest last*.ckpt
    (even a finished run, to train it longer); `resume=auto` does so when there is one, and starts fresh
    otherwise (finished runs are skipped before this, see dlfound.runs.job)."""
    if cfg.get("ckpt_path"):
        path = Path(cfg["ckpt_path"]).expanduser()
        if not path.is_file():
            raise ConfigError(f"ckpt_path={path} does not exist; give the path of a .ckpt file to resume from")
        return checked(path)
    resume = resume_mode(cfg)
    if resume not in (None, "auto", "last"):
        raise ConfigError(f"resume={resume!r}: use resume=auto, resume=last, or `dlfound train resume=RUN_FOLDER`")
    if resume:
        found = last_checkpoint(run_dir)
        if found:
            return checked(found)
        if resume == "last":
            raise ConfigError(f"resume=last: {run_dir / 'checkpoints'} holds no last.ckpt to continue from")
    return None


def checked(path: Path) -> str:
    """Lightning reads a resumed checkpoint itself, and would answer a damaged, foreign or newer file with a
    traceback: dlfound's own reader looks at it first, and refuses it in one paragraph."""
    from dlfound.runs.checkpoint import load_checkpoint

    load_checkpoint(path)
    return str(path)


def expand_resume(args: list[str]) -> list[str]:
    """`resume=RUN_FOLDER` becomes that run's own overrides, its folder, and resume=last."""
    for i, arg in enumerate(args):
        if arg.startswith("resume=") and arg not in ("resume=auto", "resume=last", "resume=null"):
            folder = Path(arg.split("=", 1)[1]).expanduser()
            saved = folder / ".hydra" / "overrides.yaml"
            if not saved.is_file():
                raise ConfigError(
                    f"resume={folder}: no run folder there ({saved} is missing). Give the folder of a "
                    "previous `dlfound train` run, which holds .hydra/ and checkpoints/."
                )
            import yaml

            previous = [
                o for o in yaml.safe_load(saved.read_text()) or [] if not o.startswith(("resume=", "hydra.run.dir="))
            ]
            rest = args[:i] + args[i + 1 :]
            return previous + rest + [f"hydra.run.dir={folder}", "resume=last"]
    return args


def refuse_overwrite(args: list[str]) -> None:
    """An explicit hydra.run.dir that already holds a finished run is only reused to resume it."""
    for arg in args:
        if arg.startswith(("hydra.run.dir=", "name=")) and not arg.endswith("=null"):
            folder = Path(arg.split("=", 1)[1])
            if arg.startswith("name="):  # the folder dlfound.runs.naming gives a named run
                folder = Path(os.environ.get("DLFOUND_OUTPUTS", "outputs")) / "train" / "runs" / folder
            resuming = slurm_requeued() or any(
                a.startswith(("resume=", "ckpt_path=")) and not a.endswith("=null") for a in args
            )
            if (folder / RESULTS_FILE).exists() and not resuming:
                raise ConfigError(
                    f"{folder} already holds a finished run, and training into it would overwrite its "
                    "files. Choose another hydra.run.dir or name, or continue that run with resume=last."
                )
