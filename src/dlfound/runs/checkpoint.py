"""Reading a checkpoint file and the run config that travels inside it (see ConfigInCheckpoint).

Checkpoints are read with torch.load(weights_only=True), so reading one never executes code from the file, and
load_checkpoint is the only reader: a missing, damaged, foreign or newer file, or one carrying code, ends in one
paragraph saying which.
Checkpoints written before the package was regrouped name a few `_target_`s that have moved; they are
rewritten on load (LEGACY_TARGETS), so every old run folder still evaluates, samples, restores and resumes.
"""

import re
from pathlib import Path

from dlfound import __version__
from dlfound.errors import CheckpointError, ConfigError

# The layout of what dlfound puts in a checkpoint, stamped by dlfound.runs.checkpoint_io into every checkpoint it
# writes. Checkpoints written before the stamp existed read as format 0 and load as they always did; a file from a
# newer dlfound (a higher format) is refused with a request to upgrade rather than misread.
FORMAT = 1
FORMAT_KEY = "dlfound_format"
VERSION_KEY = "dlfound_version"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
# A zip archive (torch.save since 1.6) or the legacy pickle format start with these bytes.
TORCH_MAGIC = (b"PK\x03\x04", b"\x80\x02\x8a\n")

LEGACY_TARGETS = {
    "dlfound.optim.warmup_cosine": "dlfound.tasks.optim.warmup_cosine",
    "dlfound.callbacks.ProgressBar": "dlfound.runs.callbacks.ProgressBar",
    "dlfound.loggers.CSVLogger": "dlfound.runs.loggers.CSVLogger",
    "dlfound.ntk.monitor.NTKMonitor": "dlfound.runs.ntk_monitor.NTKMonitor",
}


def upgrade_targets(node):
    """The config with every moved `_target_` replaced by its new path (a new plain structure)."""
    if isinstance(node, dict):
        return {k: LEGACY_TARGETS.get(v, v) if k == "_target_" else upgrade_targets(v) for k, v in node.items()}
    if isinstance(node, list):
        return [upgrade_targets(v) for v in node]
    return node


def plain_text(message: str) -> str:
    """A library's message as plain text for a paragraph: terminal escape codes removed, whitespace collapsed."""
    return " ".join(ANSI_ESCAPE.sub("", message).split())


def unreadable(path: Path, err: Exception) -> CheckpointError:
    """Why torch.load refused the file, in words a user can act on."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        head = file.read(4)
    message = plain_text(str(err))
    if size and not head.startswith((b"PK", b"\x80")):  # neither a zip (torch.save) nor a pickle
        return CheckpointError(
            f"{path} is not a PyTorch checkpoint (it starts with {head!r}). Give a .ckpt file "
            "written by `dlfound train`, e.g. RUN/checkpoints/last.ckpt or best-*.ckpt."
        )
    if "Weights only load failed" in message:
        found = UNSUPPORTED_GLOBAL.search(message)
        what = f" ({found.group(1)})" if found else ""
        return CheckpointError(
            f"{path} carries Python objects{what}, which loading would run as code. dlfound reads checkpoints with "
            "torch.load(weights_only=True): only tensors and plain values, so nothing in the file was run. "
            "`dlfound train` never writes such objects; give a checkpoint written by `dlfound train`, or, if you "
            "trust the file's source, load it in Python and save only its tensors."
        )
    if size == 0 or head in TORCH_MAGIC:
        return CheckpointError(
            f"checkpoint {path} is damaged or incomplete ({size} bytes; {message[:120]}), as a file is when the disk "
            "filled or a copy stopped mid-way. Use another checkpoint of the run (checkpoints/last.ckpt or "
            "best-*.ckpt), or copy the file again."
        )
    return CheckpointError(
        f"checkpoint {path} could not be read ({size} bytes; {message[:120]}). Give a .ckpt file written by "
        "`dlfound train`, e.g. RUN/checkpoints/last.ckpt or best-*.ckpt."
    )


def load_checkpoint(path: str | Path) -> dict:
    """The one way dlfound reads a checkpoint (eval, sample, restore, generate, predict, FID features, and the
    check before `train ckpt_path=`/`resume=` hands the file to Lightning): torch.load with weights_only=True, so
    reading never executes code from the file; every refusal is one CheckpointError paragraph."""
    import torch

    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} does not exist; pass ckpt_path=RUN/checkpoints/last.ckpt or best-*.ckpt"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise unreadable(path, err) from None
    if not isinstance(ckpt, dict) or "dlfound_config" not in ckpt:
        keys = ", ".join(map(str, list(ckpt)[:6])) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(
            f"{path} is a PyTorch file but not a dlfound checkpoint: it holds no run config "
            f"(it holds {keys or 'nothing'}). dlfound commands rebuild the network from the config "
            "inside the checkpoint; give one written by `dlfound train`."
        )
    written = ckpt.get(FORMAT_KEY, 0)
    if not isinstance(written, int) or written > FORMAT:
        raise CheckpointError(
            f"{path} was written by a newer dlfound ({ckpt.get(VERSION_KEY) or 'unknown version'}, "
            f"checkpoint format {written}); this dlfound ({__version__}) reads formats up to "
            f"{FORMAT}. Upgrade dlfound (pip install -U dlfound) to use it."
        )
    ckpt["dlfound_config"] = upgrade_targets(ckpt["dlfound_config"])
    return ckpt


def run_config(ckpt: dict, overrides: dict[str, str]) -> dict:
    """The run's resolved config with `a.b=value` overrides applied (values parsed as YAML)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(ckpt["dlfound_config"])
    try:
        cfg.merge_with(OmegaConf.from_dotlist([f"{k}={v}" for k, v in overrides.items()]))
    except Exception as err:
        raise ConfigError(f"bad override: {err}") from None
    return OmegaConf.to_container(cfg, resolve=True)
