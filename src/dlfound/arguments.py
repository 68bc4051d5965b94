"""`key=value` arguments for the commands that run outside Hydra (eval, sample, restore)."""

from dlfound.errors import ConfigError


def parse_key_values(args: list[str], command: str) -> dict[str, str]:
    """Splits `a=1 b.c=x` into {"a": "1", "b.c": "x"}; anything else is a clear error."""
    parsed = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise ConfigError(f"dlfound {command}: expected key=value arguments, got {arg!r}. "
                              f"Run `dlfound --help` for the arguments each command takes.")
        parsed[key] = value
    return parsed
