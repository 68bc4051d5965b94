"""Strict config sections: a key that the section's `_target_` does not take is refused, naming the closest
valid settings, so that a typo such as `data.batchsize=32` never passes silently.

The names a target takes are read from its signature. A class whose `__init__` passes `**kwargs` on to its base
takes its bases' names too; a function that passes `**kwargs` on (the named model constructors) cannot be read
statically, so its typo is caught when Python refuses the keyword, and answered with the same message.

Some keys live in a config on purpose without reaching the constructor: the facts of a data config that model
configs read by interpolation, and the task keys the run builder consumes. They are declared here, not accepted
wholesale.
"""

import difflib
import inspect
import re
import typing

from dlfound.errors import ConfigError

# Keys of a data config that model configs read by interpolation (${data.in_channels}, ...); a data module
# need not take them as arguments (restoration data has no classes, sequence data no stem).
DATA_KEYS_FOR_MODELS = ("in_channels", "image_size", "num_classes", "stem", "readout")
# Keys of a config section that the run builder consumes before instantiating it.
CONFIG_ONLY = {"data": DATA_KEYS_FOR_MODELS, "task": ("fid_features", "normalize_inputs")}
UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")


def _parameters(fn) -> tuple[set[str], bool]:
    """(keyword names fn takes, whether it also takes **kwargs)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return set(), True
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = {n for n, p in signature.parameters.items() if p.kind in kinds and n != "self"}
    return names, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())


def settings_of(target) -> tuple[set[str], bool]:
    """(the names `target` takes, whether that list is complete)."""
    if inspect.isclass(target):
        names: set[str] = set()
        for cls in target.__mro__:
            if "__init__" in vars(cls):
                own, more = _parameters(cls.__init__)
                names |= own
                if not more:
                    return names, True
        return names, False
    names, more = _parameters(target)
    if more:  # for suggestions only: the class it builds usually receives the rest
        returned = typing.get_type_hints(target).get("return") if callable(target) else None
        if inspect.isclass(returned):
            names |= settings_of(returned)[0]
    return names, not more


def unknown_setting(section: str, key: str, valid) -> ConfigError:
    """`section` "" is the top level of the config."""
    close = difflib.get_close_matches(key, sorted(valid), n=3, cutoff=0.6)
    # Only the names about as close as the closest: `batchsize` is batch_size, not also eval_batch_size.
    ratio = {name: difflib.SequenceMatcher(None, key, name).ratio() for name in close}
    close = [name for name in close if ratio[name] >= ratio[close[0]] - 0.1]
    hint = (
        f"did you mean {' or '.join(close)}?"
        if close
        else f"its settings are {', '.join(sorted(valid))}."
        if valid
        else "it takes no settings."
    )
    where = f"{section} has no setting" if section else "the config has no top-level setting"
    return ConfigError(
        f"{where} {key!r}; {hint} Fix or drop {section + '.' if section else ''}{key} (on the command "
        f"line or in the config file)."
    )


def check_section(section: str, cfg: dict, extra: tuple[str, ...] = ()) -> dict:
    """The section's keys that go to its target's constructor, after refusing the ones it does not take.
    `extra`: keyword names the caller passes itself (net, optim, callbacks, ...)."""
    from hydra.utils import get_object

    target = get_object(cfg["_target_"])
    names, complete = settings_of(target)
    config_only = CONFIG_ONLY.get(section, ())
    keys = [k for k in cfg if not k.startswith("_")]
    if complete:
        for key in keys:
            if key not in names and key not in config_only:
                raise unknown_setting(section, key, names - set(extra))
    dropped = [k for k in config_only if k in cfg and k not in names]
    return {k: v for k, v in cfg.items() if k not in dropped}


def explain_type_error(section: str, cfg: dict, err: BaseException) -> ConfigError | None:
    """The unknown-setting message for Python's "unexpected keyword argument 'KEY'" when KEY is in the section."""
    match = UNEXPECTED.search(str(err))
    if not match or match.group(1) not in cfg:
        return None
    from hydra.utils import get_object

    names, _ = settings_of(get_object(cfg["_target_"]))
    return unknown_setting(section, match.group(1), names)
