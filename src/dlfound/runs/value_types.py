"""Setting values of the wrong type (`data.batch_size=abc`, `optim.lr=fast`) refused before anything is built,
naming the key and the type its constructor expects, instead of the comparison that fails deep inside it
("'<=' not supported between instances of 'float' and 'str'").

The expected type is read from the constructor's signature: its annotation, else the type of its default. Only a
text where the constructor takes a number or a switch (int, float, bool) is refused; any annotation that admits text
("auto", a path, a name) or says nothing leaves the value to the constructor.
"""

import inspect
import types
import typing

from dlfound.errors import ConfigError

# What each expected type is called in the message, and an example of a value of it.
NAMED = {bool: ("true or false", "true"), int: ("an integer", "10"), float: ("a number", "0.01")}


def _signatures(target) -> list[inspect.Signature]:
    """The signatures whose keywords `target` takes: a class's __init__ up its bases while they pass **kwargs on,
    a function's own and (when it passes **kwargs on) that of the class it returns."""
    found = []
    callables = [c.__init__ for c in target.__mro__ if "__init__" in vars(c)] if inspect.isclass(target) else [target]
    if not inspect.isclass(target):
        returned = typing.get_type_hints(target).get("return") if callable(target) else None
        if inspect.isclass(returned):
            callables += [c.__init__ for c in returned.__mro__ if "__init__" in vars(c)]
    for fn in callables:
        try:
            found.append((inspect.signature(fn), fn))
        except (TypeError, ValueError):
            continue
    return found


def _hints(fn) -> dict:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # annotations naming what cannot be imported here: fall back to the defaults
        return {}


def expected_type(parameter: inspect.Parameter, hint) -> type | None:
    """bool, int or float when the parameter takes only numbers or switches (or None), else None."""
    if hint is not None and hint is not inspect.Parameter.empty:
        options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        # None is "not set"; a tensor (torch.optim's learning rates) is a number given another way.
        options = [o for o in options if o is not type(None) and getattr(o, "__name__", None) != "Tensor"]
        if options and all(o in NAMED for o in options):
            return float if float in options else options[0]
        return None
    default = parameter.default
    return type(default) if type(default) in NAMED else None


def check_value_types(section: str, cfg: dict, filled_in: tuple[str, ...] = ()) -> None:
    """A ConfigError for the first key of the section whose value is text where its constructor takes a number or a
    switch; the section is left alone when its `_target_` cannot be imported (its own error says why). `filled_in`:
    words that dlfound replaces by a number before the constructor sees them (a schedule's `auto` length)."""
    from hydra.utils import get_object

    if not cfg.get("_target_"):
        return
    try:
        target = get_object(cfg["_target_"])
    except Exception:
        return
    expected: dict[str, type | None] = {}  # the nearest signature that names a key decides its type
    for signature, fn in _signatures(target):
        hints = _hints(fn)
        for name, parameter in signature.parameters.items():
            if name not in expected and name in cfg:
                expected[name] = expected_type(parameter, hints.get(name, parameter.annotation))
    for key, wanted in expected.items():
        value = cfg[key]
        if wanted is not None and isinstance(value, str) and value not in filled_in:
            what, example = NAMED[wanted]
            raise ConfigError(
                f"{section}.{key}={value}: {section}.{key} takes {what} ({wanted.__name__}), not the "
                f"text {value!r}; give e.g. {section}.{key}={example}."
            )
