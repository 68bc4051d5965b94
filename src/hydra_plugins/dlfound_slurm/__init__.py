"""dlfound's SLURM launcher as a Hydra plugin (`hydra/launcher=slurm`): Hydra instantiates launchers only from the
hydra_plugins namespace package; the launcher itself is dlfound.runs.slurm_launcher."""

from dlfound.runs.slurm_launcher import QuietSlurmLauncher


class SlurmLauncher(QuietSlurmLauncher):
    pass
