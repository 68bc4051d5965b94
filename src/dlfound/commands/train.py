"""`dlfound train [OVERRIDES]`: compose the config with Hydra and run each job (dlfound.runs.job).

Everything after `train` is Hydra's: overrides, `-m` for sweeps, `--cfg job`, `--help`. Before Hydra starts,
`resume=RUN_FOLDER` is expanded into that run's overrides, settings are checked for typos
(dlfound.runs.overrides), and a finished run's folder is protected from being
trained over.
"""

import os
import sys

from dlfound.runs.job_process import COMMAND_ENV


def hydra_help_cached() -> str:
    """Hydra's `dlfound train --help` (the config groups and the default config), composed once and then read from
    the user's cache, keyed by the config tree's contents and the versions of dlfound and Hydra: composing the whole
    config takes seconds, and the answer changes only with them."""
    import contextlib
    import importlib.metadata
    import io

    import dlfound
    from dlfound.files import cached_json, contents_key
    from dlfound.runs.paths import config_dir

    def compose_help() -> str:
        import hydra

        from dlfound.runs.job import run_job

        sys.argv, text = [sys.argv[0], "--help"], io.StringIO()
        with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
            hydra.main(config_path=str(config_dir()), config_name="train", version_base="1.3")(run_job)()
        return text.getvalue()

    key = contents_key([(config_dir(), "*.yaml")], dlfound.__version__, importlib.metadata.version("hydra-core"))
    return cached_json("help", f"train-{key}", compose_help)


def main(argv: list[str]) -> None:
    if argv in (["--help"], ["-h"]):
        print(hydra_help_cached(), end="")
        return
    import hydra

    from dlfound.errors import DlfoundError
    from dlfound.runs.console import fail
    from dlfound.runs.job import run_job
    from dlfound.runs.paths import config_dir
    from dlfound.runs.train_overrides import prepare

    try:
        argv = prepare(argv)
    except DlfoundError as err:
        fail(str(err))
    os.environ[COMMAND_ENV] = "train"
    # Hydra parses sys.argv[1:]; argv[0] stays the real script so that re-launched DDP ranks find it.
    sys.argv = [sys.argv[0], *argv]
    hydra.main(config_path=str(config_dir()), config_name="train", version_base="1.3")(run_job)()
