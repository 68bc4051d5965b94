"""dlfound: deep-learning foundations experiments from composable Hydra configs.

The Python front door (implemented in dlfound.api, documented there):

    import dlfound
    run = dlfound.train("model=lenet5", "data=mnist", "trainer.max_epochs=1")
    run.metrics, run.curves(), run.network(), run.predict(images)
    dlfound.load(path), dlfound.sweep(*overrides), dlfound.report(paths), dlfound.figure(name)
    dlfound.create_model(name, **kwargs), dlfound.list_models(pattern)

Importing the package is cheap: torch and Lightning load only when one of these names is used.
"""

import importlib

__version__ = "0.1.0"

# Name -> the module that defines it, imported on first use (PEP 562). By module name, not by an import statement:
# this file is the bottom layer (every module may read __version__), and the front door it forwards to is the top.
_EXPORTS = {
    **dict.fromkeys(("Run", "train", "sweep", "load", "report", "figure", "create_model", "list_models"), "api"),
    "DlfoundError": "errors",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
