"""The options of a config group (model=, data=, optim=, ...), checked before Hydra composes anything, so that a
typo (`model=resnt18`) is answered in one paragraph with the closest names first instead of Hydra's list of every
option."""

import difflib
import re
from pathlib import Path

from dlfound.errors import ConfigError

GROUP_OVERRIDE = re.compile(r"^(?:\+|override\s+)?([A-Za-z_][\w/]*)=(.*)$")
# The figures' specs live in the config tree (configs/figure/) for `dlfound figure`, not for `dlfound train`.
NOT_TRAIN_GROUP = "figure"
# Hydra's sweep syntax (choice(...), range(...), glob(...)) and interpolations are left to Hydra.
SWEEP_FUNCTION = re.compile(r"^\w+\(|\$\{")


def options(group: str, config_dirs: list[Path]) -> set[str] | None:
    """The option names of a group across the config folders, or None when no folder has that group."""
    folders = [d / group for d in config_dirs if (d / group).is_dir()]
    if not folders:
        return None
    return {p.stem for f in folders for p in f.glob("*.yaml") if not p.name.startswith("_")}


def user_config_dirs(args: list[str]) -> list[Path]:
    """Folders given with --config-dir/-cd: their groups and options compose with ours."""
    found = []
    for i, arg in enumerate(args):
        if arg in ("--config-dir", "-cd") and i + 1 < len(args):
            found.append(Path(args[i + 1]).expanduser())
        elif arg.startswith("--config-dir="):
            found.append(Path(arg.split("=", 1)[1]).expanduser())
    return found


def check_group_options(args: list[str], config_dir: Path) -> None:
    """Refuse `GROUP=NAME` when the group has no option NAME, naming the closest options."""
    dirs = [config_dir, *user_config_dirs(args)]
    for arg in args:
        match = GROUP_OVERRIDE.match(arg)
        if not match or SWEEP_FUNCTION.match(match.group(2)):
            continue
        group, value = match.groups()
        if group.split("/")[0] == "hydra":  # Hydra's plugins add launcher and sweeper options of their own
            continue
        if group == NOT_TRAIN_GROUP:
            raise ConfigError(
                f"{arg}: figures are not part of a run's config; draw one with "
                f"`dlfound figure {value or 'NAME'}` (`dlfound figure` lists them)."
            )
        known = options(group, dirs)
        if known is None:
            continue
        for name in value.split(","):
            name = name.strip()
            if name in ("", "null") or name in known:
                continue
            close = difflib.get_close_matches(name, sorted(known), n=4, cutoff=0.5)
            hint = f"the closest are {', '.join(close)}. " if close else ""
            raise ConfigError(
                f"{group}={name}: there is no {group} config named {name!r}; {hint}"
                f"`dlfound list {group.split('/')[0]}` shows all {len(known)}."
            )
