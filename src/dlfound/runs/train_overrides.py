"""What `dlfound train` does to its overrides before Hydra starts, shared by the command and by the runs made in
another command's process (dlfound.runs.in_process: the Python API, a figure's lines)."""

import os
from pathlib import Path


def prepare(argv: list[str]) -> list[str]:
    """The overrides Hydra is given, after the checks and expansions made before it starts (resume=RUN_FOLDER,
    group names, settings the config does not have, a finished run's folder); a mistake raises DlfoundError."""
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
