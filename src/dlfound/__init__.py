"""dlfound: deep-learning foundations experiments from composable Hydra configs.

Importing the package is cheap: torch and Lightning load only when a command needs them.
"""

__version__ = "0.1.0"
