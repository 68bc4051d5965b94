"""`dlfound train [OVERRIDES]`: compose the config with Hydra and run each job (dlfound.runs.job).

Everything after `train` is Hydra's: overrides, `-m` for sweeps, `--cfg job`, `--help`. Before Hydra starts,
`resume=RUN_FOLDER` is expanded into that run's overrides, settings are checked for typos
(dlfound.runs.overrides), and a finished run's folder is protected from being
trained over.
"""

import os
import sys
from pathlib import Path

from dlfound.runs.job_process import COMMAND_ENV


def prepare(argv: list[str]) -> list[str]:
    """The overrides Hydra is given, after the checks and expansions made before it starts (resume=RUN_FOLDER,
    group names, settings the config does not have, a finished run's folder); a mistake raises DlfoundError. The
    Python API (dlfound.api) shares it."""
    from dlfound.runs.disk import check_room_to_start
    from dlfound.runs.gpus import gpu_count, register_resolver
    from dlfound.runs.groups import check_group_options
    from dlfound.runs.naming import register_run_name
    from dlfound.runs.overrides import check_overrides
    from dlfound.runs.paths import config_dir
    from dlfound.runs.resume import expand_resume, explicit_run_dir, refuse_overwrite
    from dlfound.runs.slurm_launcher import register_with_hydra

    register_resolver()
    register_run_name()
    register_with_hydra()
    if "hydra/launcher=gpus" in argv:
        gpu_count()  # here, its refusal is one paragraph; inside Hydra's launcher setup, a traceback
    argv = expand_resume(argv)
    check_group_options(argv, config_dir())
    argv = check_overrides(argv, config_dir())
    outputs = Path(os.environ.get("DLFOUND_OUTPUTS", "outputs"))
    check_room_to_start(explicit_run_dir(argv) or outputs)  # Hydra's own writes would end in a traceback
    refuse_overwrite(argv)
    # Sweeper databases (Optuna's sqlite) live under the outputs folder, which must exist before Hydra starts.
    outputs.mkdir(parents=True, exist_ok=True)
    return argv


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

    try:
        argv = prepare(argv)
    except DlfoundError as err:
        fail(str(err))
    os.environ[COMMAND_ENV] = "train"
    # Hydra parses sys.argv[1:]; argv[0] stays the real script so that re-launched DDP ranks find it.
    sys.argv = [sys.argv[0], *argv]
    hydra.main(config_path=str(config_dir()), config_name="train", version_base="1.3")(run_job)()
