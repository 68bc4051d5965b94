"""Resuming a run: from a checkpoint file, from its folder's last.ckpt, or after SLURM requeued the job.

`dlfound train resume=RUN_FOLDER` becomes that run's own overrides plus `hydra.run.dir=RUN_FOLDER resume=last`
before Hydra starts; `resume=auto` continues when there is a last.ckpt and skips runs already done, so that a
sweep re-run with the same `hydra.sweep.dir` only runs what is missing.
"""

import os
from pathlib import Path

from dlfound.errors import ConfigError
from dlfound.runs.results import RESULTS_FILE, last_checkpoint

# The marker that claims a run folder for the run that created it (claim_run_dir).
CLAIM_FILE = ".claimed"
# Arguments after which `dlfound train` trains no single run in an explicit folder: a sweep (its jobs have numbered
# folders), or Hydra printing something.
NOT_ONE_RUN = {
    "-m",
    "--multirun",
    "hydra.mode=MULTIRUN",
    "--cfg",
    "-c",
    "-h",
    "--help",
    "--hydra-help",
    "--info",
    "-i",
    "--shell-completion",
}


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
            raise ConfigError(
                f"{run_dir} holds no checkpoint to continue from ({run_dir / 'checkpoints'} has no "
                "last.ckpt: the run stopped before it saved one). Start the run anew instead, with its "
                "own command line and another name, or after deleting the folder."
            )
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


def explicit_run_dir(args: list[str]) -> Path | None:
    """The folder that `hydra.run.dir=` or `name=` (dlfound.runs.naming) gives the run, or None."""
    from dlfound.runs.naming import run_name

    folder = None
    for arg in args:
        key, _, value = arg.partition("=")
        value = value.strip("'\"")  # sweep jobs pass hydra.run.dir="FOLDER" (dlfound.runs.job_process)
        if key == "hydra.run.dir" and value not in ("", "null"):
            folder = Path(value)
        elif key == "name" and value not in ("", "null") and folder is None:
            folder = Path(os.environ.get("DLFOUND_OUTPUTS", "outputs")) / "train" / "runs" / run_name(value, "", "")
    return folder


def refuse_overwrite(args: list[str]) -> None:
    """An explicit hydra.run.dir or name that already holds a finished run is only reused to resume it; a fresh
    single run claims its folder (claim_run_dir) before Hydra writes anything into it."""
    folder = explicit_run_dir(args)
    if (
        folder is None
        or slurm_requeued()
        or any(a.startswith(("resume=", "ckpt_path=")) and not a.endswith("=null") for a in args)
    ):
        return
    if (folder / RESULTS_FILE).exists():
        raise ConfigError(
            f"{folder} already holds a finished run, and training into it would overwrite its files. "
            f"Choose another hydra.run.dir or name, or continue that run with "
            f"`dlfound train resume={folder}`."
        )
    trains_here = not any(a in NOT_ONE_RUN or a.split("=")[0] in NOT_ONE_RUN or a.startswith("-sc") for a in args)
    first_rank = all(os.environ.get(k, "0") == "0" for k in ("RANK", "LOCAL_RANK", "SLURM_PROCID"))
    if trains_here and first_rank:  # DDP ranks started for this run join its folder
        claim_run_dir(folder)


def claim_run_dir(run_dir: Path) -> None:
    """Claim the folder of a fresh run (not a resumed one) before anything is written into it: the marker file is
    created only if it does not exist (O_EXCL, atomic), so of two runs started together into one folder (the same
    `name=`) one trains and the other is refused, where the check before Hydra (refuse_overwrite) sees neither."""
    import socket
    from datetime import datetime

    marker = Path(run_dir) / CLAIM_FILE
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        owner = marker.read_text().strip() if marker.is_file() else ""
        raise ConfigError(
            f"{run_dir} is already taken by another run{f' ({owner})' if owner else ''}, and training "
            "into it would mix the two runs' files. Choose another name (or hydra.run.dir); once that "
            f"run has stopped, `dlfound train resume={run_dir}` continues it."
        ) from None
    with os.fdopen(fd, "w") as file:
        file.write(
            f"started {datetime.now().isoformat(timespec='seconds')} by process {os.getpid()} on "
            f"{socket.gethostname()}\n"
        )


def release_run_dir(run_dir: Path) -> None:
    """Give the folder back (a run stopped before it saved anything), so that the same command starts it anew."""
    (Path(run_dir) / CLAIM_FILE).unlink(missing_ok=True)
