"""Command-line settings (`data.batch_size=32`, `+trainer.max_steps=50`, `seed=1`) checked against the composed
config before Hydra applies them, so that a typo is answered with the closest names, `+` or not, instead of Hydra's
"Key 'batchsize' is not in struct ... To append to your config use +data.batchsize" (which recommends the wrong fix).

A key the config lists passes as it is (a needless `+` dropped). A key the config does not list but the section's
`_target_` takes (a Trainer's `max_steps`, an optimizer's `nesterov`, a data module's constructor argument) passes
with `+` added, as if the user had typed it. Under a plain container (callbacks, logger) `+` adds an entry as in
Hydra; `++` (force-add) is never second-guessed. The config is composed from the command line's group choices
only (every combination a sweep names), and anything the check cannot read (a config of its own, Hydra's flags) is
left to Hydra.
"""

import difflib
import itertools
from pathlib import Path

from dlfound.errors import ConfigError
from dlfound.runs.groups import options, user_config_dirs
from dlfound.runs.settings import settings_of, unknown_setting

# Hydra's flags that take a value (the value is no override), and the ones after which there is nothing to check.
FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-dir", "-cd"}
NOTHING_TO_CHECK = {
    "-h",
    "--help",
    "--hydra-help",
    "--version",
    "-sc",
    "--shell-completion",
    "--info",
    "-i",
    "--config-name",
    "-cn",
    "--config-path",
    "-cp",
    "--experimental-rerun",
}
# More compositions than this (a sweep over many groups) are left to Hydra.
MAX_COMPOSITIONS = 16


def override_args(args: list[str]) -> list[str] | None:
    """The overrides among `dlfound train`'s arguments, or None when the command line is not a plain run."""
    found, skip = [], False
    for arg in args:
        flag = arg.split("=", 1)[0]
        if skip:
            skip = False
        elif flag in NOTHING_TO_CHECK or arg.startswith("-sc"):
            return None
        elif arg in FLAGS_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            found.append(arg)
    return found


def composed_configs(group_lines: list, config_dir: Path, extra_dirs: list[Path]) -> list[dict]:
    """The config (plain, unresolved) for each combination of the group choices on the command line."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    choices = [
        [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override() else [o.input_line]
        for o in group_lines
    ]
    combinations = list(itertools.islice(itertools.product(*choices), MAX_COMPOSITIONS + 1))
    if len(combinations) > MAX_COMPOSITIONS:
        return []
    search = [f"hydra.searchpath=[{','.join(f'file://{d}' for d in extra_dirs)}]"] if extra_dirs else []
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return [OmegaConf.to_container(compose("train", overrides=[*combo, *search])) for combo in combinations]


def verdict(cfg: dict, parts: list[str], adds: bool) -> str:
    """ "listed", "takes" (the section's target takes it: add `+`), "added" (`+` into a plain container) or
    "hydra" (nothing to say); raises the unknown-setting ConfigError."""
    from hydra.utils import get_object

    node = cfg
    for depth, part in enumerate(parts):
        if isinstance(node, dict) and part in node:
            node = node[part]
            continue
        if not isinstance(node, dict):
            return "hydra"  # under a value (sched=none is null): Hydra says what is wrong
        section = ".".join(parts[:depth])
        listed = {k for k in node if not k.startswith("_")}
        if "_target_" in node:
            names, complete = set(), True
            if node["_target_"]:
                try:
                    names, complete = settings_of(get_object(node["_target_"]))
                except Exception:  # a target that does not import: the run builder says so
                    return "hydra"
            known = (names | listed) - {"self"}
            typo = difflib.get_close_matches(part, sorted(known), n=1, cutoff=0.6)
            if depth == len(parts) - 1 and (part in names or not (complete or typo)):
                return "takes"  # a **kwargs target: the run builder checks the name when it is called
            raise unknown_setting(section, part, known)
        if adds and depth > 0:
            return "added"
        raise unknown_setting(section, part, listed)
    return "listed"


def check_overrides(args: list[str], config_dir: Path) -> list[str]:
    """`args` with each setting checked (module docstring): refused with the closest names, or passed on with `+`
    added where the underlying class takes it or dropped where the config lists it already."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType

    lines = override_args(args)
    if not lines:
        return args
    extra_dirs = user_config_dirs(args)
    dirs = [config_dir, *extra_dirs]
    try:
        parsed = dict(zip(lines, OverridesParser.create().parse_overrides(lines), strict=True))
    except Exception:  # Hydra's grammar error is its own to report
        return args

    def is_group(o) -> bool:
        key = o.key_or_group
        return "/" in key or options(key, dirs) is not None

    settings = {
        line: o
        for line, o in parsed.items()
        if not is_group(o)
        and not o.key_or_group.startswith("hydra")
        and o.type in (OverrideType.CHANGE, OverrideType.ADD)
        and o.package is None
    }
    if not settings:
        return args
    groups = [o for o in parsed.values() if is_group(o) and not o.key_or_group.startswith("hydra")]
    try:
        configs = composed_configs(groups, config_dir, extra_dirs)
    except Exception:  # a composition Hydra refuses: Hydra's message, where the user expects it
        return args
    if not configs:
        return args
    checked = []
    for arg in args:
        o = settings.get(arg)
        if o is None:
            checked.append(arg)
            continue
        adds = o.type == OverrideType.ADD
        found, error = set(), None
        for cfg in configs:  # a sweep's key must exist in one of its compositions
            try:
                found.add(verdict(cfg, o.key_or_group.split("."), adds))
            except ConfigError as err:
                error = error or err
        if not found:
            raise error
        if "listed" in found:
            checked.append(arg[1:] if adds else arg)
        elif "takes" in found and not adds:
            checked.append(f"+{arg}")
        else:
            checked.append(arg)
    return checked
