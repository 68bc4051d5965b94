"""Run folders named by what makes the run different: `name=` when given, else the time and the overrides.

TensorBoard, `ls` and `dlfound report` show a run by its folder, so `outputs/train/runs/2025-01-02_10-11-12_
model-lenet5_optim.lr-0.01` says what the run was, where a timestamp alone does not. Sweep jobs keep their number
(`multiruns/<time>/<n>`), which sweeps and `resume=auto` rely on.
"""

import re

MAX_OVERRIDES_LENGTH = 80
# Hydra's override grammar (hydra.run.dir=FOLDER, as `resume=FOLDER` and DDP ranks pass it) refuses `=` and `,`
# in a bare value: `model=lenet5,optim.lr=0.01` becomes `model-lenet5_optim.lr-0.01`.
UNSAFE = re.compile(r"[^\w.+-]+")


def run_name(name, time: str, overrides: str) -> str:
    """The `${dlfound.run_name:${name},${now:...},${hydra.job.override_dirname}}` resolver of hydra/default.yaml."""
    if name not in (None, "", "null"):
        return UNSAFE.sub("-", str(name)).strip("-.") or time
    overrides = str(overrides or "").replace("=", "-").replace(",", "_")
    overrides = UNSAFE.sub("-", overrides)[:MAX_OVERRIDES_LENGTH].strip("-")
    return f"{time}_{overrides}" if overrides else time


def register_run_name() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("dlfound.run_name"):
        OmegaConf.register_new_resolver("dlfound.run_name", run_name)
