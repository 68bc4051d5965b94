"""The `key=value` arguments of the commands that run outside Hydra (eval, sample, restore): one typed parser.

Each command declares its options as a table of `Option`s; `parse_options` checks names, types and ranges and
raises one ConfigError that names the argument and shows the command's usage. `dlfound eval` passes the keys it
does not own on to the run's config as overrides.
"""

from dataclasses import dataclass

from dlfound.errors import ConfigError

TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


@dataclass(frozen=True)
class Option:
    default: object = None
    kind: type = str  # str, int, float or bool
    minimum: float | None = None  # the smallest value allowed
    above: float | None = None  # values must be larger than this
    required: bool = False


def parse_value(key: str, text: str, option: Option):
    if text.lower() in ("null", "none") and option.default is None and not option.required:
        return None
    try:
        if option.kind is bool:
            if text.lower() not in TRUE + FALSE:
                raise ValueError
            value = text.lower() in TRUE
        else:
            value = option.kind(text)
    except ValueError:
        wanted = {bool: "true or false", int: "a whole number", float: "a number"}.get(option.kind, "text")
        raise ConfigError(f"{key}={text!r} is not a valid value; {key} takes {wanted}") from None
    if option.minimum is not None and value < option.minimum:
        raise ConfigError(f"{key}={text} must be at least {option.minimum:g}")
    if option.above is not None and value <= option.above:
        raise ConfigError(f"{key}={text} must be larger than {option.above:g}")
    return value


def parse_options(
    args: list[str], options: dict[str, Option], command: str, usage: str, pass_unknown: bool = False
) -> tuple[dict, dict[str, str]]:
    """(values of the declared options, with defaults; the other `key=value` pairs, as text). Unknown keys are
    an error unless `pass_unknown`."""
    values = {key: option.default for key, option in options.items()}
    others: dict[str, str] = {}
    for arg in args:
        key, eq, text = arg.partition("=")
        key = key.lstrip("+")
        if not eq or not key:
            raise ConfigError(f"dlfound {command}: expected key=value arguments, got {arg!r}. Usage: {usage}")
        if key in options:
            values[key] = parse_value(key, text, options[key])
        elif pass_unknown:
            others[key] = text
        else:
            raise ConfigError(f"dlfound {command} does not take {key!r}; it takes {', '.join(options)}. Usage: {usage}")
    missing = [key for key, option in options.items() if option.required and not values[key]]
    if missing:
        raise ConfigError(f"dlfound {command} needs {', '.join(f'{k}=...' for k in missing)}. Usage: {usage}")
    return values, others


def resolve_device(name: str) -> str:
    """`device=auto|cpu|cuda` as a torch device name; cuda without a GPU is a clear error."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ConfigError(f"device={name}: use cpu, cuda (when a GPU is present) or auto")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA GPU is available; use device=cpu")
    return name
